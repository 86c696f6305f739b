// tests/verified_test.cc: verified execution on real KVM with real replica L1 processes. Faults
// that make one replica compute a wrong but well-formed result (a wrong committed device state,
// wrong read data) are detected in dual mode and outvoted in triple mode, with the counter oracle
// clean, while the same fault corrupts an unverified guest; nothing unverified reaches the disk
// image or the console client (checked from outside); kills, hangs and garbage answers are
// failures of the replica, never of L0; a long fault-free run has no divergence.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"
#include "tests/subprocess.h"
#include "vmm/cli/guest_cmdline.h"
#include "vmm/cli/machine.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using testing::PollUntil;

class VerifiedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
    serial_.Reset(memfd_create("serial", MFD_CLOEXEC));
  }

  // A split-mode machine with verification `mode`; `disk` / `console` optional.
  std::unique_ptr<Machine> Make(VerifyMode mode, const std::string& cmdline, int cpus = 2,
                                const std::string& disk = "", const std::string& console = "") {
    MachineConfig config;
    config.mode = MachineMode::kSplit;
    config.split.l1_binary = testing::RehomeBinary();
    config.split.policy.verify = mode;
    config.split.policy.max_failovers = 100000;
    config.split.policy.hang_timeout_ms = hang_timeout_ms_;
    config.split.standby_l1_binary = standby_binary_;
    config.kernel_path = testing::GuestElf();
    config.cpus = cpus;
    config.disk_path = disk;
    config.console_socket = console;
    std::string line = cmdline;
    if (!disk.empty() || !console.empty()) {
      line = absl::StrCat(line, " ", VirtioMmioCmdline(!disk.empty(), !console.empty()));
    }
    config.cmdline = *WithCpusKey(line, cpus);
    config.oracle = OracleConfigFor(*ParseGuestWorkload(config.cmdline), cpus);
    config.serial_output = UniqueFd(dup(serial_.get()));
    config.exit_stats = exit_stats_;
    auto machine = Machine::Create(std::move(config));
    EXPECT_TRUE(machine.ok()) << machine.status();
    if (!machine.ok()) return nullptr;
    EXPECT_TRUE((*machine)->Start().ok());
    return std::move(*machine);
  }

  std::string standby_binary_;  // every replica but the first runs it (design diversity)
  int hang_timeout_ms_ = 200;   // generous on a loaded 2-core CI machine
  bool exit_stats_ = false;     // count the vCPU exits (Machine::exit_stats)

  std::string Console() {
    std::string out(1 << 20, '\0');
    const ssize_t n = pread(serial_.get(), out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  // Injects `kind` into replica 0 after `after` exits, then runs the guest to its end.
  MachineResult InjectAndFinish(Machine& m, const std::string& kind, uint32_t after) {
    EXPECT_TRUE(m.supervisor()->InjectFault("active", kind, after).ok());
    return m.Wait();
  }

  // Runs `m` (an echo workload on console socket `sock`) to its end with the real console peer
  // (guest/tools/echo_peer.py) on the other side; returns the peer's JSON summary.
  std::string RunEchoWithPeer(std::unique_ptr<Machine>& m, const std::string& sock,
                              MachineResult* result, VerificationStatus* verification) {
    const std::string summary = sock + ".json";
    const char* source_dir = std::getenv("REHOME_SOURCE_DIR");
    const std::string source = source_dir != nullptr ? source_dir : ".";
    absl::StatusOr<testing::ProcessResult> peer;
    std::thread peer_thread([&] {
      peer = testing::RunProcess({"/usr/bin/env", "python3", source + "/guest/tools/echo_peer.py",
                                  sock, "--summary", summary},
                                 absl::Seconds(120));
    });
    *result = m->Wait();
    *verification = m->supervisor()->verification();
    m.reset();  // closes the console socket: the peer sees EOF, writes its summary and exits
    peer_thread.join();
    EXPECT_TRUE(peer.ok()) << peer.status();
    std::ifstream in(summary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  UniqueFd serial_;
};

constexpr char kCounter[] = "workload=counter seed=41 steps=6000000 report_every=100000";

// Healthy replicas never diverge, on every device: per mode, counter with 1200 reports (a fifth
// in a sanitizer build), blk with 600 requests, echo with 300 exchanges with a real console peer.
TEST_F(VerifiedTest, LongFaultFreeRunsHaveNoDivergence) {
  const uint64_t kReports = testing::kSanitizerBuild ? 240 : 1200;
  const std::string image = absl::StrCat(::testing::TempDir(), "/fault-free-disk.img");
  const std::string sock = absl::StrCat(::testing::TempDir(), "/fault-free-console.sock");
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(std::string(VerifyModeName(mode)));
    {
      std::ofstream(image, std::ios::trunc).close();
      ASSERT_EQ(truncate(image.c_str(), 32 << 20), 0);
      auto m = Make(mode, "workload=blk seed=7 steps=600", 1, image);
      ASSERT_NE(m, nullptr);
      const MachineResult result = m->Wait();
      ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason << Console();
      EXPECT_EQ(result.exit_status, 0) << Console();
      EXPECT_GE(m->supervisor()->verification().items, 600u);
      EXPECT_EQ(m->supervisor()->verification().divergences, 0u);
      EXPECT_EQ(m->supervisor()->failover_count(), 0u);
    }
    {
      unlink(sock.c_str());
      auto m = Make(mode, "workload=echo seed=8 steps=300", 1, "", sock);
      ASSERT_NE(m, nullptr);
      MachineResult result;
      VerificationStatus v;
      const std::string summary = RunEchoWithPeer(m, sock, &result, &v);
      ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
      EXPECT_EQ(result.exit_status, 0);
      EXPECT_THAT(summary, HasSubstr("\"answered\": 300"));
      EXPECT_EQ(v.divergences, 0u);
    }
    auto m = Make(mode, absl::StrCat("workload=counter seed=42 steps=", kReports * 25000,
                                     " report_every=50000"));
    ASSERT_NE(m, nullptr);
    const MachineResult result = m->Wait();
    ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
    EXPECT_EQ(result.exit_status, 0);
    const VerificationStatus v = m->supervisor()->verification();
    EXPECT_EQ(v.mode, mode);
    EXPECT_GE(v.items, kReports);  // every report, and every serial byte, went through the vote
    EXPECT_EQ(v.divergences, 0u);
    EXPECT_EQ(m->supervisor()->failover_count(), 0u);
    EXPECT_EQ(m->Progress().verified_reports, kReports);
  }
}

// An operator's change between dual and triple (QMP __org.rehome_set-verification) on the running
// VM: the replica count follows at the next item, a joining replica starts at the agreed state
// and takes part in the vote at once (it is the one made wrong here, and is outvoted), and the
// guest never notices. Verify none cannot take over a verified VM.
TEST_F(VerifiedTest, DualAndTripleChangePlacesWhileTheGuestRuns) {
  auto m = Make(VerifyMode::kDual, "workload=counter seed=43 steps=2000000000 report_every=50000");
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  auto members = [&] {
    int n = 0;
    for (const L1Info& l1 : s.L1s()) n += l1.role == "standby" ? 0 : 1;
    return n;
  };
  ASSERT_EQ(members(), 2);
  ASSERT_TRUE(s.SetVerifyMode(VerifyMode::kTriple).ok());
  EXPECT_EQ(s.verification().mode, VerifyMode::kTriple);
  ASSERT_TRUE(PollUntil([&] { return members() == 3; }, absl::Seconds(30)));
  ASSERT_TRUE(s.InjectFault("replica-2", "wrong-state", 5).ok());
  ASSERT_TRUE(PollUntil([&] { return s.verification().divergences == 1; }, absl::Seconds(30)));
  EXPECT_THAT(s.verification().last->resolution, HasSubstr("majority of 2 of 3"));
  ASSERT_TRUE(PollUntil([&] { return members() == 3; }, absl::Seconds(30)));  // replaced

  ASSERT_TRUE(s.SetVerifyMode(VerifyMode::kDual).ok());
  EXPECT_EQ(s.verification().mode, VerifyMode::kDual);
  ASSERT_TRUE(PollUntil([&] { return members() == 2; }, absl::Seconds(30)));
  const absl::Status none = s.SetVerifyMode(VerifyMode::kNone);
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition) << none;
  EXPECT_EQ(s.verification().mode, VerifyMode::kDual);
  // Dual again: a wrong replica is detected, and a third opinion settles it.
  ASSERT_TRUE(s.InjectFault("replica-1", "wrong-state", 5).ok());
  ASSERT_TRUE(PollUntil([&] { return s.verification().divergences == 2; }, absl::Seconds(30)));
  EXPECT_THAT(s.verification().last->resolution, HasSubstr("majority of 2 of 3"));
  const uint64_t reports = m->Progress().verified_reports;
  ASSERT_TRUE(PollUntil([&] { return m->Progress().verified_reports >= reports + 20; },
                        absl::Seconds(30)));  // the guest runs on
  EXPECT_EQ(m->Progress().violations, 0u);
  EXPECT_FALSE(s.limit_reached());
  m->Stop();
}

// Replicas run side by side: the vCPU thread sleeps while they execute an item, so none of them
// moves off its CPU (as an active L1 that takes turns with a spinning vCPU thread does); moved,
// they would all crowd onto the other CPUs and execute every item one after the other.
TEST_F(VerifiedTest, ReplicasKeepEveryCpuToRunSideBySide) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof(mine), &mine), 0);
  if (CPU_COUNT(&mine) < 2) GTEST_SKIP() << "one CPU: nothing to run side by side on";
  auto m = Make(VerifyMode::kDual, "workload=counter seed=44 steps=2000000000 report_every=20000",
                /*cpus=*/1);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(
      PollUntil([&] { return m->supervisor()->verification().items >= 3000; }, absl::Seconds(60)));
  int replicas = 0;
  for (const L1Info& l1 : m->supervisor()->L1s()) {
    if (l1.role == "standby") continue;
    ++replicas;
    for (const auto& task :
         std::filesystem::directory_iterator(absl::StrCat("/proc/", l1.pid, "/task"))) {
      cpu_set_t allowed;
      const pid_t tid = std::stoi(task.path().filename().string());
      ASSERT_EQ(sched_getaffinity(tid, sizeof(allowed), &allowed), 0);
      EXPECT_TRUE(CPU_EQUAL(&allowed, &mine))
          << "replica " << l1.pid << " thread " << tid << " may run on " << CPU_COUNT(&allowed)
          << " of L0's " << CPU_COUNT(&mine) << " CPUs";
    }
  }
  EXPECT_EQ(replicas, 2);
  EXPECT_EQ(m->Progress().violations, 0u);
  m->Stop();
}

