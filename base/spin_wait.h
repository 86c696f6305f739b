// base/spin_wait.h: busy-waiting for a condition that another CPU will make true within
// microseconds, where sleeping and being woken would cost more than the wait. Callers bound the
// spin and fall back to blocking. Stateless; thread-safe if `done` is.
#ifndef REHOME_BASE_SPIN_WAIT_H_
#define REHOME_BASE_SPIN_WAIT_H_

#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rehome {

// Whether spinning can pay at all: with one CPU the spinner only delays whoever would make the
// condition true.
inline bool SpinningHelps() {
  static const bool multi_cpu = std::thread::hardware_concurrency() > 1;
  return multi_cpu;
}

// True as soon as `done()` holds; false once `limit` has passed without it (at once when
// spinning cannot help).
template <typename Pred>
bool SpinUntil(Pred done, absl::Duration limit) {
  if (!SpinningHelps()) return done();
  const absl::Time until = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() >= until) return false;
    __builtin_ia32_pause();
  }
  return true;
}

}  // namespace rehome

#endif  // REHOME_BASE_SPIN_WAIT_H_
