// kvm-l0/vm_state_io.h: capture and restore the VM-wide in-kernel state (PIC master and slave,
// IOAPIC, PIT, kvmclock), and whole VMs (VM-wide state plus every vCPU), on raw fds.
//
// Contract:
// - No vCPU of the VM may be running during a capture or restore (the caller enforces it).
// - CaptureVmState/RestoreVmState cover the VM-wide parts only and leave VmState::vcpus alone;
//   CaptureVm/RestoreVm also do every vCPU (vcpus[i] <-> vcpu_fds[i]) via cpu_state_io.h.
// - A VM without an in-kernel irqchip (or with a split one) captures no irqchip; without a PIT,
//   no PIT. Restoring parts the target VM lacks is FailedPrecondition.
// - The clock is restored with flags = 0 (KVM refuses some flags KVM_GET_CLOCK reports, and
//   KVM_CLOCK_REALTIME would advance the clock by the time spent paused): the guest's
//   kvmclock resumes at the captured value, consistent with the restored TSC.
// - RestoreVm order (as Firecracker): irqchip, PIT, clock, then each vCPU.
// - Errors: KVM ioctl failures are Internal; vcpu_fds.size() != state.vcpus.size() is
//   InvalidArgument.
// Thread-safety: the functions keep no state.
#ifndef REHOME_KVM_L0_VM_STATE_IO_H_
#define REHOME_KVM_L0_VM_STATE_IO_H_

#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome {

// VM-wide state only (result's vcpus is empty; RestoreVmState ignores state.vcpus).
absl::StatusOr<VmState> CaptureVmState(int vm_fd);
absl::Status RestoreVmState(int vm_fd, const VmState& state);

// The whole VM: VM-wide state and one CpuState per fd, in order. kvm_fd is /dev/kvm.
absl::StatusOr<VmState> CaptureVm(int kvm_fd, int vm_fd, std::span<const int> vcpu_fds);
absl::Status RestoreVm(int kvm_fd, int vm_fd, std::span<const int> vcpu_fds, const VmState& state);

}  // namespace rehome

#endif  // REHOME_KVM_L0_VM_STATE_IO_H_
