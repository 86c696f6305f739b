// recovery/nested/exit_trap.h: the trap L0 sets at an L1 kernel's VMRUN return to see each of
// L2's exits to the L1 (docs/nested.md, "Tracking L2's exits"). L0 writes `out %al, $0xef`
// over the first two bytes there; the L1 vCPU exits to L0 (a port write, on every KVM and on
// QEMU's emulated SVM, where neither INT3 nor debug registers reach L0 from an L1) before the L1
// has run an instruction of its own, and L0 then does itself what the two overwritten
// instructions would have done and resumes the L1 after them. Only the code of kvm_amd's
// __svm_vcpu_run since Linux 6.0 is known:
//   58                     pop %rax            (the svm pointer, pushed before VMRUN)
//   48 89 88 <disp32>      mov %rcx, disp32(%rax)
// Anything else is refused (L0 then does not follow exits). Pure; thread-safe.
#ifndef REHOME_RECOVERY_NESTED_EXIT_TRAP_H_
#define REHOME_RECOVERY_NESTED_EXIT_TRAP_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace rehome::nested {

inline constexpr uint16_t kExitTrapPort = 0xef;
inline constexpr size_t kExitTrapCodeBytes = 8;  // the two instructions L0 emulates
inline constexpr std::array<uint8_t, 2> kExitTrapBytes{0xe6, kExitTrapPort};

// The displacement of the mov, when `code` is the known sequence.
std::optional<int32_t> ParseVmrunReturnCode(std::span<const uint8_t> code);

}  // namespace rehome::nested

#endif  // REHOME_RECOVERY_NESTED_EXIT_TRAP_H_
