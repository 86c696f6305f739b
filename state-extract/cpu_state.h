// state-extract/cpu_state.h: the complete state of one x86-64 vCPU (CpuState) and of a VM's
// in-kernel devices (VmState), as plain C++ values free of <linux/kvm.h>.
//
// Contract: every fixed-size struct here mirrors one KVM UAPI structure field by field (same
// order, same sizes, explicit padding/reserved fields), so kvm-l0/ static_asserts the sizes and
// memcpy()s between the two. Variable-size parts (XSAVE area, MSR list, vCPU list) are vectors.
// All members are zero-initialised by default. The types are plain values: copyable, comparable
// with ==, and as thread-safe as any value (no shared state).
#ifndef REHOME_STATE_EXTRACT_CPU_STATE_H_
#define REHOME_STATE_EXTRACT_CPU_STATE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace rehome {

// kvm_regs (144 bytes).
struct Regs {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  uint64_t rip = 0, rflags = 0;
  bool operator==(const Regs&) const = default;
};

// kvm_segment (24 bytes).
struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0, present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
  uint8_t unusable = 0, padding = 0;
  bool operator==(const Segment&) const = default;
};

// kvm_dtable (16 bytes).
struct DTable {
  uint64_t base = 0;
  uint16_t limit = 0;
  std::array<uint16_t, 3> padding{};
  bool operator==(const DTable&) const = default;
};

// kvm_sregs (312 bytes). interrupt_bitmap holds a pending external interrupt (one bit set).
struct Sregs {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DTable gdt, idt;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0, apic_base = 0;
  std::array<uint64_t, 4> interrupt_bitmap{};
  bool operator==(const Sregs&) const = default;
};

// kvm_fpu (416 bytes): legacy x87/SSE view. The XSAVE area, when present, is authoritative.
struct Fpu {
  std::array<std::array<uint8_t, 16>, 8> fpr{};
  uint16_t fcw = 0, fsw = 0;
  uint8_t ftwx = 0, pad1 = 0;
  uint16_t last_opcode = 0;
  uint64_t last_ip = 0, last_dp = 0;
  std::array<std::array<uint8_t, 16>, 16> xmm{};
  uint32_t mxcsr = 0, pad2 = 0;
  bool operator==(const Fpu&) const = default;
};

// kvm_xsave: the raw XSAVE image. 4096 bytes from KVM_GET_XSAVE; KVM_GET_XSAVE2 may return more
// (the size KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) reports). Empty when it was not captured.
struct XsaveArea {
  static constexpr size_t kLegacySize = 4096;  // sizeof(struct kvm_xsave)
  std::vector<uint8_t> bytes;
  bool operator==(const XsaveArea&) const = default;
};

// kvm_xcr (16 bytes) and kvm_xcrs (392 bytes).
struct Xcr {
  uint32_t xcr = 0, reserved = 0;
  uint64_t value = 0;
  bool operator==(const Xcr&) const = default;
};
struct Xcrs {
  uint32_t nr_xcrs = 0, flags = 0;
  std::array<Xcr, 16> xcrs{};
  std::array<uint64_t, 16> padding{};
  bool operator==(const Xcrs&) const = default;
};

// kvm_msr_entry (16 bytes; 4 bytes of implicit padding after `index`).
struct MsrEntry {
  uint32_t index = 0;
  uint64_t data = 0;
  bool operator==(const MsrEntry&) const = default;
};

// kvm_lapic_state (1024 bytes): the local APIC register page.
struct LapicState {
  std::array<uint8_t, 1024> regs{};
  bool operator==(const LapicState&) const = default;
};

