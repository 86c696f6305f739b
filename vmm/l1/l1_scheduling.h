// vmm/l1/l1_scheduling.h: how the L1's exit thread is scheduled (docs/failover.md,
// "Scheduling"). A real-time L1 is SCHED_FIFO (priority 1) only while it may sleep, so that its
// wake-up (an exit, a promotion) preempts vCPU threads; while it spins for the next exit and
// handles what it finds it runs at SCHED_OTHER, nice -10, with a 100 us time slice (so that a
// wake-up L0 did not raise, a device notification's, still preempts). And it moves off the CPU of
// the vCPU thread it answers when it has CPUs to spare. A confined L1 has no privilege to raise
// itself back to SCHED_FIFO: L0 does it on its behalf. L0 gives every thread of the L1 SCHED_FIFO
// and nice -10 when it reports ready (L1Process::WaitReady); before sleeping, an L1 that dropped to
// SCHED_OTHER publishes l1_sleeping = 2 ("raise me"), and the L0 thread that wakes it makes it
// SCHED_FIFO first (ExitChannel::WakeL1*). Dropping to SCHED_OTHER and back to nice -10, and the
// slice, need no privilege. Thread-safety: the exit thread only.
#ifndef REHOME_VMM_L1_L1_SCHEDULING_H_
#define REHOME_VMM_L1_L1_SCHEDULING_H_

#include <sched.h>

#include <cstdint>

#include "absl/time/time.h"

namespace rehome {

class L1Scheduling final {
 public:
  // `realtime`: --realtime 1. `l0_raises`: the L1 is confined, and L0 raises it (above).
  // `vcpus`: the guest's vCPU count (MoveAwayFrom).
  L1Scheduling(bool realtime, bool l0_raises, int vcpus)
      : realtime_wanted_(realtime), l0_raises_(l0_raises), vcpus_(vcpus) {}

  // At the start of the main loop: SCHED_FIFO (or, without it, nice -10) for this thread and the
  // threads it starts afterwards.
  void Start();
  // About to sleep: back to SCHED_FIFO. Returns the value to publish in l1_sleeping: 1, or 2
  // when L0 must raise it (ExitChannelHeader).
  uint32_t BeforeSleep();
  // Woken up: learns whether L0 raised it.
  void AfterWake();
  // About to spin for the next exit: SCHED_OTHER, nice -10.
  void BeforeSpin();
  // The L1 just answered a vCPU thread that runs on this thread's CPU `cpu`. Left there, the
  // two take turns on that CPU for good (see the .cc); when this process may run on more CPUs
  // than there are vCPUs, it moves to the others, at most once per 10 ms. True if it moved.
  bool MoveAwayFrom(int cpu);
  // Undoes MoveAwayFrom: the thread may run on every CPU it started with again (a replica of
  // verified execution whose vCPU thread sleeps in L0 until every replica answered: replicas
  // kept off that CPU would crowd onto the others). At most once per 10 ms, as MoveAwayFrom;
  // nothing when it never moved. True if it changed the affinity.
  bool AllowEveryCpu();

 private:
  const bool realtime_wanted_;
  const bool l0_raises_;
  const int vcpus_;
  bool realtime_ = false;            // this thread switches between SCHED_FIFO and SCHED_OTHER
  bool fifo_now_ = false;            // ... and is SCHED_FIFO now (as far as it knows)
  bool asked_ = false;               // it asked L0 to raise it at the last BeforeSleep
  bool self_raise_refused_ = false;  // sched_setscheduler(SCHED_FIFO) failed once
  bool affinity_known_ = false;      // allowed_ holds the mask the L1 started with
  cpu_set_t allowed_{};
  bool moved_ = false;  // restricted by MoveAwayFrom, not restored since
  absl::Time moved_at_ = absl::InfinitePast();
};

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_SCHEDULING_H_
