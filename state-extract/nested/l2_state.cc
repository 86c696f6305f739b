// state-extract/nested/l2_state.cc: AssembleL2FromGuestMode.
#include "state-extract/nested/l2_state.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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

}  // namespace rehome::nested
