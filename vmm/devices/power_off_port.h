// vmm/devices/power_off_port.h: the ACPI PM1a control register at abi::kPowerOffPort (2 ports),
// reduced to what a guest needs to power itself off: a 16-bit write with SLP_EN (bit 13) set posts
// a shutdown request to VmRequests (the sleep type is ignored: every sleep state is "off" here).
// The same ports are the hardware-reduced ACPI registers the FADT describes for Linux guests
// (vmm/acpi): an 8-bit write to port 0 is SLEEP_CONTROL_REG, whose SLP_EN is bit 5; port 1 is
// SLEEP_STATUS_REG (reads 0, writes ignored).
// Other writes are ignored and reads return 0, so the device has no state to save or carry across
// a failover. Thread-safe (stateless).
#ifndef REHOME_VMM_DEVICES_POWER_OFF_PORT_H_
#define REHOME_VMM_DEVICES_POWER_OFF_PORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "vmm/bus.h"
#include "vmm/vm_requests.h"

namespace rehome {

class PowerOffPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 2;
  static constexpr uint16_t kSleepEnable = 1u << 13;
  static constexpr uint8_t kSleepControlEnable = 1u << 5;

  explicit PowerOffPort(std::shared_ptr<VmRequests> requests) : requests_(std::move(requests)) {}
  PowerOffPort(const PowerOffPort&) = delete;
  PowerOffPort& operator=(const PowerOffPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "pm1a-control"; }

 private:
  const std::shared_ptr<VmRequests> requests_;
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_POWER_OFF_PORT_H_
