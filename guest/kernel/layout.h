// guest/kernel/layout.h: memory layout, selectors, vectors and per-CPU offsets shared by the
// guest's assembly (boot/*.S) and C++ code. Only #defines, so the assembler can include it.
// No state; thread-safety not applicable.
#ifndef REHOME_GUEST_KERNEL_LAYOUT_H_
#define REHOME_GUEST_KERNEL_LAYOUT_H_

#define GUEST_MAX_CPUS 16

// GDT selectors (see gdt in boot/entry.S). User selectors are used with RPL 3.
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x18
#define SEL_UCODE 0x20
#define SEL_KCODE32 0x28
#define SEL_TSS0 0x30  // 16-byte TSS descriptor per CPU: SEL_TSS0 + 16 * index
#define GDT_ENTRIES (6 + 2 * GUEST_MAX_CPUS)

// Stacks: one kernel (CPL0) and one user (CPL3) stack per CPU.
#define KSTACK_SHIFT 14
#define KSTACK_SIZE (1 << KSTACK_SHIFT)
#define USTACK_SIZE 16384

// struct PerCpu field offsets (kernel/kernel.cc static_asserts them). GS base points at it.
#define PC_TICKS 0
#define PC_INDEX 8
#define PC_KSTACK_TOP 16
#define PC_DEVICE_IRQ 24  // nonzero: a device interrupt arrived since this CPU's last yield
#define PC_SIZE 64

// Real-mode AP trampoline (copied below 1 MiB; SIPI vector = paddr >> 12).
#define TRAMPOLINE_PADDR 0x8000

// LAPIC timer: periodic at TIMER_HZ, assuming KVM's 1 GHz APIC bus (divide by 16).
#define TIMER_HZ 250
#define TIMER_INITIAL_COUNT (1000000000 / 16 / TIMER_HZ)

// Interrupt vectors.
#define VEC_TIMER 0x40
#define VEC_DEVICE 0x41  // virtio interrupts routed through the I/O APIC (user/ioapic.h)
#define VEC_SPURIOUS 0xff

// System calls. `syscall` does not reach CPL0 on the development host (PVM runs the LSTAR
// target at CPL3), so CPL3 code raises #UD with `ud2` followed by the two signature bytes 'R','H'
// (the 4 bytes 0f 0b 52 48 read as a little-endian dword); the #UD handler resumes after them.
// Number in rax, arguments in rdi and rsi, result in rax; caller-saved registers are clobbered.
#define SYSCALL_SIGNATURE 0x48520b0f
#define SYS_EXIT_TASK 0  // this vCPU is done: halt forever (interrupts on)
#define SYS_YIELD 1      // halt until the next interrupt: 0 timer, 1 device irq pending, 2 woke
#define SYS_GET_TICKS 2  // returns this vCPU's LAPIC timer tick count
#define SYS_START_AP 3   // rdi = LAPIC id, rsi = vCPU index: INIT-SIPI-SIPI; 0 or ~0 (bad args)

// xAPIC MMIO base (identity mapped, uncached, user accessible).
#define LAPIC_BASE 0xfee00000

#endif  // REHOME_GUEST_KERNEL_LAYOUT_H_
