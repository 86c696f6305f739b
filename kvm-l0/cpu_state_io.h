// kvm-l0/cpu_state_io.h: capture and restore the complete state of one x86-64 vCPU with the
// KVM_GET_* / KVM_SET_* ioctls, on raw file descriptors.
//
// Contract:
// - The vCPU must not be running (no thread inside KVM_RUN on it); the owner of the vCPU
//   enforces this. After a KVM_EXIT_IO/MMIO exit, re-enter KVM_RUN once with
//   kvm_run.immediate_exit = 1 before capturing, so that KVM completes the instruction.
// - CPUID is not part of CpuState: the owner sets it (KVM_SET_CPUID2) before RestoreCpuState.
// - Capture order follows Firecracker: MP_STATE first (it may update LAPIC state), VCPU_EVENTS
//   last. Restore order: TSC frequency, MP_STATE, REGS, SREGS, FPU, XSAVE, XCRS, DEBUGREGS,
//   LAPIC (after SREGS, which holds the APIC base), MSRS (after LAPIC, because the TSC deadline
//   only sticks with the LAPIC in TSC-deadline mode; within them IA32_TSC first and
//   IA32_TSC_DEADLINE last), VCPU_EVENTS (after REGS, which clears pending exceptions).
// - The guest TSC is restored to its captured value: guest time continues from the capture
//   point and never runs backwards.
// - Errors: KVM ioctl failures are Internal; restoring a LAPIC into a vCPU without an in-kernel
//   LAPIC is FailedPrecondition; a malformed CpuState (XSAVE image under 4096 bytes) is
//   InvalidArgument.
// Thread-safety: the functions keep no state; calls on different vCPUs may run concurrently.
#ifndef REHOME_KVM_L0_CPU_STATE_IO_H_
#define REHOME_KVM_L0_CPU_STATE_IO_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome {

// kvm_fd: /dev/kvm (for the MSR index list and capability checks); vcpu_fd: the vCPU.
absl::StatusOr<CpuState> CaptureCpuState(int kvm_fd, int vcpu_fd);
absl::Status RestoreCpuState(int kvm_fd, int vcpu_fd, const CpuState& state);
// A cheaper partial capture, for an owner that looks at a vCPU often (nested mode's exit trap):
// the general, segment and control registers, the FPU/XSAVE area and the MSRs in
// `msr_indices` (those KVM refuses are left out); every other field of the result is default.
absl::StatusOr<CpuState> CaptureRegistersAndFpu(int kvm_fd, int vcpu_fd,
                                                std::span<const uint32_t> msr_indices);

}  // namespace rehome

#endif  // REHOME_KVM_L0_CPU_STATE_IO_H_