// A queue notification is not a vCPU exit: KVM signals it on an ioeventfd, L0's notification
// pump has the replicas process the queues (or sees the new buffers in guest RAM first), and the
// vCPU runs on until the agreed completion appears in its used ring. 2000+ blk requests cost far
// fewer exits (the guest's ~500 serial and set-up exits) than requests, the image
// holds every write, and no notification is lost: the guest, which waits for every completion,
// ends. Console output (a transmit notification) reaches the client the same way.
TEST_F(VerifiedTest, QueueNotificationsReachTheReplicasWithoutAVcpuExit) {
  const std::string image = absl::StrCat(::testing::TempDir(), "/notify-disk.img");
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(std::string(VerifyModeName(mode)));
    std::ofstream(image, std::ios::trunc).close();
    ASSERT_EQ(truncate(image.c_str(), 32 << 20), 0);
    exit_stats_ = true;
    auto m = Make(mode, "workload=blk seed=9 steps=1000", 1, image);
    ASSERT_NE(m, nullptr);
    const MachineResult result = m->Wait();
    ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason << Console();
    EXPECT_EQ(result.exit_status, 0) << Console();
    EXPECT_THAT(Console(), HasSubstr("blk done steps=1000 writes=1000 reads="));
    const uint64_t requests = 2 * 1000;  // at least: a write and a read per step
    const VerificationStatus v = m->supervisor()->verification();
    EXPECT_GE(v.items, requests);  // every request went through the vote
    EXPECT_LT(m->exit_stats().exits, requests / 3) << "notifications exited";
    EXPECT_EQ(v.divergences, 0u);
    EXPECT_EQ(m->supervisor()->failover_count(), 0u);
  }
  const std::string sock = absl::StrCat(::testing::TempDir(), "/notify-console.sock");
  unlink(sock.c_str());
  auto m = Make(VerifyMode::kDual, "workload=echo seed=10 steps=100", 1, "", sock);
  ASSERT_NE(m, nullptr);
  MachineResult result;
  VerificationStatus v;
  const std::string summary = RunEchoWithPeer(m, sock, &result, &v);
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_THAT(summary, HasSubstr("\"answered\": 100"));
  EXPECT_EQ(v.divergences, 0u);
}

