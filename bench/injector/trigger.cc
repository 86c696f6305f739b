// bench/injector/trigger.cc: ReachWorkingPoint.
#include "bench/injector/trigger.h"

#include <errno.h>
#include <time.h>

namespace rehome::inject {
namespace {

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// From a stop inside a system call: runs the thread until a system call of it returns for a
// reason other than our interruption (it woke up with work, or finished a short call), so that it
// is about to run its own code. False if it exited.
absl::StatusOr<bool> RunUntilCallReturns(TracedThread& thread) {
  for (;;) {
    absl::StatusOr<Stop> stop = thread.ResumeToSyscall();
    if (!stop.ok()) return stop.status();
    if (*stop == Stop::kGone) return false;
    if (*stop != Stop::kSyscallExit) continue;
    absl::StatusOr<int64_t> value = thread.SyscallReturnValue();
    if (!value.ok()) return value.status();
    if (!InterruptedCallResult(*value)) return true;
  }
}

}  // namespace

absl::StatusOr<TriggerPoint> ReachWorkingPoint(TracedThread& thread,
                                               const TriggerSettings& settings,
                                               std::mt19937_64& rng) {
  TriggerPoint point;
  absl::StatusOr<Stop> stop = thread.Interrupt();
  if (!stop.ok()) return stop.status();
  if (*stop == Stop::kGone) return point;
  if (settings.single_step) {
    absl::StatusOr<user_regs_struct> regs = thread.GetRegs();
    if (!regs.ok()) return regs.status();
    if (InSyscall(*regs)) {
      absl::StatusOr<bool> woke = RunUntilCallReturns(thread);
      if (!woke.ok()) return woke.status();
      if (!*woke) return point;
    }
    const uint64_t steps = std::uniform_int_distribution<uint64_t>(0, settings.max_steps)(rng);
    for (uint64_t i = 0; i < steps; ++i) {
      absl::StatusOr<Stop> stepped = thread.Step();
      if (!stepped.ok()) return stepped.status();
      if (*stepped == Stop::kGone) return point;
      ++point.steps;
    }
    point.reached = true;
    return point;
  }
  for (point.attempts = 1; point.attempts <= settings.max_attempts; ++point.attempts) {
    absl::StatusOr<user_regs_struct> regs = thread.GetRegs();
    if (!regs.ok()) return regs.status();
    if (InSyscall(*regs)) {
      absl::StatusOr<bool> woke = RunUntilCallReturns(thread);
      if (!woke.ok()) return woke.status();
      if (!*woke) return point;
    }
    point.run_us = std::uniform_int_distribution<uint32_t>(0, settings.max_run_us)(rng);
    if (point.run_us == 0) {
      point.reached = true;
      return point;
    }
    if (absl::Status s = thread.Continue(); !s.ok()) return s;
    const int64_t until = NowNs() + static_cast<int64_t>(point.run_us) * 1000;
    while (NowNs() < until) {
    }
    stop = thread.Interrupt();
    if (!stop.ok()) return stop.status();
    if (*stop == Stop::kGone) return point;
    regs = thread.GetRegs();
    if (!regs.ok()) return regs.status();
    if (!InSyscall(*regs)) {
      point.reached = true;
      return point;
    }
  }
  point.attempts = settings.max_attempts;
  return point;
}

}  // namespace rehome::inject
