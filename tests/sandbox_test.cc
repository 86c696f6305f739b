// tests/sandbox_test.cc: the confinement of real L1 processes under a running guest (2 vCPUs,
// counter oracle): what /proc shows of a running L1 (seccomp, no_new_privs, no capabilities,
// its own uid and namespaces, an empty root, rlimits), the fds it holds, that root outside may
// still ptrace it by the pid L0 reports, and that every forbidden operation the L1 tries (sandbox
// probes, injected through Supervisor::InjectFault) fails or kills it while L0 survives and the
// guest continues on the standby with every report verified; replica L1s of verified execution
// are confined the same way. The same probes report a breach from an unconfined L1
// (--l1-sandbox off), so they can fail.
#include <dirent.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "recovery/l1_confinement.h"
#include "tests/split_machine_test.h"

namespace rehome {
namespace {

using ::testing::AnyOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using SandboxTest = testing::SplitMachineTest;
using testing::PollUntil;

constexpr char kCounter[] = "workload=counter seed=41 steps=0 report_every=100000";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of `field` in /proc/PID/status ("" when absent).
std::string StatusField(pid_t pid, const std::string& field) {
  std::istringstream status(ReadFile(absl::StrCat("/proc/", pid, "/status")));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      const size_t value = line.find_first_not_of(" \t", field.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

std::string Link(const std::string& path) {
  char target[256];
  const ssize_t n = readlink(path.c_str(), target, sizeof(target));
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
}

// fd number -> what it refers to, from /proc/PID/fd.
std::map<int, std::string> Fds(pid_t pid) {
  std::map<int, std::string> fds;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fds;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    fds[std::stoi(e->d_name)] = Link(absl::StrCat(dir, "/", e->d_name));
  }
  closedir(d);
  return fds;
}

bool HostHasL1Namespaces() { return !HostL1Confinement().namespace_fds.empty(); }

// What /proc shows of the running L1 `pid`: every layer of its confinement.
void ExpectConfined(pid_t pid) {
  const std::string zero_caps = "0000000000000000";
  EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  for (const char* caps : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(StatusField(pid, caps), zero_caps) << caps;
  }
  if (geteuid() == 0) {  // its own ids: kL1IdBase + the pid L0 reports
    const std::string id = absl::StrCat(kL1IdBase + static_cast<uint32_t>(pid));
    EXPECT_EQ(StatusField(pid, "Uid"), absl::StrCat(id, "\t", id, "\t", id, "\t", id));
    EXPECT_EQ(StatusField(pid, "Gid"), absl::StrCat(id, "\t", id, "\t", id, "\t", id));
    EXPECT_EQ(StatusField(pid, "Groups"), "");
  }
  const std::string limits = ReadFile(absl::StrCat("/proc/", pid, "/limits"));
  EXPECT_THAT(limits, ContainsRegex("Max core file size +0 +0"));
  EXPECT_THAT(limits, ContainsRegex("Max open files +32 +32"));
  // Its own pid namespace, where it is pid 1; QMP and the supervisor report the host pid.
  EXPECT_EQ(StatusField(pid, "NSpid"), absl::StrCat(pid, "\t1"));
  EXPECT_NE(Link(absl::StrCat("/proc/", pid, "/ns/pid")), Link("/proc/self/ns/pid"));
  if (!HostHasL1Namespaces()) {
    std::cerr << "[ note ] no user/mount/net/ipc/uts namespaces for L1s on this host: "
              << HostL1Confinement().namespaces_error << "\n";
    return;
  }
  for (const char* ns : {"user", "mnt", "net", "ipc", "uts"}) {
    EXPECT_NE(Link(absl::StrCat("/proc/", pid, "/ns/", ns)),
              Link(absl::StrCat("/proc/self/ns/", ns)))
        << ns;
  }
  EXPECT_THAT(limits, ContainsRegex("Max processes +2 +2"));
  // Its root is empty: nothing of the host's file system.
  DIR* root = opendir(absl::StrCat("/proc/", pid, "/root").c_str());
  ASSERT_NE(root, nullptr);
  std::vector<std::string> entries;
  while (const dirent* e = readdir(root)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
      entries.push_back(e->d_name);
    }
  }
  closedir(root);
  EXPECT_TRUE(entries.empty()) << entries.size() << " entries, first " << entries.front();
}

// docs/exit-channel.md lists them: stdin and stdout on /dev/null, stderr, the RAM memfds, the
// exit channel memfd, its eventfds (request, ack, one response per slot: 2 vCPUs, and for a
// replica of verified execution the host slot's), the journal, the lifeline pipe and, for a
// replica, its effects area. Never /dev/kvm.
void ExpectOnlyDocumentedFds(pid_t pid, bool replica) {
  const std::map<int, std::string> fds = Fds(pid);
  ASSERT_FALSE(fds.empty());
  EXPECT_EQ(fds.count(0) ? fds.at(0) : "", "/dev/null");
  EXPECT_EQ(fds.count(1) ? fds.at(1) : "", "/dev/null");
  EXPECT_EQ(fds.count(2), 1u);
  std::map<std::string, int> kinds;
  for (const auto& [fd, target] : fds) {
    EXPECT_THAT(target, Not(HasSubstr("kvm"))) << "fd " << fd;
    if (fd <= 2) continue;
    std::string kind = target;
    if (target.rfind("/memfd:rehome-ram", 0) == 0) kind = "ram";
    if (target.rfind("pipe:", 0) == 0) kind = "pipe";
    ++kinds[kind];
  }
  EXPECT_GE(kinds["ram"], 1);
  EXPECT_EQ(kinds["/memfd:rehome-exit-channel (deleted)"] + kinds["/memfd:rehome-exit-channel"], 1);
  EXPECT_EQ(kinds["/memfd:rehome-journal (deleted)"] + kinds["/memfd:rehome-journal"], 1);
  const int effects = kinds["/memfd:rehome-effects (deleted)"] + kinds["/memfd:rehome-effects"];
  EXPECT_EQ(effects, replica ? 1 : 0);
  const int eventfds = replica ? 5 : 4;  // request, ack, 2 vCPU slots (and the host slot)
  EXPECT_EQ(kinds["anon_inode:[eventfd]"], eventfds);
  EXPECT_EQ(kinds["pipe"], 1);  // the lifeline
  int total = 0;
  for (const auto& [kind, count] : kinds) total += count;
  EXPECT_EQ(total, kinds["ram"] + 1 + 1 + effects + eventfds + 1) << "unexpected fds";
}

TEST_F(SandboxTest, RunningL1ShowsEveryLayerInProc) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  for (const char* role : {"active", "standby"}) {
    const pid_t pid = PidOf(*m, role);
    ASSERT_GT(pid, 0) << role;
    SCOPED_TRACE(absl::StrCat(role, " L1 pid ", pid));
    ExpectConfined(pid);
  }
  EXPECT_EQ(m->supervisor()->failover_count(), 0u);
}

TEST_F(SandboxTest, L1HoldsOnlyTheDocumentedFds) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  for (const char* role : {"active", "standby"}) {
    const pid_t pid = PidOf(*m, role);
    SCOPED_TRACE(absl::StrCat(role, " L1 pid ", pid));
    ExpectOnlyDocumentedFds(pid, /*replica=*/false);
  }
}