// Design diversity: replicas of another build (here a copy at another path, a separate
// executable) agree with the first one: they compare state and effects, not binary bytes.
TEST_F(VerifiedTest, ReplicasOfAnotherBuildAgreeAndOutvoteAWrongOne) {
  standby_binary_ = absl::StrCat(::testing::TempDir(), "/rehome-replica-build");
  std::filesystem::copy_file(testing::RehomeBinary(), standby_binary_,
                             std::filesystem::copy_options::overwrite_existing);
  auto m = Make(VerifyMode::kTriple, kCounter);
  ASSERT_NE(m, nullptr);
  int others = 0;
  for (const L1Info& l1 : m->supervisor()->L1s()) {
    const std::string exe =
        std::filesystem::read_symlink(absl::StrCat("/proc/", l1.pid, "/exe")).string();
    if (exe == std::filesystem::canonical(standby_binary_).string()) ++others;
  }
  EXPECT_GE(others, 2);  // replicas 1 and 2 (and the standby)
  const MachineResult result = InjectAndFinish(*m, "wrong-state", 5);
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(m->supervisor()->verification().divergences, 1u);
  EXPECT_EQ(m->Progress().violations, 0u);
}

TEST_F(VerifiedTest, WrongStateCorruptsAnUnverifiedGuest) {
  // The control: the fault is real. Without verification the guest's oracle catches it later.
  auto m = Make(VerifyMode::kNone, kCounter);
  ASSERT_NE(m, nullptr);
  const MachineResult result = InjectAndFinish(*m, "wrong-state", 5);
  EXPECT_EQ(result.kind, MachineResult::Kind::kOracleViolation) << result.reason;
}

