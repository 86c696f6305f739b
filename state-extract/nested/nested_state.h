// state-extract/nested/nested_state.h: the KVM_GET_NESTED_STATE blob (struct kvm_nested_state,
// Linux Documentation/virt/kvm/api.rst 4.114) as plain values, without <linux/kvm.h>:
//   0   u16 flags       KVM_STATE_NESTED_GUEST_MODE 1, RUN_PENDING 2, EVMCS 4, MTF_PENDING 8,
//                       GIF_SET 0x100
//   2   u16 format      0 VMX, 1 SVM
//   4   u32 size        bytes KVM filled: 128 + data
//   8   header (120 bytes, zero padded)
//         SVM: u64 vmcb_pa (vmcb12's L1 address; guest mode only)
//         VMX: u64 vmxon_pa, u64 vmcs12_pa (~0 = none), u16 smm.flags, u16 pad, u32 flags
//              (PREEMPTION_TIMER_DEADLINE 1), u64 preemption_timer_deadline
//   128 data
//         SVM (guest mode only): one 4 KiB VMCB: the control area is vmcb12's (as KVM cached
//             it at VMRUN), the save area is L1's own state saved at VMRUN (vmcb01)
//         VMX (with a current VMCS): vmcs12 (4 KiB), then a shadow vmcs12 (4 KiB) if any
// While L2 runs (guest mode) the vCPU's ordinary registers (KVM_GET_REGS, SREGS, ...) are L2's.
// Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_NESTED_STATE_H_
#define REHOME_STATE_EXTRACT_NESTED_NESTED_STATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "state-extract/nested/vmcb.h"
#include "state-extract/nested/vmcs12.h"

namespace rehome::nested {

inline constexpr size_t kNestedStateHeaderSize = 128;
inline constexpr size_t kNestedStateMaxSize = kNestedStateHeaderSize + 2 * 4096;
inline constexpr uint64_t kInvalidGpa = ~0ull;

enum class NestedFormat : uint16_t { kVmx = 0, kSvm = 1 };

inline constexpr uint16_t kNestedGuestMode = 0x1;
inline constexpr uint16_t kNestedRunPending = 0x2;
inline constexpr uint16_t kNestedEvmcs = 0x4;
inline constexpr uint16_t kNestedMtfPending = 0x8;
inline constexpr uint16_t kNestedGifSet = 0x100;
inline constexpr uint16_t kNestedSmmGuestMode = 0x1, kNestedSmmVmxon = 0x2;
inline constexpr uint32_t kNestedVmxPreemptionTimerDeadline = 0x1;

struct NestedState {
  NestedFormat format = NestedFormat::kSvm;
  uint16_t flags = 0;
  uint32_t size = kNestedStateHeaderSize;
  // SVM header.
  uint64_t vmcb_pa = 0;
  // VMX header.
  uint64_t vmxon_pa = kInvalidGpa, vmcs12_pa = kInvalidGpa;
  uint16_t smm_flags = 0;
  uint32_t vmx_flags = 0;
  uint64_t preemption_timer_deadline = 0;
  // Data.
  std::optional<Vmcb> vmcb;  // SVM, guest mode
  std::optional<Vmcs12> vmcs12, shadow_vmcs12;

  bool guest_mode() const { return (flags & kNestedGuestMode) != 0; }
  bool run_pending() const { return (flags & kNestedRunPending) != 0; }
  bool operator==(const NestedState&) const = default;
};

// InvalidArgument (one line) when: the blob is shorter than its header or than `size`; the
// format is unknown; flags set bits the format does not define; RUN_PENDING without GUEST_MODE;
// an L1 address is not 4 KiB aligned; SVM guest mode without a VMCB; VMX guest mode without
// VMXON or a current vmcs12; a vmcs12 without VMXON; a VMCB or vmcs12 that does not parse.
absl::StatusOr<NestedState> ParseNestedState(std::span<const uint8_t> blob);
// The blob KVM_SET_NESTED_STATE takes (and GET returns) for `state`.
std::vector<uint8_t> EncodeNestedState(const NestedState& state);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_NESTED_STATE_H_
