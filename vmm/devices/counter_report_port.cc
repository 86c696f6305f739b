// vmm/devices/counter_report_port.cc: CounterReportPort.
#include "vmm/devices/counter_report_port.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace rehome {

void CounterReportPort::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void CounterReportPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.size() != 4) {
    oracle_->RecordViolation(absl::StrFormat(
        "counter report port: %u-byte write at offset %u (expected a 4-byte write at 0)",
        data.size(), offset));
    return;
  }
  const uint32_t gpa = static_cast<uint32_t>(data[0]) | static_cast<uint32_t>(data[1]) << 8 |
                       static_cast<uint32_t>(data[2]) << 16 | static_cast<uint32_t>(data[3]) << 24;
  if (gpa % 64 != 0) {
    oracle_->RecordViolation(
        absl::StrFormat("counter report at GPA 0x%x is not 64-byte aligned", gpa));
    return;
  }
  const uint8_t* host = memory_.HostAddress(gpa, sizeof(abi::CounterReport));
  if (host == nullptr) {
    oracle_->RecordViolation(
        absl::StrFormat("counter report at GPA 0x%x is outside guest RAM", gpa));
    return;
  }
  abi::CounterReport report;
  std::memcpy(&report, host, sizeof(report));
  oracle_->OnReport(report);
}

}  // namespace rehome
