// recovery/l1_process.cc: L1Process.
#include "recovery/l1_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/death_notice.h"
#include "base/errno_status.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "recovery/l1_confinement.h"
#include "recovery/l1_spawn.h"

namespace rehome {
namespace {

constexpr int kFirstChildFd = 100;

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; the system calls are stable ABI.
int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

// Failover steps wait for another process (the kernel reaping a killed L1, a standby taking
// over) that usually finishes within a millisecond. Sleeping would add a wake-up of this
// (normal-priority) thread on a core busy with vCPUs, which is what made the slow tail of
// failover latency; spinning for that long costs CPU only during a failover.
constexpr absl::Duration kFailoverSpin = absl::Milliseconds(2);

// Whether clone(CLONE_NEWPID) failed on this host, and why (asked once per process).
absl::Mutex pid_namespace_mu(absl::kConstInit);
std::string* pid_namespace_error ABSL_GUARDED_BY(pid_namespace_mu) = nullptr;

bool PidNamespaceRefused() {
  absl::MutexLock lock(&pid_namespace_mu);
  return pid_namespace_error != nullptr;
}

void NotePidNamespaceRefused(std::string why) {
  absl::MutexLock lock(&pid_namespace_mu);
  if (pid_namespace_error == nullptr) pid_namespace_error = new std::string(std::move(why));
}

// One line per process and set of missing layers (standbys start often).
void ReportMissingLayers(uint32_t missing) {
  static absl::Mutex mu(absl::kConstInit);
  static std::vector<uint32_t>* reported = new std::vector<uint32_t>();
  std::string reasons;
  {
    absl::MutexLock lock(&mu);
    if (std::find(reported->begin(), reported->end(), missing) != reported->end()) return;
    reported->push_back(missing);
  }
  const L1Confinement& host = HostL1Confinement();
  if (!host.namespaces_error.empty()) {
    absl::StrAppend(&reasons, "; namespaces: ", host.namespaces_error);
  }
  if (!host.empty_root_error.empty()) {
    absl::StrAppend(&reasons, "; empty root: ", host.empty_root_error);
  }
  {
    absl::MutexLock lock(&pid_namespace_mu);
    if (pid_namespace_error != nullptr) {
      absl::StrAppend(&reasons, "; pid namespace: ", *pid_namespace_error);
    }
  }
  std::fprintf(stderr,
               "rehome: L1 sandbox (best-effort): not applied: %s%s (--l1-sandbox strict "
               "names the first that fails)\n",
               SandboxLayerNames(missing).c_str(), reasons.c_str());
}

// "seccomp: system call #41 is not allowed" (what an L1's SIGSYS handler can write) becomes
// "seccomp: system call socket (#41) is not allowed".
std::string NameDeniedSyscall(const std::string& note) {
  if (note.rfind(kSeccompNotePrefix, 0) != 0) return note;
  const size_t digits_at = kSeccompNotePrefix.size();
  size_t end = digits_at;
  while (end < note.size() && end < digits_at + 9 && note[end] >= '0' && note[end] <= '9') ++end;
  int nr = -1;
  if (end == digits_at || !absl::SimpleAtoi(note.substr(digits_at, end - digits_at), &nr)) {
    return note;
  }
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (name == nullptr) return note;
  std::string out = absl::StrCat("seccomp: system call ", name, " (#", nr, ")", note.substr(end));
  free(name);
  return out;
}

}  // namespace

absl::Status CheckL1Binary(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("L1 binary ", path, ": ", ErrnoToStatus(errno, "stat").message()));
  }
  char magic[4] = {};
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0 || !fd.valid() ||
      read(fd.get(), magic, sizeof(magic)) != sizeof(magic) ||
      std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("L1 binary ", path, ": not an executable file"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<L1Process>> L1Process::Spawn(const L1LaunchSpec& spec, uint64_t id) {
  const bool sandboxed = spec.sandbox != L1SandboxLevel::kOff;
  const bool strict = spec.sandbox == L1SandboxLevel::kStrict;
  static const L1Confinement kNone;
  const L1Confinement& host = sandboxed ? HostL1Confinement() : kNone;
  const int lifeline = L1Lifeline();
  if (strict && host.namespace_fds.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--l1-sandbox strict: this host gives L1s no namespaces: ", host.namespaces_error));
  }
  ASSIGN_OR_RETURN(
      ExitChannel channel,
      ExitChannel::Create(static_cast<uint32_t>(spec.cpus + (spec.HasHostSlot() ? 1 : 0))));
  std::unique_ptr<L1Process> l1(new L1Process(id, std::move(channel), spec.sandbox));
  ExitChannel& ch = l1->channel_;

  // Targets start above every source fd, so no dup2 overwrites a source still to be passed.
  std::vector<int> sources = {spec.journal_fd,
                              ch.memfd(),
                              ch.request_eventfd(),
                              ch.ack_eventfd(),
                              spec.disk_fd,
                              spec.blk_notify_fd,
                              spec.blk_irq_fd,
                              spec.console_notify_fd,
                              spec.console_irq_fd,
                              spec.console_ring_fd,
                              spec.console_out_fd,
                              spec.net_rx_ring_fd,
                              spec.net_tx_ring_fd,
                              spec.net_notify_fd,
                              spec.net_irq_fd,
                              spec.net_kick_fd,
                              spec.net_wake_fd,
                              spec.effects_fd,
                              lifeline};
  for (const GuestMemory::RegionDesc& d : spec.ram) sources.push_back(d.fd);
  for (uint32_t i = 0; i < ch.slot_count(); ++i) sources.push_back(ch.response_eventfd(i));
  for (const UniqueFd& fd : host.namespace_fds) sources.push_back(fd.get());
  SpawnRequest request;
  request.binary = spec.binary;
  int next_fd = std::max(kFirstChildFd, *std::max_element(sources.begin(), sources.end()) + 1);
  auto pass = [&](int fd) {
    request.fds.push_back({fd, next_fd});
    return absl::StrCat(next_fd++);
  };
  std::vector<std::string> ram;
  for (const GuestMemory::RegionDesc& d : spec.ram) {
    ram.push_back(absl::StrCat(d.gpa, ":", d.size, ":", pass(d.fd)));
  }
  std::vector<std::string> responses;
  for (uint32_t i = 0; i < ch.slot_count(); ++i) responses.push_back(pass(ch.response_eventfd(i)));
  std::vector<std::string>& args = request.argv;
  args = {spec.binary,       "__l1",
          "--cpus",          absl::StrCat(spec.cpus),
          "--ram",           absl::StrJoin(ram, ","),
          "--channel-fd",    pass(ch.memfd()),
          "--request-efd",   pass(ch.request_eventfd()),
          "--ack-efd",       pass(ch.ack_eventfd()),
          "--response-efds", absl::StrJoin(responses, ","),
          "--journal-fd",    pass(spec.journal_fd),
          "--heartbeat-ms",  absl::StrCat(spec.heartbeat_ms),
          "--realtime",      spec.realtime ? "1" : "0",
          "--parent-pid",    absl::StrCat(getpid())};
  if (lifeline >= 0) {
    args.push_back("--lifeline-fd");
    args.push_back(pass(lifeline));
  }
  if (spec.console) {
    args.push_back("--console");
    args.push_back("1");
  }
  if (spec.disk_fd >= 0) {
    args.push_back("--disk-fd");
    args.push_back(pass(spec.disk_fd));
    args.push_back("--disk-read-only");
    args.push_back(spec.disk_read_only ? "1" : "0");
  }
  if (spec.console && spec.console_ring_fd >= 0 && spec.console_out_fd >= 0) {
    args.push_back("--console-ring-fd");
    args.push_back(pass(spec.console_ring_fd));
    args.push_back("--console-out-fd");
    args.push_back(pass(spec.console_out_fd));
    if (spec.console_notify_fd >= 0 && spec.console_irq_fd >= 0) {
      args.push_back("--console-notify-fd");
      args.push_back(pass(spec.console_notify_fd));
      args.push_back("--console-irq-fd");
      args.push_back(pass(spec.console_irq_fd));
    }
  }
  // (A replica gets only the receive ring: its transmitted frames are effects.)
  if (spec.net_mac.has_value() && spec.net_rx_ring_fd >= 0 &&
      (spec.net_tx_ring_fd >= 0 || spec.effects_fd >= 0)) {
    args.push_back("--net-mac");
    args.push_back(virtio::FormatMac(*spec.net_mac));
    for (const auto& [option, fd] :
         {std::pair{"--net-rx-ring-fd", spec.net_rx_ring_fd},
          std::pair{"--net-tx-ring-fd", spec.net_tx_ring_fd},
          std::pair{"--net-notify-fd", spec.net_notify_fd},
          std::pair{"--net-irq-fd", spec.net_irq_fd}, std::pair{"--net-kick-fd", spec.net_kick_fd},
          std::pair{"--net-wake-fd", spec.net_wake_fd}}) {
      if (fd < 0) continue;
      args.push_back(option);
      args.push_back(pass(fd));
    }
  }
  if (spec.blk_notify_fd >= 0 && spec.blk_irq_fd >= 0) {
    args.push_back("--blk-notify-fd");
    args.push_back(pass(spec.blk_notify_fd));
    args.push_back("--blk-irq-fd");
    args.push_back(pass(spec.blk_irq_fd));
  }
  if (spec.effects_fd >= 0) {  // a replica of verified execution
    args.push_back("--verify");
    args.push_back("1");
    args.push_back("--effects-fd");
    args.push_back(pass(spec.effects_fd));
  }
  if (spec.oracle.has_value()) {
    args.push_back("--oracle");
    args.push_back(
        absl::StrCat(spec.oracle->seed, ":", spec.oracle->steps, ":", spec.oracle->report_every));
  }
  if (sandboxed) {
    args.push_back("--sandbox");
    args.push_back(std::string(L1SandboxLevelName(spec.sandbox)));
    if (!host.namespace_fds.empty()) {
      std::vector<std::string> ns;
      for (const UniqueFd& fd : host.namespace_fds) ns.push_back(pass(fd.get()));
      args.push_back("--sandbox-ns-fds");
      args.push_back(absl::StrJoin(ns, ","));
    } else if (!host.empty_root.empty()) {
      args.push_back("--sandbox-root");
      args.push_back(host.empty_root);
    }
    if (host.per_l1_ids) {
      args.push_back("--sandbox-id-base");
      args.push_back(absl::StrCat(kL1IdBase));
    }
  }
  // Its own pid namespace, unless the host refused one before (asked once per process).
  request.new_pid_namespace = sandboxed && !PidNamespaceRefused();
  request.cpus = spec.start_cpus;
  absl::StatusOr<SpawnedChild> child = SpawnChild(request);
  if (!child.ok() && request.new_pid_namespace && !absl::IsNotFound(child.status())) {
    if (strict) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--l1-sandbox strict: no pid namespace for the L1: ", child.status().message()));
    }
    NotePidNamespaceRefused(std::string(child.status().message()));
    request.new_pid_namespace = false;
    child = SpawnChild(request);
  }
  if (!child.ok()) return child.status();
  l1->pid_ = child->pid;
  l1->pidfd_ = std::move(child->pidfd);
  l1->realtime_ = spec.realtime;
  l1->started_on_cpus_ = !spec.start_cpus.empty();
  // A confined L1 cannot raise its own priority: L0 does, when it wakes it (l1_scheduling.h).
  if (sandboxed) l1->channel_.set_l1_thread(l1->pid_);
  l1->started_ = absl::Now();
  return l1;
}

