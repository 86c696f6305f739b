// recovery/policy/recovery_policy.cc: RecoveryPolicy validation and formatting. Pure functions.
#include "recovery/policy/recovery_policy.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rehome {
namespace {

// `recovery policy: <rehome:ELEMENT ATTR="VALUE">: PROBLEM` as InvalidArgument.
absl::Status PolicyError(std::string_view element, std::string_view attribute, long long value,
                         std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("recovery policy: <rehome:", absl::string_view(element.data(), element.size()),
                   " ", absl::string_view(attribute.data(), attribute.size()), "=\"", value,
                   "\">: ", absl::string_view(problem.data(), problem.size())));
}

}  // namespace

std::string_view RecoveryModeName(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kFailover:
      return "failover";
    case RecoveryMode::kRestart:
      return "restart";
    case RecoveryMode::kNone:
      return "none";
  }
  return "unknown";
}

std::string_view VerifyModeName(VerifyMode mode) {
  switch (mode) {
    case VerifyMode::kNone:
      return "none";
    case VerifyMode::kDual:
      return "dual";
    case VerifyMode::kTriple:
      return "triple";
  }
  return "unknown";
}

absl::StatusOr<VerifyMode> ParseVerifyMode(std::string_view name) {
  for (VerifyMode mode : {VerifyMode::kNone, VerifyMode::kDual, VerifyMode::kTriple}) {
    if (name == VerifyModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown verification mode \"",
                                                 absl::string_view(name.data(), name.size()),
                                                 "\" (expected none, dual or triple)"));
}

absl::StatusOr<RecoveryMode> ParseRecoveryMode(std::string_view name) {
  for (RecoveryMode mode : {RecoveryMode::kFailover, RecoveryMode::kRestart, RecoveryMode::kNone}) {
    if (name == RecoveryModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown recovery mode \"",
                                                 absl::string_view(name.data(), name.size()),
                                                 "\" (expected failover, restart or none)"));
}

std::string_view L1SandboxLevelName(L1SandboxLevel level) {
  switch (level) {
    case L1SandboxLevel::kStrict:
      return "strict";
    case L1SandboxLevel::kBestEffort:
      return "best-effort";
    case L1SandboxLevel::kOff:
      return "off";
  }
  return "unknown";
}

absl::StatusOr<L1SandboxLevel> ParseL1SandboxLevel(std::string_view name) {
  for (L1SandboxLevel level :
       {L1SandboxLevel::kStrict, L1SandboxLevel::kBestEffort, L1SandboxLevel::kOff}) {
    if (name == L1SandboxLevelName(level)) return level;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown L1 sandbox level \"",
                                                 absl::string_view(name.data(), name.size()),
                                                 "\" (expected strict, best-effort or off)"));
}

absl::Status RecoveryPolicy::Validate() const {
  if (mode != RecoveryMode::kFailover && mode != RecoveryMode::kRestart &&
      mode != RecoveryMode::kNone) {
    return absl::InvalidArgumentError("recovery policy: <rehome:recovery mode>: unknown mode");
  }
  if (standbys < 0 || standbys > kMaxStandbys) {
    return PolicyError("recovery", "standbys", standbys,
                       absl::StrCat("must be between 0 and ", kMaxStandbys));
  }
  if (mode == RecoveryMode::kFailover && standbys < 1) {
    return PolicyError("recovery", "standbys", standbys,
                       "mode=\"failover\" needs at least 1 standby");
  }
  if (heartbeat_period_ms < 1 || heartbeat_period_ms > kMaxHeartbeatPeriodMs) {
    return PolicyError("heartbeat", "period-ms", heartbeat_period_ms,
                       absl::StrCat("must be between 1 and ", kMaxHeartbeatPeriodMs));
  }
  if (hang_timeout_ms <= heartbeat_period_ms || hang_timeout_ms > kMaxHangTimeoutMs) {
    return PolicyError("hang", "timeout-ms", hang_timeout_ms,
                       absl::StrCat("must be greater than the heartbeat period-ms (",
                                    heartbeat_period_ms, ") and at most ", kMaxHangTimeoutMs));
  }
  if (max_failovers < 1) {
    return PolicyError("limit", "failovers", max_failovers, "must be at least 1");
  }
  if (failover_window_s < 1) {
    return PolicyError("limit", "window-s", failover_window_s, "must be at least 1");
  }
  if (l1_sandbox != L1SandboxLevel::kStrict && l1_sandbox != L1SandboxLevel::kBestEffort &&
      l1_sandbox != L1SandboxLevel::kOff) {
    return absl::InvalidArgumentError("recovery policy: <rehome:sandbox level>: unknown level");
  }
  if (verify != VerifyMode::kNone && mode != RecoveryMode::kFailover) {
    return absl::InvalidArgumentError(
        "recovery policy: <rehome:verify mode>: verified execution needs mode=\"failover\"");
  }
  if (!nested_l1_kernel.empty() || !nested_l1_initrd.empty()) {
    if (nested_l1_kernel.empty() || nested_l1_initrd.empty()) {
      return absl::InvalidArgumentError(
          "recovery policy: <rehome:nested>: needs both l1-kernel and l1-initrd");
    }
    if (nested_l1_memory_mib < 128 || nested_l1_memory_mib > 16384) {
      return PolicyError("nested", "l1-memory-mib", nested_l1_memory_mib,
                         "must be between 128 and 16384");
    }
    if (verify != VerifyMode::kNone) {
      return absl::InvalidArgumentError(
          "recovery policy: <rehome:nested>: nested mode has no verified execution");
    }
  }
  return absl::OkStatus();
}

std::string RecoveryPolicy::ToString() const {
  std::string_view name = RecoveryModeName(mode);
  std::string_view sandbox = L1SandboxLevelName(l1_sandbox);
  return absl::StrCat("mode=", absl::string_view(name.data(), name.size()), " standbys=", standbys,
                      " heartbeat=", heartbeat_period_ms, "ms hang=", hang_timeout_ms,
                      "ms limit=", max_failovers, "/", failover_window_s,
                      "s l1-sandbox=", absl::string_view(sandbox.data(), sandbox.size()),
                      l1_binary.empty() ? "" : " l1=", l1_binary,
                      standby_l1_binary.empty() ? "" : " standby-l1=", standby_l1_binary,
                      verify == VerifyMode::kNone ? "" : " verify=",
                      verify == VerifyMode::kNone ? "" : std::string(VerifyModeName(verify)),
                      nested_l1_kernel.empty() ? "" : " nested-l1=", nested_l1_kernel);
}

}  // namespace rehome
