// base/periodic_tick.h: time left until the next tick of a period on a grid shared by every
// process of the host (multiples of the period on CLOCK_MONOTONIC).
// rehome's periodic housekeeping (L1 heartbeats, a standby's rehearsal, L0's monitor) runs in
// several processes. Each wake-up on a CPU that runs a vCPU thread interrupts the guest, and on
// a busy host that CPU is where they land. Woken on the same grid, threads whose periods divide
// one another wake together, so the guest is interrupted once per tick instead of once per
// thread.
// Thread-safety: pure functions.
#ifndef REHOME_BASE_PERIODIC_TICK_H_
#define REHOME_BASE_PERIODIC_TICK_H_

#include <time.h>

#include <cstdint>

namespace rehome {

// Nanoseconds from `now_ns` to the next multiple of `period_ns` strictly after it
// (1..period_ns). A period of 0 gives 0.
inline int64_t NanosToNextTick(int64_t now_ns, int64_t period_ns) {
  if (period_ns <= 0) return 0;
  return period_ns - now_ns % period_ns;
}

// The same from the current CLOCK_MONOTONIC time, as a timespec for ppoll/nanosleep.
inline timespec TimeToNextTick(int64_t period_ns) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t left =
      NanosToNextTick(static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec, period_ns);
  return timespec{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
}

}  // namespace rehome

#endif  // REHOME_BASE_PERIODIC_TICK_H_
