// kvm-l0/nested_state_io.h: KVM_GET_NESTED_STATE (and the general registers) on a raw vCPU fd,
// returned as the raw struct kvm_nested_state blob that state-extract/nested/nested_state.h parses
// (so no caller needs <linux/kvm.h>). The vCPU must not be running. Thread-safety: stateless.
#ifndef REHOME_KVM_L0_NESTED_STATE_IO_H_
#define REHOME_KVM_L0_NESTED_STATE_IO_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome {

// kvm_fd: /dev/kvm (for KVM_CAP_NESTED_STATE, the largest blob). FailedPrecondition when KVM
// has no nested state (no nested virtualisation); Internal for ioctl failures. The result is
// `size` bytes as KVM filled it (128 + data).
absl::StatusOr<std::vector<uint8_t>> GetNestedState(int kvm_fd, int vcpu_fd);

// The largest nested state blob KVM returns (0: no KVM_CAP_NESTED_STATE).
int NestedStateMaxSize(int kvm_fd);

// KVM_GET_REGS / KVM_SET_REGS alone (nested mode's register fault injection into a paused L1
// vCPU). Internal for ioctl failures.
absl::StatusOr<Regs> GetVcpuRegs(int vcpu_fd);
absl::Status SetVcpuRegs(int vcpu_fd, const Regs& regs);

}  // namespace rehome

#endif  // REHOME_KVM_L0_NESTED_STATE_IO_H_
