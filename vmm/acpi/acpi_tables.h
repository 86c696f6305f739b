// vmm/acpi/acpi_tables.h: the ACPI tables a stock Linux kernel needs in a rehome VM: an RSDP
// (revision 2) pointing at an XSDT that lists a FADT (revision 6, hardware-reduced ACPI: no
// PM1/GPE blocks or SCI; reboot through the reset register, power-off through the sleep control
// register, no i8042, no VGA, no CMOS RTC) and a MADT (one enabled local APIC per vCPU, the
// in-kernel IOAPIC at GSI 0); the FADT points at a DSDT that describes COM1 (PNP0501, its ports
// and IRQ: without a legacy PIC, which hardware-reduced ACPI implies, Linux maps ISA IRQs only
// from such descriptions), every virtio-mmio device as an "LNRO0005" device (what Linux's
// virtio_mmio driver matches on ACPI systems) with its register window and interrupt, the
// pvpanic port as a "QEMU0001" device (what Linux's pvpanic-mmio driver matches), and \_S5 for
// power-off. All tables are checksummed. They live
// in [kAcpiBase, kAcpiEnd), which the e820 map marks reserved. Pure, thread-safe.
#ifndef REHOME_VMM_ACPI_ACPI_TABLES_H_
#define REHOME_VMM_ACPI_ACPI_TABLES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome {

inline constexpr uint64_t kAcpiBase = 0xe0000;  // the RSDP, where the kernel also scans for it
inline constexpr uint64_t kAcpiEnd =
    0xffff0;  // the reset vector (vmm/loader/linux_loader.h) follows
inline constexpr uint32_t kLocalApicAddress = 0xfee00000;
inline constexpr uint32_t kIoapicAddress = 0xfec00000;

struct AcpiVirtioDevice {
  uint64_t base = 0;  // register window (512 bytes)
  uint32_t size = 0x200;
  uint32_t gsi = 0;
};

struct AcpiConfig {
  int cpus = 1;                          // 1..255
  std::vector<AcpiVirtioDevice> virtio;  // at most 64
  uint16_t com1_port = 0x3f8;            // 8 ports
  uint32_t com1_gsi = 4;                 // edge-triggered, active high
  uint16_t reset_port = 0xcf9;           // RESET_REG (8-bit I/O)
  uint8_t reset_value = 0x06;
  uint16_t sleep_control_port = 0x604;  // SLEEP_CONTROL_REG (8-bit I/O): SLP_EN is bit 5
  uint16_t sleep_status_port = 0x605;   // SLEEP_STATUS_REG (8-bit I/O)
  uint16_t pvpanic_port = 0x505;        // "QEMU0001" (1 port); 0 = not described
};

struct AcpiTables {
  uint64_t rsdp_gpa = kAcpiBase;
  std::vector<uint8_t> bytes;  // to be copied to guest-physical kAcpiBase
  // Where each table landed (for tests and diagnostics).
  uint64_t xsdt_gpa = 0, fadt_gpa = 0, madt_gpa = 0, dsdt_gpa = 0;
};

// InvalidArgument for a CPU count outside 1..255, more than 64 virtio devices, or tables that
// would not fit below kAcpiEnd.
absl::StatusOr<AcpiTables> BuildAcpiTables(const AcpiConfig& config);

// The DSDT alone (a complete table with its header), for tools such as iasl.
std::vector<uint8_t> BuildDsdt(const AcpiConfig& config);

}  // namespace rehome

#endif  // REHOME_VMM_ACPI_ACPI_TABLES_H_
