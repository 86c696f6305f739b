// vmm/devices/debug_exit_port.h: the debug-exit port (0xf4, 4 ports; QEMU isa-debug-exit
// compatible). A write of V (1, 2 or 4 bytes at offset 0) records V and asks the VM to stop with
// guest exit status V & 0xff by posting to VmRequests. Reads return all-ones.
// Thread-safe (absl::Mutex).
#ifndef REHOME_VMM_DEVICES_DEBUG_EXIT_PORT_H_
#define REHOME_VMM_DEVICES_DEBUG_EXIT_PORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "vmm/bus.h"
#include "vmm/vm_requests.h"

namespace rehome {

class DebugExitPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 4;
  struct State {
    bool written = false;  // the guest has written an exit value
    uint32_t value = 0;    // the (first) value written
  };

  explicit DebugExitPort(std::shared_ptr<VmRequests> requests);
  DebugExitPort(const DebugExitPort&) = delete;
  DebugExitPort& operator=(const DebugExitPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "debug-exit"; }

  // The guest exit status (value & 0xff) that a written value means.
  static int ExitStatusOf(uint32_t value) { return static_cast<int>(value & 0xff); }

  State SaveState() const;
  void RestoreState(const State& state);
  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

 private:
  const std::shared_ptr<VmRequests> requests_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_DEBUG_EXIT_PORT_H_
