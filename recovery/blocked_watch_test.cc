// recovery/blocked_watch_test.cc: BlockedWatch over made-up samples.
#include "recovery/blocked_watch.h"

#include <gtest/gtest.h>

namespace rehome {
namespace {

constexpr absl::Duration kLimit = absl::Seconds(1);
const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

TEST(BlockedWatch, AsleepOutsideItsWaitWithoutProgressIsReportedAtTheLimit) {
  BlockedWatch watch(kLimit);
  for (int ms = 0; ms < 1000; ms += 10) {
    EXPECT_FALSE(watch.Sample(At(ms), false, 'S', 500, 7).has_value()) << ms;
  }
  const std::optional<absl::Duration> blocked = watch.Sample(At(1000), false, 'S', 500, 7);
  ASSERT_TRUE(blocked.has_value());
  EXPECT_EQ(*blocked, kLimit);
}

TEST(BlockedWatch, UninterruptibleSleepCountsToo) {
  BlockedWatch watch(kLimit);
  EXPECT_FALSE(watch.Sample(At(0), false, 'D', 500, 7).has_value());
  EXPECT_TRUE(watch.Sample(At(1500), false, 'D', 500, 7).has_value());
}

TEST(BlockedWatch, WaitingForWorkIsNeverBlocked) {
  BlockedWatch watch(kLimit);
  for (int ms = 0; ms <= 5000; ms += 10) {
    EXPECT_FALSE(watch.Sample(At(ms), true, 'S', 500, 7).has_value()) << ms;
  }
}

TEST(BlockedWatch, RunnableMeansBusyOrStarvedNotBlocked) {
  BlockedWatch watch(kLimit);
  for (int ms = 0; ms <= 5000; ms += 10) {
    EXPECT_FALSE(watch.Sample(At(ms), false, 'R', 500, 7).has_value()) << ms;
  }
}

TEST(BlockedWatch, ProgressCpuTimeOrAWaitRestartTheStretch) {
  BlockedWatch watch(kLimit);
  EXPECT_FALSE(watch.Sample(At(0), false, 'S', 500, 7).has_value());
  EXPECT_FALSE(watch.Sample(At(900), false, 'S', 500, 8).has_value());   // a commit
  EXPECT_FALSE(watch.Sample(At(1800), false, 'S', 600, 8).has_value());  // it ran a little
  EXPECT_FALSE(watch.Sample(At(2700), true, 'S', 600, 8).has_value());   // back in its wait
  EXPECT_FALSE(watch.Sample(At(3000), false, 'S', 600, 8).has_value());  // new stretch
  EXPECT_FALSE(watch.Sample(At(3900), false, 'S', 600, 8).has_value());
  EXPECT_TRUE(watch.Sample(At(4000), false, 'S', 600, 8).has_value());
}

}  // namespace
}  // namespace rehome
