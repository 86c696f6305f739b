// vmm/nested/vmrun_return.h: where the L1 kernel's KVM continues after an L2 exit: the
// instruction after the `vmrun` in kvm_amd's __svm_vcpu_run (docs/nested.md, "Tracking L2's
// exits"). The agent finds it in its own kernel (the symbol in /proc/kallsyms, the code through
// /proc/kcore, both readable by root) and tells L0, which breaks there to capture L2 at each of
// its exits to the L1. The pure parts (the kallsyms line, the byte scan, the kcore ELF lookup)
// are tested on synthetic input. Thread-safety: stateless.
#ifndef REHOME_VMM_NESTED_VMRUN_RETURN_H_
#define REHOME_VMM_NESTED_VMRUN_RETURN_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome {

inline constexpr char kSvmRunSymbol[] = "__svm_vcpu_run";

// The address of `symbol` in /proc/kallsyms text (a text symbol, module or not); nullopt when
// it is absent or its address reads as 0 (kptr_restrict hides addresses).
std::optional<uint64_t> KallsymsAddress(std::string_view kallsyms, std::string_view symbol);
// The offset of the instruction after the first VMRUN (0f 01 d8) in `code`.
std::optional<size_t> VmrunReturnOffset(std::span<const uint8_t> code);
// `len` bytes of kernel memory at virtual address `vaddr` from an ELF core of the running
// kernel (/proc/kcore); NotFound when no loadable segment holds them.
absl::StatusOr<std::vector<uint8_t>> ReadKcore(const std::string& kcore_path, uint64_t vaddr,
                                               size_t len);
// The linear address L0 breaks at. NotFound (no kvm_amd, hidden addresses, no VMRUN in the first
// 1 KiB of the function), or the file errors.
absl::StatusOr<uint64_t> FindVmrunReturn(const std::string& kallsyms_path = "/proc/kallsyms",
                                         const std::string& kcore_path = "/proc/kcore");

}  // namespace rehome

#endif  // REHOME_VMM_NESTED_VMRUN_RETURN_H_
