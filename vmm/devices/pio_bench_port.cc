// vmm/devices/pio_bench_port.cc: PioBenchPort.
#include "vmm/devices/pio_bench_port.h"

#include <algorithm>

namespace rehome {

void PioBenchPort::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void PioBenchPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  writes_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace rehome