L1Process::~L1Process() {
  Fence();
  Reap(/*block=*/true);
}

absl::Status L1Process::WaitFor(const std::function<bool()>& done, absl::Duration timeout,
                                const char* what) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return absl::OkStatus();
    if (Exited()) {
      const std::string note = reported_failure();
      return absl::UnavailableError(
          absl::StrCat("L1 pid ", pid_, " died while ", what, note.empty() ? "" : ": ", note));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("L1 pid ", pid_, " timed out ", what));
    }
    pollfd fds[2] = {{channel_.ack_eventfd(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}};
    poll(fds, 2, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 10)));
    ExitChannel::Drain(channel_.ack_eventfd());
  }
}

absl::Status L1Process::WaitReady(absl::Duration timeout) {
  RETURN_IF_ERROR(WaitFor([this] { return state() == L1State::kStandby; }, timeout, "starting"));
  LiftStartCpus();
  if (sandbox_ == L1SandboxLevel::kOff) return absl::OkStatus();
  GiveSchedulingToThreads();
  const uint32_t missing = kAllSandboxLayers & ~sandbox_layers();
  if (missing == 0) return absl::OkStatus();
  if (sandbox_ == L1SandboxLevel::kStrict) {
    return absl::FailedPreconditionError(absl::StrCat("--l1-sandbox strict: L1 pid ", pid_,
                                                      " reports no ", SandboxLayerNames(missing)));
  }
  ReportMissingLayers(missing);
  return absl::OkStatus();
}

