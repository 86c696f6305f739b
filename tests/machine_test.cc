// tests/machine_test.cc: KVM integration tests of the monolithic Machine with the real test
// guest: boot, the counter oracle on 2 vCPUs, moving the running guest into a second VM over the
// same memfds (repeatedly, mid-run), pause/resume storms, and an oracle that must fail.
#include "vmm/cli/machine.h"

#include <sys/mman.h>
#include <unistd.h>

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "vmm/cli/guest_cmdline.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

// Every test runs in both modes: monolithic, and split (devices in an L1 process).
class MachineTest : public ::testing::TestWithParam<MachineMode> {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
    ASSERT_EQ(access(testing::GuestElf().c_str(), R_OK), 0)
        << "guest image missing: " << testing::GuestElf();
    serial_.Reset(memfd_create("serial", MFD_CLOEXEC));
    ASSERT_TRUE(serial_.valid());
  }

  // A machine running `cmdline` (cpus=N appended) whose oracle follows the command line unless
  // `oracle_seed` overrides the seed the host expects.
  std::unique_ptr<Machine> Make(int cpus, const std::string& cmdline,
                                std::optional<uint64_t> oracle_seed = std::nullopt) {
    MachineConfig config;
    config.kernel_path = testing::GuestElf();
    config.cpus = cpus;
    config.cmdline = *WithCpusKey(cmdline, cpus);
    auto workload = ParseGuestWorkload(config.cmdline);
    EXPECT_TRUE(workload.ok());
    config.oracle = OracleConfigFor(*workload, cpus);
    if (oracle_seed.has_value() && config.oracle.has_value()) config.oracle->seed = *oracle_seed;
    config.serial_output = UniqueFd(dup(serial_.get()));
    config.mode = GetParam();
    config.split.l1_binary = testing::RehomeBinary();
    auto machine = Machine::Create(std::move(config));
    EXPECT_TRUE(machine.ok()) << machine.status();
    return machine.ok() ? std::move(*machine) : nullptr;
  }

  std::string SerialOutput() const {
    std::string text;
    char buffer[4096];
    for (off_t offset = 0;;) {
      const ssize_t n = pread(serial_.get(), buffer, sizeof(buffer), offset);
      if (n <= 0) break;
      text.append(buffer, static_cast<size_t>(n));
      offset += n;
    }
    return text;
  }

  // Polls `condition` until it holds or `timeout` passes.
  static bool PollUntil(const std::function<bool()>& condition, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (condition()) return true;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return condition();
  }

  UniqueFd serial_;
};

TEST_P(MachineTest, BootsIdleGuestAndExitsWithItsStatus) {
  auto machine = Make(1, "workload=idle");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  const MachineResult result = machine->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_THAT(SerialOutput(), HasSubstr("rehome-guest:"));
}

TEST_P(MachineTest, BadGuestCommandLineIsReportedByTheGuest) {
  auto machine = Make(1, "workload=nonsense");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  const MachineResult result = machine->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 3);  // abi::kExitBadCommandLine
}

TEST_P(MachineTest, OutOfRangeIoDepthIsReportedByTheGuest) {
  for (const char* depth : {"io_depth=0", "io_depth=17", "io_depth=x"}) {
    auto machine = Make(1, std::string("workload=oltp ") + depth);
    ASSERT_NE(machine, nullptr);
    ASSERT_TRUE(machine->Start().ok());
    const MachineResult result = machine->Wait();
    EXPECT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
    EXPECT_EQ(result.exit_status, 3) << depth;  // abi::kExitBadCommandLine
    EXPECT_THAT(SerialOutput(), HasSubstr(std::string("malformed value in '") + depth + "'"));
  }
  EXPECT_THAT(SerialOutput(), HasSubstr("(io_depth must be 1..16)"));
}

TEST_P(MachineTest, CounterOnTwoVcpusVerifiesEveryReport) {
  auto machine = Make(2, "workload=counter seed=5 steps=3000000 report_every=200000");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  const MachineResult result = machine->Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << SerialOutput();
  const WorkloadProgress progress = machine->Progress();
  EXPECT_EQ(progress.violations, 0u);
  EXPECT_EQ(progress.verified_reports, 2u * 15u);  // 15 reports per vCPU, the last one final
}

TEST_P(MachineTest, OracleRejectsAChainItDidNotExpect) {
  // The host expects seed 6 while the guest runs seed 5: the first report must be refused.
  auto machine = Make(2, "workload=counter seed=5 steps=100000 report_every=10000", 6);
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  const MachineResult result = machine->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kOracleViolation) << result.reason;
  EXPECT_EQ(machine->Progress().verified_reports, 0u);
}

TEST_P(MachineTest, RunningGuestMovesIntoNewVmsMidRunWithOracleIntact) {
  auto machine = Make(2, "workload=counter seed=9 steps=0 report_every=200000");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  auto verified = [&] { return machine->Progress().verified_reports; };
  for (int move = 0; move < 5; ++move) {
    // Both vCPUs report every 200000 steps: several new reports mean both made progress.
    const uint64_t before = verified();
    ASSERT_TRUE(PollUntil([&] { return verified() >= before + 4; }, absl::Seconds(60)))
        << "no progress in VM #" << machine->generation();
    auto report = machine->Rehome();
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->generation, move + 2);
    EXPECT_GT(report->state_bytes, 0u);
    ASSERT_EQ(machine->Progress().violations, 0u);
  }
  const uint64_t before = verified();
  ASSERT_TRUE(PollUntil([&] { return verified() >= before + 4; }, absl::Seconds(60)));
  EXPECT_FALSE(machine->WaitFor(absl::ZeroDuration()).has_value()) << "the guest stopped";
  EXPECT_EQ(machine->Progress().violations, 0u);
  machine->Stop();
}

TEST_P(MachineTest, RehomeThenRunToCompletion) {
  auto machine = Make(2, "workload=counter seed=3 steps=40000000 report_every=200000");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  ASSERT_TRUE(
      PollUntil([&] { return machine->Progress().verified_reports >= 4; }, absl::Seconds(60)));
  auto report = machine->Rehome();
  if (!report.ok()) {
    // The guest may have finished first on a fast host; then there was nothing to move.
    ASSERT_TRUE(absl::IsFailedPrecondition(report.status())) << report.status();
  }
  const MachineResult result = machine->Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(machine->Progress().verified_reports, 2u * 200u);
  EXPECT_THAT(SerialOutput(), HasSubstr("counter done"));
}

TEST_P(MachineTest, PauseResumeStormLosesNothing) {
  auto machine = Make(2, "workload=counter seed=11 steps=0 report_every=200000");
  ASSERT_NE(machine, nullptr);
  ASSERT_TRUE(machine->Start().ok());
  auto verified = [&] { return machine->Progress().verified_reports; };
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(machine->Pause(absl::Seconds(5)).ok()) << "pause " << i;
    ASSERT_TRUE(machine->Resume().ok()) << "resume " << i;
  }
  const uint64_t after_storm = verified();
  ASSERT_TRUE(PollUntil([&] { return verified() > after_storm + 2; }, absl::Seconds(60)));
  EXPECT_EQ(machine->Progress().violations, 0u);
  machine->Stop();
}

INSTANTIATE_TEST_SUITE_P(Modes, MachineTest,
                         ::testing::Values(MachineMode::kMonolithic, MachineMode::kSplit),
                         [](const auto& info) {
                           return info.param == MachineMode::kSplit ? "Split" : "Monolithic";
                         });

}  // namespace
}  // namespace rehome