// kvm_vcpu_events (64 bytes) and its nested structs.
struct ExceptionEvent {
  uint8_t injected = 0, nr = 0, has_error_code = 0, pending = 0;
  uint32_t error_code = 0;
  bool operator==(const ExceptionEvent&) const = default;
};
struct InterruptEvent {
  uint8_t injected = 0, nr = 0, soft = 0, shadow = 0;
  bool operator==(const InterruptEvent&) const = default;
};
struct NmiEvent {
  uint8_t injected = 0, pending = 0, masked = 0, pad = 0;
  bool operator==(const NmiEvent&) const = default;
};
struct SmiEvent {
  uint8_t smm = 0, pending = 0, smm_inside_nmi = 0, latched_init = 0;
  bool operator==(const SmiEvent&) const = default;
};
struct VcpuEvents {
  ExceptionEvent exception;
  InterruptEvent interrupt;
  NmiEvent nmi;
  uint32_t sipi_vector = 0;
  uint32_t flags = 0;  // KVM_VCPUEVENT_VALID_* as reported by KVM_GET_VCPU_EVENTS
  SmiEvent smi;
  uint8_t triple_fault_pending = 0;
  std::array<uint8_t, 26> reserved{};
  uint8_t exception_has_payload = 0;
  uint64_t exception_payload = 0;
  bool operator==(const VcpuEvents&) const = default;
};

// kvm_debugregs (128 bytes).
struct DebugRegs {
  std::array<uint64_t, 4> db{};
  uint64_t dr6 = 0, dr7 = 0, flags = 0;
  std::array<uint64_t, 9> reserved{};
  bool operator==(const DebugRegs&) const = default;
};

// Everything needed to resume one vCPU elsewhere. CPUID is not part of it: the owner of the
// vCPU sets CPUID (KVM_SET_CPUID2) before restoring.
struct CpuState {
  Regs regs;
  Sregs sregs;
  Fpu fpu;
  XsaveArea xsave;                  // empty: host without KVM_CAP_XSAVE
  std::optional<Xcrs> xcrs;         // absent: host without KVM_CAP_XCRS
  std::vector<MsrEntry> msrs;       // every readable MSR of KVM_GET_MSR_INDEX_LIST but the TSC
  std::optional<LapicState> lapic;  // absent: VM without an in-kernel local APIC
  VcpuEvents events;
  uint32_t mp_state = 0;  // KVM_MP_STATE_*
  DebugRegs debugregs;
  uint64_t tsc = 0;      // guest MSR_IA32_TSC at capture; restored before the other MSRs
  uint32_t tsc_khz = 0;  // guest TSC frequency (KVM_GET_TSC_KHZ); 0 = unknown
  bool operator==(const CpuState&) const = default;
};

// kvm_irqchip (520 bytes): one in-kernel PIC (chip 0 master, 1 slave) or the IOAPIC (chip 2).
struct Irqchip {
  static constexpr uint32_t kPicMaster = 0, kPicSlave = 1, kIoapic = 2;
  uint32_t chip_id = 0, pad = 0;
  std::array<uint8_t, 512> chip{};  // kvm_pic_state or kvm_ioapic_state, kept as a blob
  bool operator==(const Irqchip&) const = default;
};

// kvm_pit_channel_state (24 bytes) and kvm_pit_state2 (112 bytes).
struct PitChannel {
  uint32_t count = 0;
  uint16_t latched_count = 0;
  uint8_t count_latched = 0, status_latched = 0, status = 0, read_state = 0, write_state = 0;
  uint8_t write_latch = 0, rw_mode = 0, mode = 0, bcd = 0, gate = 0;
  int64_t count_load_time = 0;
  bool operator==(const PitChannel&) const = default;
};
struct PitState2 {
  std::array<PitChannel, 3> channels{};
  uint32_t flags = 0;
  std::array<uint32_t, 9> reserved{};
  bool operator==(const PitState2&) const = default;
};

// kvm_clock_data (48 bytes): the VM's kvmclock.
struct ClockData {
  uint64_t clock = 0;
  uint32_t flags = 0, pad0 = 0;
  uint64_t realtime = 0, host_tsc = 0;
  std::array<uint32_t, 4> pad{};
  bool operator==(const ClockData&) const = default;
};

// VM-wide state plus every vCPU (index in `vcpus` = vCPU id).
struct VmState {
  // The in-kernel irqchip: all three chips, or none (no KVM_CREATE_IRQCHIP, or a split one).
  std::optional<Irqchip> pic_master, pic_slave, ioapic;
  std::optional<PitState2> pit;  // absent: no in-kernel PIT
  ClockData clock;
  std::vector<CpuState> vcpus;
  bool operator==(const VmState&) const = default;
};

}  // namespace rehome

#endif  // REHOME_STATE_EXTRACT_CPU_STATE_H_
