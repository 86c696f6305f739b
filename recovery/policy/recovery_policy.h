// recovery/policy/recovery_policy.h: RecoveryPolicy, what rehome does when the hypervisor (L1)
// running a guest fails: fail over to a standby, restart, or nothing; how failure is detected
// (heartbeat period, hang timeout) and how often recovery may happen (limit per window).
// Plain data plus pure functions: thread-compatible (const use from many threads is safe).
// The XML form (<rehome:recovery> in a libvirt domain's <metadata>) is read by vmm/domain and
// documented in docs/domain-xml.md; error messages here name that XML form.
#ifndef REHOME_RECOVERY_POLICY_RECOVERY_POLICY_H_
#define REHOME_RECOVERY_POLICY_RECOVERY_POLICY_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rehome {

// The only policy format version this build understands (attribute version="1").
inline constexpr int kRecoveryPolicyVersion = 1;

enum class RecoveryMode {
  kFailover,  // move the guest to a warm standby L1 (needs standbys >= 1)
  kRestart,   // start a new L1 and restore the guest into it
  kNone,      // do nothing: the guest dies with its L1
};

// Verified execution: every exit executed by one L1 (none), by two that must agree (dual: a
// disagreement is detected and settled by a third opinion), or by three, the majority winning
// (triple: one wrong L1 is outvoted and replaced; the guest never stops).
enum class VerifyMode { kNone, kDual, kTriple };
std::string_view VerifyModeName(VerifyMode mode);
absl::StatusOr<VerifyMode> ParseVerifyMode(std::string_view name);
// The number of replicas executing every exit (1, 2, 3).
inline int ReplicaCount(VerifyMode mode) {
  return mode == VerifyMode::kTriple ? 3 : mode == VerifyMode::kDual ? 2 : 1;
}

// "failover" / "restart" / "none".
std::string_view RecoveryModeName(RecoveryMode mode);
// Inverse of RecoveryModeName; anything else is InvalidArgument.
absl::StatusOr<RecoveryMode> ParseRecoveryMode(std::string_view name);

// How every L1 process is confined (docs/security.md).
enum class L1SandboxLevel {
  kStrict,      // every layer, or the L1 does not start
  kBestEffort,  // every layer the host allows; one line names what is not applied
  kOff,         // none: the L1 runs with rehome's privileges (for comparisons and debugging)
};

// "strict" / "best-effort" / "off".
std::string_view L1SandboxLevelName(L1SandboxLevel level);
// Inverse of L1SandboxLevelName; anything else is InvalidArgument.
absl::StatusOr<L1SandboxLevel> ParseL1SandboxLevel(std::string_view name);

struct RecoveryPolicy {
  static constexpr int kMaxStandbys = 4;
  static constexpr int kMaxHeartbeatPeriodMs = 10000;
  static constexpr int kMaxHangTimeoutMs = 60000;

  RecoveryMode mode = RecoveryMode::kFailover;
  int standbys = 1;              // 0..kMaxStandbys; failover needs >= 1
  int heartbeat_period_ms = 10;  // 1..kMaxHeartbeatPeriodMs
  int hang_timeout_ms = 50;      // (heartbeat_period_ms, kMaxHangTimeoutMs]
  int max_failovers = 10;        // >= 1 recoveries ...
  int failover_window_s = 60;    // ... within this many seconds (>= 1)
  // Design diversity (<rehome:l1 binary standby-binary>, --l1-binary, --standby-l1-binary): the
  // L1 binary of the first L1 (the initial active) and of every L1 started after it (standbys,
  // replacements). Empty: the rehome binary itself; standby empty: the same as l1_binary.
  std::string l1_binary;
  std::string standby_l1_binary;
  L1SandboxLevel l1_sandbox = L1SandboxLevel::kBestEffort;
  // Verified execution (<rehome:verify mode>, --verify). Needs mode failover.
  VerifyMode verify = VerifyMode::kNone;
  // Nested mode (<rehome:nested l1-kernel l1-initrd l1-memory-mib>, docs/nested.md): each L1 is
  // a Linux+KVM VM booted from this image. Empty nested_l1_kernel: not nested. Needs both
  // files, 128..16384 MiB and no verified execution.
  std::string nested_l1_kernel;
  std::string nested_l1_initrd;
  int nested_l1_memory_mib = 320;

  // OK, or InvalidArgument naming the offending XML element and attribute, e.g.
  // `recovery policy: <rehome:hang timeout-ms="5">: must be greater than ...`.
  absl::Status Validate() const;

  // One line, e.g.
  // "mode=failover standbys=1 heartbeat=10ms hang=50ms limit=10/60s l1-sandbox=best-effort".
  std::string ToString() const;

  friend bool operator==(const RecoveryPolicy&, const RecoveryPolicy&) = default;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_POLICY_RECOVERY_POLICY_H_
