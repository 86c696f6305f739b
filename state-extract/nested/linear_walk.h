// state-extract/nested/linear_walk.h: an L1's own x86-64 page tables (4-level, CR3), walked by
// L0 to find where a kernel linear address lives in L1 physical memory (nested mode puts a
// breakpoint into the L1 kernel's text: docs/nested.md, "Tracking L2's exits"). Supervisor and
// user pages alike; no permission is checked. Pure code over memory read through a
// PhysicalMemory (page_walk.h); thread-safe while the memory does not change.
#ifndef REHOME_STATE_EXTRACT_NESTED_LINEAR_WALK_H_
#define REHOME_STATE_EXTRACT_NESTED_LINEAR_WALK_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "state-extract/nested/page_walk.h"

namespace rehome::nested {

// The physical address of `linear` (canonical, 48 bits) under the tables at `cr3` (bits 51:12),
// through 1 GiB, 2 MiB and 4 KiB pages. InvalidArgument for a non-canonical address;
// NotFound for a not-present entry; DataLoss for a table outside memory or an entry with
// address bits at or above `maxphyaddr`.
absl::StatusOr<uint64_t> TranslateLinear(const PhysicalMemory& memory, uint64_t cr3,
                                         uint64_t linear, int maxphyaddr = 52);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_LINEAR_WALK_H_
