// guest/user/acpi.h: finds the processors' LAPIC ids and the I/O APICs in the ACPI MADT (reached
// from the PVH rsdp_paddr). Read-only walk of identity-mapped firmware tables at CPL3; thread-safe.
#ifndef REHOME_GUEST_USER_ACPI_H_
#define REHOME_GUEST_USER_ACPI_H_

#include <stdint.h>

namespace rehome::guest {

// Writes the LAPIC ids of the enabled (or online-capable) processors, ascending, to `ids` (at
// most `max`) and returns how many; 0 when there is no RSDP, no MADT or a malformed table.
uint32_t MadtApicIds(uint64_t rsdp_paddr, uint32_t* ids, uint32_t max);

// The I/O APIC that serves global system interrupt `gsi`: the MMIO base and first GSI of the MADT
// I/O APIC entry with the highest GSI base at or below `gsi`. False when there is no MADT or no
// such entry.
bool MadtIoApicFor(uint64_t rsdp_paddr, uint32_t gsi, uint64_t* base, uint32_t* gsi_base);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_USER_ACPI_H_
