// base/scoped_realtime.h: ScopedRealtime raises the calling thread to a SCHED_FIFO priority
// (by default the lowest) for its lifetime, when permitted, and restores the thread's policy
// afterwards. Thread-safety: affects only the thread that constructs it; not movable.
#ifndef REHOME_BASE_SCOPED_REALTIME_H_
#define REHOME_BASE_SCOPED_REALTIME_H_

#include <pthread.h>
#include <sched.h>

namespace rehome {

// Runs the calling thread at the lowest real-time priority for its lifetime (when permitted):
// the failover path (fence, promote) must not wait behind vCPU threads for a CPU. The thread's
// policy is restored afterwards, before it runs guest code again.
class ScopedRealtime final {
 public:
  explicit ScopedRealtime(int priority = 1) {
    if (pthread_getschedparam(pthread_self(), &policy_, &param_) != 0 || policy_ != SCHED_OTHER) {
      return;
    }
    const sched_param fifo{.sched_priority = priority};
    raised_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo) == 0;
  }
  ~ScopedRealtime() {
    if (raised_) (void)pthread_setschedparam(pthread_self(), policy_, &param_);
  }
  ScopedRealtime(const ScopedRealtime&) = delete;
  ScopedRealtime& operator=(const ScopedRealtime&) = delete;

 private:
  int policy_ = SCHED_OTHER;
  sched_param param_{};
  bool raised_ = false;
};

}  // namespace rehome

#endif  // REHOME_BASE_SCOPED_REALTIME_H_
