// vmm/l1/l1_sandbox.cc: ApplyL1Sandbox, the SIGSYS handler, L0Gone, KillL1Now.
#include "vmm/l1/l1_sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "vmm/l1/l1_sanitizer_reports.h"
#include "vmm/l1/l1_seccomp.h"

namespace rehome {
namespace {

ExitChannelHeader* g_header = nullptr;  // for the SIGSYS handler; set before the filter loads

// Async-signal-safe: a system call outside the allow-list (SECCOMP_RET_TRAP). Writes the note,
// marks this L1 failed and exits; the call itself was not executed. L0 resolves the number to a
// name (it may allocate; this handler may not).
void OnSigsys(int, siginfo_t* info, void*) {
  char note[64];
  size_t n = 0;
  for (char c : kSeccompNotePrefix) note[n++] = c;
  char digits[12];
  int d = 0;
  unsigned nr = static_cast<unsigned>(info->si_syscall);
  do {
    digits[d++] = static_cast<char>('0' + nr % 10);
    nr /= 10;
  } while (nr != 0 && d < 11);
  while (d > 0) note[n++] = digits[--d];
  for (char c : std::string_view(" is not allowed")) note[n++] = c;
  if (g_header != nullptr) {
    std::memcpy(g_header->failure, note, n);
    g_header->failure_len.store(static_cast<uint32_t>(n), std::memory_order_release);
    g_header->l1_state.store(static_cast<uint32_t>(L1State::kFailed), std::memory_order_release);
  }
  note[n++] = '\n';
  syscall(SYS_write, 2, "rehome L1: ", 11);
  syscall(SYS_write, 2, note, n);
  syscall(SYS_exit_group, kL1ExitSyscallDenied);
}

// This process's pid as L0 sees it: the host's procfs still resolves /proc/self in its own pid
// namespace (this L1 is pid 1 in its own).
absl::StatusOr<pid_t> HostPid() {
  char buffer[32];
  const ssize_t n = readlink("/proc/self", buffer, sizeof(buffer) - 1);
  if (n <= 0) return LastErrnoStatus("readlink /proc/self");
  pid_t pid = 0;
  if (!absl::SimpleAtoi(absl::string_view(buffer, static_cast<size_t>(n)), &pid) || pid <= 0) {
    return absl::InternalError("/proc/self is not a pid");
  }
  return pid;
}

absl::Status RaiseLimit(int resource, rlim_t value) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0) return LastErrnoStatus("getrlimit");
  if (limit.rlim_cur >= value && limit.rlim_max >= value) return absl::OkStatus();
  limit.rlim_cur = std::max(limit.rlim_cur, value);
  limit.rlim_max = std::max(limit.rlim_max, value);
  if (setrlimit(resource, &limit) != 0) return LastErrnoStatus("setrlimit");
  return absl::OkStatus();
}

absl::Status SetLimit(int resource, rlim_t value, const char* what) {
  const rlimit limit{value, value};
  if (setrlimit(resource, &limit) != 0) return LastErrnoStatus(what);
  return absl::OkStatus();
}

// Empties the bounding and ambient sets. Needs CAP_SETPCAP: before the uid changes (which clears
// the effective set when it leaves root).
absl::Status DropBoundingSet() {
  for (int cap = 0; cap < 64; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return LastErrnoStatus(absl::StrCat("dropping capability ", cap, " from the bounding set"));
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return LastErrnoStatus("clearing the ambient capabilities");
  }
  return absl::OkStatus();
}

// Empties the effective, permitted and inheritable sets (after the uid change, which needs
// CAP_SETUID).
absl::Status ClearCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) return LastErrnoStatus("capset");
  if (syscall(SYS_capget, &header, data) != 0) return LastErrnoStatus("capget");
  for (const auto& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      return absl::InternalError("capabilities remain after capset");
    }
  }
  return absl::OkStatus();
}

// New fds may only take numbers below this (the inherited ones, from 100 up, stay usable; the L1
// opens nothing after it is confined, and seccomp refuses the calls that would).
constexpr rlim_t kL1MaxFds = 32;
// The main thread and the heartbeat thread; ThreadSanitizer's runtime starts a third.
#if defined(__SANITIZE_THREAD__)
constexpr rlim_t kL1MaxThreads = 3;
#else
constexpr rlim_t kL1MaxThreads = 2;
#endif

}  // namespace

