// recovery/policy/recovery_policy_test.cc: defaults, every range check, names and formatting.
#include "recovery/policy/recovery_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rehome {
namespace {

using ::testing::HasSubstr;

TEST(RecoveryPolicy, DefaultsAreValidFailoverWithOneStandby) {
  RecoveryPolicy policy;
  EXPECT_TRUE(policy.Validate().ok());
  EXPECT_EQ(policy.mode, RecoveryMode::kFailover);
  EXPECT_EQ(policy.standbys, 1);
  EXPECT_EQ(policy.heartbeat_period_ms, 10);
  EXPECT_EQ(policy.hang_timeout_ms, 50);
  EXPECT_EQ(policy.max_failovers, 10);
  EXPECT_EQ(policy.failover_window_s, 60);
  EXPECT_EQ(policy.l1_sandbox, L1SandboxLevel::kBestEffort);
  EXPECT_EQ(policy.ToString(),
            "mode=failover standbys=1 heartbeat=10ms hang=50ms limit=10/60s "
            "l1-sandbox=best-effort");
}

TEST(RecoveryPolicy, ModeNamesRoundTrip) {
  for (RecoveryMode mode : {RecoveryMode::kFailover, RecoveryMode::kRestart, RecoveryMode::kNone}) {
    auto parsed = ParseRecoveryMode(RecoveryModeName(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  auto bad = ParseRecoveryMode("Failover");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("\"Failover\""));
}

TEST(RecoveryPolicy, SandboxLevelNamesRoundTrip) {
  for (L1SandboxLevel level :
       {L1SandboxLevel::kStrict, L1SandboxLevel::kBestEffort, L1SandboxLevel::kOff}) {
    auto parsed = ParseL1SandboxLevel(L1SandboxLevelName(level));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, level);
  }
  auto bad = ParseL1SandboxLevel("besteffort");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("expected strict, best-effort or off"));
}

// Applies `mutate` to a default policy and expects InvalidArgument containing `expected`.
void ExpectInvalid(void (*mutate)(RecoveryPolicy&), const char* expected) {
  RecoveryPolicy policy;
  mutate(policy);
  absl::Status status = policy.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << expected;
  EXPECT_THAT(status.message(), HasSubstr(expected));
}

TEST(RecoveryPolicy, RejectsEachOutOfRangeValue) {
  ExpectInvalid([](RecoveryPolicy& p) { p.standbys = 5; },
                "<rehome:recovery standbys=\"5\">: must be between 0 and 4");
  ExpectInvalid([](RecoveryPolicy& p) { p.standbys = -1; }, "standbys=\"-1\"");
  ExpectInvalid([](RecoveryPolicy& p) { p.standbys = 0; }, "needs at least 1 standby");
  ExpectInvalid([](RecoveryPolicy& p) { p.heartbeat_period_ms = 0; },
                "<rehome:heartbeat period-ms=\"0\">");
  ExpectInvalid(
      [](RecoveryPolicy& p) {
        p.heartbeat_period_ms = 10001;
        p.hang_timeout_ms = 20000;
      },
      "<rehome:heartbeat period-ms=\"10001\">");
  ExpectInvalid([](RecoveryPolicy& p) { p.hang_timeout_ms = 10; },
                "<rehome:hang timeout-ms=\"10\">: must be greater than the heartbeat");
  ExpectInvalid([](RecoveryPolicy& p) { p.hang_timeout_ms = 60001; }, "at most 60000");
  ExpectInvalid([](RecoveryPolicy& p) { p.max_failovers = 0; },
                "<rehome:limit failovers=\"0\">: must be at least 1");
  ExpectInvalid([](RecoveryPolicy& p) { p.failover_window_s = 0; },
                "<rehome:limit window-s=\"0\">: must be at least 1");
}

TEST(RecoveryPolicy, AcceptsBoundaryValues) {
  RecoveryPolicy policy;
  policy.mode = RecoveryMode::kRestart;
  policy.standbys = 0;
  policy.heartbeat_period_ms = 1;
  policy.hang_timeout_ms = 2;
  policy.max_failovers = 1;
  policy.failover_window_s = 1;
  EXPECT_TRUE(policy.Validate().ok());
  policy.mode = RecoveryMode::kNone;
  policy.standbys = 4;
  policy.heartbeat_period_ms = 10000;
  policy.hang_timeout_ms = 60000;
  EXPECT_TRUE(policy.Validate().ok());
  policy.l1_sandbox = L1SandboxLevel::kStrict;
  EXPECT_EQ(policy.ToString(),
            "mode=none standbys=4 heartbeat=10000ms hang=60000ms limit=1/1s l1-sandbox=strict");
}

}  // namespace
}  // namespace rehome
