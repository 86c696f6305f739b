// recovery/nested/l2_capture_test.cc: when the control page makes the journal's last commit
// L2's exact state (ParkedAtLastCommit), and the fault names --nested-fault takes. The captures
// from guest mode and from exits are tested on the emulated host (scripts/nested-host/tests.sh);
// the runner's side of parking in l2_runner_test, the assembly at an exit in l2_state_test.
#include "recovery/nested/l2_capture.h"

#include "gtest/gtest.h"
#include "recovery/nested/exit_trap.h"
#include "recovery/nested/nested_supervisor.h"

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

TEST(ExitTrapTest, KnowsKvmAmdsVmrunReturnAndNothingElse) {
  // Debian's 6.1.0-57 kvm-amd.ko: pop %rax; mov %rcx, 0x130(%rax).
  const std::vector<uint8_t> code{0x58, 0x48, 0x89, 0x88, 0x30, 0x01, 0x00, 0x00, 0x48};
  EXPECT_EQ(nested::ParseVmrunReturnCode(code), 0x130);
  const std::vector<uint8_t> negative{0x58, 0x48, 0x89, 0x88, 0xf0, 0xff, 0xff, 0xff};
  EXPECT_EQ(nested::ParseVmrunReturnCode(negative), -16);
  EXPECT_FALSE(
      nested::ParseVmrunReturnCode(std::vector<uint8_t>{0xfa, 0x48, 0x89, 0x88, 0, 0, 0, 0})
          .has_value());  // cli first (older kernels)
  EXPECT_FALSE(nested::ParseVmrunReturnCode(std::vector<uint8_t>{0x58, 0x48, 0x89}).has_value());
  EXPECT_EQ(nested::kExitTrapBytes[0], 0xe6);  // out %al, $imm8
}

TEST(NestedFaultTest, EveryFaultRoundTripsThroughItsName) {
  for (NestedFault f : {NestedFault::kKill, NestedFault::kPanic, NestedFault::kHang,
                        NestedFault::kCrash, NestedFault::kCrashInExit, NestedFault::kDieInExit,
                        NestedFault::kMixed, NestedFault::kRegister}) {
    EXPECT_EQ(ParseNestedFault(NestedFaultName(f)), f) << NestedFaultName(f);
  }
  EXPECT_FALSE(ParseNestedFault("none").has_value());
  EXPECT_FALSE(ParseNestedFault("melt").has_value());
}

}  // namespace
}  // namespace rehome
