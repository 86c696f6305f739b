// state-extract/nested/linear_walk_test.cc: TranslateLinear on synthetic 4-level tables: 4 KiB,
// 2 MiB and 1 GiB pages of a kernel (high-half) and a user address, and the refusals.
#include "state-extract/nested/linear_walk.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace rehome::nested {
namespace {

class LinearWalkTest : public ::testing::Test {
 protected:
  void SetUp() override { memory_.AddRegion(0, ram_); }
  void Set(uint64_t gpa, uint64_t value) { std::memcpy(ram_.data() + gpa, &value, 8); }
  static uint64_t Index(uint64_t linear, int level) {
    return (linear >> (12 + 9 * (level - 1))) & 0x1ff;
  }
  std::vector<uint8_t> ram_ = std::vector<uint8_t>(1 << 20);
  SpanPhysicalMemory memory_;
};

TEST_F(LinearWalkTest, KernelAndUserAddressesThroughEveryPageSize) {
  // PML4 0x1000; kernel: PDPT 0x2000, PD 0x3000, PT 0x4000; user: PDPT 0x5000 (1 GiB page).
  const uint64_t text = 0xffffffffc0583dccull;
  Set(0x1000 + Index(text, 4) * 8, 0x2000 | 3);
  Set(0x2000 + Index(text, 3) * 8, 0x3000 | 3);
  Set(0x3000 + Index(text, 2) * 8, 0x4000 | 3);
  Set(0x4000 + Index(text, 1) * 8, 0x7f000ull | 1 | (1ull << 63));  // NX, supervisor
  EXPECT_EQ(TranslateLinear(memory_, 0x1000, text).value(), 0x7fdccu);
  const uint64_t big = 0xffffffff81234567ull;  // a 2 MiB page in the same PDPT range
  Set(0x2000 + Index(big, 3) * 8, 0x6000 | 3);
  Set(0x6000 + Index(big, 2) * 8, 0x40000000ull | 0x83);
  EXPECT_EQ(TranslateLinear(memory_, 0x1000 | 0x18, big).value(), 0x40000000u + (big & 0x1fffff));
  const uint64_t user = 0x7f0012345678ull;
  Set(0x1000 + Index(user, 4) * 8, 0x5000 | 7);
  Set(0x5000 + Index(user, 3) * 8, 0x80000000ull | 0x87);
  EXPECT_EQ(TranslateLinear(memory_, 0x1000, user).value(), 0x80000000u + (user & 0x3fffffff));
}

TEST_F(LinearWalkTest, RefusesWhatIsNotMapped) {
  EXPECT_EQ(TranslateLinear(memory_, 0x1000, 0x0000800000000000ull).status().code(),
            absl::StatusCode::kInvalidArgument);  // not canonical
  EXPECT_EQ(TranslateLinear(memory_, 0x1000, 0xffffffffc0000000ull).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(TranslateLinear(memory_, 0x200000, 0x1000).status().code(),
            absl::StatusCode::kDataLoss);        // the PML4 outside memory
  Set(0x1000, 0x9000000000000ull | 0x2000 | 3);  // address bits above a 40-bit MAXPHYADDR
  EXPECT_EQ(TranslateLinear(memory_, 0x1000, 0x1000, 40).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace rehome::nested
