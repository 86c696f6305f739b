// vmm/devices/pvpanic_port.h: QEMU's pvpanic device at abi::kPvPanicPort (1 port), through which
// a guest kernel reports its own panic: reads return the supported events (abi::kPvPanicPanicked
// only: a guest never announces a loaded crash kernel, which would let it go on), and an 8-bit
// write with that bit set posts a panic request to VmRequests (the exit dispatcher ends the VM as
// a guest crash). Linux's pvpanic-mmio driver binds to it through the DSDT's "QEMU0001" device
// (vmm/acpi) and writes it from its panic notifier, before the kernel's own reset: in nested mode
// L0 learns of an L1 kernel panic at once (docs/nested.md). Other writes are ignored. No state to
// save or carry across a failover. Thread-safe (stateless).
#ifndef REHOME_VMM_DEVICES_PVPANIC_PORT_H_
#define REHOME_VMM_DEVICES_PVPANIC_PORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "vmm/bus.h"
#include "vmm/vm_requests.h"

namespace rehome {

class PvPanicPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 1;

  explicit PvPanicPort(std::shared_ptr<VmRequests> requests) : requests_(std::move(requests)) {}
  PvPanicPort(const PvPanicPort&) = delete;
  PvPanicPort& operator=(const PvPanicPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "pvpanic"; }

 private:
  const std::shared_ptr<VmRequests> requests_;
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_PVPANIC_PORT_H_