TEST_F(VerifiedTest, WrongResultsAreDetectedInDualAndOutvotedInTriple) {
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    for (const char* kind : {"wrong-state", "wrong-read-data"}) {
      SCOPED_TRACE(std::string(VerifyModeName(mode)) + " " + kind);
      auto m = Make(mode, kCounter);
      ASSERT_NE(m, nullptr);
      const MachineResult result = InjectAndFinish(*m, kind, 5);
      ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
      EXPECT_EQ(result.exit_status, 0);
      EXPECT_EQ(m->Progress().violations, 0u);
      const VerificationStatus v = m->supervisor()->verification();
      // The wrong replica differs on the very item it got wrong (its state CRC or its answer):
      // a divergence, counted and reported, whichever the mode.
      EXPECT_EQ(v.divergences, 1u);
      {
        ASSERT_TRUE(v.last.has_value());
        EXPECT_EQ(v.last->minority.size(), 1u);
        EXPECT_THAT(v.last->what,
                    HasSubstr(std::string(kind) == "wrong-state" ? "state" : "read data"));
        EXPECT_THAT(v.last->resolution, HasSubstr("majority of 2"));
      }
    }
  }
}

TEST_F(VerifiedTest, NothingUnverifiedReachesTheDiskImage) {
  const std::string image = absl::StrCat(::testing::TempDir(), "/verified-disk.img");
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    {
      std::ofstream(image, std::ios::trunc).close();
      ASSERT_EQ(truncate(image.c_str(), 32 << 20), 0);
    }
    auto m = Make(mode, "workload=blk seed=5 steps=600", 1, image);
    ASSERT_NE(m, nullptr);
    const MachineResult result = InjectAndFinish(*m, "wrong-state", 40);
    ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason << Console();
    EXPECT_EQ(result.exit_status, 0) << Console();
    EXPECT_GE(m->supervisor()->verification().divergences + m->supervisor()->failover_count(), 1u);
    m.reset();
    // The host reads the image back: every block well formed and at its own index.
    auto check = testing::RunProcess(
        {"/usr/bin/env", "python3",
         absl::StrCat(std::getenv("REHOME_SOURCE_DIR") ? std::getenv("REHOME_SOURCE_DIR") : ".",
                      "/guest/tools/blk_image_check.py"),
         image, "--seed", "5"},
        absl::Seconds(60));
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->exit_code, 0) << check->out << check->err;
  }
}

