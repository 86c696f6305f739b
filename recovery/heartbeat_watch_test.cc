// recovery/heartbeat_watch_test.cc: HeartbeatWatch over made-up samples: the last beat is dated
// by the L1's own time within what L0 saw, so a hang is due exactly a timeout after it.
#include "recovery/heartbeat_watch.h"

#include "gtest/gtest.h"

namespace rehome {
namespace {

constexpr int64_t kMs = 1000000;
const absl::Time kT0 = absl::FromUnixSeconds(1000000);

// L0's view at `ms` after kT0: CLOCK_MONOTONIC reads 5000 s + ms there.
absl::Time At(int64_t ms) { return kT0 + absl::Milliseconds(ms); }
int64_t Mono(int64_t ms) { return 5000000 * kMs + ms * kMs; }

TEST(HeartbeatWatch, DatesTheBeatByTheL1sClock) {
  HeartbeatWatch w;
  EXPECT_EQ(w.Deadline(absl::Milliseconds(50)), absl::InfiniteFuture());
  w.Sample(At(0), Mono(0), 1, Mono(0));  // first sight: when L0 saw it
  EXPECT_EQ(w.last_beat(), At(0));
  // Beat 2 happened at 10 ms; L0 sees it at 19 ms: the silence runs from 10 ms.
  w.Sample(At(19), Mono(19), 2, Mono(10));
  EXPECT_EQ(w.last_beat(), At(10));
  EXPECT_EQ(w.Silence(At(40)), absl::Milliseconds(30));
  EXPECT_EQ(w.Deadline(absl::Milliseconds(50)), At(60));
  // The same counter again: nothing new, the beat keeps its date.
  w.Sample(At(29), Mono(29), 2, Mono(10));
  EXPECT_EQ(w.last_beat(), At(10));
  // The monitor's next wake-up for thresholds 50 and 1000 ms: the first still ahead.
  EXPECT_EQ(w.NextDeadline(At(30), {absl::Milliseconds(50), absl::Seconds(1)}), At(60));
  EXPECT_EQ(w.NextDeadline(At(60), {absl::Milliseconds(50), absl::Seconds(1)}), At(1010));
  EXPECT_EQ(w.NextDeadline(At(2000), {absl::Milliseconds(50), absl::Seconds(1)}),
            absl::InfiniteFuture());
}

TEST(HeartbeatWatch, TimeoutsEndNoLaterThanADeadline) {
  const timespec tick{0, 10 * kMs};
  EXPECT_EQ(absl::DurationFromTimespec(NoLaterThan(tick, At(4), At(0))), absl::Milliseconds(4));
  EXPECT_EQ(absl::DurationFromTimespec(NoLaterThan(tick, At(40), At(0))), absl::Milliseconds(10));
  EXPECT_EQ(absl::DurationFromTimespec(NoLaterThan(tick, At(-5), At(0))), absl::ZeroDuration());
  EXPECT_EQ(absl::DurationFromTimespec(NoLaterThan(tick, absl::InfiniteFuture(), At(0))),
            absl::Milliseconds(10));
}

TEST(HeartbeatWatch, AnUntrustedTimeStaysWithinWhatL0Saw) {
  HeartbeatWatch w;
  w.Sample(At(0), Mono(0), 1, 0);
  w.Sample(At(20), Mono(20), 2, Mono(15));
  ASSERT_EQ(w.last_beat(), At(15));
  // A time in the future (past L0's own clock): L0's sighting instead.
  w.Sample(At(30), Mono(30), 3, Mono(500));
  EXPECT_EQ(w.last_beat(), At(30));
  // A time before the previous beat: the previous beat (never earlier).
  w.Sample(At(45), Mono(45), 4, Mono(1));
  EXPECT_EQ(w.last_beat(), At(30));
  // No time at all (0): L0's sighting.
  w.Sample(At(60), Mono(60), 5, 0);
  EXPECT_EQ(w.last_beat(), At(60));
}

}  // namespace
}  // namespace rehome
