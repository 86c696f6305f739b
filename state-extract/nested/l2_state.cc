// state-extract/nested/l2_state.cc: AssembleL2FromGuestMode.
#include "state-extract/nested/l2_state.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace rehome::nested {
absl::StatusOr<VmState> AssembleL2FromGuestMode(const CpuState& live, const VmState& committed) {
  if (committed.vcpus.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("committed L2 state has ", committed.vcpus.size(), " vCPUs, expected 1"));
  }
  VmState out = committed;
  CpuState& c = out.vcpus[0];
  const uint64_t apic_base = c.sregs.apic_base;
  c.regs = live.regs;
  c.sregs = live.sregs;
  c.sregs.apic_base = apic_base;  // L1's own APIC base, not L2's
  c.fpu = live.fpu;
  c.xsave = live.xsave;
  c.xcrs = live.xcrs;
  c.debugregs = live.debugregs;
  c.events = live.events;
  return out;
}

absl::StatusOr<VmState> AssembleL2FromExit(const CpuState& l1_at_return, const Vmcb& vmcb12,
                                           const VmState& committed) {
  if (committed.vcpus.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("committed L2 state has ", committed.vcpus.size(), " vCPUs, expected 1"));
  }
  constexpr uint32_t kExitIntInfoValid = 1u << 31;
  if ((vmcb12.control.exit_int_info & kExitIntInfoValid) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "L2 exited while an event was delivered (EXITINTINFO 0x%x)", vmcb12.control.exit_int_info));
  }
  if (const std::vector<std::string> errors = VmrunConsistencyErrors(vmcb12); !errors.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the VMCB at the exit is not runnable: ", absl::StrJoin(errors, "; ")));
  }
  constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
  constexpr uint32_t kVTprMask = 0xf;  // V_TPR: int_ctl bits 3:0
  VmState out = committed;
  CpuState& c = out.vcpus[0];
  const Sregs committed_sregs = c.sregs;
  c.regs = l1_at_return.regs;  // RBX, RCX, RDX, RSI, RDI, RBP, R8-R15 are L2's
  ApplyVmcbSave(vmcb12.save, &c.regs, &c.sregs);
  c.sregs.fs = l1_at_return.sregs.fs;
  c.sregs.gs = l1_at_return.sregs.gs;
  c.sregs.tr = l1_at_return.sregs.tr;
  c.sregs.ldt = l1_at_return.sregs.ldt;
  c.sregs.apic_base = committed_sregs.apic_base;
  c.sregs.cr8 = vmcb12.control.int_ctl & kVTprMask;
  c.sregs.interrupt_bitmap = {};
  if ((committed_sregs.efer & kEferSvme) == 0) c.sregs.efer &= ~kEferSvme;
  c.fpu = l1_at_return.fpu;
  c.xsave = l1_at_return.xsave;
  c.debugregs.dr6 = vmcb12.save.dr6;
  c.debugregs.dr7 = vmcb12.save.dr7;
  c.events.exception = {};
  c.events.interrupt = {};
  c.events.interrupt.shadow = static_cast<uint8_t>(vmcb12.control.int_state & 1);
  c.events.nmi.injected = 0;
  c.events.nmi.pending = 0;
  c.events.exception_has_payload = 0;
  c.events.exception_payload = 0;
  for (const MsrEntry& live : l1_at_return.msrs) {
    if (live.index != kMsrKernelGsBase) continue;
    for (MsrEntry& msr : c.msrs) {
      if (msr.index == kMsrKernelGsBase) msr.data = live.data;
    }
  }
  return out;
}

}  // namespace rehome::nested
