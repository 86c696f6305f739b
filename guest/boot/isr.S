/* guest/boot/isr.S: the CPL0 entry stubs: exceptions 0-31 (fatal: ExceptionHandler prints and
   exits), the LAPIC timer tick (counts into PerCpu.ticks, sends EOI), the spurious vector, the
   device interrupt (sets PerCpu.device_irq, sends EOI), the
   system-call gate (a signed `ud2`, see below) and EnterUser (iretq to CPL3). GS base (and
   KERNEL_GS_BASE) always hold this CPU's PerCpu, so no swapgs is needed; CPL3 code never
   touches GS. Every path is a handful of instructions because CPL0 code
   is emulated on the development host. Per-CPU state only; no locking. */
#include "guest/kernel/layout.h"

  .text
  .code64

/* ---- Exceptions ---- */
.macro EXC_NOERR vec
  .balign 16
exc_\vec:
  pushq $0
  pushq $\vec
  jmp exc_common
.endm
/* A 16-byte slot that jumps to a handler defined elsewhere (keeps the stub table regular). */
.macro EXC_NOERR_FAR vec
  .balign 16
exc_\vec:
  jmp ud_entry
.endm
.macro EXC_ERR vec
  .balign 16
exc_\vec:
  pushq $\vec
  jmp exc_common
.endm

EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
EXC_NOERR_FAR 6
EXC_NOERR 7
EXC_ERR 8
EXC_NOERR 9
EXC_ERR 10
EXC_ERR 11
EXC_ERR 12
EXC_ERR 13
EXC_ERR 14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR 17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR 21
EXC_NOERR 22
EXC_NOERR 23
EXC_NOERR 24
EXC_NOERR 25
EXC_NOERR 26
EXC_NOERR 27
EXC_NOERR 28
EXC_ERR 29
EXC_ERR 30
EXC_NOERR 31

exc_common:
  /* Stack: vector, error code, rip, cs, rflags, rsp, ss. */
  mov %rsp, %rdi
  and $-16, %rsp
  call ExceptionHandler
  jmp halt_forever

  .section .rodata
  .balign 8
  .globl exception_stubs
exception_stubs:
  .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  .quad exc_\v
  .endr
  .text

/* ---- LAPIC timer and spurious interrupt ---- */
  .balign 16
  .globl timer_stub
timer_stub:
  push %rax
  incq %gs:PC_TICKS
  mov $LAPIC_BASE, %eax
  movl $0, 0xb0(%rax)  /* EOI */
  pop %rax
  iretq

/* A device interrupt (edge-triggered through the I/O APIC): its only job is to end a yield's hlt,
   or to make the next yield return at once if it came while the CPU was not halted. */
  .balign 16
  .globl device_irq_stub
device_irq_stub:
  push %rax
  movq $1, %gs:PC_DEVICE_IRQ
  mov $LAPIC_BASE, %eax
  movl $0, 0xb0(%rax)  /* EOI */
  pop %rax
  iretq

  .balign 16
  .globl spurious_stub
spurious_stub:
  iretq

/* ---- System calls: `ud2` followed by SYSCALL_SIGNATURE_BYTES, raised at CPL3 ----
   rax = number, rdi/rsi = arguments, rax = result; the caller treats every caller-saved register
   as clobbered. The #UD handler checks the 4 bytes at the faulting RIP: a signed ud2 is a system
   call (RIP advances past it), anything else is a real #UD and goes to ExceptionHandler. */
  .balign 16
ud_entry:
  push %rcx
  mov 8(%rsp), %rcx  /* faulting RIP */
  cmpl $SYSCALL_SIGNATURE, (%rcx)
  jne 1f
  addq $4, 8(%rsp)
  pop %rcx
  cmp $SYS_YIELD, %rax
  je sys_yield
  cmp $SYS_GET_TICKS, %rax
  je sys_get_ticks
  cmp $SYS_EXIT_TASK, %rax
  je sys_exit_task
  mov %rax, %rdx
  sub $8, %rsp  /* the CPU aligned RSP to 16 before pushing 5 quadwords */
  call SyscallDispatch  /* (a0, a1, nr) */
  add $8, %rsp
  iretq
1:
  pop %rcx
  pushq $0
  pushq $6
  jmp exc_common
sys_get_ticks:
  mov %gs:PC_TICKS, %rax
  iretq
sys_yield:
  /* Interrupts are off here (interrupt gate): a device interrupt that came after the caller last
     looked at its rings is in PC_DEVICE_IRQ, so the check and the halt cannot miss it. */
  mov $1, %eax  /* 1: a device interrupt was pending, no halt */
  cmpq $0, %gs:PC_DEVICE_IRQ
  jne 3f
  sti
  hlt
  cli
  mov %gs:PC_DEVICE_IRQ, %rax
  add %rax, %rax  /* 2: a device interrupt ended the halt; 0: another one did */
3:
  movq $0, %gs:PC_DEVICE_IRQ
  iretq
sys_exit_task:
  sti
2:
  hlt
  jmp 2b

/* ---- EnterUser(entry, user_rsp, arg0, arg1): iretq to CPL3 with IF=1 and IOPL=3 (the PVM
   host drops IOPL on iretq; the TSS I/O bitmap then grants the ports) ---- */
  .balign 16
  .globl EnterUser
EnterUser:
  pushq $(SEL_UDATA | 3)
  push %rsi
  pushq $0x3202
  pushq $(SEL_UCODE | 3)
  push %rdi
  mov %rdx, %rdi
  mov %rcx, %rsi
  xor %eax, %eax
  xor %edx, %edx
  xor %ecx, %ecx
  xor %ebp, %ebp
  iretq
