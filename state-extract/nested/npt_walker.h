// state-extract/nested/npt_walker.h: AMD nested page tables (NPT): the long-mode 4-level entry
// format as the nested walk sees it (AMD APM vol. 2, 15.25 and 5.3). Every nested access is a
// user access, so an entry without U/S forbids all access; NX forbids execution.
//   bit 0 P, 1 R/W, 2 U/S, 3 PWT, 4 PCD, 5 A, 6 D (leaf), 7 PS (levels 3 and 2; PAT at level
//   1), 12 PAT (large leaves), 51:12 address, 63 NX.
// Reserved (a #NPF with the RSVD bit; KVM marks MMIO ranges this way): address bits at or above
// MAXPHYADDR, NX without EFER.NXE, PML4E bits 8:7, PS at level 3 without 1 GiB pages, bits
// 29:13 of a 1 GiB leaf and bits 20:13 of a 2 MiB leaf. Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_NPT_WALKER_H_
#define REHOME_STATE_EXTRACT_NESTED_NPT_WALKER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "state-extract/nested/page_walk.h"

namespace rehome::nested {

struct NptOptions {
  int maxphyaddr = 52;     // physical address width of the host running L1 (CPUID 0x80000008)
  bool nx_enabled = true;  // EFER.NXE of that host: without it bit 63 is reserved
  bool gbpages = true;     // 1 GiB pages (CPUID 0x80000001 EDX.Page1GB)
};

inline constexpr uint64_t kNptPresent = 1ull << 0;
inline constexpr uint64_t kNptWrite = 1ull << 1;
inline constexpr uint64_t kNptUser = 1ull << 2;
inline constexpr uint64_t kNptPwt = 1ull << 3;
inline constexpr uint64_t kNptPcd = 1ull << 4;
inline constexpr uint64_t kNptAccessed = 1ull << 5;
inline constexpr uint64_t kNptDirty = 1ull << 6;
inline constexpr uint64_t kNptLarge = 1ull << 7;  // PS at levels 3 and 2
inline constexpr uint64_t kNptPat4K = 1ull << 7;  // PAT at level 1
inline constexpr uint64_t kNptPatLarge = 1ull << 12;
inline constexpr uint64_t kNptNx = 1ull << 63;

class NptFormat final : public EntryFormat {
 public:
  explicit NptFormat(NptOptions options = {}) : options_(options) {}
  DecodedEntry Decode(uint64_t entry, int level) const override;

 private:
  NptOptions options_;
};

// The PML4 address in a VMCB's N_CR3 (bits 51:12; PWT/PCD and the low bits are ignored).
// InvalidArgument when bits at or above `maxphyaddr` are set.
absl::StatusOr<uint64_t> NptRootFromNestedCr3(uint64_t n_cr3, int maxphyaddr = 52);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_NPT_WALKER_H_
