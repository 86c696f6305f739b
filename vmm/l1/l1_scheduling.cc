// vmm/l1/l1_scheduling.cc: L1Scheduling.
#include "vmm/l1/l1_scheduling.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "kvm-l0/exit_channel.h"

namespace rehome {
namespace {

constexpr sched_param kFifo{.sched_priority = 1};
constexpr sched_param kOther{.sched_priority = 0};

// The kernel's struct sched_attr, first version (SCHED_ATTR_SIZE_VER0); glibc 2.36 has no
// wrapper for sched_setattr.
struct SchedAttr {
  uint32_t size = sizeof(SchedAttr);
  uint32_t sched_policy = 0;
  uint64_t sched_flags = 0;
  int32_t sched_nice = 0;
  uint32_t sched_priority = 0;
  uint64_t sched_runtime = 0;
  uint64_t sched_deadline = 0;
  uint64_t sched_period = 0;
};
static_assert(sizeof(SchedAttr) == 48);

// SCHED_OTHER at nice -10 with a short time slice. Since Linux 6.12 (EEVDF's PREEMPT_SHORT) a
// woken task whose slice is shorter than the running task's preempts it at once; with the default
// slice, an L1 woken by a device notification (an ioeventfd, signalled from the vCPU thread
// itself) or by L0's network pump waited up to a whole slice or tick behind the vCPU thread that
// kept its CPU: 1-4 ms answers at light load (docs/benchmarks.md, section 26). The slice needs no
// privilege (sched_runtime of a fair task); 100 us is the kernel's minimum. Kernels before 6.12
// accept and ignore it; where sched_setattr itself fails, plain SCHED_OTHER at nice -10.
constexpr uint64_t kL1SliceNs = 100000;

// True if the thread is at SCHED_OTHER now.
bool BecomeNormalWithShortSlice() {
  SchedAttr attr;
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = -10;
  attr.sched_runtime = kL1SliceNs;
  if (syscall(SYS_sched_setattr, 0, &attr, 0) == 0) return true;
  if (errno == EPERM) {  // may not lower its nice value: keep the one it has
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, 0);
    attr.sched_nice = errno == 0 ? nice : 0;
    if (syscall(SYS_sched_setattr, 0, &attr, 0) == 0) return true;
  }
  if (sched_setscheduler(0, SCHED_OTHER, &kOther) != 0) return false;
  (void)setpriority(PRIO_PROCESS, 0, -10);  // this thread (Linux: per-thread nice)
  return true;
}

}  // namespace

void L1Scheduling::Start() {
  // The L1 sleeps until an exit arrives and then must run at once, even on a host whose CPUs
  // are busy running vCPUs. SCHED_FIFO (lowest real-time priority) preempts them on wake-up;
  // the kernel's real-time throttling (95% by default) still leaves a spinning L1's core to
  // others, and L0's hang detection runs on another core. Without CAP_SYS_NICE: a higher CFS
  // weight (nice -10, root only), else normal priority. Threads started later inherit it.
  // A normal-priority L1 drops a real-time policy it may have inherited: L0 spawns
  // replacements from its real-time failover threads. A confined L1 can do neither; L0 does it
  // once the L1 is ready, and raises it again whenever it asks (BeforeSleep).
  if (!realtime_wanted_) (void)sched_setscheduler(0, SCHED_OTHER, &kOther);
  fifo_now_ = realtime_wanted_ && sched_setscheduler(0, SCHED_FIFO, &kFifo) == 0;
  realtime_ = fifo_now_ || (realtime_wanted_ && l0_raises_);
  if (!fifo_now_) (void)BecomeNormalWithShortSlice();
}

// A real-time L1 is real-time only while it may sleep: its wake-up (an exit, a promotion) must
// preempt vCPU threads at once. While it spins for the next exit, and handles the exits it
// finds that way, it runs at normal priority (nice -10): it already has a CPU, and at SCHED_FIFO
// it would keep every other task off that CPU for the whole exit-heavy phase, so the kernel's
// and rehome's periodic work would all land on the vCPUs' CPUs. Measured with
// bench/split_overhead.py (pio, posted writes, 9 paired runs): wall time per exit over
// monolithic +6.5% (paired 1.062) spinning at SCHED_FIFO, +3.7% (paired 1.024) spinning at
// normal priority; the VMM's handling time was the same.
uint32_t L1Scheduling::BeforeSleep() {
  if (!realtime_ || fifo_now_) return kL1Asleep;
  if (!self_raise_refused_) {
    if (sched_setscheduler(0, SCHED_FIFO, &kFifo) == 0) {
      fifo_now_ = true;
      return kL1Asleep;
    }
    self_raise_refused_ = true;  // confined: it stays so
  }
  if (!l0_raises_) return kL1Asleep;
  asked_ = true;
  return kL1AsleepRaiseMe;
}

void L1Scheduling::AfterWake() {
  if (!asked_) return;
  asked_ = false;
  fifo_now_ = sched_getscheduler(0) == SCHED_FIFO;
}

void L1Scheduling::BeforeSpin() {
  if (!realtime_ || !fifo_now_) return;
  if (BecomeNormalWithShortSlice()) fifo_now_ = false;
}

// Left on the CPU of the vCPU thread it answers, the two take turns on that CPU for good: the L1
// may not spin there, so every exit costs an eventfd wake-up, and the woken L1 (real-time) tends
// to run where its waker runs. Moving at most once per 10 ms keeps vCPU threads spread over
// every CPU from making it chase them. Measured here (pio, 1 vCPU, 2 CPUs, 8 runs each): L0's
// handling time per exit 4.8-6.8 us staying, 2.8-3.9 us moving.
bool L1Scheduling::MoveAwayFrom(int cpu) {
  if (!affinity_known_) {
    affinity_known_ = true;
    if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) CPU_ZERO(&allowed_);
  }
  const absl::Time now = absl::Now();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed_) ||
      CPU_COUNT(&allowed_) <= vcpus_ || now - moved_at_ < absl::Milliseconds(10)) {
    return false;
  }
  moved_at_ = now;
  cpu_set_t others = allowed_;
  CPU_CLR(cpu, &others);
  if (sched_setaffinity(0, sizeof(others), &others) != 0) return false;
  moved_ = true;
  return true;
}

bool L1Scheduling::AllowEveryCpu() {
  const absl::Time now = absl::Now();
  if (!moved_ || now - moved_at_ < absl::Milliseconds(10)) return false;
  moved_at_ = now;
  if (sched_setaffinity(0, sizeof(allowed_), &allowed_) != 0) return false;
  moved_ = false;
  return true;
}

}  // namespace rehome
