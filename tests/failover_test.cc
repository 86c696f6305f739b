// tests/failover_test.cc: split mode on real KVM with real L1 processes: the counter oracle on
// 2 vCPUs stays intact while the active L1 is killed (SIGKILL at random moments and inside the
// handling of an exit, before and after its commit), hung (SIGSTOP), asserts, or answers
// garbage; 200 consecutive failovers; the standby alone and both L1s killed; planned
// switchover (also to a "new" binary) under load; the failover limit; guest failures that are
// not L1 failures; posted writes through failovers, counted exactly once. More than 100 kills
// in all.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"
#include "tests/split_machine_test.h"
#include "tests/subprocess.h"
#include "vmm/cli/guest_cmdline.h"
#include "vmm/cli/machine.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using testing::PollUntil;

using FailoverTest = testing::SplitMachineTest;

// 60 SIGKILLs at random moments plus 20 kills inside the handling of an exit (10 before the
// commit, 10 after it): zero oracle violations and the guest never restarts (one boot banner).
// A sanitizer build does a quarter of each.
TEST_F(FailoverTest, KillsAtRandomMomentsAndMidExitLoseNothing) {
  const int kRandomKills = testing::kSanitizerBuild ? 15 : 60;
  const int kKills = kRandomKills * 4 / 3;
  auto m = Make("workload=counter seed=21 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  std::mt19937 rng(1234);
  uint64_t kills = 0;
  for (int i = 0; i < kKills; ++i) {
    WaitForStandby(*m);
    const bool random_moment = i < kRandomKills;
    const char* kind =
        random_moment ? "kill" : (i % 2 == 0 ? "die-before-commit" : "die-after-commit");
    if (random_moment) absl::SleepFor(absl::Microseconds(rng() % 3000));
    ASSERT_TRUE(m->supervisor()->InjectFault("active", kind).ok());
    ++kills;
    WaitForFailovers(*m, kills);
    ExpectProgress(*m, 2);
  }
  ExpectProgress(*m);
  EXPECT_FALSE(m->WaitFor(absl::ZeroDuration()).has_value()) << "the guest stopped";
  EXPECT_EQ(m->supervisor()->failover_count(), kills);
  m->Stop();
  std::string serial(4096, '\0');
  serial.resize(std::max<ssize_t>(0, pread(serial_.get(), serial.data(), serial.size(), 0)));
  size_t banners = 0;
  for (size_t pos = 0; (pos = serial.find("workload=counter", pos)) != std::string::npos; ++pos) {
    ++banners;
  }
  EXPECT_EQ(banners, 1u) << serial;
}

// (50 in a sanitizer build.)
TEST_F(FailoverTest, TwoHundredConsecutiveFailoversInOneGuestLifetime) {
  const uint64_t kFailovers = testing::kSanitizerBuild ? 50 : 200;
  auto m = Make("workload=counter seed=22 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  for (uint64_t i = 1; i <= kFailovers; ++i) {
    WaitForStandby(*m);
    ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
    WaitForFailovers(*m, i);
    if (i % 20 == 0) ExpectProgress(*m, 2);
  }
  ExpectProgress(*m);
  const std::optional<FailoverReport> last = m->supervisor()->last_failover();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->number, kFailovers);
  EXPECT_THAT(last->cause, StartsWith("crash"));
  m->Stop();
}

TEST_F(FailoverTest, HungL1IsFencedAndChangesNothingWhenContinued) {
  RecoveryPolicy policy = Generous();
  policy.hang_timeout_ms = 100;
  auto m = Make("workload=counter seed=23 steps=0 report_every=100000", policy);
  ASSERT_NE(m, nullptr);
  WaitForStandby(*m);
  ExpectProgress(*m);
  const pid_t hung = PidOf(*m, "active");
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "hang").ok());  // SIGSTOP
  WaitForFailovers(*m, 1);
  EXPECT_THAT(m->supervisor()->last_failover()->cause, StartsWith("hang"));
  // The stopped L1 was killed before the standby took over (its exit thread dead), and the
  // monitor reaps it once the kernel has torn it down: continuing it cannot make it write
  // anything, because it no longer exists.
  EXPECT_TRUE(
      PollUntil([&] { return kill(hung, SIGCONT) == -1 && errno == ESRCH; }, absl::Seconds(60)));
  ExpectProgress(*m, 8);
  m->Stop();
}

TEST_F(FailoverTest, GarbageAnswerIsNeverTrusted) {
  auto m = Make("workload=counter seed=24 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  WaitForStandby(*m);
  ExpectProgress(*m);
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "garbage").ok());
  WaitForFailovers(*m, 1);
  EXPECT_THAT(m->supervisor()->last_failover()->cause, StartsWith("bad answer"));
  ExpectProgress(*m, 8);
  m->Stop();
}

