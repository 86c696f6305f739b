// tests/cli_test.cc: the real `rehome` binary: every bad input gets a one-line error and a
// documented non-zero exit code (never a crash), and good runs exit with the guest's status.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"
#include "tests/rehome_child.h"
#include "tests/subprocess.h"

namespace rehome {
namespace {

using testing::GuestElf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ProcessResult;
using testing::RehomeBinary;
using testing::RunProcess;

ProcessResult Rehome(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), RehomeBinary());
  auto result = RunProcess(args, absl::Seconds(120), env);
  EXPECT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->timed_out);
  return *result;
}

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }

// One line on stderr, mentioning `needle`.
void ExpectOneLineError(const ProcessResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_THAT(r.err, HasSubstr(needle));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliTest, HelpListsCommandsAndOptions) {
  ProcessResult top = Rehome({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("run"));
  EXPECT_THAT(top.out, HasSubstr("qmp"));
  ProcessResult run = Rehome({"run", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("--kernel"));
  EXPECT_THAT(run.out, HasSubstr("exit status"));
  ExpectOneLineError(Rehome({"frobnicate"}), 64, "unknown command");
}

TEST(CliTest, BadInputsGetOneLineErrors) {
  const std::string tmp = ::testing::TempDir();
  const std::string empty = tmp + "/empty.elf";
  std::ofstream(empty).close();
  ExpectOneLineError(Rehome({"run"}), 64, "--kernel");
  ExpectOneLineError(Rehome({"run", "--kernel", "/nonexistent/guest.elf"}), 64, "No such file");
  ExpectOneLineError(Rehome({"run", "--kernel", "/etc/hostname"}), 64, "not an ELF");
  ExpectOneLineError(Rehome({"run", "--kernel", empty}), 64, "empty.elf");
  // A real ELF executable without a PVH note: the rehome binary itself is ET_DYN; the loader
  // names what is wrong either way.
  ExpectOneLineError(Rehome({"run", "--kernel", RehomeBinary()}), 64, "rehome");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--memory", "0"}), 64, "--memory");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--memory", "99999999"}), 64,
                     "--memory");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--cpus", "0"}), 64, "--cpus");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--l1-binary", "/no/such/rehome"}), 64,
                     "L1 binary /no/such/rehome");
  ExpectOneLineError(
      Rehome({"run", "--kernel", GuestElf(), "--standby-l1-binary", "/etc/hostname"}), 64,
      "L1 binary /etc/hostname: not an executable file");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--cpus", "4096"}), 64, "--cpus");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--cmdline", "steps=x"}), 64, "steps");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--serial-file", "/no/such/dir/x"}), 64,
                     "--serial-file");
}

TEST(CliTest, BadNetdevGetsOneLineErrors) {
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--netdev", "tap"}), 64,
                     "ifname is required");
  ExpectOneLineError(
      Rehome({"run", "--kernel", GuestElf(), "--netdev", "tap,ifname=t0,mac=01:00:5e:00:00:01"}),
      64, "multicast");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--netdev", "user"}), 64,
                     "not supported");
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  for (const char* mode : {"split", "monolithic"}) {
    ExpectOneLineError(
        Rehome({"run", "--kernel", GuestElf(), "--mode", mode, "--netdev", "tap,ifname=rhnosuch9"}),
        64, "no such network interface");
    ExpectOneLineError(
        Rehome({"run", "--kernel", GuestElf(), "--mode", mode, "--netdev", "tap,ifname=lo"}), 64,
        "not a (single-queue) tap device");
  }
}

// Split mode runs its L1s as `rehome-l1` (next to rehome: the L1 alone, with a fraction of the
// libraries), and that binary refuses to be started by hand.
TEST(CliTest, SplitModeRunsItsL1sAsRehomeL1) {
  const std::string l1 = RehomeBinary().substr(0, RehomeBinary().rfind('/') + 1) + "rehome-l1";
  ExpectOneLineError(RunProcess({l1}, absl::Seconds(30)).value(), 64, "started by rehome only");
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  testing::ScratchDir dir;
  absl::StatusOr<std::unique_ptr<testing::RehomeChild>> vm = testing::RehomeChild::Start(
      {"run", "--kernel", GuestElf(), "--mode", "split", "--cmdline", "workload=counter steps=0"},
      dir.path());
  ASSERT_TRUE(vm.ok()) << vm.status();
  auto l1_children = [&] {  // the exe of every process whose parent is the VM's rehome
    std::vector<std::string> exes;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream status(entry.path() / "status");
      std::string line;
      while (std::getline(status, line)) {
        if (line != absl::StrCat("PPid:\t", (*vm)->pid())) continue;
        std::error_code gone;  // it may exit meanwhile: an empty path
        exes.push_back(std::filesystem::read_symlink(entry.path() / "exe", gone));
      }
    }
    return exes;
  };
  std::vector<std::string> exes;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        exes = l1_children();
        // The active L1 and a standby, each after its exec (a child just forked still shows
        // rehome's own binary for a moment).
        return exes.size() >= 2 &&
               std::all_of(exes.begin(), exes.end(), [&](const auto& e) { return e == l1; });
      },
      absl::Seconds(60)))
      << "children of rehome: " << absl::StrJoin(exes, ", ") << "\n"
      << (*vm)->Stderr();
}

