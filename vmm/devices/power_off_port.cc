// vmm/devices/power_off_port.cc: PowerOffPort.
#include "vmm/devices/power_off_port.h"

#include <algorithm>

namespace rehome {

void PowerOffPort::Read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void PowerOffPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.size() != 2) return;  // the register is written as one 16-bit word
  const uint16_t value = static_cast<uint16_t>(data[0] | (data[1] << 8));
  if ((value & kSleepEnable) != 0 && requests_ != nullptr) requests_->RequestShutdown();
}

}  // namespace rehome
