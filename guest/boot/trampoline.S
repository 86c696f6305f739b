/* guest/boot/trampoline.S: the real-mode AP start-up code. SyscallStartAp copies
   [trampoline_start, trampoline_end) to TRAMPOLINE_PADDR and sends INIT-SIPI-SIPI with vector
   TRAMPOLINE_PADDR >> 12; the AP starts here at CS = 0x800, IP = 0, enters flat 32-bit protected
   mode on the kernel GDT and jumps to ap_entry32 in the kernel image. Position dependent: every
   address is computed for the copy at TRAMPOLINE_PADDR. Read-only; used by every AP. */
#include "guest/kernel/layout.h"

#define TRAMP(sym) (TRAMPOLINE_PADDR + ((sym) - trampoline_start))

  .section .rodata.trampoline, "a"
  .balign 16
  .globl trampoline_start
  .globl trampoline_end
  .code16
trampoline_start:
  cli
  cld
  xor %ax, %ax
  mov %ax, %ds
  lgdtl TRAMP(tramp_gdt_ptr)
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $SEL_KCODE32, $TRAMP(tramp32)

  .code32
tramp32:
  mov $SEL_KDATA, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $ap_entry32, %eax
  jmp *%eax

  .balign 8
tramp_gdt_ptr:
  .word (6 + 2 * GUEST_MAX_CPUS) * 8 - 1
  .long gdt
trampoline_end:
