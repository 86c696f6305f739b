// bench/injector/traced_thread.h: one thread of another process under ptrace (PTRACE_SEIZE), for
// the fault injector. The thread keeps running when seized; Interrupt() stops it, the Resume
// calls run it until its next stop (a syscall stop, a single step, an interrupt) and report why
// it stopped. Signals that arrive meanwhile are passed on to the thread when it resumes, so
// tracing changes nothing the thread would otherwise see. The destructor detaches (the thread
// continues), unless it is gone. Move-only owner; not thread-safe (one tracer thread, as
// ptrace requires).
#ifndef REHOME_BENCH_INJECTOR_TRACED_THREAD_H_
#define REHOME_BENCH_INJECTOR_TRACED_THREAD_H_

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace rehome::inject {

// Why a traced thread stopped.
enum class Stop {
  kInterrupted,  // PTRACE_INTERRUPT (or a group stop)
  kSyscallEntry,
  kSyscallExit,
  kStepped,  // one instruction after PTRACE_SINGLESTEP
  kGone,     // the thread (or its process) exited or was killed
};

class TracedThread final {
 public:
  // Seizes thread `tid` of process `pid` (tid == pid: the main thread). It keeps running.
  static absl::StatusOr<TracedThread> Seize(pid_t pid, pid_t tid);
  ~TracedThread();
  TracedThread(TracedThread&& other) noexcept;
  TracedThread& operator=(TracedThread&& other) = delete;
  TracedThread(const TracedThread&) = delete;
  TracedThread& operator=(const TracedThread&) = delete;

  // Stops the running thread. kInterrupted, or kGone.
  absl::StatusOr<Stop> Interrupt();
  // From a stop: runs to the next syscall entry or exit (or an interrupt).
  absl::StatusOr<Stop> ResumeToSyscall();
  // From a stop: executes one instruction (a syscall instruction counts as one and returns
  // when the syscall does).
  absl::StatusOr<Stop> Step();
  // From a stop: lets the thread run freely (no wait).
  absl::Status Continue();

  // At a syscall stop: the syscall's return value (exit stop) or number (entry stop).
  absl::StatusOr<int64_t> SyscallReturnValue() const;

  absl::StatusOr<user_regs_struct> GetRegs() const;
  absl::Status SetRegs(const user_regs_struct& regs);
  // 8 bytes at `addr` of the process (code too: a write makes the process's private copy).
  absl::StatusOr<uint64_t> Peek(uint64_t addr) const;
  absl::Status Poke(uint64_t addr, uint64_t value);

  // Detaches now (the thread continues where it stopped). Idempotent.
  void Detach();

  pid_t pid() const { return pid_; }
  pid_t tid() const { return tid_; }
  bool gone() const { return gone_; }

 private:
  TracedThread(pid_t pid, pid_t tid) : pid_(pid), tid_(tid) {}
  // Waits for the next stop of the thread; remembers a signal to pass on.
  absl::StatusOr<Stop> Wait();
  absl::StatusOr<Stop> ResumeWith(int request);

  pid_t pid_ = -1;
  pid_t tid_ = -1;
  bool attached_ = false;
  bool gone_ = false;
  int pending_signal_ = 0;  // a signal the thread received while traced: delivered on resume
};

// Whether the thread, stopped by an interruption, was inside a system call that it will go back
// to (asleep, waiting for work), rather than running its own code or returning from a call.
bool InSyscall(const user_regs_struct& regs);
// Whether a system call's result is one our interruption caused (-EINTR, -ERESTART*).
bool InterruptedCallResult(int64_t value);

}  // namespace rehome::inject

#endif  // REHOME_BENCH_INJECTOR_TRACED_THREAD_H_
