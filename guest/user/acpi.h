// guest/user/acpi.h: finds the processors' LAPIC ids in the ACPI MADT (reached from the PVH
// rsdp_paddr). Read-only walk of identity-mapped firmware tables at CPL3; thread-safe.
#ifndef REHOME_GUEST_USER_ACPI_H_
#define REHOME_GUEST_USER_ACPI_H_

#include <stdint.h>

namespace rehome::guest {

// Writes the LAPIC ids of the enabled (or online-capable) processors, ascending, to `ids` (at
// most `max`) and returns how many; 0 when there is no RSDP, no MADT or a malformed table.
uint32_t MadtApicIds(uint64_t rsdp_paddr, uint32_t* ids, uint32_t max);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_USER_ACPI_H_