TEST_F(VerifiedTest, NothingUnverifiedReachesTheConsoleClient) {
  const std::string sock = absl::StrCat(::testing::TempDir(), "/verified-console.sock");
  unlink(sock.c_str());
  auto m = Make(VerifyMode::kDual, "workload=echo seed=6 steps=400", 1, "", sock);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "wrong-state", 30).ok());
  MachineResult result;
  VerificationStatus v;
  const std::string summary = RunEchoWithPeer(m, sock, &result, &v);
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  EXPECT_EQ(v.divergences, 1u);
  // The peer saw every request once, in order, none malformed (from outside rehome).
  EXPECT_THAT(summary, HasSubstr("\"answered\": 400"));
  EXPECT_THAT(summary, HasSubstr("\"in_order\": true"));
  EXPECT_THAT(summary, HasSubstr("\"malformed\": 0"));
}

TEST_F(VerifiedTest, CrashesHangsAndGarbageAreReplicaFailuresInEveryMode) {
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(std::string(VerifyModeName(mode)));
    auto m = Make(mode, "workload=counter seed=43 steps=0 report_every=100000");
    ASSERT_NE(m, nullptr);
    L1Supervisor& s = *m->supervisor();
    const char* kinds[] = {"kill", "die-before-commit", "die-after-commit", "garbage", "hang"};
    uint64_t expected = 0;
    for (int i = 0; i < 10; ++i) {
      const uint64_t items = s.verification().items;
      ASSERT_TRUE(PollUntil([&] { return s.verification().items > items + 4; }, absl::Seconds(60)))
          << "no progress";
      const std::string target = i % 2 == 0 ? "active" : "replica-1";
      ASSERT_TRUE(s.InjectFault(target, kinds[i % 5]).ok());
      ++expected;
      ASSERT_TRUE(PollUntil([&] { return s.failover_count() >= expected; }, absl::Seconds(60)))
          << kinds[i % 5] << ": failovers " << s.failover_count();
      ASSERT_FALSE(m->WaitFor(absl::ZeroDuration()).has_value()) << Console();
    }
    EXPECT_EQ(m->Progress().violations, 0u);
    EXPECT_EQ(s.verification().divergences, 0u);
    m->Stop();
  }
}

