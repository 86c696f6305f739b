// vmm/devices/pio_bench_port.h: the exit-cost benchmark sink (guest/abi kPioBenchPort). Every
// write is counted and otherwise ignored; reads return 0. Used by the `pio` guest workload to
// measure the port-I/O exit round trip. Its writes may be posted (they only count).
// Thread-safety: Read/Write/writes() may be called from any thread (one atomic counter).
#ifndef REHOME_VMM_DEVICES_PIO_BENCH_PORT_H_
#define REHOME_VMM_DEVICES_PIO_BENCH_PORT_H_

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "vmm/bus.h"

namespace rehome {

class PioBenchPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 1;

  PioBenchPort() = default;
  PioBenchPort(const PioBenchPort&) = delete;
  PioBenchPort& operator=(const PioBenchPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "pio-bench"; }
  bool writes_posted() const override { return true; }

  uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }
  // The whole device state is the counter.
  void RestoreWrites(uint64_t writes) { writes_.store(writes, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> writes_{0};
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_PIO_BENCH_PORT_H_
