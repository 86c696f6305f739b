// state-extract/nested/vmcb.h: the AMD SVM virtual machine control block (AMD APM vol. 2,
// appendix B; the layout of Linux's arch/x86/include/asm/svm.h): a 4 KiB page with the control
// area at 0x000 and the state-save area at 0x400. In nested mode it is what L1's hypervisor
// hands to VMRUN for L2 (vmcb12); L0 reads it from KVM_GET_NESTED_STATE or from L1 memory to
// learn L2's nested page table root (N_CR3), the last exit and L2's register state.
//
// ParseVmcb reads the fields rehome uses (others are ignored); EncodeVmcb writes them back into
// a page (tests build synthetic VMCBs with it). VmrunConsistencyErrors lists the guest-state
// rules VMRUN enforces (APM 15.5.1), so a garbage VMCB from a faulty L1 is recognised.
// Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_VMCB_H_
#define REHOME_STATE_EXTRACT_NESTED_VMCB_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome::nested {

inline constexpr size_t kVmcbSize = 4096;
inline constexpr size_t kVmcbSaveOffset = 0x400;
inline constexpr size_t kVmcbMinBytes = kVmcbSaveOffset + 0x298;  // through last_excp_to

// SVM exit codes rehome names (EXITCODE, VMCB offset 0x070).
inline constexpr uint64_t kSvmExitIntr = 0x060, kSvmExitNmi = 0x061, kSvmExitCpuid = 0x072,
                          kSvmExitHlt = 0x078, kSvmExitIoio = 0x07b, kSvmExitMsr = 0x07c,
                          kSvmExitShutdown = 0x07f, kSvmExitVmrun = 0x080, kSvmExitVmmcall = 0x081,
                          kSvmExitNpf = 0x400, kSvmExitInvalid = ~0ull;
const char* SvmExitName(uint64_t exit_code);

inline constexpr uint64_t kEferSvme = 1ull << 12;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kEferNxe = 1ull << 11;

// {selector, attrib, limit, base}: attrib packs the descriptor's type (3:0), S (4), DPL (6:5),
// P (7), AVL (8), L (9), D/B (10), G (11).
struct VmcbSegment {
  uint16_t selector = 0;
  uint16_t attrib = 0;
  uint32_t limit = 0;
  uint64_t base = 0;
  bool operator==(const VmcbSegment&) const = default;
};

struct VmcbControl {
  std::array<uint32_t, 6> intercepts{};  // CR, DR, exceptions, misc 1..3 (0x000..0x014)
  uint16_t pause_filter_thresh = 0, pause_filter_count = 0;
  uint64_t iopm_base_pa = 0, msrpm_base_pa = 0, tsc_offset = 0;
  uint32_t asid = 0;
  uint8_t tlb_ctl = 0;
  uint32_t int_ctl = 0, int_vector = 0, int_state = 0;
  uint64_t exit_code = 0, exit_info_1 = 0, exit_info_2 = 0;
  uint32_t exit_int_info = 0, exit_int_info_err = 0;
  uint64_t misc_ctl = 0;  // bit 0: nested paging enabled
  uint64_t avic_vapic_bar = 0, ghcb_gpa = 0;
  uint32_t event_inj = 0, event_inj_err = 0;
  uint64_t nested_cr3 = 0, misc_ctl2 = 0;
  uint32_t clean = 0;
  uint64_t next_rip = 0;
  uint8_t insn_len = 0;
  std::array<uint8_t, 15> insn_bytes{};
  bool nested_paging() const { return (misc_ctl & 1) != 0; }
  bool intercepts_vmrun() const { return (intercepts[4] & 1) != 0; }
  bool operator==(const VmcbControl&) const = default;
};

struct VmcbSave {
  VmcbSegment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
  uint8_t cpl = 0;
  uint64_t efer = 0, cr4 = 0, cr3 = 0, cr0 = 0, dr7 = 0, dr6 = 0, rflags = 0, rip = 0;
  uint64_t rsp = 0, s_cet = 0, ssp = 0, isst_addr = 0, rax = 0;
  uint64_t star = 0, lstar = 0, cstar = 0, sfmask = 0, kernel_gs_base = 0;
  uint64_t sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0, cr2 = 0;
  uint64_t g_pat = 0, dbgctl = 0, br_from = 0, br_to = 0, last_excp_from = 0, last_excp_to = 0;
  bool operator==(const VmcbSave&) const = default;
};

struct Vmcb {
  VmcbControl control;
  VmcbSave save;
  bool operator==(const Vmcb&) const = default;
};

// InvalidArgument when `bytes` is shorter than kVmcbMinBytes or a segment's attrib has bits
// 15:12 set (they do not exist).
absl::StatusOr<Vmcb> ParseVmcb(std::span<const uint8_t> bytes);
// Writes every field above into `out` (at least kVmcbMinBytes; other bytes untouched).
void EncodeVmcb(const Vmcb& vmcb, std::span<uint8_t> out);

// The VMRUN guest-state checks of APM 15.5.1 that a VMCB can fail on its own (no CPUID needed):
// EFER.SVME clear; CR0.CD clear with CR0.NW set; CR0[63:32], DR6[63:32] or DR7[63:32] set;
// long mode with paging but without CR4.PAE or CR0.PE; CS.L and CS.D both set in long mode;
// no VMRUN intercept; ASID 0. Empty when the VMCB could be run.
std::vector<std::string> VmrunConsistencyErrors(const Vmcb& vmcb);

// KVM's segment representation of a VMCB segment (unusable = not present) and back.
Segment SegmentFromVmcb(const VmcbSegment& seg);
VmcbSegment VmcbFromSegment(const Segment& seg);

// Copies what a VMCB save area holds of a vCPU into `regs`/`sregs`: RIP, RSP, RAX, RFLAGS, the
// segments, GDTR/IDTR, CR0/2/3/4, EFER. The other general registers are not in a VMCB (the
// hypervisor keeps them in its own memory) and are left as they are.
void ApplyVmcbSave(const VmcbSave& save, Regs* regs, Sregs* sregs);
// The MSRs a VMCB save area holds: STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE, SYSENTER_CS/ESP/
// EIP and PAT.
std::vector<MsrEntry> VmcbSaveMsrs(const VmcbSave& save);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_VMCB_H_