TEST(CliTest, MissingKvmIsReported) {
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf()}, {"REHOME_KVM_PATH=/nonexistent/kvm"}),
                     69, "KVM is not usable");
}

TEST(CliTest, IdleGuestExitsZero) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  ProcessResult r =
      Rehome({"run", "--kernel", GuestElf(), "--cpus", "2", "--cmdline", "workload=idle"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rehome-guest:"));
}

// --exit-stats counts every exit in both modes: the pio workload's N port writes and the few of
// its boot and exit, and no more (split mode's forwarding must not count an exit twice).
// Split mode posts the benchmark port's writes unless --no-posted-writes; either way every
// write is counted once.
TEST(CliTest, ExitStatsCountEveryExitInBothModes) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  struct Case {
    const char* mode;
    bool no_posting;
    long posted;
  };
  for (const Case& c :
       {Case{"monolithic", false, 0}, Case{"split", false, 2000}, Case{"split", true, 0}}) {
    std::vector<std::string> args = {
        "run",  "--kernel",     GuestElf(),  "--mode",
        c.mode, "--exit-stats", "--cmdline", "workload=pio steps=2000"};
    if (c.no_posting) args.push_back("--no-posted-writes");
    const std::string what = absl::StrCat(c.mode, c.no_posting ? " --no-posted-writes" : "");
    ProcessResult r = Rehome(args);
    ASSERT_EQ(r.exit_code, 0) << what << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("pio-bench writes: 2000")) << what;
    std::smatch m;
    const std::regex line(
        R"(rehome: exit stats: (\d+) exits, ([0-9.]+) us handling per exit, (\d+) posted)");
    ASSERT_TRUE(std::regex_search(r.err, m, line)) << what << ": " << r.err;
    const long exits = std::stol(m[1]);
    EXPECT_GE(exits, 2000) << what;
    EXPECT_LT(exits, 2000 + 1000) << what;
    EXPECT_GT(std::stod(m[2]), 0.0) << what;
    EXPECT_EQ(std::stol(m[3]), c.posted) << what;
  }
  ProcessResult plain =
      Rehome({"run", "--kernel", GuestElf(), "--cmdline", "workload=pio steps=10"});
  EXPECT_THAT(plain.err, Not(HasSubstr("exit stats")));
}

TEST(CliTest, CounterWithRehomingExitsZeroWithEveryReportVerified) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  ProcessResult r = Rehome({"run", "--kernel", GuestElf(), "--cpus", "2", "--cmdline",
                            "workload=counter steps=20000000 report_every=1000000",
                            "--rehome-interval-ms", "40"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The guest was moved into new VMs while it ran, and all 2 x 20 reports were verified.
  EXPECT_THAT(r.err, HasSubstr("moved into VM #2"));
  EXPECT_THAT(r.err, HasSubstr("40 reports verified"));
  EXPECT_THAT(r.err, HasSubstr("no violations"));
  EXPECT_THAT(r.out, HasSubstr("counter done"));
}

TEST(CliTest, GuestExceptionIsAFailure) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  // workload=fault executes ud2 at CPL3: the guest's #UD handler prints the vector, RIP and
  // error code and reports kExitCpuException (2) through the debug-exit port.
  ProcessResult r = Rehome({"run", "--kernel", GuestElf(), "--cmdline", "workload=fault"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.out, HasSubstr("vector=6"));
}

// A guest kernel that reports its panic through pvpanic (as Linux's driver does) ends the run as a
// guest crash (66) in both modes: the panic is the guest's, never an L1 failure.
TEST(CliTest, PvPanicIsAGuestCrash) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  for (const char* mode : {"split", "monolithic"}) {
    ProcessResult r =
        Rehome({"run", "--kernel", GuestElf(), "--mode", mode, "--cmdline", "workload=panic"});
    EXPECT_EQ(r.exit_code, 66) << mode << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("panicking through pvpanic, events=1"));
    EXPECT_THAT(r.out, Not(HasSubstr("the host ignored the request")));
    EXPECT_THAT(r.err, HasSubstr("guest kernel panicked (pvpanic event 0x1)"));
    EXPECT_THAT(r.err, Not(HasSubstr("failover #")));
  }
}

