// tests/net_namespace.h: test support for virtio-net: moves the calling thread (and every thread
// and process it starts afterwards: vCPU threads, L1s, ping) into a fresh network namespace
// with a persistent tap (the host's address on it, up), so that test traffic never leaves the
// machine and tests do not disturb each other; the destructor returns the thread to its original
// namespace (the new one disappears with its last user). Also a UDP echo client that checks
// every datagram comes back exactly once, in order, unchanged.
// Thread-safety: ScopedNetNamespace belongs to the thread that made it; EchoClient is used by
// one thread at a time except for counters() and Stop(), which any thread may call.
#ifndef REHOME_TESTS_NET_NAMESPACE_H_
#define REHOME_TESTS_NET_NAMESPACE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace rehome::testing {

inline constexpr char kGuestIp[] = "10.0.2.15";
inline constexpr char kHostIp[] = "10.0.2.1";

class ScopedNetNamespace final {
 public:
  // Unavailable (the caller skips the test with the message) when this host forbids network
  // namespaces or taps, or lacks the `ip` tool.
  static absl::StatusOr<std::unique_ptr<ScopedNetNamespace>> Enter(const std::string& tap);
  ~ScopedNetNamespace();
  ScopedNetNamespace(const ScopedNetNamespace&) = delete;
  ScopedNetNamespace& operator=(const ScopedNetNamespace&) = delete;

  // Runs `ip ARGS...` in the namespace.
  absl::Status Ip(const std::vector<std::string>& args);

 private:
  explicit ScopedNetNamespace(UniqueFd original) : original_(std::move(original)) {}
  UniqueFd original_;  // the thread's namespace before Enter
};

// Sends numbered datagrams to the guest's echo port with up to `window` in flight and checks the
// echoes: each one exactly once, in order, with the bytes sent.
class EchoClient final {
 public:
  struct Counters {
    uint64_t sent = 0;
    uint64_t echoed = 0;      // came back in order (changed ones are also in corrupted)
    uint64_t lost = 0;        // not echoed within the timeout
    uint64_t duplicated = 0;  // an echo of a sequence number seen before
    uint64_t reordered = 0;   // an echo ahead of an outstanding one
    uint64_t corrupted = 0;   // wrong length or content
  };

  static absl::StatusOr<std::unique_ptr<EchoClient>> Create(uint16_t port);
  // Runs until `count` datagrams were echoed (0: until Stop) or one is lost (not echoed within
  // `timeout`). Returns the first anomaly as an error (the counters say more).
  absl::Status Run(uint64_t count, int window, absl::Duration timeout);
  void Stop() { stop_.store(true); }
  uint64_t echoed() const { return echoed_.load(); }
  Counters counters() const;

 private:
  explicit EchoClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> echoed_{0};
  std::atomic<uint64_t> sent_{0}, lost_{0}, duplicated_{0}, reordered_{0}, corrupted_{0};
};

}  // namespace rehome::testing

#endif  // REHOME_TESTS_NET_NAMESPACE_H_
