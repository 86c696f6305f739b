// base/cpu_avoidance.h: keeps the calling thread off CPUs where busy threads run (the guest's
// vCPU threads, which run the guest and are always busy when it polls), when it may run
// elsewhere. On this project's software KVM, waking a thread on a vCPU thread's CPU first has to
// take the vCPU out of the guest (tens of microseconds), and the two then take turns; a thread
// that serves the guest from another CPU does neither (docs/failover.md, "Scheduling").
// Thread-safety: one object per thread; MoveOff acts on the calling thread only.
#ifndef REHOME_BASE_CPU_AVOIDANCE_H_
#define REHOME_BASE_CPU_AVOIDANCE_H_

#include <sched.h>

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rehome {

class CpuAvoidance final {
 public:
  // How often a thread moves at most (a vCPU thread that moves too would otherwise be chased).
  static constexpr absl::Duration kMinInterval = absl::Milliseconds(10);

  // `busy_cpus`: bit c = CPU c (0..31) hosts a busy thread; 0 = unknown. When the calling thread
  // runs on such a CPU and the CPUs it was allowed at its first call include others, it is
  // restricted to those others (at most once per kMinInterval). True if it moved.
  bool MoveOff(uint32_t busy_cpus) {
    if (busy_cpus == 0) return false;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= 32 || (busy_cpus & (1u << cpu)) == 0) return false;
    if (!allowed_known_) {
      allowed_known_ = true;
      if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) CPU_ZERO(&allowed_);
    }
    const absl::Time now = absl::Now();
    if (now - moved_at_ < kMinInterval) return false;
    cpu_set_t others = allowed_;
    for (int c = 0; c < 32; ++c) {
      if ((busy_cpus & (1u << c)) != 0) CPU_CLR(c, &others);
    }
    if (CPU_COUNT(&others) == 0) return false;
    moved_at_ = now;
    return sched_setaffinity(0, sizeof(others), &others) == 0;
  }

 private:
  bool allowed_known_ = false;
  cpu_set_t allowed_{};
  absl::Time moved_at_ = absl::InfinitePast();
};

}  // namespace rehome

#endif  // REHOME_BASE_CPU_AVOIDANCE_H_
