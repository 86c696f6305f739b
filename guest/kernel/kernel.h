// guest/kernel/kernel.h: the seam between the CPL0 kernel (kernel/kernel.cc, boot/*.S) and the
// CPL3 side (user/*.cc). The kernel enters UserMain on the BSP and UserApMain on each AP with
// iretq (CPL3, IF=1, IOPL=3); user code calls back only through `syscall` (user/syscall.h).
#ifndef REHOME_GUEST_KERNEL_KERNEL_H_
#define REHOME_GUEST_KERNEL_KERNEL_H_

#include <stdint.h>

#include "guest/kernel/layout.h"

// Xen PVH start info (xen/include/public/arch-x86/hvm/start_info.h), version 0 and 1 fields.
struct HvmStartInfo {
  uint32_t magic;  // kHvmStartMagic
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version >= 1
  uint32_t memmap_entries;
  uint32_t reserved;
};
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;

extern "C" {
// CPL3 entry points (never return). `start_info` is the identity-mapped hvm_start_info.
[[noreturn]] void UserMain(uint64_t start_info, uint64_t unused);
[[noreturn]] void UserApMain(uint64_t vcpu_index, uint64_t unused);

// One user stack per vCPU (CPL3), defined by the kernel.
extern uint8_t ustacks[GUEST_MAX_CPUS][USTACK_SIZE];
}

#endif  // REHOME_GUEST_KERNEL_KERNEL_H_
