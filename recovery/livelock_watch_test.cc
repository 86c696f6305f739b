// recovery/livelock_watch_test.cc: LivelockWatch over made-up samples.
#include "recovery/livelock_watch.h"

#include "gtest/gtest.h"

namespace rehome {
namespace {

constexpr uint64_t kMs = 1'000'000;

TEST(LivelockWatch, BusyWithoutProgressForTheLimitIsReported) {
  LivelockWatch watch(absl::Milliseconds(200));
  const absl::Time t0 = absl::UnixEpoch();
  EXPECT_FALSE(watch.Sample(t0, 0, 7).has_value());
  for (int ms = 10; ms < 200; ms += 10) {
    EXPECT_FALSE(watch.Sample(t0 + absl::Milliseconds(ms), ms * kMs, 7).has_value()) << ms;
  }
  std::optional<absl::Duration> stuck = watch.Sample(t0 + absl::Milliseconds(200), 198 * kMs, 7);
  ASSERT_TRUE(stuck.has_value());
  EXPECT_EQ(*stuck, absl::Milliseconds(200));
}

TEST(LivelockWatch, ProgressOrSleepRestartsTheStretch) {
  LivelockWatch watch(absl::Milliseconds(200));
  const absl::Time t0 = absl::UnixEpoch();
  watch.Sample(t0, 0, 1);
  // Busy all along, but committing every 100 ms: never reported.
  for (int ms = 10; ms <= 1000; ms += 10) {
    EXPECT_FALSE(watch.Sample(t0 + absl::Milliseconds(ms), ms * kMs, 1 + ms / 100).has_value())
        << ms;
  }
  // Half asleep (a CPU-heavy but sleeping L1): never reported.
  LivelockWatch sleepy(absl::Milliseconds(200));
  for (int ms = 0; ms <= 1000; ms += 10) {
    EXPECT_FALSE(sleepy.Sample(t0 + absl::Milliseconds(ms), ms * kMs / 2, 5).has_value()) << ms;
  }
}

TEST(LivelockWatch, AStarvedThreadIsNotLivelocked) {
  LivelockWatch watch(absl::Milliseconds(200));
  const absl::Time t0 = absl::UnixEpoch();
  watch.Sample(t0, 0, 3);
  // The host ran it only a fifth of the time: whatever it does, it is not burning the CPU.
  for (int ms = 10; ms <= 1000; ms += 10) {
    EXPECT_FALSE(watch.Sample(t0 + absl::Milliseconds(ms), ms * kMs / 5, 3).has_value());
  }
}

}  // namespace
}  // namespace rehome
