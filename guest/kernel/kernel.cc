// guest/kernel/kernel.cc: the CPL0 part of the test guest: per-CPU set-up (GDT TSS slot with a
// shared all-ports I/O bitmap, IDT, GS base, LAPIC and its periodic timer), the BSP and AP C++
// entry points, the fatal exception report and the system calls written in C++ (AP start-up).
// Everything here runs emulated on the development host, so it is kept to straight-line set-up
// code. The BSP builds the IDT before starting any AP; afterwards each CPU touches only its own
// PerCpu/TSS/GDT slot, and SyscallDispatch(SYS_START_AP) is called by the BSP only.
#include "guest/kernel/kernel.h"

#include <stddef.h>
#include <stdint.h>

#include "guest/abi/rehome_abi.h"
#include "guest/kernel/io.h"
#include "guest/kernel/layout.h"
#include "guest/kernel/serial.h"

// Symbols defined in boot/*.S.
extern "C" {
extern const uint64_t exception_stubs[32];
void timer_stub();
void device_irq_stub();
void spurious_stub();
[[noreturn]] void EnterUser(uint64_t entry, uint64_t user_rsp, uint64_t arg0, uint64_t arg1);
[[noreturn]] void halt_forever();
extern uint64_t gdt[];
extern uint8_t kstacks[GUEST_MAX_CPUS][KSTACK_SIZE];
extern const char trampoline_start[];
extern const char trampoline_end[];
}

