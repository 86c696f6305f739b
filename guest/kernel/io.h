// guest/kernel/io.h: port I/O, MSR and CPUID helpers for guest code. Port I/O works at CPL0 and
// at CPL3 (user tasks run with IOPL=3); MSR access is CPL0 only. Stateless; thread-safe.
#ifndef REHOME_GUEST_KERNEL_IO_H_
#define REHOME_GUEST_KERNEL_IO_H_

#include <stdint.h>

namespace rehome::guest {

inline void OutB(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline void OutW(uint16_t port, uint16_t value) {
  asm volatile("outw %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline void OutL(uint16_t port, uint32_t value) {
  asm volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline uint8_t InB(uint16_t port) {
  uint8_t value;
  asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
  return value;
}

inline void WrMsr(uint32_t msr, uint64_t value) {
  asm volatile("wrmsr"
               :
               : "c"(msr), "a"(static_cast<uint32_t>(value)),
                 "d"(static_cast<uint32_t>(value >> 32)));
}

inline void Cpuid(uint32_t leaf, uint32_t* a, uint32_t* b, uint32_t* c, uint32_t* d) {
  asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

// The LAPIC id of the calling CPU, from the LAPIC ID register (0xfee00020, bits 31:24; the page is
// identity-mapped and user accessible). Not CPUID.1:EBX: on a software KVM backend such as PVM,
// CPUID at CPL3 may run natively and report the *host* CPU's APIC id, which would make the BSP
// send INIT to itself when it starts the APs.
inline uint32_t CurrentApicId() {
  return *reinterpret_cast<volatile const uint32_t*>(uintptr_t{0xfee00020}) >> 24;
}

}  // namespace rehome::guest

#endif  // REHOME_GUEST_KERNEL_IO_H_
