// guest/user/syscall.h: CPL3 wrappers for the guest kernel's system calls (numbers and the
// signed-ud2 gate in kernel/layout.h: on the development host `syscall` stays at CPL3 and
// `int N` is #UD, so a #UD with a signature is the way into CPL0). Stateless; any vCPU.
#ifndef REHOME_GUEST_USER_SYSCALL_H_
#define REHOME_GUEST_USER_SYSCALL_H_

#include <stdint.h>

#include "guest/kernel/layout.h"

namespace rehome::guest {

inline uint64_t Syscall(uint64_t nr, uint64_t a0 = 0, uint64_t a1 = 0) {
  uint64_t ret;
  asm volatile("ud2\n\t.byte 0x52, 0x48"
               : "=a"(ret), "+D"(a0), "+S"(a1)
               : "a"(nr)
               : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory");
  return ret;
}

// Halts this vCPU until its next interrupt (at most one timer tick). Returns kYieldDevicePending
// without halting when a device interrupt (VEC_DEVICE) came since the previous yield,
// kYieldDeviceWoke when one ended the halt, else kYieldOther (the timer tick).
inline constexpr uint64_t kYieldOther = 0;
inline constexpr uint64_t kYieldDevicePending = 1;
inline constexpr uint64_t kYieldDeviceWoke = 2;
inline uint64_t SysYield() { return Syscall(SYS_YIELD); }
inline uint64_t SysGetTicks() { return Syscall(SYS_GET_TICKS); }
[[noreturn]] inline void SysExitTask() {
  Syscall(SYS_EXIT_TASK);
  __builtin_unreachable();
}
// Starts the CPU with LAPIC id `apic_id` as vCPU `index` (INIT-SIPI-SIPI). 0 on success.
inline uint64_t SysStartAp(uint32_t apic_id, uint32_t index) {
  return Syscall(SYS_START_AP, apic_id, index);
}

}  // namespace rehome::guest

#endif  // REHOME_GUEST_USER_SYSCALL_H_
