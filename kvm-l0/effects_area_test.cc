// kvm-l0/effects_area_test.cc: the effects area: an encoded item round-trips from the replica's
// side to L0's, and everything a hostile replica can write is refused, never trusted.
#include "kvm-l0/effects_area.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"

namespace rehome {
namespace {

std::vector<uint8_t> SampleEntries() {
  std::vector<uint8_t> e;
  const uint8_t data[5] = {1, 2, 3, 4, 5};
  AppendEffect(&e, EffectType::kRamWrite, 0x1000, data);
  AppendEffect(&e, EffectType::kDiskWrite, 4096, std::span<const uint8_t>(data, 3));
  AppendEffect(&e, EffectType::kDiskFlush, 0, {});
  AppendEffect(&e, EffectType::kIrq, 5, {});
  const char text[] = "hi";
  AppendEffect(&e, EffectType::kConsoleOut, 0,
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text), 2));
  AppendEffect(&e, EffectType::kNetTx, 9, std::span<const uint8_t>(data, 4));
  AppendEffect(&e, EffectType::kNetRxDone, 12, {});
  const uint8_t receive_queue = 0;  // the device takes this queue's buffers on host input only
  AppendEffect(&e, EffectType::kAvailWatch, 0x4002, {&receive_queue, 1});
  return e;
}

class EffectsAreaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<EffectsArea> area = EffectsArea::Create();
    ASSERT_TRUE(area.ok()) << area.status();
    l0_ = std::move(*area);
    absl::StatusOr<EffectsArea> attached = EffectsArea::Attach(dup(l0_.memfd()));
    ASSERT_TRUE(attached.ok()) << attached.status();
    replica_ = std::move(*attached);
  }
  // The replica's view of the raw header (what a hostile one could scribble on).
  EffectsHeader* RawHeader() {
    return static_cast<EffectsHeader*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, l0_.memfd(), 0));
  }
  EffectsArea l0_, replica_;
};

TEST_F(EffectsAreaTest, ItemRoundTripsWithEveryEntryType) {
  const std::vector<uint8_t> entries = SampleEntries();
  ASSERT_TRUE(replica_.Write(42, kEffectsMore, 0xabcd, entries).ok());
  absl::StatusOr<Effects> got = l0_.CopyOut(42);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->flags, kEffectsMore);
  EXPECT_EQ(got->state_crc, 0xabcdu);
  EXPECT_EQ(got->bytes, entries);
  ASSERT_EQ(got->entries.size(), 8u);
  EXPECT_EQ(got->entries[0].type, EffectType::kRamWrite);
  EXPECT_EQ(got->entries[0].addr, 0x1000u);
  EXPECT_EQ(std::vector<uint8_t>(got->entries[0].data.begin(), got->entries[0].data.end()),
            (std::vector<uint8_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(got->entries[1].data.size(), 3u);
  EXPECT_EQ(got->entries[3].type, EffectType::kIrq);
  EXPECT_EQ(got->entries[3].addr, 5u);
  EXPECT_EQ(std::string(got->entries[4].data.begin(), got->entries[4].data.end()), "hi");
  EXPECT_EQ(got->entries[5].type, EffectType::kNetTx);
  EXPECT_EQ(got->entries[5].addr, 9u);
  EXPECT_EQ(got->entries[5].data.size(), 4u);
  EXPECT_EQ(got->entries[6].type, EffectType::kNetRxDone);
  EXPECT_EQ(got->entries[6].addr, 12u);
  EXPECT_EQ(got->entries[7].type, EffectType::kAvailWatch);
  EXPECT_EQ(got->entries[7].addr, 0x4002u);
  ASSERT_EQ(got->entries[7].data.size(), 1u);
  EXPECT_EQ(got->entries[7].data[0], 0u);
  // An empty item too.
  ASSERT_TRUE(replica_.Write(43, 0, 7, {}).ok());
  got = l0_.CopyOut(43);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->entries.empty());
}

