// vmm/l1/l1_seccomp.cc: LoadL1SeccompFilter.
#include "vmm/l1/l1_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace rehome {
namespace {

// Called without argument filters. Grouped by what needs them.
constexpr int kAllowed[] = {
    // The exit channel, eventfds, the console ring's wake-up, logging to stderr, the disk image.
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fsync),
    SCMP_SYS(lseek),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(close),
    // Waiting: ppoll on the request eventfd and ioeventfds; heartbeat sleeps; futexes.
    SCMP_SYS(ppoll),
    SCMP_SYS(poll),
    SCMP_SYS(futex),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(sched_yield),
    SCMP_SYS(restart_syscall),
    // Memory (mmap and mprotect: below, without PROT_EXEC).
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(madvise),
    SCMP_SYS(mremap),
    // Identity and CPU placement queries.
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getppid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getcpu),
    // Threads (the heartbeat thread) and signals (abort, sanitizers).
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

}  // namespace

absl::Status LoadL1SeccompFilter(pid_t self_pid) {
  const std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_TRAP),
                                                             seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  scmp_filter_ctx c = ctx.get();
  int rc = 0;
  auto add = [&](uint32_t action, int nr, unsigned count, const scmp_arg_cmp* args) {
    if (rc == 0) rc = seccomp_rule_add_array(c, action, nr, count, args);
  };
  // A call through another ABI (int 0x80, x32) is not in this list at all: kill.
  rc = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0) rc = seccomp_attr_set(c, SCMP_FLTATR_CTL_OPTIMIZE, 2);  // a binary tree
  for (int nr : kAllowed) add(SCMP_ACT_ALLOW, nr, 0, nullptr);
  // No executable memory may appear: W^X for every mapping made from here on.
  const scmp_arg_cmp no_exec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
  add(SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, &no_exec);
  add(SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, &no_exec);
  // Scheduling of the calling thread only (L1Scheduling: policy, nice and time slice; CPUs).
  const scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, 0);
  for (int nr :
       {SCMP_SYS(sched_setscheduler), SCMP_SYS(sched_setattr), SCMP_SYS(sched_getscheduler),
        SCMP_SYS(sched_getparam), SCMP_SYS(sched_setaffinity), SCMP_SYS(sched_getaffinity)}) {
    add(SCMP_ACT_ALLOW, nr, 1, &self);
  }
  const scmp_arg_cmp priority[] = {SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS), SCMP_A1(SCMP_CMP_EQ, 0)};
  add(SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2, priority);
  add(SCMP_ACT_ALLOW, SCMP_SYS(getpriority), 2, priority);
  // Signals to this process only (abort, raise).
  const scmp_arg_cmp own = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(self_pid));
  add(SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &own);
  // The SIGSYS handler stays: replacing it is fatal at once.
  const scmp_arg_cmp sigsys = SCMP_A0(SCMP_CMP_EQ, SIGSYS);
  const scmp_arg_cmp not_sigsys = SCMP_A0(SCMP_CMP_NE, SIGSYS);
  add(SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1, &not_sigsys);
  add(SCMP_ACT_KILL_PROCESS, SCMP_SYS(rt_sigaction), 1, &sigsys);
  // Threads, never processes: every thread flag set, no namespace flag. glibc tries clone3 first
  // (its argument is a pointer a filter cannot read): ENOSYS sends it back to clone.
  constexpr scmp_datum_t kThread =
      CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  constexpr scmp_datum_t kNamespaces = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                       CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
  const scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, kThread | kNamespaces, kThread);
  add(SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &thread);
  add(SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, nullptr);
  // The disk model reads its image's flags (O_DIRECT); nothing may change an fd's flags.
  const scmp_arg_cmp getfl = SCMP_A1(SCMP_CMP_EQ, F_GETFL);
  add(SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &getfl);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer builds: a sanitizer's report reads /proc/self/maps and the binary to symbolize its
  // stack. The root is empty anyway, so path lookups fail with ENOENT instead of trapping (which
  // would cut the report short); everything else is as in a normal build.
  for (int nr : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
                 SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(stat), SCMP_SYS(lstat)}) {
    add(SCMP_ACT_ERRNO(ENOENT), nr, 0, nullptr);
  }
  // UBSan's vptr check asks whether an object's memory is readable by writing it into a pipe.
  add(SCMP_ACT_ALLOW, SCMP_SYS(pipe2), 0, nullptr);
  // ASan reads a new thread's stack bounds with pthread_getattr_np, which asks for the thread's
  // CPU affinity by its thread id.
  add(SCMP_ACT_ALLOW, SCMP_SYS(sched_getaffinity), 0, nullptr);
#endif
  // stdio asks whether stderr is a terminal.
  const scmp_arg_cmp tcgets = SCMP_A1(SCMP_CMP_EQ, TCGETS);
  add(SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &tcgets);
  if (rc != 0) return ErrnoToStatus(-rc, "building the seccomp filter");
  rc = seccomp_load(c);
  if (rc != 0) return ErrnoToStatus(-rc, "loading the seccomp filter");
  return absl::OkStatus();
}

}  // namespace rehome
