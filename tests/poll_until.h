// tests/poll_until.h: waiting for a condition in tests without sleeping for a fixed time: checks
// `condition` every millisecond until it holds or `timeout` passes. Thread-safe if `condition` is.
#ifndef REHOME_TESTS_POLL_UNTIL_H_
#define REHOME_TESTS_POLL_UNTIL_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rehome::testing {

// True as soon as `condition()` holds; false if it still does not after `timeout`.
inline bool PollUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(1));  // the poll interval, bounded by the deadline
  }
  return condition();
}

}  // namespace rehome::testing

#endif  // REHOME_TESTS_POLL_UNTIL_H_