TEST_F(FailoverTest, SelfReportedAssertionFailsOver) {
  auto m = Make("workload=counter seed=25 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  WaitForStandby(*m);
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "assert").ok());
  WaitForFailovers(*m, 1);
  EXPECT_THAT(m->supervisor()->last_failover()->cause, HasSubstr("assertion failed"));
  ExpectProgress(*m, 8);
  m->Stop();
}

TEST_F(FailoverTest, StandbyKilledAloneIsReplacedWithoutTouchingTheGuest) {
  auto m = Make("workload=counter seed=26 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  WaitForStandby(*m);
  const pid_t active = PidOf(*m, "active");
  for (int i = 0; i < 5; ++i) {
    const pid_t standby = PidOf(*m, "standby");
    ASSERT_TRUE(m->supervisor()->InjectFault("standby", "kill").ok());
    ASSERT_TRUE(PollUntil(
        [&] {
          const pid_t now = PidOf(*m, "standby");
          return now > 0 && now != standby;
        },
        absl::Seconds(60)));
  }
  EXPECT_EQ(PidOf(*m, "active"), active);
  EXPECT_EQ(m->supervisor()->failover_count(), 0u);
  ExpectProgress(*m);
  m->Stop();
}

TEST_F(FailoverTest, BothKilledPausesTheGuestUntilANewL1IsReady) {
  auto m = Make("workload=counter seed=27 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  for (uint64_t i = 1; i <= 5; ++i) {
    WaitForStandby(*m);
    ExpectProgress(*m);
    ASSERT_TRUE(m->supervisor()->InjectFault("standby", "kill").ok());
    ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
    WaitForFailovers(*m, i);
  }
  ExpectProgress(*m, 8);
  m->Stop();
}

TEST_F(FailoverTest, PlannedSwitchoverUnderLoadIncludingANewBinary) {
  auto m = Make("workload=counter seed=28 steps=0 report_every=100000", Generous());
  ASSERT_NE(m, nullptr);
  for (int i = 0; i < 10; ++i) {
    WaitForStandby(*m);
    const pid_t before = PidOf(*m, "active");
    // Every other switchover "upgrades" to a binary at another path (a copy of rehome).
    std::optional<std::string> binary;
    if (i % 2 == 1) {
      const std::string copy = absl::StrCat(::testing::TempDir(), "/rehome-upgraded-", i);
      std::filesystem::copy_file(testing::RehomeBinary(), copy,
                                 std::filesystem::copy_options::overwrite_existing);
      binary = copy;
    }
    auto report = m->supervisor()->Switchover(binary);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->failed_pid, before);
    EXPECT_NE(PidOf(*m, "active"), before);
    ExpectProgress(*m, 2);
  }
  EXPECT_EQ(m->supervisor()->exits_retried(), 0u);  // planned: nothing was interrupted
  m->Stop();
}

// Design diversity: the first L1 runs one binary, every later one (standbys, and so the L1s that
// take over) another (here a copy of rehome at another path, as a different build would be).
TEST_F(FailoverTest, StandbysRunTheirOwnBinaryAndTakeOverWithIt) {
  const std::string other = absl::StrCat(::testing::TempDir(), "/rehome-standby-build");
  std::filesystem::copy_file(testing::RehomeBinary(), other,
                             std::filesystem::copy_options::overwrite_existing);
  MachineConfig config;
  config.split.standby_l1_binary = other;
  auto m = Make("workload=counter seed=29 steps=0 report_every=100000", Generous(), &config);
  ASSERT_NE(m, nullptr);
  auto exe = [](pid_t pid) {
    return std::filesystem::read_symlink(absl::StrCat("/proc/", pid, "/exe")).string();
  };
  WaitForStandby(*m);
  EXPECT_EQ(exe(PidOf(*m, "active")), std::filesystem::canonical(testing::RehomeBinary()));
  EXPECT_EQ(exe(PidOf(*m, "standby")), std::filesystem::canonical(other));
  for (int i = 1; i <= 3; ++i) {
    WaitForStandby(*m);
    ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
    WaitForFailovers(*m, i);
    EXPECT_EQ(exe(PidOf(*m, "active")), std::filesystem::canonical(other));
    ExpectProgress(*m, 2);
  }
  EXPECT_EQ(m->Progress().violations, 0u);
  m->Stop();
}

