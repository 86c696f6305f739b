// recovery/livelock_watch.h: LivelockWatch tells an L1 whose exit thread burns CPU without getting
// anywhere from one that works or sleeps. The exit deadline catches an L1 that sits on a
// forwarded exit (Supervisor::LooksHung), and missed heartbeats a stopped one; neither sees an
// exit thread that spins forever while serving a device notification (ioeventfd: no exit is
// waiting) with its heartbeat thread still beating. Fed with samples of the thread's CPU time
// and of a progress marker (the journal's commit count plus the L1's work_progress), it reports
// once the thread has been busy (at least `busy_fraction` of the wall time) for `limit` without
// the marker moving. Pure logic over made-up samples; not thread-safe (one per L1, on the
// monitor thread).
#ifndef REHOME_RECOVERY_LIVELOCK_WATCH_H_
#define REHOME_RECOVERY_LIVELOCK_WATCH_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace rehome {

class LivelockWatch final {
 public:
  explicit LivelockWatch(absl::Duration limit, double busy_fraction = 0.9)
      : limit_(limit), busy_fraction_(busy_fraction) {}

  // One sample at `now`: `runtime_ns`, the exit thread's CPU time so far; `marker`, anything
  // that changes when the L1 gets somewhere. The length of the busy stretch without progress
  // once it reaches the limit, else nullopt.
  std::optional<absl::Duration> Sample(absl::Time now, uint64_t runtime_ns, uint64_t marker) {
    if (!started_ || marker != marker_ || runtime_ns < runtime_at_start_) {
      Restart(now, runtime_ns, marker);
      return std::nullopt;
    }
    const absl::Duration elapsed = now - start_;
    const double busy_ns = static_cast<double>(runtime_ns - runtime_at_start_);
    if (busy_ns < busy_fraction_ * absl::ToDoubleNanoseconds(elapsed)) {
      Restart(now, runtime_ns, marker);  // it slept (or the host starved it) in this stretch
      return std::nullopt;
    }
    if (elapsed >= limit_) return elapsed;
    return std::nullopt;
  }

 private:
  void Restart(absl::Time now, uint64_t runtime_ns, uint64_t marker) {
    started_ = true;
    start_ = now;
    runtime_at_start_ = runtime_ns;
    marker_ = marker;
  }

  const absl::Duration limit_;
  const double busy_fraction_;
  bool started_ = false;
  absl::Time start_;
  uint64_t runtime_at_start_ = 0;
  uint64_t marker_ = 0;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_LIVELOCK_WATCH_H_
