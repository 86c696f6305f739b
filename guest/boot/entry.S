/* guest/boot/entry.S: the Xen PVH entry point, the switch to long mode shared by the BSP and
   the APs, the GDT and the static identity-map page tables (4 GiB, 2 MiB pages, all pages user
   accessible, 3-4 GiB uncached so the LAPIC at 0xfee00000 is UC).
   The BSP enters at pvh_entry (32-bit protected mode, paging off, EBX = hvm_start_info paddr) and
   calls KernelMain(start_info); an AP arrives at ap_entry32 from the real-mode trampoline, finds
   its vCPU index from its LAPIC id (ap_index_by_apic[], index + 1, 0 = unknown) and calls
   ApMain(index) on its own kernel stack. Runs once per CPU; no locking needed. */
#include "guest/kernel/layout.h"

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_TS 0x8
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_OSFXSR 0x200
#define CR4_OSXMMEXCPT 0x400
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical entry address. */
  .section .note.pvh, "a"
  .balign 4
  .long 4
  .long 4
  .long 18
  .asciz "Xen"
  .balign 4
  .long pvh_entry
  .balign 4

  .section .text.boot, "ax"
  .code32
  .globl pvh_entry
pvh_entry:
  cli
  cld
  mov %ebx, %edi  /* hvm_start_info paddr, first argument of KernelMain */
  xor %esi, %esi  /* 0 = BSP */
  jmp enter_long_mode

  .globl ap_entry32
ap_entry32:
  xor %edi, %edi
  mov $1, %esi    /* 1 = AP */

enter_long_mode:
  lgdt gdt_ptr
  mov $pml4, %eax
  mov %eax, %cr3
  mov %cr4, %eax
  or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
  mov %eax, %cr4
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  mov %cr0, %eax
  and $~(CR0_EM | CR0_TS), %eax
  or $(CR0_PG | CR0_MP | CR0_PE), %eax
  mov %eax, %cr0
  ljmp $SEL_KCODE, $long_mode_entry

  .code64
long_mode_entry:
  mov $SEL_KDATA, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  xor %eax, %eax
  mov %eax, %fs
  mov %eax, %gs
  xor %ebp, %ebp
  test %esi, %esi
  jnz ap_long_mode
  mov $(kstacks + KSTACK_SIZE), %rsp
  call KernelMain
  jmp halt_forever

ap_long_mode:
  mov $1, %eax
  cpuid
  shr $24, %ebx
  movzbl ap_index_by_apic(%rbx), %edi
  test %edi, %edi
  jz halt_forever     /* not a CPU we started */
  dec %edi
  cmp $GUEST_MAX_CPUS, %edi
  jae halt_forever
  mov %rdi, %rax
  inc %rax
  shl $KSTACK_SHIFT, %rax
  add $kstacks, %rax
  mov %rax, %rsp
  call ApMain

  .globl halt_forever
halt_forever:
  cli
  hlt
  jmp halt_forever

/* ---- GDT (writable: TSS descriptors are filled in at run time) ---- */
  .data
  .balign 16
  .globl gdt
gdt:
  .quad 0
  .quad 0x00af9b000000ffff  /* SEL_KCODE: 64-bit kernel code */
  .quad 0x00cf93000000ffff  /* SEL_KDATA: kernel data (also flat 32-bit data) */
  .quad 0x00cff3000000ffff  /* SEL_UDATA: user data */
  .quad 0x00affb000000ffff  /* SEL_UCODE: 64-bit user code */
  .quad 0x00cf9b000000ffff  /* SEL_KCODE32: flat 32-bit code (AP trampoline) */
  .fill 2 * GUEST_MAX_CPUS, 8, 0  /* SEL_TSS0 + 16 * cpu */
gdt_end:
  .balign 8
gdt_ptr:
  .word gdt_end - gdt - 1
  .quad gdt

/* ---- Page tables: PML4[0] -> PDPT[0..3] -> 4 page directories of 2 MiB pages ---- */
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_US 0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
  .balign 4096
  .globl pml4
pml4:
  .quad pdpt + (PTE_P | PTE_RW | PTE_US)
  .fill 511, 8, 0
pdpt:
  .quad pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
  .fill 508, 8, 0
pd:
  .set page, 0
  .rept 2048
  .if page >= 1536
  .quad (page << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PWT | PTE_PCD)
  .else
  .quad (page << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS)
  .endif
  .set page, page + 1
  .endr
