// recovery/l1_spawn.cc: SpawnChild.
#include "recovery/l1_spawn.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/mapped_region.h"

extern char** environ;

namespace rehome {
namespace {

constexpr size_t kChildStackBytes = 64 << 10;

using CloneFunction = int (*)(int (*)(void*), void*, int, void*, ...);

// glibc's clone. ThreadSanitizer's clone interceptor treats every clone as a fork and resets its
// state in the child, which with CLONE_VM is L0's own memory: in TSan builds, call around it.
CloneFunction LibcClone() {
#if defined(__SANITIZE_THREAD__)
  static const CloneFunction libc_clone = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    void* symbol = libc != nullptr ? dlsym(libc, "clone") : nullptr;
    return symbol != nullptr ? reinterpret_cast<CloneFunction>(symbol) : &clone;
  }();
  return libc_clone;
#else
  return &clone;
#endif
}

// What the child needs, prepared by the parent (the child must not allocate).
struct ChildContext {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const ChildFd* fds = nullptr;
  size_t fd_count = 0;
  unsigned first_target = 3;  // [first_target, end_target): the dup2 targets
  unsigned end_target = 3;
  // Written by the child when a step fails (the parent reads them after the clone returns).
  int error = 0;
  const char* step = nullptr;
};

[[noreturn]] __attribute__((no_sanitize("address", "undefined"))) void ChildFail(ChildContext* c,
                                                                                 const char* step) {
  c->error = errno;
  c->step = step;
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

// The child, on its own stack and in L0's memory until execve: system calls only (no locks, no
// allocation, no instrumented code). syscall() sets errno in the TLS of the L0 thread that
// cloned it, which is suspended (CLONE_VFORK) and does not read errno after a successful clone.
__attribute__((no_sanitize("address", "undefined"))) int ChildMain(void* arg) {
  auto* c = static_cast<ChildContext*>(arg);
  for (size_t i = 0; i < c->fd_count; ++i) {
    if (syscall(SYS_dup2, c->fds[i].source, c->fds[i].target) < 0) ChildFail(c, "dup2");
  }
  const long null_fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) ChildFail(c, "open /dev/null");
  if (syscall(SYS_dup2, null_fd, 0) < 0 || syscall(SYS_dup2, null_fd, 1) < 0) {
    ChildFail(c, "dup2 /dev/null");
  }
  // Nothing of L0's but what was asked for: fds 3 .. below the targets, and above them (fds
  // without O_CLOEXEC would otherwise leak into the L1). ENOSYS (kernel < 5.9): CLOEXEC only.
  if (c->first_target > 3 && syscall(SYS_close_range, 3u, c->first_target - 1, 0u) < 0 &&
      errno != ENOSYS) {
    ChildFail(c, "close_range");
  }
  if (syscall(SYS_close_range, c->end_target, ~0u, 0u) < 0 && errno != ENOSYS) {
    ChildFail(c, "close_range");
  }
  // Whatever thread spawned it (a failover thread is real-time), the child starts at normal
  // priority and a low weight (nice 5, as an L1 that is not ready yet keeps itself): loading a
  // new standby must not take the CPUs from the vCPUs and the active L1 right after a failover.
  // L0 raises an L1 once it is ready (L1Process). Best effort: a failure changes nothing else.
  const sched_param normal{.sched_priority = 0};
  (void)syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &normal);
  (void)syscall(SYS_setpriority, PRIO_PROCESS, 0, 5);
  syscall(SYS_execve, c->path, c->argv, c->envp);
  ChildFail(c, "execve");
}

}  // namespace

absl::StatusOr<SpawnedChild> SpawnChild(const SpawnRequest& request) {
  ChildContext context;
  int highest_source = 2;
  int lowest_target = -1;
  int highest_target = 2;
  for (const ChildFd& fd : request.fds) {
    highest_source = std::max(highest_source, fd.source);
    highest_target = std::max(highest_target, fd.target);
    lowest_target = lowest_target < 0 ? fd.target : std::min(lowest_target, fd.target);
  }
  if (lowest_target >= 0 && lowest_target <= highest_source) {
    return absl::InvalidArgumentError("spawn: fd targets must lie above every source fd");
  }
  context.first_target = static_cast<unsigned>(lowest_target < 0 ? 3 : lowest_target);
  context.end_target = static_cast<unsigned>(highest_target + 1);
  std::vector<std::string> args = request.argv;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  context.path = request.binary.c_str();
  context.argv = argv.data();
  context.envp = environ;
  context.fds = request.fds.data();
  context.fd_count = request.fds.size();

  absl::StatusOr<MappedRegion> stack = MappedRegion::Map(
      kChildStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (!stack.ok()) return stack.status();
  // Every signal stays blocked in the child until exec (it runs in L0's memory, so none of L0's
  // handlers may run there); the raw call blocks glibc's internal signals too.
  sigset_t all, old;
  sigfillset(&all);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
  // The child inherits this thread's CPU affinity: it is cloned (and runs until exec, and loads
  // its binary) on request.cpus from the start. This thread gets its own affinity back after.
  std::optional<cpu_set_t> own_cpus;
  if (!request.cpus.empty()) {
    cpu_set_t mine;
    cpu_set_t wanted;
    CPU_ZERO(&wanted);
    for (int cpu : request.cpus) {
      if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &wanted);
    }
    if (sched_getaffinity(0, sizeof(mine), &mine) == 0 &&
        sched_setaffinity(0, sizeof(wanted), &wanted) == 0) {
      own_cpus = mine;
    }
  }
  int pidfd = -1;
  const int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD |
                    (request.new_pid_namespace ? CLONE_NEWPID : 0);
  const pid_t pid =
      LibcClone()(ChildMain, stack->bytes() + kChildStackBytes, flags, &context, &pidfd);
  const int clone_errno = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
  if (own_cpus.has_value()) (void)sched_setaffinity(0, sizeof(*own_cpus), &*own_cpus);
  if (pid < 0) {
    return ErrnoToStatus(clone_errno,
                         request.new_pid_namespace ? "clone with a new pid namespace" : "clone");
  }
  SpawnedChild child;
  child.pid = pid;
  child.pidfd.Reset(pidfd);
  if (context.error != 0) {
    siginfo_t info{};
    while (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0 && errno == EINTR) {
    }
    return ErrnoToStatus(context.error, absl::StrCat("starting ", request.binary, ": ",
                                                     context.step != nullptr ? context.step : ""));
  }
  return child;
}

}  // namespace rehome