namespace {
// Calls `apply` with the id of each thread of process `pid` (none when it is gone).
void ForEachThread(pid_t pid, const std::function<void(pid_t)>& apply) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return;
  while (const dirent* e = readdir(tasks)) {
    pid_t tid = 0;
    if (absl::SimpleAtoi(e->d_name, &tid) && tid > 0) apply(tid);
  }
  closedir(tasks);
}
}  // namespace

void L1Process::YieldTeardown() {
  // Every thread: the one that drops the last reference to the memory does the teardown.
  const sched_param idle{.sched_priority = 0};
  ForEachThread(pid_, [&](pid_t tid) { (void)sched_setscheduler(tid, SCHED_IDLE, &idle); });
}

void L1Process::LiftStartCpus() {
  cpu_set_t cpus;
  if (!started_on_cpus_ || sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return;
  ForEachThread(pid_, [&](pid_t tid) { (void)sched_setaffinity(tid, sizeof(cpus), &cpus); });
  started_on_cpus_ = false;
}

void L1Process::GiveSchedulingToThreads() {
  // What the L1 did for itself before it was confined (l1_scheduling.h): nice -10 for every
  // thread, then SCHED_FIFO 1 (the nice value stays for when it drops to SCHED_OTHER).
  const sched_param fifo{.sched_priority = 1};
  ForEachThread(pid_, [&](pid_t tid) {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(tid), -10);
    if (realtime_) (void)sched_setscheduler(tid, SCHED_FIFO, &fifo);
  });
}