namespace rehome::guest {

// What exc_common (boot/isr.S) passes to ExceptionHandler.
struct ExceptionFrame {
  uint64_t vector;
  uint64_t error;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};

namespace {

// Per-CPU kernel data; GS base (and KERNEL_GS_BASE) point at the CPU's own entry.
struct alignas(PC_SIZE) PerCpu {
  uint64_t ticks;  // LAPIC timer ticks, incremented by timer_stub
  uint64_t index;  // dense vCPU index
  uint64_t kstack_top;
  uint64_t device_irq;  // set by device_irq_stub, cleared by the yield system call
};
static_assert(offsetof(PerCpu, ticks) == PC_TICKS);
static_assert(offsetof(PerCpu, index) == PC_INDEX);
static_assert(offsetof(PerCpu, kstack_top) == PC_KSTACK_TOP);
static_assert(offsetof(PerCpu, device_irq) == PC_DEVICE_IRQ);
static_assert(sizeof(PerCpu) == PC_SIZE);

struct __attribute__((packed)) Tss {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct IdtEntry {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};

struct __attribute__((packed)) DescriptorPtr {
  uint16_t limit;
  uint64_t base;
};

constexpr uint32_t kMsrGsBase = 0xc0000101;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;

// xAPIC register offsets.
constexpr uint32_t kLapicTpr = 0x80;
constexpr uint32_t kLapicSvr = 0xf0;
constexpr uint32_t kLapicIcrLow = 0x300;
constexpr uint32_t kLapicIcrHigh = 0x310;
constexpr uint32_t kLapicLvtTimer = 0x320;
constexpr uint32_t kLapicLvtLint0 = 0x350;
constexpr uint32_t kLapicLvtLint1 = 0x360;
constexpr uint32_t kLapicTimerInit = 0x380;
constexpr uint32_t kLapicTimerDivide = 0x3e0;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtPeriodic = 1u << 17;
constexpr uint32_t kIcrBusy = 1u << 12;
constexpr uint32_t kIcrInitAssert = 0x4500;
constexpr uint32_t kIcrStartup = 0x4600;

PerCpu per_cpu[GUEST_MAX_CPUS];
// All TSSes share one all-zero I/O permission bitmap (every port allowed at CPL3) that follows
// them; the byte after the bitmap must be 0xff.
struct TssBlock {
  Tss tss[GUEST_MAX_CPUS];
  uint8_t io_bitmap[8192];
  uint8_t io_bitmap_end;
};
TssBlock tss_block;
Tss* const tss = tss_block.tss;
alignas(16) IdtEntry idt[256];
bool trampoline_copied = false;

void LapicWrite(uint32_t reg, uint32_t value) {
  *reinterpret_cast<volatile uint32_t*>(static_cast<uintptr_t>(LAPIC_BASE) + reg) = value;
}

uint32_t LapicRead(uint32_t reg) {
  return *reinterpret_cast<volatile uint32_t*>(static_cast<uintptr_t>(LAPIC_BASE) + reg);
}

void SetGate(int vector, uint64_t handler) {
  IdtEntry& e = idt[vector];
  e.offset_low = static_cast<uint16_t>(handler);
  e.selector = SEL_KCODE;
  e.ist = 0;
  e.type_attr = 0x8e;  // present, DPL0, 64-bit interrupt gate
  e.offset_mid = static_cast<uint16_t>(handler >> 16);
  e.offset_high = static_cast<uint32_t>(handler >> 32);
  e.reserved = 0;
}

void BuildIdt() {
  for (int v = 0; v < 32; ++v) SetGate(v, exception_stubs[v]);
  SetGate(VEC_TIMER, reinterpret_cast<uint64_t>(&timer_stub));
  SetGate(VEC_DEVICE, reinterpret_cast<uint64_t>(&device_irq_stub));
  SetGate(VEC_SPURIOUS, reinterpret_cast<uint64_t>(&spurious_stub));
}

void SendIpi(uint32_t apic_id, uint32_t icr_low) {
  LapicWrite(kLapicIcrHigh, apic_id << 24);
  LapicWrite(kLapicIcrLow, icr_low);
  for (int i = 0; i < 100000 && (LapicRead(kLapicIcrLow) & kIcrBusy); ++i) {
  }
}

// Sets up the calling CPU as vCPU `index`: descriptor tables, GS base, LAPIC and timer.
void CpuInit(uint32_t index) {
  PerCpu& pc = per_cpu[index];
  pc.index = index;
  pc.kstack_top = reinterpret_cast<uint64_t>(&kstacks[index + 1][0]);
  WrMsr(kMsrGsBase, reinterpret_cast<uint64_t>(&pc));
  WrMsr(kMsrKernelGsBase, reinterpret_cast<uint64_t>(&pc));

  Tss& t = tss[index];
  t.rsp[0] = pc.kstack_top;
  const uint64_t base = reinterpret_cast<uint64_t>(&t);
  t.iomap_base = static_cast<uint16_t>(reinterpret_cast<uint64_t>(tss_block.io_bitmap) - base);
  tss_block.io_bitmap_end = 0xff;
  const uint64_t limit = reinterpret_cast<uint64_t>(&tss_block.io_bitmap_end) - base;
  gdt[6 + 2 * index] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                       (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  gdt[7 + 2 * index] = base >> 32;
  asm volatile("ltr %w0" : : "r"(SEL_TSS0 + 16 * index));
  const DescriptorPtr idtr = {sizeof(idt) - 1, reinterpret_cast<uint64_t>(idt)};
  asm volatile("lidt %0" : : "m"(idtr));

  LapicWrite(kLapicSvr, 0x100 | VEC_SPURIOUS);
  LapicWrite(kLapicTpr, 0);
  LapicWrite(kLapicLvtLint0, kLvtMasked);
  LapicWrite(kLapicLvtLint1, kLvtMasked);
  LapicWrite(kLapicTimerDivide, 0x3);  // divide by 16
  LapicWrite(kLapicLvtTimer, VEC_TIMER | kLvtPeriodic);
  LapicWrite(kLapicTimerInit, TIMER_INITIAL_COUNT);
}

[[noreturn]] void EnterUserFor(uint32_t index, void (*entry)(uint64_t, uint64_t), uint64_t arg) {
  // Leave 8 bytes so the entry sees the stack alignment of a called function.
  const uint64_t rsp = reinterpret_cast<uint64_t>(&ustacks[index][USTACK_SIZE]) - 8;
  EnterUser(reinterpret_cast<uint64_t>(entry), rsp, arg, 0);
}

[[noreturn]] void Die(uint32_t status) {
  OutL(abi::kDebugExitPort, status);
  halt_forever();
}

}  // namespace
}  // namespace rehome::guest

using rehome::guest::LineWriter;

extern "C" {

alignas(4096) uint8_t kstacks[GUEST_MAX_CPUS][KSTACK_SIZE];
alignas(4096) uint8_t ustacks[GUEST_MAX_CPUS][USTACK_SIZE];
// LAPIC id -> vCPU index + 1 (0: not a CPU this guest started). Read by boot/entry.S.
uint8_t ap_index_by_apic[256];

[[noreturn]] void KernelMain(uint32_t start_info_paddr) {
  using namespace rehome::guest;
  SerialInit();
  BuildIdt();
  CpuInit(0);
  const auto* info =
      reinterpret_cast<const HvmStartInfo*>(static_cast<uintptr_t>(start_info_paddr));
  if (info == nullptr || info->magic != kHvmStartMagic) {
    LineWriter().Str("rehome-guest: bad PVH start info at ").Hex(start_info_paddr).FlushUnlocked();
    Die(rehome::abi::kExitPanic);
  }
  EnterUserFor(0, UserMain, start_info_paddr);
}

[[noreturn]] void ApMain(uint32_t index) {
  using namespace rehome::guest;
  CpuInit(index);
  EnterUserFor(index, UserApMain, index);
}

[[noreturn]] void ExceptionHandler(const rehome::guest::ExceptionFrame* f) {
  using namespace rehome::guest;
  uint64_t cr2;
  asm volatile("mov %%cr2, %0" : "=r"(cr2));
  LineWriter w;
  w.Str("rehome-guest: CPU exception vector=").Dec(f->vector).Str(" rip=").Hex(f->rip);
  w.Str(" error=").Hex(f->error).Str(" cs=").Hex(f->cs).Str(" rflags=").Hex(f->rflags);
  w.Str(" rsp=").Hex(f->rsp);
  w.Str(" cr2=").Hex(cr2).Str(" apic=").Dec(CurrentApicId());
  w.FlushUnlocked();
  Die(rehome::abi::kExitCpuException);
}

uint64_t SyscallDispatch(uint64_t a0, uint64_t a1, uint64_t nr) {
  using namespace rehome::guest;
  if (nr != SYS_START_AP) return ~0ull;
  if (a0 >= 255 || a1 == 0 || a1 >= GUEST_MAX_CPUS) return ~0ull;
  if (!trampoline_copied) {
    const size_t n = static_cast<size_t>(trampoline_end - trampoline_start);
    __builtin_memcpy(reinterpret_cast<void*>(TRAMPOLINE_PADDR), trampoline_start, n);
    trampoline_copied = true;
  }
  ap_index_by_apic[a0] = static_cast<uint8_t>(a1 + 1);
  asm volatile("mfence" ::: "memory");
  const uint32_t apic = static_cast<uint32_t>(a0);
  SendIpi(apic, kIcrInitAssert);
  SendIpi(apic, kIcrStartup | (TRAMPOLINE_PADDR >> 12));
  SendIpi(apic, kIcrStartup | (TRAMPOLINE_PADDR >> 12));
  return 0;
}

}  // extern "C"
