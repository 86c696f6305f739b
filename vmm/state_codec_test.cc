// vmm/state_codec_test.cc: the byte format of StateWriter / StateReader (little-endian fixed
// widths, length-prefixed bytes, word arrays) and the reader's sticky truncation handling.
#include "vmm/state_codec.h"

#include <array>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StateCodecBytes, FieldsAreLittleEndianAfterTheVersionByte) {
  StateWriter w(3);
  w.U16(0x0102);
  w.U32(0x03040506);
  w.U64(0x0708090a0b0c0d0eull);
  w.Bytes("ab");
  const std::array<uint64_t, 2> words = {0x1112131415161718ull, 0x2122232425262728ull};
  w.U64Array(words);
  const std::vector<uint8_t> bytes = w.Finish();
  EXPECT_THAT(
      bytes, ElementsAre(3, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09,
                         0x08, 0x07, 2, 0, 0, 0, 'a', 'b', 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12,
                         0x11, 0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21));

  StateReader r(bytes, "test");
  ASSERT_TRUE(r.ExpectVersion(3).ok());
  EXPECT_EQ(r.U16(), 0x0102);
  EXPECT_EQ(r.U32(), 0x03040506u);
  EXPECT_EQ(r.U64(), 0x0708090a0b0c0d0eull);
  EXPECT_EQ(r.Bytes(16), "ab");
  std::array<uint64_t, 2> read{};
  r.U64Array(read);
  EXPECT_EQ(read, words);
  EXPECT_TRUE(r.Finish().ok());
}

TEST(StateCodecBytes, ATruncatedArrayReadsAsZeroAndTheErrorSticks) {
  StateWriter w(1);
  const std::array<uint64_t, 3> words = {1, 2, 3};
  w.U64Array(words);
  std::vector<uint8_t> bytes = w.Finish();
  bytes.pop_back();
  StateReader r(bytes, "test");
  ASSERT_TRUE(r.ExpectVersion(1).ok());
  std::array<uint64_t, 3> read = {9, 9, 9};
  r.U64Array(read);
  EXPECT_THAT(read, ElementsAre(0, 0, 0));
  EXPECT_EQ(r.U8(), 0);  // sticky: nothing more is read
  EXPECT_THAT(std::string(r.Finish().message()), HasSubstr("test state: truncated at byte 1"));
}

TEST(StateCodecBytes, TrailingBytesAndWrongVersionAreErrors) {
  StateWriter w(2);
  w.U32(7);
  const std::vector<uint8_t> bytes = w.Finish();
  StateReader wrong(bytes, "test");
  EXPECT_FALSE(wrong.ExpectVersion(1).ok());
  StateReader partial(bytes, "test");
  ASSERT_TRUE(partial.ExpectVersion(2).ok());
  EXPECT_EQ(partial.U16(), 7);
  EXPECT_FALSE(partial.Finish().ok());
}

}  // namespace
}  // namespace rehome
