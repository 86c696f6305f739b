// recovery/blocked_watch.h: BlockedWatch tells an L1 whose exit thread sleeps inside its work
// (blocked in a system call that never returns, e.g. `read` on a corrupted fd) from one that
// waits for work or works. The exit deadline catches it only while a vCPU waits for an answer,
// and the heartbeat thread beats on; between exits — a device notification taken through an
// ioeventfd, a posted write — nothing else would notice, and the guest waits for its I/O
// forever. Fed with samples of whether the L1 says it waits for work (`l1_sleeping`), the exit
// thread's scheduler state and CPU time, and a progress marker (commits + work_progress), it
// reports once the thread has been awake by its own flag, not runnable (sleeping or in
// uninterruptible I/O), without CPU time or progress, for `limit`. Legitimately long blocking
// work (a disk flush) must finish within `limit`: L0 uses 20 hang timeouts (1 s by default), and
// a false report costs a failover that retries the work, never data. Pure logic over made-up
// samples; not thread-safe (one per L1, on the monitor thread).
#ifndef REHOME_RECOVERY_BLOCKED_WATCH_H_
#define REHOME_RECOVERY_BLOCKED_WATCH_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace rehome {

class BlockedWatch final {
 public:
  explicit BlockedWatch(absl::Duration limit) : limit_(limit) {}

  // One sample at `now`: `waiting_for_work`, the L1's own flag (it sleeps in its wait for
  // requests); `state`, the exit thread's scheduler state from /proc ('R', 'S', 'D', ...);
  // `runtime_ns`, its CPU time so far; `marker`, anything that changes when the L1 gets
  // somewhere. The length of the blocked stretch once it reaches the limit, else nullopt.
  std::optional<absl::Duration> Sample(absl::Time now, bool waiting_for_work, char state,
                                       uint64_t runtime_ns, uint64_t marker) {
    const bool asleep_in_work = !waiting_for_work && (state == 'S' || state == 'D');
    if (!asleep_in_work || !started_ || marker != marker_ || runtime_ns != runtime_) {
      started_ = asleep_in_work;
      start_ = now;
      runtime_ = runtime_ns;
      marker_ = marker;
      return std::nullopt;
    }
    const absl::Duration elapsed = now - start_;
    if (elapsed >= limit_) return elapsed;
    return std::nullopt;
  }

 private:
  const absl::Duration limit_;
  bool started_ = false;
  absl::Time start_;
  uint64_t runtime_ = 0;
  uint64_t marker_ = 0;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_BLOCKED_WATCH_H_