// Verified execution: every replica (and the standby that replaces one) is started by the same
// L1Process::Spawn and confined exactly as an active or standby L1; its one extra fd is its
// effects area. A replica that tries what its sandbox forbids dies by seccomp, is replaced, and
// the guest runs on with its oracle clean and no divergence.
TEST_F(SandboxTest, ReplicaL1sAreConfinedLikeEveryL1) {
  RecoveryPolicy policy = Generous();
  policy.verify = VerifyMode::kTriple;
  auto m = Make(kCounter, policy);
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  L1Supervisor& s = *m->supervisor();
  std::map<std::string, int> roles;
  for (const L1Info& l1 : s.L1s()) {
    ++roles[l1.role];
    SCOPED_TRACE(absl::StrCat(l1.role, " L1 pid ", l1.pid));
    ExpectConfined(l1.pid);
    ExpectOnlyDocumentedFds(l1.pid, /*replica=*/true);
  }
  EXPECT_EQ(roles["active"], 1);  // replica 0
  EXPECT_EQ(roles["replica"], 2);
  EXPECT_EQ(s.failover_count(), 0u);

  pid_t target = -1;
  for (const L1Info& l1 : s.L1s()) {
    if (l1.role == "replica" && target < 0) target = l1.pid;  // replica-1
  }
  ASSERT_TRUE(s.InjectFault("replica-1", "try-socket").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  EXPECT_THAT(s.last_failover()->cause, HasSubstr("seccomp: system call socket (#"));
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  bool replaced = false;
  ASSERT_TRUE(PollUntil(
      [&] {
        int replicas = 0;
        bool target_gone = true;
        for (const L1Info& l1 : s.L1s()) {
          replicas += l1.role == "active" || l1.role == "replica";
          target_gone = target_gone && l1.pid != target;
        }
        replaced = replicas == 3 && target_gone;
        return replaced || Stopped(*m);
      },
      absl::Seconds(60)));
  ASSERT_TRUE(replaced) << StopReason(*m);
  for (const L1Info& l1 : s.L1s()) {
    SCOPED_TRACE(absl::StrCat("after the probe: ", l1.role, " L1 pid ", l1.pid));
    ExpectConfined(l1.pid);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  EXPECT_EQ(s.verification().divergences, 0u);
}

// A fault-injection tool of root's, outside every namespace, attaches to the L1 by the pid that
// QMP and the supervisor report.
TEST_F(SandboxTest, RootCanPtraceASandboxedL1ByItsReportedPid) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  const pid_t pid = PidOf(*m, "active");
  ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0) << strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
  EXPECT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
}

struct Probe {
  const char* kind;     // Supervisor::InjectFault kind
  const char* syscall;  // the call seccomp names when it stops the probe
};

