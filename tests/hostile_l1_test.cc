// tests/hostile_l1_test.cc: L0 treats everything an L1 writes as hostile. A real L1 under a
// running guest writes adversarial values into each shared structure L0 reads (test-only faults,
// vmm/l1/l1_fault_probes.h): answers that are malformed but carry a valid checksum, every header
// field (its failure note among them: not text at all), the journal's header and buffers,
// invalid posted-write ranges, and the console transmit ring's positions. L0 survives each one,
// fails over from that L1 where it must, and the guest's effects stay exactly once: every
// counter report verified, every posted write counted once, every console byte delivered once.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/split_machine_test.h"
#include "vmm/device_model.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using HostileL1Test = testing::SplitMachineTest;
using testing::PollUntil;

constexpr char kCounter[] = "workload=counter seed=51 steps=0 report_every=100000";

bool Printable(const std::string& text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

TEST_F(HostileL1Test, MalformedAnswersWithValidChecksumsAreRefused) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  uint64_t failovers = 0;
  for (const char* kind : {"scribble-answer-lengths", "scribble-answer-data", "scribble-answer-seq",
                           "scribble-answer-action"}) {
    SCOPED_TRACE(kind);
    ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
    const uint64_t from_journal = s.exits_answered_from_journal();
    ASSERT_TRUE(s.InjectFault("active", kind).ok());
    ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, ++failovers));
    EXPECT_THAT(s.last_failover()->cause, StartsWith("bad answer: "));
    // The L1 had committed that exit before it lied about it: the answer comes from the journal
    // (counted by the vCPU thread once the failover is complete, so not at once).
    EXPECT_TRUE(PollUntil([&] { return s.exits_answered_from_journal() > from_journal; },
                          absl::Seconds(60)))
        << "cause: " << s.last_failover()->cause << "; retried " << s.exits_retried();
    ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  }
}

TEST_F(HostileL1Test, HostileHeaderFieldsAreReadSafely) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  ASSERT_TRUE(s.InjectFault("active", "scribble-header").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  // A failure note of 2^32 - 1 bytes of escape sequences and invalid UTF-8 becomes one bounded,
  // printable line (it goes to logs and JSON events).
  const std::string cause = s.last_failover()->cause;
  EXPECT_THAT(cause, StartsWith("self-reported failure: "));
  EXPECT_TRUE(Printable(cause)) << cause;
  EXPECT_LE(cause.size(), 300u);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  // A standby doing the same is just replaced.
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  const pid_t standby = PidOf(*m, "standby");
  ASSERT_TRUE(s.InjectFault("standby", "scribble-header").ok());
  ASSERT_TRUE(PollUntil([&] { return PidOf(*m, "standby") != standby; }, absl::Seconds(60)));
  EXPECT_EQ(s.failover_count(), 1u);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
}

// An L1 marks its own death notice (the robust futex the kernel marks as its exit thread dies)
// and lives on: L0 fences it as a crash at once (SIGKILL), and the guest runs on the standby with
// every report exactly once.
TEST_F(HostileL1Test, AForgedDeathNoticeIsFencedAsACrash) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  const pid_t active = PidOf(*m, "active");
  ASSERT_TRUE(s.InjectFault("active", "scribble-death-notice").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  EXPECT_THAT(s.last_failover()->cause, StartsWith(absl::StrCat("crash: L1 pid ", active, " ")));
  EXPECT_NE(PidOf(*m, "active"), active);
  // Fenced, not left running: the pid is gone (reaped) or a zombie awaiting the monitor.
  EXPECT_TRUE(PollUntil(
      [&] {
        char state = 0;
        FILE* f = fopen(absl::StrCat("/proc/", active, "/stat").c_str(), "r");
        if (f == nullptr) return true;
        const int n = fscanf(f, "%*d %*s %c", &state);
        fclose(f);
        return n == 1 && state == 'Z';
      },
      absl::Seconds(60)));
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
}

