// guest/kernel/io.h: port I/O, MSR and CPUID helpers for guest code. Port I/O works at CPL0 and
// at CPL3 (user tasks run with IOPL=3); MSR access is CPL0 only. Stateless; thread-safe.
#ifndef REHOME_GUEST_KERNEL_IO_H_
#define REHOME_GUEST_KERNEL_IO_H_

#include <stdint.h>

namespace rehome::guest {

inline void OutB(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
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

// The initial LAPIC id of the calling CPU (CPUID.1:EBX[31:24]).
inline uint32_t CurrentApicId() {
  uint32_t a, b, c, d;
  Cpuid(1, &a, &b, &c, &d);
  return b >> 24;
}

}  // namespace rehome::guest

#endif  // REHOME_GUEST_KERNEL_IO_H_