constexpr Probe kProbes[] = {
    {"try-open-kvm", "openat"},
    {"try-open-host-file", "openat"},
    {"try-socket", "socket"},
    {"try-ptrace-l0", "ptrace"},
    {"try-signal-l0", "kill"},
    {"try-exec", "execve"},
    {"try-write-l0-memory", "process_vm_writev"},
    {"try-exec-memory", "mmap"},
    {"try-fork", "clone"},
    {"try-raise-privilege", "setuid"},
};

TEST_F(SandboxTest, ForbiddenOperationsFailOrKillTheL1AndTheGuestRunsOn) {
  auto m = Make(kCounter, Generous());
  ASSERT_NE(m, nullptr);
  L1Supervisor& s = *m->supervisor();
  uint64_t failovers = 0;
  for (const Probe& probe : kProbes) {
    SCOPED_TRACE(probe.kind);
    ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
    ASSERT_TRUE(s.InjectFault("active", probe.kind).ok());
    ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, ++failovers));
    const std::string cause = s.last_failover()->cause;
    EXPECT_THAT(cause, Not(HasSubstr("BREACH")));
    const std::string trapped = absl::StrCat("seccomp: system call ", probe.syscall, " (#");
#if defined(__SANITIZE_ADDRESS__)
    // Sanitizer builds let path lookups fail instead (l1_seccomp.cc).
    EXPECT_THAT(cause, AnyOf(HasSubstr(trapped), HasSubstr(": refused (No such file")));
#else
    EXPECT_THAT(cause, HasSubstr(trapped));
#endif
    ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  }
  // A standby that tries is replaced; the guest is not touched.
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  const pid_t standby = PidOf(*m, "standby");
  ASSERT_TRUE(s.InjectFault("standby", "try-socket").ok());
  // The supervisor drops the standby from its list before it reports the failure: wait for both.
  bool reported = false;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (const SupervisorEvent& e : Events()) {
          reported = reported || (e.kind == SupervisorEvent::Kind::kL1Failed && e.pid == standby &&
                                  e.cause.find("socket") != std::string::npos);
        }
        return (reported && PidOf(*m, "standby") != standby) || Stopped(*m);
      },
      absl::Seconds(60)));
  EXPECT_TRUE(reported) << StopReason(*m);
  EXPECT_EQ(s.failover_count(), failovers);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
}

// Without the sandbox the L1 runs as rehome does, and the probes see it: they can fail.
TEST_F(SandboxTest, UnconfinedL1IsCaughtByTheSameProbes) {
  RecoveryPolicy policy = Generous();
  policy.l1_sandbox = L1SandboxLevel::kOff;
  auto m = Make(kCounter, policy);
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  const pid_t pid = PidOf(*m, "active");
  EXPECT_EQ(StatusField(pid, "Seccomp"), "0");
  EXPECT_EQ(Link(absl::StrCat("/proc/", pid, "/ns/pid")), Link("/proc/self/ns/pid"));
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "try-open-host-file").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  EXPECT_THAT(m->supervisor()->last_failover()->cause,
              HasSubstr("SANDBOX BREACH: open /etc/passwd succeeded"));
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
}

// The policy's level reaches the replicas too (VerifiedSupervisor spawns them): off is off.
TEST_F(SandboxTest, ReplicasFollowThePolicysLevel) {
  RecoveryPolicy policy = Generous();
  policy.l1_sandbox = L1SandboxLevel::kOff;
  policy.verify = VerifyMode::kDual;
  auto m = Make(kCounter, policy);
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  const std::vector<L1Info> l1s = m->supervisor()->L1s();
  EXPECT_GE(l1s.size(), 2u);
  for (const L1Info& l1 : l1s) {
    SCOPED_TRACE(absl::StrCat(l1.role, " L1 pid ", l1.pid));
    EXPECT_EQ(StatusField(l1.pid, "Seccomp"), "0");
    EXPECT_EQ(Link(absl::StrCat("/proc/", l1.pid, "/ns/pid")), Link("/proc/self/ns/pid"));
  }
}

TEST_F(SandboxTest, StrictLevelRunsFullyConfinedL1s) {
  if (!HostHasL1Namespaces()) {
    GTEST_SKIP() << "no L1 namespaces on this host (" << HostL1Confinement().namespaces_error
                 << "): --l1-sandbox strict cannot start an L1";
  }
  RecoveryPolicy policy = Generous();
  policy.l1_sandbox = L1SandboxLevel::kStrict;
  auto m = Make(kCounter, policy);
  ASSERT_NE(m, nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitForStandby(*m));
  ASSERT_TRUE(m->supervisor()->InjectFault("active", "kill").ok());
  ASSERT_NO_FATAL_FAILURE(WaitForFailovers(*m, 1));
  ASSERT_NO_FATAL_FAILURE(ExpectProgress(*m));
  EXPECT_EQ(StatusField(PidOf(*m, "active"), "Seccomp"), "2");
}

}  // namespace
}  // namespace rehome