absl::StatusOr<uint32_t> ApplyL1Sandbox(const L1SandboxOptions& options,
                                        ExitChannelHeader& header) {
  header.sandbox_layers.store(0, std::memory_order_release);
  if (options.level == L1SandboxLevel::kOff) return 0u;
  KeepSanitizerReportsReachable();
  const bool strict = options.level == L1SandboxLevel::kStrict;
  uint32_t layers = 0;
  // Each step: `ok` applies the layer; an error is fatal when strict. In best-effort mode the
  // layer is just missing from the report (L0 prints one line for all its L1s).
  auto step = [&](uint32_t layer, const absl::Status& status) -> absl::Status {
    if (status.ok()) {
      layers |= layer;
      return absl::OkStatus();
    }
    if (strict) {
      return absl::FailedPreconditionError(
          absl::StrCat("--l1-sandbox strict: ", SandboxLayerNames(layer), ": ", status.message()));
    }
    return absl::OkStatus();
  };
  // Lazily initialised state that would read files later: absl's clock calibration, the CPU
  // count of base/spin_wait.h (/sys/devices/system/cpu/online).
  (void)absl::Now();
  (void)SpinningHelps();
  absl::StatusOr<pid_t> host_pid = HostPid();
  if (options.realtime) {
    // Still root in the host's user namespace (if rehome is): raising hard limits is possible
    // only now. Failure just leaves the L1 at normal priority, as without CAP_SYS_NICE before.
    (void)RaiseLimit(RLIMIT_RTPRIO, 1);
    (void)RaiseLimit(RLIMIT_NICE, 30);  // nice -10 = 20 - 30
  }
  // Namespaces: the user namespace first (its capabilities allow joining the others, which it
  // owns); joining the mount namespace makes its empty root this process's root and cwd.
  if (!options.namespace_fds.empty()) {
    static constexpr std::pair<int, uint32_t> kOrder[] = {
        {CLONE_NEWUSER, kLayerUserNamespace},
        {CLONE_NEWNS, kLayerMountNamespace | kLayerEmptyRoot},
        {CLONE_NEWNET, kLayerNetNamespace},
        {CLONE_NEWIPC, kLayerIpcNamespace},
        {CLONE_NEWUTS, kLayerUtsNamespace}};
    for (size_t i = 0; i < std::size(kOrder) && i < options.namespace_fds.size(); ++i) {
      const int fd = options.namespace_fds[i];
      const absl::Status joined =
          setns(fd, kOrder[i].first) == 0 ? absl::OkStatus() : LastErrnoStatus("setns");
      close(fd);
      RETURN_IF_ERROR(step(kOrder[i].second, joined));
    }
  } else if (!options.empty_root.empty()) {
    absl::Status rooted = chroot(options.empty_root.c_str()) == 0 && chdir("/") == 0
                              ? absl::OkStatus()
                              : LastErrnoStatus(absl::StrCat("chroot ", options.empty_root));
    RETURN_IF_ERROR(step(kLayerEmptyRoot, rooted));
  }
  if (strict && options.namespace_fds.empty()) {
    return absl::FailedPreconditionError("--l1-sandbox strict: no namespaces to join");
  }
  RETURN_IF_ERROR(step(kLayerPidNamespace, getpid() == 1
                                               ? absl::OkStatus()
                                               : absl::UnavailableError("not started in one")));
  const absl::Status bounding = DropBoundingSet();
  // An unprivileged uid/gid: its own when rehome runs as root, else rehome's (already not root).
  if (options.id_base.has_value()) {
    absl::Status ids = host_pid.status();
    if (ids.ok()) {
      const uid_t id = *options.id_base + static_cast<uint32_t>(*host_pid);
      if (setgroups(0, nullptr) != 0) {
        ids = LastErrnoStatus("setgroups");
      } else if (setresgid(id, id, id) != 0) {
        ids = LastErrnoStatus("setresgid");
      } else if (setresuid(id, id, id) != 0) {
        ids = LastErrnoStatus("setresuid");
      }
    }
    RETURN_IF_ERROR(step(kLayerUnprivilegedId, ids));
  } else {
    RETURN_IF_ERROR(step(kLayerUnprivilegedId, geteuid() != 0
                                                   ? absl::OkStatus()
                                                   : absl::FailedPreconditionError("still root")));
  }
  RETURN_IF_ERROR(step(kLayerNoCapabilities, bounding.ok() ? ClearCapabilities() : bounding));
  // No core dump (it would hold guest RAM); /proc/PID belongs to root.
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  RETURN_IF_ERROR(step(kLayerNoNewPrivs, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                                             ? absl::OkStatus()
                                             : LastErrnoStatus("PR_SET_NO_NEW_PRIVS")));
  // No new fds, no core file, one more thread (the heartbeat) and no process: with its own uid
  // only (a uid shared with rehome would count rehome's threads too).
  absl::Status limits = SetLimit(RLIMIT_NOFILE, kL1MaxFds, "RLIMIT_NOFILE");
  if (limits.ok()) limits = SetLimit(RLIMIT_CORE, 0, "RLIMIT_CORE");
  if (limits.ok() && options.id_base.has_value())
    limits = SetLimit(RLIMIT_NPROC, kL1MaxThreads, "RLIMIT_NPROC");
  RETURN_IF_ERROR(step(kLayerRlimits, limits));
  // Last: the allow-list (everything above needs calls it refuses).
  g_header = &header;
  struct sigaction action {};
  action.sa_sigaction = OnSigsys;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  absl::Status filter = sigaction(SIGSYS, &action, nullptr) == 0
                            ? LoadL1SeccompFilter(getpid())
                            : LastErrnoStatus("sigaction SIGSYS");
  RETURN_IF_ERROR(step(kLayerSeccomp, filter));
  header.sandbox_layers.store(layers, std::memory_order_release);
  return layers;
}

bool L0Gone(int lifeline_fd, pid_t parent_pid) {
  if (lifeline_fd < 0) return parent_pid != 0 && getppid() != parent_pid;
  pollfd fd{lifeline_fd, POLLIN, 0};
  return poll(&fd, 1, 0) == 1 && (fd.revents & (POLLHUP | POLLERR | POLLIN)) != 0;
}

void KillL1Now() {
  syscall(SYS_exit_group, 128 + SIGKILL);
  __builtin_unreachable();
}

}  // namespace rehome
