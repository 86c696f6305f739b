// vmm/devices/reset_port.cc: ResetPort.
#include "vmm/devices/reset_port.h"

#include <algorithm>

namespace rehome {

void ResetPort::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (offset == 0 && !data.empty()) data[0] = value_.load(std::memory_order_relaxed);
}

void ResetPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  value_.store(data[0], std::memory_order_relaxed);
  if (IsResetValue(data[0]) && requests_ != nullptr) requests_->RequestReset();
}

}  // namespace rehome
