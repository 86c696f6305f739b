// vmm/devices/pvpanic_port.cc: PvPanicPort.
#include "vmm/devices/pvpanic_port.h"

#include <algorithm>

#include "guest/abi/rehome_abi.h"

namespace rehome {

void PvPanicPort::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset == 0 && !data.empty()) data[0] = abi::kPvPanicPanicked;
}

void PvPanicPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty() || (data[0] & abi::kPvPanicPanicked) == 0) return;
  if (requests_ != nullptr) requests_->RequestPanic(data[0]);
}

}  // namespace rehome
