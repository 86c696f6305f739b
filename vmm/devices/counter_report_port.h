// vmm/devices/counter_report_port.h: the counter workload's report port (0x7e0, 4 ports). A
// 32-bit write at offset 0 is the guest-physical address of a 64-byte abi::CounterReport; the
// device copies the record out of guest memory (bounds-checked) and feeds the CounterOracle.
// A bad access (wrong width or offset, unaligned or out-of-RAM GPA) is recorded as an oracle
// violation, never a crash. Reads return all-ones. Thread-safe: stateless apart from the oracle
// (thread-safe); `memory` must outlive the device.
#ifndef REHOME_VMM_DEVICES_COUNTER_REPORT_PORT_H_
#define REHOME_VMM_DEVICES_COUNTER_REPORT_PORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "vmm/bus.h"
#include "vmm/counter_oracle.h"
#include "vmm/guest_memory_view.h"

namespace rehome {

class CounterReportPort final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 4;

  CounterReportPort(const GuestMemoryView& memory, std::shared_ptr<CounterOracle> oracle)
      : memory_(memory), oracle_(std::move(oracle)) {}
  CounterReportPort(const CounterReportPort&) = delete;
  CounterReportPort& operator=(const CounterReportPort&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "counter-report"; }

 private:
  const GuestMemoryView& memory_;
  const std::shared_ptr<CounterOracle> oracle_;
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_COUNTER_REPORT_PORT_H_
