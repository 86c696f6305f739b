// recovery/nested/l1_register_fault_test.cc: the pure part of register fault injection: each
// flippable register is a distinct field, a flip changes exactly one bit, out-of-range flips
// change nothing. (Flipping a live L1's register is exercised on the emulated host:
// make test-nested NESTED_TESTS=nested-register.)
#include "recovery/nested/l1_register_fault.h"

#include <cstring>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(L1RegisterFaultTest, EveryRegisterIsADistinctFieldAndOneBitChanges) {
  std::set<std::string> names;
  for (int reg = 0; reg < kFlippableRegisters; ++reg) {
    names.insert(FlippableRegisterName(reg));
    Regs regs;
    regs.rip = 0x1000;
    regs.rflags = 0x2;
    const Regs before = regs;
    const uint64_t old = ApplyRegisterFlip(regs, {reg, 5});
    int changed_words = 0;
    uint64_t a[18], b[18];
    std::memcpy(a, &before, sizeof(a));
    std::memcpy(b, &regs, sizeof(b));
    for (int i = 0; i < 18; ++i) {
      if (a[i] != b[i]) {
        ++changed_words;
        EXPECT_EQ(a[i] ^ b[i], uint64_t{1} << 5);
        EXPECT_EQ(a[i], old);
        EXPECT_EQ(i, reg);
      }
    }
    EXPECT_EQ(changed_words, 1) << FlippableRegisterName(reg);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kFlippableRegisters));
  EXPECT_STREQ(FlippableRegisterName(16), "rip");
  EXPECT_STREQ(FlippableRegisterName(17), "rflags");
}

TEST(L1RegisterFaultTest, OutOfRangeFlipsChangeNothing) {
  Regs regs;
  regs.rax = 7;
  const Regs before = regs;
  EXPECT_EQ(ApplyRegisterFlip(regs, {-1, 0}), 0u);
  EXPECT_EQ(ApplyRegisterFlip(regs, {kFlippableRegisters, 0}), 0u);
  EXPECT_EQ(ApplyRegisterFlip(regs, {0, 64}), 0u);
  EXPECT_EQ(regs, before);
  EXPECT_STREQ(FlippableRegisterName(99), "?");
}

}  // namespace
}  // namespace rehome