std::string L1Process::reported_failure() const {
  return NameDeniedSyscall(channel_.ReportedFailure());
}

std::string L1Process::ExitDescription() const {
  siginfo_t info{};
  if (waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return "exited";
  }
  if (info.si_code == CLD_EXITED) return absl::StrCat("exited with status ", info.si_status);
  const char* name = strsignal(info.si_status);
  return absl::StrCat("killed by signal ", info.si_status, " (", name != nullptr ? name : "?", ")");
}

absl::Status L1Process::Promote(uint64_t generation, absl::Duration timeout) {
  channel_.header().promote_request.store(generation, std::memory_order_release);
  channel_.WakeL1ForControl();
  if (SpinUntil(
          [this, generation] {
            return channel_.header().promote_ack.load(std::memory_order_acquire) == generation;
          },
          kFailoverSpin)) {
    return absl::OkStatus();
  }
  return WaitFor(
      [this, generation] {
        return channel_.header().promote_ack.load(std::memory_order_acquire) == generation;
      },
      timeout, "taking over");
}

namespace {
// How long Fence waits for the kernel to finish tearing down a dead L1 (see Fence).
constexpr absl::Duration kTeardownWait = absl::Milliseconds(2);
}  // namespace

void L1Process::Fence() {
  absl::MutexLock lock(&mu_);
  if (fenced_ || pid_ <= 0) return;
  PidfdSendSignal(pidfd_.get(), SIGKILL);
  // Done when the exit thread is dead: the death notice (marked before the kernel tears the
  // process down) or, for an L1 that never claimed it, the reap.
  std::atomic<uint32_t>* notice = death_notice();
  const int pidfd = pidfd_.get();
  auto reap_now = [pidfd] {
    siginfo_t info{};  // WNOHANG leaves si_pid 0 while the child still runs
    return waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) == 0 &&
           info.si_pid != 0;
  };
  const bool claimed = notice->load(std::memory_order_acquire) != 0;
  bool reaped = false;
  const bool dead = SpinUntil(
      [&] { return (claimed && DeathNoticed(*notice)) || (reaped = reap_now()); }, kFailoverSpin);
  if (!dead && claimed) {
    while (!AwaitDeathNotice(notice, absl::Milliseconds(1)) && !(reaped = reap_now())) {
    }
  } else if (!dead) {
    siginfo_t info{};
    while (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0 && errno == EINTR) {
    }
    reaped = true;
  }
  // The exit thread is dead; the kernel may still be tearing the process down. A short
  // teardown is waited for: overlapping it with the promotion and the guest's first exits made
  // the client's interruption about a millisecond longer here (docs/benchmarks.md, section 18).
  // A long one (an L1 that touched much guest RAM: tens of milliseconds per GiB) is not: it
  // goes on at SCHED_IDLE (not before the exit thread is dead: a killed but still running L1
  // could wait long for a CPU to die on), and the monitor reaps the process later.
  if (!reaped) {
    pollfd fd{pidfd, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(kTeardownWait))) == 1) {
      reaped = reap_now();
    }
  }
  reaped_ = reaped;
  fenced_ = true;
  if (!reaped_) YieldTeardown();
}

