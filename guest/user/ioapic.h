// guest/user/ioapic.h: routes one global system interrupt (a virtio-mmio transport's irq) through
// its I/O APIC to vector VEC_DEVICE on the calling vCPU, so that a yield (`sti; hlt`) ends when
// the device raises its line instead of at the next timer tick. The route is edge-triggered: a
// virtio-mmio line stays up until the driver writes InterruptACK, so the driver acknowledges
// before it sleeps and the next used buffer is a new edge (level-triggered would re-deliver for
// as long as the line is up). Runs at CPL3 (the I/O APIC page is identity-mapped, user accessible
// and uncached). Not thread-safe: the register select/window pair must not be used by two vCPUs at
// once; in this guest only vCPU 0 routes interrupts.
#ifndef REHOME_GUEST_USER_IOAPIC_H_
#define REHOME_GUEST_USER_IOAPIC_H_

#include <stdint.h>

namespace rehome::guest {

// Without an MADT I/O APIC entry: the PC's one I/O APIC, GSIs 0-23.
inline constexpr uint64_t kDefaultIoApicBase = 0xfec00000;

// Routes `gsi` to VEC_DEVICE on this vCPU (fixed delivery, physical destination = its LAPIC id,
// edge, active high, unmasked). The I/O APIC comes from the MADT behind `rsdp_paddr`, else the
// default one. False, with nothing changed, when no pin of that I/O APIC serves `gsi`.
bool RouteDeviceIrqHere(uint64_t rsdp_paddr, uint32_t gsi);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_USER_IOAPIC_H_