TEST_F(FailoverTest, FailoverLimitStopsTheGuestCleanly) {
  RecoveryPolicy policy;
  policy.max_failovers = 2;
  policy.failover_window_s = 3600;
  auto m = Make("workload=counter seed=29 steps=0 report_every=100000", policy);
  ASSERT_NE(m, nullptr);
  for (uint64_t i = 1; i <= 2; ++i) {
    WaitForStandby(*m);
    ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
    WaitForFailovers(*m, i);
  }
  WaitForStandby(*m);
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
  const MachineResult result = m->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kFatal);
  EXPECT_THAT(result.reason, HasSubstr("failover limit"));
  EXPECT_TRUE(m->supervisor()->limit_reached());
  EXPECT_EQ(m->Progress().violations, 0u);
  bool failed_event = false;
  for (const SupervisorEvent& e : Events()) {
    failed_event |= e.kind == SupervisorEvent::Kind::kFailoverFailed;
  }
  EXPECT_TRUE(failed_event);
}

TEST_F(FailoverTest, GuestFailureIsNotAnL1Failure) {
  auto m = Make("workload=fault");
  ASSERT_NE(m, nullptr);
  const MachineResult result = m->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 2);  // the guest's exception report, through the L1's device
  EXPECT_EQ(m->supervisor()->failover_count(), 0u);
}

// The pio workload's port writes are posted (the vCPU runs on while the L1 handles each one).
// Kills at random moments, kills inside the handling of a posted write (before and after its
// commit), a hang and a garbage answer: every write is counted exactly once, none lost (a
// pending posted write is re-posted on the new active) and none repeated (one the failed L1
// committed is answered from the journal, not executed again).
TEST_F(FailoverTest, PostedWritesSurviveFailoversExactlyOnce) {
  constexpr uint64_t kWrites = 400000;
  RecoveryPolicy policy = Generous();
  policy.hang_timeout_ms = 100;
  auto m = Make(absl::StrCat("workload=pio steps=", kWrites), policy);
  ASSERT_NE(m, nullptr);
  const char* kFaults[] = {"kill", "die-before-commit", "kill", "die-after-commit", "kill"};
  std::mt19937 rng(4321);
  uint64_t injected = 0;
  for (int i = 0; i < 32 && !Stopped(*m); ++i) {
    WaitForStandby(*m);
    if (Stopped(*m)) break;
    absl::SleepFor(absl::Microseconds(rng() % 3000));  // a random moment
    const char* fault = i == 10 ? "hang" : i == 20 ? "garbage" : kFaults[i % 5];
    if (!m->supervisor()->InjectFault("active", fault).ok()) break;
    ++injected;
    // Faults that act on the next exit need one: the guest may finish first.
    ASSERT_TRUE(
        PollUntil([&] { return m->supervisor()->failover_count() >= injected || Stopped(*m); },
                  absl::Seconds(60)));
  }
  const MachineResult result = m->Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(m->Progress().pio_bench_writes, kWrites);
  EXPECT_GE(m->supervisor()->failover_count(), 20u) << "the guest finished too early";
  EXPECT_GE(m->supervisor()->exits_posted(), kWrites);
  EXPECT_GT(m->supervisor()->exits_retried(), 0u);  // pending posted writes were re-posted
}

// A posted write's answer is collected at the vCPU's next exit. When that answer ends the VM
// (here a check failure injected into the L1's next answer, a well-formed answer, not an L1
// failure), the VM stops with it then, and the exit that collected it is not forwarded.
TEST_F(FailoverTest, PostedWriteAnswerThatEndsTheVmStopsItAtTheNextExit) {
  auto m = Make("workload=pio steps=0");  // writes forever
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(PollUntil([&] { return m->supervisor()->exits_posted() > 1000 || Stopped(*m); },
                        absl::Seconds(60)));
  ASSERT_FALSE(Stopped(*m)) << StopReason(*m);
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "fail-answer").ok());
  const std::optional<MachineResult> result = m->WaitFor(absl::Seconds(60));
  ASSERT_TRUE(result.has_value()) << "the VM did not stop";
  EXPECT_EQ(result->kind, MachineResult::Kind::kOracleViolation) << result->reason;
  EXPECT_THAT(result->reason, HasSubstr("injected check failure (posted write)"));
  EXPECT_EQ(m->supervisor()->failover_count(), 0u);
}

TEST_F(FailoverTest, CliShowsFailoversWithEveryReportVerified) {
  auto r = testing::RunProcess(
      {testing::RehomeBinary(), "run", "--kernel", testing::GuestElf(), "--cpus", "2", "--cmdline",
       "workload=counter steps=60000000 report_every=2000000", "--kill-active-every-ms",
       testing::kThreadSanitizer ? "200" : "50", "--max-failovers", "1000", "--hang-timeout-ms",
       "200"},
      absl::Seconds(120));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->err, HasSubstr("failover #1 "));
  EXPECT_THAT(r->err, HasSubstr("60 reports verified, no violations"));
}

}  // namespace
}  // namespace rehome
