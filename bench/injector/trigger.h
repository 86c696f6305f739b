// bench/injector/trigger.h: brings a traced thread to a random point of its work (not of its
// sleep), as the fault injector's trigger (see fault_injector.h). Thread-safety: one tracer.
#ifndef REHOME_BENCH_INJECTOR_TRIGGER_H_
#define REHOME_BENCH_INJECTOR_TRIGGER_H_

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "bench/injector/traced_thread.h"

namespace rehome::inject {

struct TriggerSettings {
  bool single_step = false;    // true: NiLiHype's instruction count; false: free-running time
  uint64_t max_steps = 20000;  // single_step: count drawn from [0, max_steps]
  uint32_t max_run_us = 100;   // otherwise: time drawn from [0, max_run_us] microseconds
  int max_attempts = 200;      // otherwise: tries to catch the thread out of a system call
};

struct TriggerPoint {
  bool reached = false;  // false: the thread exited, or was never caught running
  uint64_t steps = 0;
  uint32_t run_us = 0;
  int attempts = 0;
};

// `thread` is running. On return with reached = true it is stopped in its own code (not in a
// system call), right after some work arrived plus the drawn count or time. Draws from `rng`.
absl::StatusOr<TriggerPoint> ReachWorkingPoint(TracedThread& thread,
                                               const TriggerSettings& settings,
                                               std::mt19937_64& rng);

}  // namespace rehome::inject

#endif  // REHOME_BENCH_INJECTOR_TRIGGER_H_
