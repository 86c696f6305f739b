// qmp-client/testing/qemu_process.h: test helpers — a real qemu-system-x86_64 child serving QMP
// on UNIX sockets, and a raw UNIX-socket peer that frames what it reads.
//
// QemuProcess starts `qemu-system-x86_64 -machine none -nodefaults -nographic` with one
// `-qmp unix:PATH,server=on,wait=off` per requested socket in a fresh temporary directory, polls
// (with a deadline) until every socket accepts connections, and SIGKILLs + reaps the child and
// removes the directory in its destructor. `machine` replaces the default `-machine none`
// (e.g. {"-machine", "pc", "-accel", "tcg", "-smp", "2", "-S"} for a machine with vCPUs).
// RawQmpPeer reads with poll() and a deadline.
//
// Thread-safety: none; each object has one owner.
#ifndef REHOME_QMP_CLIENT_TESTING_QEMU_PROCESS_H_
#define REHOME_QMP_CLIENT_TESTING_QEMU_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"
#include "qmp-client/json_stream.h"

namespace rehome::testing {

// Path of qemu-system-x86_64 found on PATH, or "" when absent.
std::string FindQemu();

class QemuProcess final {
 public:
  static absl::StatusOr<std::unique_ptr<QemuProcess>> Start(
      int qmp_sockets = 1, absl::Duration timeout = absl::Seconds(20),
      std::vector<std::string> machine = {});
  ~QemuProcess();
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  const std::string& socket(int index = 0) const { return sockets_[index]; }
  // SIGKILLs and reaps the child now (the destructor then only cleans up).
  void Kill();
  pid_t pid() const { return pid_; }

 private:
  QemuProcess() = default;
  pid_t pid_ = -1;
  std::string dir_;
  std::vector<std::string> sockets_;
};

// A plain connected UNIX stream socket.
absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path);

// Whether some process listens on the UNIX stream socket at `path`, read from /proc/net/unix
// without connecting. Readiness probes use this: QEMU serves one QMP client at a time, and a
// probe connection it is still tearing down makes it drop (reset) the next client.
bool UnixSocketIsListening(const std::string& path);

class RawQmpPeer final {
 public:
  static absl::StatusOr<RawQmpPeer> Connect(const std::string& path);
  RawQmpPeer(RawQmpPeer&&) = default;
  RawQmpPeer& operator=(RawQmpPeer&&) = default;
  RawQmpPeer(const RawQmpPeer&) = delete;
  RawQmpPeer& operator=(const RawQmpPeer&) = delete;

  absl::Status Send(std::string_view bytes);
  // Reads framed values until `done(values_so_far)` is true; DeadlineExceeded past `timeout`,
  // Unavailable on EOF. Returns every value read (framing errors are skipped).
  template <typename Done>
  absl::StatusOr<std::vector<nlohmann::json>> ReadUntil(Done done, absl::Duration timeout) {
    std::vector<nlohmann::json> values;
    const absl::Time deadline = absl::Now() + timeout;
    while (!done(values)) {
      absl::Status status = ReadSome(&values, deadline);
      if (!status.ok()) return status;
    }
    return values;
  }
  // Everything the peer wrote (raw), for CRLF checks.
  const std::string& raw() const { return raw_; }
  int fd() const { return fd_.get(); }

 private:
  explicit RawQmpPeer(UniqueFd fd) : fd_(std::move(fd)) {}
  absl::Status ReadSome(std::vector<nlohmann::json>* values, absl::Time deadline);

  UniqueFd fd_;
  JsonStreamFramer framer_;  // QEMU's own limits
  std::string raw_;
};

}  // namespace rehome::testing

#endif  // REHOME_QMP_CLIENT_TESTING_QEMU_PROCESS_H_