// An L1 whose exit thread ends while its process lives on (the heartbeat thread beats on, the
// pidfd never becomes readable) is a crash in every mode, found by the exit thread's death notice:
// with the longest hang timeout (60 s) nothing else would find it within the test's 30 s.
TEST_F(VerifiedTest, AnExitThreadThatEndsAloneIsACrashInEveryMode) {
  hang_timeout_ms_ = 60000;
  for (VerifyMode mode : {VerifyMode::kNone, VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(std::string(VerifyModeName(mode)));
    auto m = Make(mode, "workload=counter seed=44 steps=0 report_every=100000");
    ASSERT_NE(m, nullptr);
    L1Supervisor& s = *m->supervisor();
    for (const char* target : {"active", "replica-1"}) {
      if (mode == VerifyMode::kNone && std::string(target) != "active") continue;
      const uint64_t before = s.failover_count();
      const uint64_t reports = m->Progress().verified_reports;
      // Members come first in L1s(), in their order: "active" (replica-0), then "replica"s.
      const size_t index = std::string(target) == "active" ? 0 : 1;
      const std::vector<L1Info> l1s = s.L1s();
      ASSERT_GT(l1s.size(), index);
      ASSERT_NE(l1s[index].role, "standby");
      const pid_t victim = l1s[index].pid;
      ASSERT_TRUE(s.InjectFault(target, "exit-thread-exits").ok());
      ASSERT_TRUE(PollUntil([&] { return s.failover_count() > before; }, absl::Seconds(30)))
          << target;
      ASSERT_TRUE(s.last_failover().has_value());
      EXPECT_THAT(s.last_failover()->cause,
                  ::testing::StartsWith(absl::StrCat("crash: L1 pid ", victim, " ")));
      EXPECT_TRUE(PollUntil([&] { return m->Progress().verified_reports > reports + 2; },
                            absl::Seconds(60)))
          << "the guest made no progress after the failover";
      ASSERT_FALSE(m->WaitFor(absl::ZeroDuration()).has_value()) << Console();
    }
    EXPECT_EQ(m->Progress().violations, 0u);
    m->Stop();
  }
}

// A replica changes nothing outside itself even by accident: its guest RAM mappings are
// read-only (a stray store faults and fails that replica) and its disk descriptor is O_RDONLY.
TEST_F(VerifiedTest, ReplicasMapGuestRamAndTheDiskReadOnly) {
  std::string image = absl::StrCat(::testing::TempDir(), "/verified-ro.img");
  {
    std::ofstream(image, std::ios::trunc).close();
    ASSERT_EQ(truncate(image.c_str(), 32 << 20), 0);
    char resolved[PATH_MAX];
    ASSERT_NE(realpath(image.c_str(), resolved), nullptr);
    image = resolved;  // as /proc/PID/fd shows it
  }
  auto m = Make(VerifyMode::kDual, "workload=blk seed=3 steps=0", 1, image);
  ASSERT_NE(m, nullptr);
  std::vector<pid_t> replicas;
  ASSERT_TRUE(PollUntil(
      [&] {
        replicas.clear();
        for (const L1Info& l1 : m->supervisor()->L1s()) {
          if (l1.role != "standby") replicas.push_back(l1.pid);
        }
        return replicas.size() == 2;
      },
      absl::Seconds(30)));
  for (pid_t pid : replicas) {
    SCOPED_TRACE(absl::StrCat("replica pid ", pid));
    std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
    std::string line;
    int ram_mappings = 0;
    while (std::getline(maps, line)) {
      if (line.find("rehome-ram-") == std::string::npos) continue;
      ++ram_mappings;
      std::istringstream fields(line);
      std::string range, perms;
      fields >> range >> perms;
      EXPECT_EQ(perms, "r--s") << line;
    }
    EXPECT_GE(ram_mappings, 1);
    int disk_fds = 0;
    for (int fd = 0; fd < 1024; ++fd) {
      char target[4096];
      const std::string link = absl::StrCat("/proc/", pid, "/fd/", fd);
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0 || std::string(target, n) != image) continue;
      ++disk_fds;
      std::ifstream info(absl::StrCat("/proc/", pid, "/fdinfo/", fd));
      std::string key, flags;
      while (info >> key >> flags && key != "flags:") {
      }
      EXPECT_EQ(std::stoul(flags, nullptr, 8) & O_ACCMODE, static_cast<unsigned long>(O_RDONLY));
    }
    EXPECT_EQ(disk_fds, 1);
  }
  m->Stop();
}

TEST_F(VerifiedTest, CliRefusesVerificationWithoutSplitMode) {
  auto r = testing::RunProcess({testing::RehomeBinary(), "run", "--kernel", testing::GuestElf(),
                                "--verify", "dual", "--mode", "monolithic"},
                               absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 64);
  EXPECT_THAT(r->err, HasSubstr("verified execution needs --mode split"));
  r = testing::RunProcess(
      {testing::RehomeBinary(), "run", "--kernel", testing::GuestElf(), "--verify", "quad"},
      absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 64);
  EXPECT_THAT(r->err, HasSubstr("--verify: unknown verification mode"));
  // With a network device verified execution is offered; a missing tap is the same one-line
  // error as without --verify.
  if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
  r = testing::RunProcess({testing::RehomeBinary(), "run", "--kernel", testing::GuestElf(),
                           "--verify", "dual", "--netdev", "tap,ifname=rhnone0"},
                          absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 64);
  EXPECT_THAT(r->err, HasSubstr("no such network interface"));
}

}  // namespace
}  // namespace rehome
