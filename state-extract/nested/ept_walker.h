// state-extract/nested/ept_walker.h: Intel extended page tables (EPT): the EPT pointer and the
// 4-level entry format (Intel SDM vol. 3C, 29.3).
//   bit 0 R, 1 W, 2 X, 5:3 memory type (leaves), 6 ignore PAT (leaves), 7 large page (levels 3
//   and 2), 8 accessed, 9 dirty (leaves), 51:12 address.
// An entry with R = W = X = 0 is not present (an EPT violation). A misconfiguration: W without
// R; X alone without execute-only support; address bits at or above MAXPHYADDR; PML4E bits 7:3;
// bits 6:3 of a non-leaf entry; a leaf memory type of 2, 3 or 7; bits 29:12 of a 1 GiB leaf or
// 20:12 of a 2 MiB leaf; a 1 GiB leaf without 1 GiB page support. Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_EPT_WALKER_H_
#define REHOME_STATE_EXTRACT_NESTED_EPT_WALKER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "state-extract/nested/page_walk.h"

namespace rehome::nested {

struct EptOptions {
  int maxphyaddr = 52;
  bool execute_only = true;  // IA32_VMX_EPT_VPID_CAP bit 0
  bool gbpages = true;       // IA32_VMX_EPT_VPID_CAP bit 17
};

inline constexpr uint64_t kEptRead = 1ull << 0;
inline constexpr uint64_t kEptWrite = 1ull << 1;
inline constexpr uint64_t kEptExecute = 1ull << 2;
inline constexpr int kEptMemTypeShift = 3;
inline constexpr uint64_t kEptIgnorePat = 1ull << 6;
inline constexpr uint64_t kEptLarge = 1ull << 7;
inline constexpr uint8_t kMemTypeUc = 0, kMemTypeWc = 1, kMemTypeWt = 4, kMemTypeWp = 5,
                         kMemTypeWb = 6;

class EptFormat final : public EntryFormat {
 public:
  explicit EptFormat(EptOptions options = {}) : options_(options) {}
  DecodedEntry Decode(uint64_t entry, int level) const override;

 private:
  EptOptions options_;
};

// The EPT pointer (VMCS field 0x201a; vmcs12.ept_pointer).
struct Eptp {
  uint8_t memory_type = kMemTypeWb;  // of the paging structures: UC or WB
  int levels = 4;                    // page-walk length
  bool accessed_dirty = false;
  uint64_t root = 0;  // the PML4 page
};
// InvalidArgument for a memory type other than UC/WB, a walk length other than 4 (5-level EPT
// is not supported), reserved bits 11:7 or address bits at or above `maxphyaddr`.
absl::StatusOr<Eptp> ParseEptp(uint64_t value, int maxphyaddr = 52);
uint64_t EncodeEptp(const Eptp& eptp);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_EPT_WALKER_H_