bool L1Process::Reap(bool block) {
  absl::MutexLock lock(&mu_);
  if (reaped_ || pid_ <= 0) return true;
  siginfo_t info{};
  const int flags = WEXITED | (block ? 0 : WNOHANG);
  int r;
  while ((r = waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, flags)) != 0 &&
         errno == EINTR) {
  }
  // ECHILD: already collected elsewhere (or never ours): nothing left to wait for.
  reaped_ = (r == 0 && info.si_pid != 0) || (r != 0 && errno == ECHILD);
  return reaped_;
}

void L1Process::Signal(int signal) {
  {
    absl::MutexLock lock(&mu_);
    if (fenced_) return;
  }
  // Sent without the lock: the sender may be a normal-priority thread (fault injection, QMP),
  // and a failover thread that fences this L1 must not wait for it to be scheduled again
  // (measured: 1-4 ms fence outliers on a host whose CPUs run vCPUs). The pidfd stays open
  // for this object's life, so a signal racing the fence reaches the dead process or nothing:
  // never another process.
  PidfdSendSignal(pidfd_.get(), signal);
}

void L1Process::RequestFault(L1Fault fault, uint32_t after_exits) {
  channel_.header().fault_request.store(FaultRequest(fault, after_exits),
                                        std::memory_order_release);
  channel_.SignalRequest();
}

bool L1Process::ExitThreadDied() const {
  return DeathNoticed(channel_.header().exit_thread_notice);
}

absl::Status L1Process::StartDeathBell() {
  if (death_bell_.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(DeathNoticeBell bell, DeathNoticeBell::Start(death_notice()));
  death_bell_.emplace(std::move(bell));
  return absl::OkStatus();
}

bool L1Process::Exited() const {
  if (ExitThreadDied()) return true;
  pollfd fd{pidfd_.get(), POLLIN, 0};
  return poll(&fd, 1, 0) == 1;
}

std::string L1Process::CrashCause() const {
  const std::string note = reported_failure();
  return note.empty() ? absl::StrCat("crash: L1 pid ", pid_, " ", ExitDescription())
                      : absl::StrCat("self-reported failure: ", note);
}

}  // namespace rehome
