// vmm/devices/reset_port.h: the PC reset control register (0xcf9, 1 port). Writing 0x06 (hard
// reset) or 0x0e (full reset) posts a reset request to VmRequests; other values are only
// stored. Reads return the last value written. Thread-safe (atomic register).
#ifndef REHOME_VMM_DEVICES_RESET_PORT_H_
#define REHOME_VMM_DEVICES_RESET_PORT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "vmm/bus.h"
#include "vmm/vm_requests.h"

namespace rehome {

class ResetPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 1;

  explicit ResetPort(std::shared_ptr<VmRequests> requests) : requests_(std::move(requests)) {}
  ResetPort(const ResetPort&) = delete;
  ResetPort& operator=(const ResetPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "reset-control"; }

  static bool IsResetValue(uint8_t value) { return value == 0x06 || value == 0x0e; }

 private:
  const std::shared_ptr<VmRequests> requests_;
  std::atomic<uint8_t> value_{0};
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_RESET_PORT_H_
