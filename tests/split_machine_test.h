// tests/split_machine_test.h: a GoogleTest fixture for split-mode tests on real KVM with real L1
// processes: a 2-vCPU Machine running the test guest with the counter oracle, the supervisor's
// events collected, and helpers that wait (with deadlines, failing at once when the guest stops)
// for progress, failovers and standbys. Used by failover_test.cc, sandbox_test.cc and
// hostile_l1_test.cc. Thread-safety: the events are guarded; the rest is the test thread's.
#ifndef REHOME_TESTS_SPLIT_MACHINE_TEST_H_
#define REHOME_TESTS_SPLIT_MACHINE_TEST_H_

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"
#include "tests/subprocess.h"
#include "vmm/cli/guest_cmdline.h"
#include "vmm/cli/machine.h"

namespace rehome::testing {

class SplitMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
    ASSERT_EQ(access(GuestElf().c_str(), R_OK), 0);
    ASSERT_EQ(access(RehomeBinary().c_str(), X_OK), 0);
    serial_.Reset(memfd_create("serial", MFD_CLOEXEC));
  }

  // `base` may preset fields (e.g. the standby binary); the rest is filled in here.
  std::unique_ptr<Machine> Make(const std::string& cmdline, RecoveryPolicy policy = {},
                                MachineConfig* base = nullptr) {
    MachineConfig config;
    if (base != nullptr) config = std::move(*base);
    config.mode = MachineMode::kSplit;
    config.split.l1_binary = RehomeBinary();
    config.split.policy = policy;
    config.split.on_event = [this](const SupervisorEvent& e) {
      absl::MutexLock lock(&events_mu_);
      events_.push_back(e);
    };
    config.kernel_path = GuestElf();
    config.cpus = 2;
    config.cmdline = *WithCpusKey(cmdline, 2);
    config.oracle = OracleConfigFor(*ParseGuestWorkload(config.cmdline), 2);
    config.serial_output = UniqueFd(dup(serial_.get()));
    auto machine = Machine::Create(std::move(config));
    EXPECT_TRUE(machine.ok()) << machine.status();
    if (!machine.ok()) return nullptr;
    EXPECT_TRUE((*machine)->Start().ok());
    return std::move(*machine);
  }

  static RecoveryPolicy Generous() {
    RecoveryPolicy policy;
    policy.max_failovers = 100000;
    policy.hang_timeout_ms = 200;  // generous on a loaded 2-core CI machine
    return policy;
  }

  static pid_t PidOf(const Machine& m, const std::string& role) {
    for (const L1Info& l1 : m.supervisor()->L1s()) {
      if (l1.role == role) return l1.pid;
    }
    return -1;
  }

  // The helpers below fail at once (instead of waiting out their deadline) once the guest has
  // stopped or an earlier assertion failed, so a broken guest fails the test in seconds.
  static bool Stopped(Machine& m) {
    return ::testing::Test::HasFatalFailure() || m.WaitFor(absl::ZeroDuration()).has_value();
  }

  static std::string StopReason(Machine& m) {
    std::optional<MachineResult> result = m.WaitFor(absl::ZeroDuration());
    return result.has_value() ? absl::StrCat("; guest stopped: ", result->reason) : "";
  }

  // Waits for `n` more verified reports (both vCPUs report; n >= 4 means both progressed).
  static void ExpectProgress(Machine& m, uint64_t n = 4) {
    const uint64_t before = m.Progress().verified_reports;
    bool progressed = false;
    ASSERT_TRUE(PollUntil(
                    [&] {
                      progressed = m.Progress().verified_reports >= before + n;
                      return progressed || Stopped(m);
                    },
                    absl::Seconds(60)) &&
                progressed)
        << "guest made no progress; failovers=" << m.supervisor()->failover_count()
        << StopReason(m);
    ASSERT_EQ(m.Progress().violations, 0u);
  }

  static void WaitForFailovers(Machine& m, uint64_t count) {
    bool reached = false;
    ASSERT_TRUE(PollUntil(
                    [&] {
                      reached = m.supervisor()->failover_count() >= count;
                      return reached || Stopped(m);
                    },
                    absl::Seconds(60)) &&
                reached)
        << "failovers: " << m.supervisor()->failover_count() << " of " << count << StopReason(m);
  }

  static void WaitForStandby(Machine& m) {
    bool ready = false;
    ASSERT_TRUE(PollUntil(
                    [&] {
                      ready = PidOf(m, "standby") > 0;
                      return ready || Stopped(m);
                    },
                    absl::Seconds(60)) &&
                ready)
        << "no standby" << StopReason(m);
  }

  std::vector<SupervisorEvent> Events() {
    absl::MutexLock lock(&events_mu_);
    return events_;
  }

  UniqueFd serial_;
  absl::Mutex events_mu_;
  std::vector<SupervisorEvent> events_ ABSL_GUARDED_BY(events_mu_);
};

}  // namespace rehome::testing

#endif  // REHOME_TESTS_SPLIT_MACHINE_TEST_H_
