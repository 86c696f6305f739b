// state-extract/nested/l2_state.h: L2's VM state as L0 hands it to a standby, assembled from
// what L0 captured. While the L1 vCPU that runs L2 is in guest mode (KVM_GET_NESTED_STATE says
// GUEST_MODE), KVM's ordinary vCPU state of that L1 vCPU is L2's own: general registers,
// segments (with FS/GS bases) and control registers, FPU/XSAVE/XCRs, debug registers and
// pending events. The rest of L2's state lives in the L1 hypervisor's memory and comes from
// the agent's last commit: L2's local APIC, its MP state, its APIC base, its MSRs, and the
// VM-wide in-kernel devices (IOAPIC, PIC, PIT, clock). KVM answers a host-initiated
// KVM_GET_MSRS in guest mode with L1's values even for the MSRs VMLOAD/VMSAVE swap (STAR,
// LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE, SYSENTER_*), so L2's come from the commit too; guests
// set them at boot (KERNEL_GS_BASE also changes at every SWAPGS: captured inside an interrupt
// handler entered from user mode, L2 resumes with its kernel GS base in both). Between two
// commits L2's APIC timer counts on and may deliver interrupts: L2 sees its timer phase shift
// and at most the ticks since its last exit again or not at all. Pure; thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_L2_STATE_H_
#define REHOME_STATE_EXTRACT_NESTED_L2_STATE_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"
#include "state-extract/nested/vmcb.h"

namespace rehome::nested {

// `live`: the L1 vCPU's CpuState captured in guest mode; `committed`: L2's VmState at the
// agent's last commit (one vCPU). InvalidArgument unless `committed` has exactly one vCPU.
absl::StatusOr<VmState> AssembleL2FromGuestMode(const CpuState& live, const VmState& committed);

// L2 at one of its exits to the L1 hypervisor (docs/nested.md, "Tracking L2's exits"): L0
// stopped the L1 vCPU at the instruction after VMRUN, before the L1 has run any of its own code.
// `vmcb12` (the VMCB the L1 ran L2 with, read from L1 memory at the VMRUN's RAX) then holds what
// #VMEXIT saves: RIP, RSP, RAX, RFLAGS, ES/CS/SS/DS, GDTR/IDTR, CR0/2/3/4, EFER, DR6/DR7, the
// interrupt shadow and the exit. Everything else of L2's CPU is still in the L1 vCPU
// (`l1_at_return`): the other general registers, FS/GS/TR/LDTR and KERNEL_GS_BASE (VMSAVE
// state, which the L1 has not saved yet), the FPU/XSAVE registers. The rest as
// AssembleL2FromGuestMode, from `committed`: LAPIC, MSRs, XCRs, the VM-wide devices. The CR8
// comes from the VMCB's V_TPR; nothing is left injected. FailedPrecondition when the exit
// interrupted an event delivery (EXITINTINFO valid: the event would have to be injected again)
// or the VMCB fails VMRUN's own checks (not the VMCB L2 ran with); InvalidArgument as above.
absl::StatusOr<VmState> AssembleL2FromExit(const CpuState& l1_at_return, const Vmcb& vmcb12,
                                           const VmState& committed);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_L2_STATE_H_
