// recovery/nested/l2_capture_test.cc: when the control page makes the journal's last commit
// L2's exact state (ParkedAtLastCommit). The capture from guest mode is tested on the emulated
// host (scripts/nested-host/tests.sh); the runner's side of parking in l2_runner_test.
#include "recovery/nested/l2_capture.h"

#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(ParkedAtLastCommitTest, ParkedAtTheLastCommitOrTheOneBeforeIt) {
  EXPECT_TRUE(ParkedAtLastCommit(1, 10, 10));  // parked after an exit's commit
  // Parked at an exit's pre-handling commit 10; commit 11 (after the exit) is written, the
  // control page not yet updated: L2 has not run since 10, so 11 is exact too.
  EXPECT_TRUE(ParkedAtLastCommit(1, 10, 11));
}

TEST(ParkedAtLastCommitTest, NotParkedOrParkedTooLongAgoIsNotExact) {
  EXPECT_FALSE(ParkedAtLastCommit(0, 10, 10));  // L2 runs (or is inside the L1's KVM)
  EXPECT_FALSE(ParkedAtLastCommit(0, 10, 11));
  EXPECT_FALSE(ParkedAtLastCommit(1, 10, 12));  // commits nobody parked at
  EXPECT_FALSE(ParkedAtLastCommit(1, 11, 10));  // a page ahead of the journal: garbage
  EXPECT_FALSE(ParkedAtLastCommit(2, 10, 10));  // garbage from a faulty L1
}

}  // namespace
}  // namespace rehome
