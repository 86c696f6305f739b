// tests/virtio_test.cc: virtio-blk end to end on real KVM with the real guest: the blk workload
// (every write read back and verified by the guest, then every block re-verified on the host
// from the image) in both modes, across 100+ L1 kills in the middle of I/O (including kills
// inside the handling of an exit, before and after its commit), and hostile descriptor chains
// from the guest's virtio-bad test mode: the device needs a reset, nothing else is disturbed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"
#include "tests/subprocess.h"
#include "vmm/cli/guest_cmdline.h"
#include "vmm/cli/machine.h"
#include "vmm/device_model.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

using testing::PollUntil;

class VirtioBlkTest : public ::testing::TestWithParam<MachineMode> {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
    image_ = absl::StrCat(::testing::TempDir(), "/virtio-blk-", getpid(), ".img");
    std::ofstream(image_).close();
    ASSERT_EQ(truncate(image_.c_str(), 32 << 20), 0);
    serial_path_ = image_ + ".console";
  }
  void TearDown() override {
    unlink(image_.c_str());
    unlink(serial_path_.c_str());
  }

  std::unique_ptr<Machine> Make(const std::string& workload) {
    MachineConfig config;
    config.mode = GetParam();
    config.split.l1_binary = testing::RehomeBinary();
    config.split.policy.max_failovers = 100000;
    config.split.policy.hang_timeout_ms = 200;
    config.kernel_path = testing::GuestElf();
    config.cmdline = absl::StrCat(workload, " ", VirtioMmioCmdlineEntry(0), " cpus=1");
    config.disk_path = image_;
    config.serial_output = UniqueFd(open(serial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto machine = Machine::Create(std::move(config));
    EXPECT_TRUE(machine.ok()) << machine.status();
    if (!machine.ok()) return nullptr;
    EXPECT_TRUE((*machine)->Start().ok());
    return std::move(*machine);
  }

  std::string Console() const {
    std::ifstream in(serial_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // The host's own check of the image: every block the guest wrote is well formed.
  void ExpectImageVerifies(uint64_t seed) {
    auto r = testing::RunProcess(
        {"/usr/bin/python3",
         absl::StrCat(std::getenv("REHOME_SOURCE_DIR"), "/guest/tools/blk_image_check.py"),
         "--seed", absl::StrCat(seed), image_},
        absl::Seconds(120));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  }

  // Waits until the image's modification time has changed `n` times: the guest's writes reach
  // the disk. (With the ioeventfd data path, requests are not exits, so exit counts say nothing.)
  void AwaitDiskWrites(Machine& m, int n) {
    auto mtime = [this] {
      struct stat st {};
      if (stat(image_.c_str(), &st) != 0) return int64_t{-1};
      return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    };
    for (int i = 0; i < n; ++i) {
      const int64_t before = mtime();
      ASSERT_TRUE(PollUntil(
          [&] { return mtime() != before || m.WaitFor(absl::ZeroDuration()).has_value(); },
          absl::Seconds(60)));
      ASSERT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value())
          << "the guest stopped: " << Console();
    }
  }

  std::string image_;
  std::string serial_path_;
};

TEST_P(VirtioBlkTest, BlkWorkloadVerifies) {
  auto m = Make("workload=blk seed=5 steps=400");
  ASSERT_NE(m, nullptr);
  const MachineResult result = m->Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  EXPECT_THAT(Console(), HasSubstr("blk done steps=400"));
  ExpectImageVerifies(5);
  // Every request is one QueueNotify (the polling driver touches no other register). Monolithic:
  // each is an exit to rehome. Split: KVM signals the disk's ioeventfd and the active L1 serves
  // it, so requests cost no exits to L0 (the few left are console lines and device setup).
  uint64_t writes = 0, reads = 0, flushes = 0;
  const std::string console = Console();
  const size_t at = console.find("blk done steps=400 ");
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(std::sscanf(console.c_str() + at, "blk done steps=400 writes=%lu reads=%lu flushes=%lu",
                        &writes, &reads, &flushes),
            3)
      << console;
  const uint64_t requests = writes + reads + flushes;
  const uint64_t exits = m->Progress().exits_handled;
  if (GetParam() == MachineMode::kSplit) {
    EXPECT_LT(exits, requests / 2) << exits << " exits for " << requests << " requests";
  }
}

TEST_P(VirtioBlkTest, HostileChainsResetTheDeviceAndNothingElse) {
  auto m = Make("workload=virtio-bad seed=3");
  ASSERT_NE(m, nullptr);
  const MachineResult result = m->Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  const std::string console = Console();
  for (const char* c : {"case=loop needs_reset=1", "case=bad-addr needs_reset=1",
                        "case=len-overflow needs_reset=1", "case=avail-jump needs_reset=1"}) {
    EXPECT_THAT(console, HasSubstr(c));
  }
  if (m->supervisor() != nullptr) {
    EXPECT_EQ(m->supervisor()->failover_count(), 0u);
  }
}

TEST_P(VirtioBlkTest, BlkSurvivesL1KillsMidIo) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "failover needs split mode";
  auto m = Make("workload=blk seed=8 steps=0");  // runs until stopped, verifying as it goes
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  uint64_t kills = 0;
  const char* kinds[] = {"kill", "die-before-commit", "die-after-commit"};
  for (int i = 0; i < 105; ++i) {
    ASSERT_TRUE(
        PollUntil([&] { return !s.L1s().empty() && s.L1s().size() >= 2; }, absl::Seconds(60)));
    ASSERT_NO_FATAL_FAILURE(AwaitDiskWrites(*m, 2));
    ASSERT_TRUE(s.InjectFault("active", kinds[i % 3]).ok());
    ++kills;
    ASSERT_TRUE(PollUntil([&] { return s.failover_count() >= kills; }, absl::Seconds(60)));
    ASSERT_FALSE(m->WaitFor(absl::ZeroDuration()).has_value())
        << "the guest stopped: " << Console();
  }
  // Let it run on, then stop it: the guest verified every read; the host re-verifies the image.
  ASSERT_NO_FATAL_FAILURE(AwaitDiskWrites(*m, 20));
  EXPECT_FALSE(m->WaitFor(absl::ZeroDuration()).has_value()) << Console();
  m->Stop();
  EXPECT_THAT(Console(), ::testing::Not(HasSubstr("mismatch")));
  ExpectImageVerifies(8);
}

// An exit thread blocked in a system call between exits (the campaigns' L1 stuck in `read` on
// a corrupted fd) while the guest waits for its disk: no vCPU exit is pending and the heartbeat
// thread beats on, so only the monitor's blocked-thread watch sees it. It must fail over, and
// the guest's I/O continue on the new active L1 with nothing lost.
TEST_P(VirtioBlkTest, ExitThreadBlockedBetweenExitsIsDetectedAndReplaced) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "failover needs split mode";
  auto m = Make("workload=blk seed=9 steps=0");
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  for (uint64_t blocks = 1; blocks <= 3; ++blocks) {
    ASSERT_TRUE(PollUntil([&] { return s.L1s().size() >= 2; }, absl::Seconds(60)));
    ASSERT_NO_FATAL_FAILURE(AwaitDiskWrites(*m, 2));
    ASSERT_TRUE(s.InjectFault("active", "block").ok());
    ASSERT_TRUE(PollUntil([&] { return s.failover_count() >= blocks; }, absl::Seconds(60)))
        << "a blocked exit thread was not detected";
    const std::optional<FailoverReport> report = s.last_failover();
    ASSERT_TRUE(report.has_value());
    EXPECT_THAT(report->cause, HasSubstr("exit thread blocked"));
  }
  ASSERT_NO_FATAL_FAILURE(AwaitDiskWrites(*m, 10));
  m->Stop();
  EXPECT_THAT(Console(), ::testing::Not(HasSubstr("mismatch")));
  ExpectImageVerifies(9);
}