// The active L1 points the journal at a buffer that does not exist, gives lengths past the
// capacity, a wrong checksum, and a well-checksummed payload that is no commit record, while a
// thread of L0 reads the journal without pause (LatestCommit, Progress). It puts the journal back
// before it exits (losing the journal is beyond L0's reach: docs/security.md).
TEST_F(HostileL1Test, HostileJournalValuesNeverCrashOrMisleadL0) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, regressions{0}, violations{0};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!stop.load()) {
      (void)s.LatestCommit();
      const WorkloadProgress p = m->Progress();
      if (p.verified_reports < last) ++regressions;
      if (p.violations != 0) ++violations;
      last = p.verified_reports;
      ++reads;
    }
  });
  for (uint64_t i = 1; i <= 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
    ASSERT_TRUE(s.InjectFault("active", "scribble-journal").ok());
    ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, i));
    ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  }
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 100u);
  EXPECT_EQ(regressions.load(), 0u);
  EXPECT_EQ(violations.load(), 0u);
}

// A standby publishes posted-write ranges that overflow; once it is promoted L0 posts nothing,
// and the pio workload's writes are still counted exactly once.
TEST_F(HostileL1Test, InvalidPostedRangesAreNeverUsed) {
  constexpr uint64_t kWrites = 40000;
  auto m = Make(absl::StrCat("workload=pio steps=", kWrites), Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  ASSERT_TRUE(PollUntil([&] { return s.exits_posted() > 100; }, absl::Seconds(60)));
  // The standby takes the fault before the promotion (it reads fault requests first).
  ASSERT_TRUE(s.InjectFault("standby", "scribble-posted-ranges").ok());
  ASSERT_TRUE(s.InjectFault("active", "kill").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  const uint64_t posted = s.exits_posted();
  const uint64_t writes = m->Progress().pio_bench_writes;
  ASSERT_TRUE(
      PollUntil([&] { return m->Progress().pio_bench_writes > writes + 1000 || Stopped(*m); },
                absl::Seconds(60)));
  EXPECT_EQ(s.exits_posted(), posted);
  const MachineResult result = m->Wait();
  EXPECT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(m->Progress().pio_bench_writes, kWrites);
}

// The active L1 publishes console positions that are impossible, behind what L0 took, and leaves
// `consumed` far ahead (which would make the next L1 skip its bytes) when it exits. The echo
// workload checks every byte both ways; the peer checks every request.
TEST_F(HostileL1Test, HostileConsoleRingPositionsLoseNoByte) {
  const std::string sock = absl::StrCat(::testing::TempDir(), "/hostile-console-", getpid());
  MachineConfig config;
  config.mode = MachineMode::kSplit;
  config.split.l1_binary = testing::RehomeBinary();
  config.split.policy = Generous();
  config.kernel_path = testing::GuestElf();
  config.cmdline =
      absl::StrCat("workload=echo seed=5 steps=600 ", VirtioMmioCmdline(false, true), " cpus=1");
  config.console_socket = sock;
  config.serial_output = UniqueFd(dup(serial_.get()));
  auto machine = Machine::Create(std::move(config));
  ASSERT_TRUE(machine.ok()) << machine.status();
  Machine& m = **machine;
  ASSERT_TRUE(m.Start().ok());
  absl::StatusOr<testing::ProcessResult> peer;
  std::thread peer_thread([&] {
    peer = testing::RunProcess(
        {"/usr/bin/python3",
         absl::StrCat(std::getenv("REHOME_SOURCE_DIR"), "/guest/tools/echo_peer.py"), sock},
        absl::Seconds(300));
  });
  L1Supervisor& s = *m.supervisor();
  uint64_t scribbles = 0;
  for (int i = 0; i < 5 && !m.WaitFor(absl::ZeroDuration()).has_value(); ++i) {
    if (!PollUntil([&] { return s.L1s().size() >= 2; }, absl::Seconds(60))) break;
    const uint64_t handled = m.Progress().exits_handled;
    PollUntil([&] { return m.Progress().exits_handled > handled + 10; }, absl::Seconds(10));
    if (!s.InjectFault("active", "scribble-console-ring").ok()) break;
    ++scribbles;
    PollUntil([&] { return s.failover_count() >= scribbles; }, absl::Seconds(60));
  }
  const MachineResult result = m.Wait();
  machine->reset();  // closes the console socket: the peer sees EOF and exits
  peer_thread.join();
  EXPECT_GE(scribbles, 3u);
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  ASSERT_TRUE(peer.ok());
  EXPECT_THAT(peer->err, HasSubstr("answered 600 lines, 0 malformed"));
  unlink(sock.c_str());
}

}  // namespace
}  // namespace rehome
