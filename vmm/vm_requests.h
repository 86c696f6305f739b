// vmm/vm_requests.h: VM-wide requests that devices post from a vCPU thread (guest exit via the
// debug-exit port, reset via 0xcf9, a kernel panic via pvpanic) and the exit dispatcher / runner
// read after an exit. The first request posted wins and stays pending until Clear() (so every vCPU
// that looks sees the same outcome). Thread-safe and lock-free: one atomic word.
#ifndef REHOME_VMM_VM_REQUESTS_H_
#define REHOME_VMM_VM_REQUESTS_H_

#include <atomic>
#include <cstdint>
#include <optional>

namespace rehome {

struct VmRequest {
  enum class Kind : uint32_t { kExit = 1, kReset = 2, kShutdown = 3, kPanic = 4 };
  Kind kind = Kind::kExit;
  uint32_t exit_value = 0;  // the value written to the debug-exit port (kExit), the pvpanic event
                            // (kPanic)
};

class VmRequests final {
 public:
  VmRequests() = default;
  VmRequests(const VmRequests&) = delete;
  VmRequests& operator=(const VmRequests&) = delete;

  // Each returns true if this call's request became the pending one (none was pending).
  bool RequestExit(uint32_t value) { return Post(VmRequest::Kind::kExit, value); }
  bool RequestReset() { return Post(VmRequest::Kind::kReset, 0); }
  bool RequestShutdown() { return Post(VmRequest::Kind::kShutdown, 0); }
  bool RequestPanic(uint32_t event) { return Post(VmRequest::Kind::kPanic, event); }

  std::optional<VmRequest> Pending() const {
    const uint64_t word = word_.load(std::memory_order_acquire);
    if (word == 0) return std::nullopt;
    return VmRequest{static_cast<VmRequest::Kind>(word >> 32), static_cast<uint32_t>(word)};
  }

  // Forgets the pending request (e.g. after the runner performed a reset).
  void Clear() { word_.store(0, std::memory_order_release); }

 private:
  bool Post(VmRequest::Kind kind, uint32_t value) {
    uint64_t expected = 0;
    const uint64_t word = (static_cast<uint64_t>(kind) << 32) | value;
    return word_.compare_exchange_strong(expected, word, std::memory_order_acq_rel);
  }

  std::atomic<uint64_t> word_{0};  // 0 = none; else kind << 32 | exit_value
};

}  // namespace rehome

#endif  // REHOME_VMM_VM_REQUESTS_H_