// The echo workload over virtio-console: the real host-side peer (guest/tools/echo_peer.py) stays
// connected to rehome's console socket while, in split mode, the active L1 is killed again and
// again; the guest checks every response byte (lost, duplicated, reordered or corrupted bytes in
// either direction fail it), the peer checks every request.
TEST_P(VirtioBlkTest, EchoOverConsoleSocketLosesNoByte) {
  const std::string sock = image_ + ".sock";
  MachineConfig config;
  config.mode = GetParam();
  config.split.l1_binary = testing::RehomeBinary();
  config.split.policy.max_failovers = 100000;
  config.split.policy.hang_timeout_ms = 200;
  config.kernel_path = testing::GuestElf();
  config.cmdline =
      absl::StrCat("workload=echo seed=4 steps=1500 ", VirtioMmioCmdline(false, true), " cpus=1");
  config.console_socket = sock;
  config.serial_output = UniqueFd(open(serial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
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
  uint64_t kills = 0;
  if (m.supervisor() != nullptr) {
    L1Supervisor& s = *m.supervisor();
    for (int i = 0; i < 30 && !m.WaitFor(absl::ZeroDuration()).has_value(); ++i) {
      if (!PollUntil([&] { return s.L1s().size() >= 2; }, absl::Seconds(60))) break;
      const uint64_t handled = m.Progress().exits_handled;
      PollUntil([&] { return m.Progress().exits_handled > handled + 10; }, absl::Seconds(10));
      if (!s.InjectFault("active", i % 2 == 0 ? "kill" : "die-after-commit").ok()) break;
      ++kills;
      PollUntil([&] { return s.failover_count() >= kills; }, absl::Seconds(60));
    }
  }
  const MachineResult result = m.Wait();
  const uint64_t failovers = m.supervisor() != nullptr ? m.supervisor()->failover_count() : 0;
  const bool split = m.supervisor() != nullptr;
  const uint64_t exits = m.Progress().exits_handled;
  machine->reset();  // closes the console socket: the peer sees EOF and exits
  peer_thread.join();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  EXPECT_THAT(Console(), HasSubstr("echo done steps=1500"));
  ASSERT_TRUE(peer.ok());
  EXPECT_THAT(peer->err, HasSubstr("answered 1500 lines, 0 malformed"));
  if (split) {
    EXPECT_GE(failovers, 10u);
    // The guest's notifications (transmit, receive-buffer re-posts) go to the active L1 on the
    // console's ioeventfd and its bytes to L0 through the transmit ring: what is left on the
    // exit path is L0 handing the peer's bytes to the L1 (about one request per line).
    EXPECT_LT(exits, 3u * 1500) << exits << " exits for 1500 echo steps";
  }
  unlink(sock.c_str());
}

INSTANTIATE_TEST_SUITE_P(Modes, VirtioBlkTest,
                         ::testing::Values(MachineMode::kMonolithic, MachineMode::kSplit),
                         [](const auto& info) {
                           return info.param == MachineMode::kSplit ? "Split" : "Monolithic";
                         });

}  // namespace
}  // namespace rehome
