// recovery/l1_process.cc: L1Process.
#include "recovery/l1_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"

extern char** environ;

namespace rehome {
namespace {

constexpr int kFirstChildFd = 100;

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; the system calls are stable ABI.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

// Failover steps wait for another process (the kernel reaping a killed L1, a standby taking
// over) that usually finishes within a millisecond. Sleeping would add a wake-up of this
// (normal-priority) thread on a core busy with vCPUs, which is what made the slow tail of
// failover latency; spinning for that long costs CPU only during a failover.
constexpr absl::Duration kFailoverSpin = absl::Milliseconds(2);

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
  ASSIGN_OR_RETURN(ExitChannel channel,
                   ExitChannel::Create(static_cast<uint32_t>(spec.cpus + (spec.console ? 1 : 0))));
  std::unique_ptr<L1Process> l1(new L1Process(id, std::move(channel)));
  ExitChannel& ch = l1->channel_;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Targets start above every source fd, so no dup2 overwrites a source still to be passed.
  int highest_source = spec.journal_fd;
  for (const GuestMemory::RegionDesc& d : spec.ram) highest_source = std::max(highest_source, d.fd);
  highest_source =
      std::max({highest_source, ch.memfd(), ch.request_eventfd(), ch.ack_eventfd(), spec.disk_fd,
                spec.blk_notify_fd, spec.blk_irq_fd, spec.console_notify_fd, spec.console_irq_fd,
                spec.console_ring_fd, spec.console_out_fd, spec.effects_fd});
  for (uint32_t i = 0; i < ch.slot_count(); ++i) {
    highest_source = std::max(highest_source, ch.response_eventfd(i));
  }
  int next_fd = std::max(kFirstChildFd, highest_source + 1);
  auto pass = [&](int fd) {
    const int target = next_fd++;
    posix_spawn_file_actions_adddup2(&actions, fd, target);
    return absl::StrCat(target);
  };
  std::vector<std::string> ram;
  for (const GuestMemory::RegionDesc& d : spec.ram) {
    ram.push_back(absl::StrCat(d.gpa, ":", d.size, ":", pass(d.fd)));
  }
  std::vector<std::string> responses;
  for (uint32_t i = 0; i < ch.slot_count(); ++i) responses.push_back(pass(ch.response_eventfd(i)));
  std::vector<std::string> args = {spec.binary,       "__l1",
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
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc =
      posix_spawn(&l1->pid_, spec.binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoToStatus(rc, absl::StrCat("starting L1 ", spec.binary));
  l1->started_ = absl::Now();
  l1->pidfd_.Reset(PidfdOpen(l1->pid_));
  if (!l1->pidfd_.valid()) {
    const absl::Status status = LastErrnoStatus("pidfd_open");
    kill(l1->pid_, SIGKILL);
    waitpid(l1->pid_, nullptr, 0);
    return status;
  }
  return l1;
}

L1Process::~L1Process() { Fence(); }

absl::Status L1Process::WaitFor(const std::function<bool()>& done, absl::Duration timeout,
                                const char* what) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return absl::OkStatus();
    if (Exited()) {
      return absl::UnavailableError(absl::StrCat("L1 pid ", pid_, " died while ", what));
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
  return WaitFor([this] { return state() == L1State::kStandby; }, timeout, "starting");
}

absl::Status L1Process::Promote(uint64_t generation, absl::Duration timeout) {
  channel_.header().promote_request.store(generation, std::memory_order_release);
  channel_.SignalRequest();
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

void L1Process::Fence() {
  absl::MutexLock lock(&mu_);
  if (fenced_ || pid_ <= 0) return;
  PidfdSendSignal(pidfd_.get(), SIGKILL);
  siginfo_t info{};
  const int pidfd = pidfd_.get();
  const bool reaped = SpinUntil(
      [pidfd, &info] {
        info.si_pid = 0;  // WNOHANG leaves it 0 while the child still runs
        return waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) == 0 &&
               info.si_pid != 0;
      },
      kFailoverSpin);
  while (!reaped && waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  fenced_ = true;
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

bool L1Process::Exited() const {
  pollfd fd{pidfd_.get(), POLLIN, 0};
  return poll(&fd, 1, 0) == 1;
}

}  // namespace rehome
