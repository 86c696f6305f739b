// state-extract/nested/shared_range.h: where L2's memory lives. In nested mode L0 owns L2's RAM
// as one memfd and maps it into every L1 VM at the same L1 guest-physical range; the active
// L1's nested page tables must map every L2 page into that range and nowhere else, and must
// not themselves live inside it (L2 could then rewrite its own translation). CheckPlacement
// proves both from a Scan, and MemfdExtents turns the mappings into offsets in the memfd, which
// is what a standby L1 needs to rebuild L2 over the same pages. Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_SHARED_RANGE_H_
#define REHOME_STATE_EXTRACT_NESTED_SHARED_RANGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "state-extract/nested/page_walk.h"

namespace rehome::nested {

// [l1_base, l1_base + size) in L1 guest-physical space = [0, size) of the memfd.
struct SharedRange {
  uint64_t l1_base = 0;
  uint64_t size = 0;
  bool Contains(uint64_t l1_gpa, uint64_t len) const {
    return l1_gpa >= l1_base && len <= size && l1_gpa - l1_base <= size - len;
  }
  // The memfd offset of [l1_gpa, l1_gpa + len), or nullopt when it is not wholly inside.
  std::optional<uint64_t> MemfdOffset(uint64_t l1_gpa, uint64_t len) const {
    if (!Contains(l1_gpa, len)) return std::nullopt;
    return l1_gpa - l1_base;
  }
};

// One contiguous piece of L2 memory and where it lives in the memfd.
struct MemfdExtent {
  uint64_t l2_gpa = 0;
  uint64_t memfd_offset = 0;
  uint64_t bytes = 0;
  bool writable = false;
  bool operator==(const MemfdExtent&) const = default;
};

struct PlacementReport {
  uint64_t mapped_bytes = 0;            // everything the tables map
  uint64_t bytes_in_range = 0;          // of which inside the shared range
  std::vector<Mapping> outside;         // the (parts of) mappings outside it
  std::vector<uint64_t> tables_inside;  // table pages inside it
  std::vector<MemfdExtent> extents;     // the mappings inside it, as memfd offsets
  // Entries that map nothing: malformed ones (KVM marks its MMIO ranges with reserved bits on
  // AMD and with misconfigured entries on Intel, so these are expected), loops and tables
  // outside L1 RAM. They do not break placement (nothing is mapped through them).
  uint64_t faults = 0;
  // True when every mapped byte is in the range and no table page is.
  bool ok = false;
  std::string Summary() const;  // one line
};

PlacementReport CheckPlacement(const Scan& scan, const SharedRange& range);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_SHARED_RANGE_H_