TEST_F(EffectsAreaTest, SameAsComparesEntriesFlagsAndState) {
  ASSERT_TRUE(replica_.Write(1, 0, 9, SampleEntries()).ok());
  absl::StatusOr<Effects> a = l0_.CopyOut(1);
  absl::StatusOr<Effects> b = l0_.CopyOut(1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->SameAs(*b));
  b->state_crc ^= 1;
  EXPECT_FALSE(a->SameAs(*b));
}

TEST_F(EffectsAreaTest, HostileContentIsRefused) {
  ASSERT_TRUE(replica_.Write(5, 0, 0, SampleEntries()).ok());
  EffectsHeader* h = RawHeader();
  EXPECT_FALSE(l0_.CopyOut(6).ok());  // another item's effects
  h->length = kEffectsCapacity + 1;
  EXPECT_FALSE(l0_.CopyOut(5).ok());
  ASSERT_TRUE(replica_.Write(5, 0, 0, SampleEntries()).ok());
  h->entries_crc ^= 1;
  EXPECT_FALSE(l0_.CopyOut(5).ok());
  ASSERT_TRUE(replica_.Write(5, 0, 0, SampleEntries()).ok());
  h->entry_count = 4;
  EXPECT_FALSE(l0_.CopyOut(5).ok());
  ASSERT_TRUE(replica_.Write(5, 0, 0, SampleEntries()).ok());
  h->magic = 0;
  EXPECT_FALSE(l0_.CopyOut(5).ok());
  munmap(h, 4096);
}

// With another replica's checked effects of the same item, identical entries under the same CRC
// are not checksummed again; anything else still is, and fails as it would have.
TEST_F(EffectsAreaTest, APeersCheckedEffectsSpareTheCrcOfIdenticalEntriesOnly) {
  ASSERT_TRUE(replica_.Write(5, 0, 0, SampleEntries()).ok());
  absl::StatusOr<Effects> peer = l0_.CopyOut(5);
  ASSERT_TRUE(peer.ok()) << peer.status();
  absl::StatusOr<Effects> same = l0_.CopyOut(5, &*peer);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->SameAs(*peer));
  EffectsHeader* h = RawHeader();
  h->entries_crc ^= 1;  // same bytes, another CRC: computed, and wrong
  EXPECT_FALSE(l0_.CopyOut(5, &*peer).ok());
  h->entries_crc ^= 1;
  std::vector<uint8_t> other = SampleEntries();
  other[16] ^= 0xff;  // the first entry's data, under the peer's CRC: computed, and wrong
  ASSERT_TRUE(replica_.Write(5, 0, 0, other).ok());
  h->entries_crc = peer->entries_crc;
  EXPECT_FALSE(l0_.CopyOut(5, &*peer).ok());
  ASSERT_TRUE(replica_.Write(6, 0, 0, SampleEntries()).ok());  // another item: checked alone
  EXPECT_TRUE(l0_.CopyOut(6, &*peer).ok());
  munmap(h, 4096);
}

TEST(ParseEffects, RejectsMalformedEncodings) {
  std::vector<uint8_t> e = SampleEntries();
  EXPECT_TRUE(ParseEffects(e, 8).ok());
  std::vector<uint8_t> truncated(e.begin(), e.end() - 1);
  EXPECT_FALSE(ParseEffects(truncated, 8).ok());
  std::vector<uint8_t> bad_type = e;
  bad_type[0] = 9;  // one past the last type
  EXPECT_FALSE(ParseEffects(bad_type, 8).ok());
  std::vector<uint8_t> huge = e;
  const uint32_t len = 0xfffffff0u;
  std::memcpy(huge.data() + 4, &len, 4);  // the first entry claims 4 GiB
  EXPECT_FALSE(ParseEffects(huge, 8).ok());
  EXPECT_FALSE(ParseEffects(std::vector<uint8_t>(7, 0), 0).ok());  // a partial head
}

TEST(EffectsAreaAttach, RefusesAMemfdOfTheWrongSize) {
  const int fd = memfd_create("not-an-area", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  EXPECT_FALSE(EffectsArea::Attach(fd).ok());
}

}  // namespace
}  // namespace rehome