// A guest's own failure follows --on-crash and never fails over the L1.
TEST(CliTest, GuestCrashFollowsTheCrashPolicy) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  ProcessResult restart = Rehome(
      {"run", "--kernel", GuestElf(), "--cmdline", "workload=fault", "--on-crash", "restart"});
  EXPECT_EQ(restart.exit_code, 2) << restart.err;
  size_t boots = 0;
  for (size_t pos = 0; (pos = restart.err.find("guest started", pos)) != std::string::npos; ++pos) {
    ++boots;
  }
  EXPECT_EQ(boots, 11u) << restart.err;  // the first boot and 10 restarts
  EXPECT_THAT(restart.err, HasSubstr("on_crash=restart gives up"));
  EXPECT_THAT(restart.err, HasSubstr("failovers: 0"));
  ProcessResult preserve = Rehome(
      {"run", "--kernel", GuestElf(), "--cmdline", "workload=fault", "--on-crash", "preserve"});
  EXPECT_EQ(preserve.exit_code, 2) << preserve.err;
  EXPECT_THAT(preserve.err, HasSubstr("nothing to preserve without --qmp"));
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--on-crash", "reboot"}), 64,
                     "--on-crash");
}

// --disk-direct opens the image with O_DIRECT; the blk workload (every read checked by the
// guest) runs through the L1's bounce-buffered path and its writes reach the file.
TEST(CliTest, DirectDiskRunsTheBlkWorkload) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  char path[] = "/tmp/rehome-direct-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 32 << 20), 0);
  close(fd);
  ProcessResult r = Rehome({"run", "--kernel", GuestElf(), "--disk", path, "--disk-direct",
                            "--cmdline", "workload=blk seed=2 steps=300"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("blk done steps=300"));
  struct stat st {};
  ASSERT_EQ(stat(path, &st), 0);
  EXPECT_GT(st.st_blocks, 0) << "nothing was written to the image";
  unlink(path);
}

// A guest that resets itself (0xcf9) or powers off (PM1a SLP_EN) follows --on-reboot and
// --on-poweroff (libvirt's on_reboot / on_poweroff). Restarting is driven over QMP in
// qmp_integration_test; here the actions that end the run.
TEST(CliTest, GuestRebootAndPowerOffFollowTheirLifecycleActions) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  ProcessResult destroy = Rehome({"run", "--kernel", GuestElf(), "--cpus", "2", "--cmdline",
                                  "workload=reboot", "--on-reboot", "destroy"});
  EXPECT_EQ(destroy.exit_code, 0) << destroy.err;
  EXPECT_THAT(destroy.out, HasSubstr("rehome-guest: rebooting"));
  EXPECT_THAT(destroy.err, HasSubstr("guest reset (vCPU 0: guest requested reset (port 0xcf9)); "
                                     "on_reboot=destroy"));
  ProcessResult off = Rehome({"run", "--kernel", GuestElf(), "--cmdline", "workload=poweroff"});
  EXPECT_EQ(off.exit_code, 0) << off.err;
  EXPECT_THAT(off.out, HasSubstr("rehome-guest: powering off"));
  EXPECT_THAT(off.out, Not(HasSubstr("the host ignored the request")));
  EXPECT_THAT(off.err, HasSubstr("guest powered off"));
  ProcessResult kept = Rehome({"run", "--kernel", GuestElf(), "--cmdline", "workload=poweroff",
                               "--on-poweroff", "preserve", "--mode", "monolithic"});
  EXPECT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_THAT(kept.err, HasSubstr("on_poweroff=preserve: nothing to preserve without --qmp"));
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--on-reboot", "rename-restart"}), 64,
                     "--on-reboot: expected destroy, restart or preserve");
  ExpectOneLineError(Rehome({"run", "--kernel", GuestElf(), "--on-poweroff", ""}), 64,
                     "--on-poweroff");
}

}  // namespace
}  // namespace rehome
