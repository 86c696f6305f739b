// vmm/devices/power_off_port.cc: PowerOffPort.
#include "vmm/devices/power_off_port.h"

#include <algorithm>

namespace rehome {

void PowerOffPort::Read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void PowerOffPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || requests_ == nullptr) return;
  if (data.size() == 1) {  // SLEEP_CONTROL_REG (hardware-reduced ACPI)
    if ((data[0] & kSleepControlEnable) != 0) requests_->RequestShutdown();
    return;
  }
  if (data.size() != 2) return;  // PM1a_CNT is written as one 16-bit word
  const uint16_t value = static_cast<uint16_t>(data[0] | (data[1] << 8));
  if ((value & kSleepEnable) != 0) requests_->RequestShutdown();
}

}  // namespace rehome
