// recovery/heartbeat_watch.h: HeartbeatWatch dates an L1's last heartbeat, so that a hang is
// declared when the heartbeat has been silent for the hang timeout — not a monitor period or two
// later. The L1 beats on the shared grid (base/periodic_tick.h) and writes the CLOCK_MONOTONIC
// time of each beat next to the counter (ExitChannelHeader::heartbeat_ns). That time is the L1's
// word, so it is used only within what L0 saw itself: never before the previous beat, never
// after the moment L0 saw the counter change. An L1 lying about it can only make itself be
// declared hung sooner. Pure logic over made-up samples; not thread-safe (one per L1, on the
// monitor thread).
#ifndef REHOME_RECOVERY_HEARTBEAT_WATCH_H_
#define REHOME_RECOVERY_HEARTBEAT_WATCH_H_

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "absl/time/time.h"

namespace rehome {

class HeartbeatWatch final {
 public:
  // One sample at `now` (`now_mono_ns`: the same instant on CLOCK_MONOTONIC): the L1's counter
  // and the time it says it last beat (0: unknown).
  void Sample(absl::Time now, int64_t now_mono_ns, uint64_t counter, int64_t beat_mono_ns) {
    if (started_ && counter == counter_) return;
    absl::Time beat = now;  // first sight, or no time: when L0 saw it
    if (started_ && beat_mono_ns > 0 && beat_mono_ns <= now_mono_ns) {
      beat = std::max(last_beat_, now - absl::Nanoseconds(now_mono_ns - beat_mono_ns));
    }
    started_ = true;
    counter_ = counter;
    last_beat_ = beat;
  }

  // When the last beat happened (as far as L0 can tell); InfinitePast before the first sample.
  absl::Time last_beat() const { return started_ ? last_beat_ : absl::InfinitePast(); }
  // How long the heartbeat has been silent at `now`.
  absl::Duration Silence(absl::Time now) const {
    return started_ ? now - last_beat_ : absl::ZeroDuration();
  }
  // When the silence reaches `timeout` (InfiniteFuture before the first sample): the monitor
  // wakes then rather than at its next period.
  absl::Time Deadline(absl::Duration timeout) const {
    return started_ ? last_beat_ + timeout : absl::InfiniteFuture();
  }
  // The first of `thresholds` (ascending) whose deadline is still ahead of `now`
  // (InfiniteFuture: none): a deadline already passed must not keep waking the monitor.
  absl::Time NextDeadline(absl::Time now, std::initializer_list<absl::Duration> thresholds) const {
    for (absl::Duration t : thresholds) {
      if (Deadline(t) > now) return Deadline(t);
    }
    return absl::InfiniteFuture();
  }

 private:
  bool started_ = false;
  uint64_t counter_ = 0;
  absl::Time last_beat_;
};

// CLOCK_MONOTONIC now, in nanoseconds (the clock of ExitChannelHeader::heartbeat_ns).
inline int64_t MonotonicNowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// `tick` (a timeout) shortened so that it ends no later than `deadline` (given `now`).
inline timespec NoLaterThan(timespec tick, absl::Time deadline, absl::Time now) {
  const absl::Duration left = std::max(absl::ZeroDuration(), deadline - now);
  if (left >= absl::DurationFromTimespec(tick)) return tick;
  return absl::ToTimespec(left);
}

}  // namespace rehome

#endif  // REHOME_RECOVERY_HEARTBEAT_WATCH_H_
