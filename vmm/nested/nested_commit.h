// vmm/nested/nested_commit.h: what the agent commits to the journal in nested mode
// (docs/nested.md, "The journal record"): after every L2 exit, and at a port I/O exit also before
// handling it, L2's complete VM state at that point (as RHSTATE), the device model state, and
// counters L0 reports. A pre-handling commit of a port write whose instruction KVM had already
// stepped over before the exit (some backends do) carries the write itself (`pending_write`): a
// standby restored from it hands that write to its devices before L2 runs. A standby rebuilds
// L2 from the last commit when L2 was parked there, or from L0's live capture plus this commit's
// device and interrupt-controller state otherwise. Encoding: version byte then StateWriter
// fields (little-endian). Pure; thread-safe.
#ifndef REHOME_VMM_NESTED_NESTED_COMMIT_H_
#define REHOME_VMM_NESTED_NESTED_COMMIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome {

inline constexpr uint8_t kNestedCommitVersion = 2;  // 2 added pending_write
inline constexpr uint32_t kMaxNestedStateBytes = 1u << 20;

// A port write L2 executed that the committed device state has not yet seen.
struct PendingPortWrite {
  uint16_t port = 0;
  std::vector<uint8_t> data;  // 1, 2 or 4 bytes
  bool operator==(const PendingPortWrite&) const = default;
};

struct NestedCommit {
  uint64_t exits = 0;          // L2 exits handled so far (all agents)
  uint64_t console_bytes = 0;  // L2 COM1 bytes emitted so far (the console ring holds them)
  uint64_t verified_reports = 0;
  uint64_t oracle_violations = 0;
  uint64_t agent_generation = 0;      // which L1's agent committed
  std::string l2_state;               // EncodeVmState of L2
  std::vector<uint8_t> device_state;  // DeviceModel::SaveState()
  std::optional<PendingPortWrite> pending_write;
  bool operator==(const NestedCommit&) const = default;
};

std::vector<uint8_t> EncodeNestedCommit(const NestedCommit& commit);
// InvalidArgument for a truncated, oversized or foreign record, or a pending write of a size
// other than 1, 2 or 4 bytes.
absl::StatusOr<NestedCommit> DecodeNestedCommit(std::string_view bytes);

}  // namespace rehome

#endif  // REHOME_VMM_NESTED_NESTED_COMMIT_H_
