// bench/injector/traced_thread.cc: TracedThread.
#include "bench/injector/traced_thread.h"

#include <errno.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace rehome::inject {

bool InterruptedCallResult(int64_t value) {
  return value == -EINTR || (value <= -512 && value >= -516);  // -ERESTARTSYS .. RESTARTBLOCK
}

bool InSyscall(const user_regs_struct& regs) {
  // A thread stopped on its way out of a call that has completed (rax holds the result) is about
  // to run its own code; only one our interruption took out of a call still has to go back in.
  return static_cast<int64_t>(regs.orig_rax) >= 0 &&
         InterruptedCallResult(static_cast<int64_t>(regs.rax));
}

absl::StatusOr<TracedThread> TracedThread::Seize(pid_t pid, pid_t tid) {
  TracedThread thread(pid, tid);
  if (ptrace(PTRACE_SEIZE, tid, nullptr, PTRACE_O_TRACESYSGOOD) != 0) {
    return LastErrnoStatus(absl::StrCat("PTRACE_SEIZE thread ", tid, " of pid ", pid));
  }
  thread.attached_ = true;
  return thread;
}

TracedThread::TracedThread(TracedThread&& other) noexcept
    : pid_(other.pid_),
      tid_(other.tid_),
      attached_(std::exchange(other.attached_, false)),
      gone_(other.gone_),
      pending_signal_(std::exchange(other.pending_signal_, 0)) {}

TracedThread::~TracedThread() { Detach(); }

absl::StatusOr<Stop> TracedThread::Wait() {
  for (;;) {
    int status = 0;
    const pid_t got = waitpid(tid_, &status, __WALL);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {  // reaped by its parent already
        gone_ = true;
        return Stop::kGone;
      }
      return LastErrnoStatus("waitpid traced thread");
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      gone_ = true;
      attached_ = false;
      return Stop::kGone;
    }
    if (!WIFSTOPPED(status)) continue;
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    if (event == PTRACE_EVENT_STOP) return Stop::kInterrupted;
    if (sig == (SIGTRAP | 0x80)) {
      __ptrace_syscall_info info{};
      if (ptrace(PTRACE_GET_SYSCALL_INFO, tid_, sizeof(info), &info) <= 0) {
        return LastErrnoStatus("PTRACE_GET_SYSCALL_INFO");
      }
      return info.op == PTRACE_SYSCALL_INFO_EXIT ? Stop::kSyscallExit : Stop::kSyscallEntry;
    }
    if (sig == SIGTRAP && event == 0) return Stop::kStepped;
    // A signal for the thread (signal-delivery stop): it is delivered when the thread resumes.
    pending_signal_ = sig;
    return Stop::kInterrupted;
  }
}

absl::StatusOr<Stop> TracedThread::ResumeWith(int request) {
  if (gone_) return Stop::kGone;
  const int sig = std::exchange(pending_signal_, 0);
  if (ptrace(static_cast<__ptrace_request>(request), tid_, nullptr, sig) != 0) {
    if (errno == ESRCH) {
      gone_ = true;
      return Stop::kGone;
    }
    return LastErrnoStatus("ptrace resume");
  }
  return Wait();
}

absl::StatusOr<Stop> TracedThread::Interrupt() {
  if (gone_) return Stop::kGone;
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
    if (errno == ESRCH) {
      gone_ = true;
      return Stop::kGone;
    }
    return LastErrnoStatus("PTRACE_INTERRUPT");
  }
  return Wait();
}

absl::StatusOr<Stop> TracedThread::ResumeToSyscall() { return ResumeWith(PTRACE_SYSCALL); }

absl::StatusOr<Stop> TracedThread::Step() { return ResumeWith(PTRACE_SINGLESTEP); }

absl::Status TracedThread::Continue() {
  if (gone_) return absl::OkStatus();
  const int sig = std::exchange(pending_signal_, 0);
  if (ptrace(PTRACE_CONT, tid_, nullptr, sig) != 0 && errno != ESRCH) {
    return LastErrnoStatus("PTRACE_CONT");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TracedThread::SyscallReturnValue() const {
  __ptrace_syscall_info info{};
  if (ptrace(PTRACE_GET_SYSCALL_INFO, tid_, sizeof(info), &info) <= 0) {
    return LastErrnoStatus("PTRACE_GET_SYSCALL_INFO");
  }
  if (info.op == PTRACE_SYSCALL_INFO_EXIT) return info.exit.rval;
  if (info.op == PTRACE_SYSCALL_INFO_ENTRY) return static_cast<int64_t>(info.entry.nr);
  return absl::FailedPreconditionError("not at a syscall stop");
}

absl::StatusOr<user_regs_struct> TracedThread::GetRegs() const {
  user_regs_struct regs{};
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, &regs) != 0) return LastErrnoStatus("PTRACE_GETREGS");
  return regs;
}

absl::Status TracedThread::SetRegs(const user_regs_struct& regs) {
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return LastErrnoStatus("PTRACE_SETREGS");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> TracedThread::Peek(uint64_t addr) const {
  errno = 0;
  const long word = ptrace(PTRACE_PEEKDATA, tid_, reinterpret_cast<void*>(addr), nullptr);
  if (errno != 0) return LastErrnoStatus(absl::StrCat("PTRACE_PEEKDATA 0x", absl::Hex(addr)));
  return static_cast<uint64_t>(word);
}

absl::Status TracedThread::Poke(uint64_t addr, uint64_t value) {
  if (ptrace(PTRACE_POKEDATA, tid_, reinterpret_cast<void*>(addr),
             reinterpret_cast<void*>(value)) != 0) {
    return LastErrnoStatus(absl::StrCat("PTRACE_POKEDATA 0x", absl::Hex(addr)));
  }
  return absl::OkStatus();
}

void TracedThread::Detach() {
  if (!attached_ || gone_) {
    attached_ = false;
    return;
  }
  attached_ = false;
  // PTRACE_DETACH needs a stopped tracee: a running one is interrupted first.
  if (ptrace(PTRACE_DETACH, tid_, nullptr, pending_signal_) == 0) return;
  if (errno != ESRCH) return;
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) return;
  attached_ = true;
  absl::StatusOr<Stop> stop = Wait();
  attached_ = false;
  if (stop.ok() && *stop != Stop::kGone) {
    (void)ptrace(PTRACE_DETACH, tid_, nullptr, std::exchange(pending_signal_, 0));
  }
}

}  // namespace rehome::inject
