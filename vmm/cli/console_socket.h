// vmm/cli/console_socket.h: the host side of the virtio console: a UNIX stream socket that L0
// owns (so a connected client keeps its connection across L1 failovers). One client at a time;
// a new client replaces the old one. Bytes from the client go to the input sink (on the
// socket's own thread, in order); Write() sends guest output to the client, buffering up to
// 1 MiB while no client is connected (so nothing the guest sent before a client arrives is
// lost; beyond the bound the oldest bytes are dropped and counted).
// Thread-safety: Write and dropped_output may be called from any thread.
#ifndef REHOME_VMM_CLI_CONSOLE_SOCKET_H_
#define REHOME_VMM_CLI_CONSOLE_SOCKET_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace rehome {

class ConsoleSocket final {
 public:
  static constexpr size_t kMaxBuffered = 1 << 20;
  using InputSink = std::function<void(std::string_view)>;

  // Listens on `path` (a stale socket file is replaced; any other existing file is refused).
  static absl::StatusOr<std::unique_ptr<ConsoleSocket>> Listen(const std::string& path);
  ~ConsoleSocket();  // closes everything, removes the socket file
  ConsoleSocket(const ConsoleSocket&) = delete;
  ConsoleSocket& operator=(const ConsoleSocket&) = delete;

  // Keeps the socket's thread off the CPUs `busy_cpus` names (bit c = CPU c; the vCPU threads',
  // base/cpu_avoidance.h): woken there, it would first have to take the vCPU out of the guest,
  // or wait behind it while another CPU idles. Call before Start.
  void AvoidCpusOf(std::function<uint32_t()> busy_cpus) { busy_cpus_ = std::move(busy_cpus); }
  // Starts delivering client input to `sink`.
  void Start(InputSink sink);
  void Write(std::string_view bytes);
  uint64_t dropped_output() const;

 private:
  ConsoleSocket(std::string path, UniqueFd listener, UniqueFd wake);
  void Loop();
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  UniqueFd listener_;
  UniqueFd wake_;
  InputSink sink_;
  std::function<uint32_t()> busy_cpus_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  UniqueFd client_ ABSL_GUARDED_BY(mu_);
  std::string pending_ ABSL_GUARDED_BY(mu_);  // output not yet written to a client
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_CONSOLE_SOCKET_H_
