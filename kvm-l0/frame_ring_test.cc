// kvm-l0/frame_ring_test.cc: FrameRing between two mappings of the same memfd (as L0 and an L1
// see it): only published frames are read, in order; back-pressure and wrap-around; an
// uncommitted write rewritten by a successor; impossible positions and lengths from an untrusted
// side.
#include "kvm-l0/frame_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

struct Pair {
  FrameRing l0;
  FrameRing l1;
};

Pair MakePair() {
  absl::StatusOr<FrameRing> l0 = FrameRing::Create("test-ring");
  EXPECT_TRUE(l0.ok()) << l0.status();
  absl::StatusOr<FrameRing> l1 = FrameRing::Attach(fcntl(l0->memfd(), F_DUPFD_CLOEXEC, 3));
  EXPECT_TRUE(l1.ok()) << l1.status();
  return Pair{std::move(*l0), std::move(*l1)};
}

std::vector<uint8_t> Frame(uint64_t n, size_t len = 60) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(n * 31 + i);
  return f;
}

std::vector<uint8_t> Read(const FrameRing& ring, uint64_t pos, bool* present) {
  std::vector<uint8_t> out(kFrameMaxBytes);
  std::optional<size_t> n = ring.ReadAt(pos, out);
  *present = n.has_value();
  out.resize(n.value_or(0));
  return out;
}

TEST(FrameRing, OnlyPublishedFramesAreReadInOrder) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, Frame(0)));
  ASSERT_TRUE(p.l1.WriteAt(1, Frame(1, 1514)));
  bool present = true;
  Read(p.l0, 0, &present);
  EXPECT_FALSE(present);  // written, not published (not committed yet)
  p.l1.Publish(1);
  EXPECT_EQ(Read(p.l0, 0, &present), Frame(0));
  Read(p.l0, 1, &present);
  EXPECT_FALSE(present);
  p.l1.Publish(2);
  p.l1.Publish(1);  // never backwards
  EXPECT_EQ(*p.l0.CheckedPublished(0), 2u);
  EXPECT_EQ(Read(p.l0, 1, &present), Frame(1, 1514));
  p.l0.SetConsumed(2);
  p.l0.SetConsumed(1);  // never backwards
  EXPECT_EQ(p.l1.consumed(), 2u);
}

TEST(FrameRing, RefusesEmptyAndOversizedFrames) {
  Pair p = MakePair();
  EXPECT_FALSE(p.l1.WriteAt(0, {}));
  EXPECT_FALSE(p.l1.WriteAt(0, Frame(0, kFrameMaxBytes + 1)));
  EXPECT_TRUE(p.l1.WriteAt(0, Frame(0, kFrameMaxBytes)));
}

TEST(FrameRing, AppliesBackPressureAndWrapsAround) {
  Pair p = MakePair();
  for (uint64_t i = 0; i < kFrameRingSlots; ++i) ASSERT_TRUE(p.l0.WriteAt(i, Frame(i)));
  EXPECT_EQ(p.l0.FreeAt(kFrameRingSlots), 0u);
  EXPECT_FALSE(p.l0.WriteAt(kFrameRingSlots, Frame(99)));  // would overwrite an unread frame
  p.l0.Publish(kFrameRingSlots);
  bool present = false;
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(Read(p.l1, i, &present), Frame(i));
  p.l1.SetConsumed(10);
  ASSERT_EQ(*p.l0.CheckedConsumed(0, kFrameRingSlots), 10u);
  EXPECT_EQ(p.l0.FreeAt(kFrameRingSlots), 10u);
  for (uint64_t i = kFrameRingSlots; i < kFrameRingSlots + 10; ++i) {
    ASSERT_TRUE(p.l0.WriteAt(i, Frame(i)));
  }
  p.l0.Publish(kFrameRingSlots + 10);
  for (uint64_t i = 10; i < kFrameRingSlots + 10; ++i) {
    ASSERT_EQ(Read(p.l1, i, &present), Frame(i)) << i;
  }
}

TEST(FrameRing, AnUncommittedWriteIsRewrittenBySuccessor) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, Frame(0)));
  p.l1.Publish(1);
  ASSERT_TRUE(p.l1.WriteAt(1, Frame(77)));  // then the L1 dies before its commit
  absl::StatusOr<FrameRing> successor = FrameRing::Attach(fcntl(p.l0.memfd(), F_DUPFD_CLOEXEC, 3));
  ASSERT_TRUE(successor.ok());
  ASSERT_TRUE(successor->WriteAt(1, Frame(1)));  // the same chain again, from the commit at 1
  successor->Publish(2);
  bool present = false;
  EXPECT_EQ(Read(p.l0, 0, &present), Frame(0));
  EXPECT_EQ(Read(p.l0, 1, &present), Frame(1));  // nothing lost, nothing twice
}

TEST(FrameRing, ImpossiblePositionsFromAnUntrustedSideAreRejected) {
  Pair p = MakePair();
  p.l1.Publish(uint64_t{kFrameRingSlots} + 1);  // a lying L1 (transmit ring)
  EXPECT_EQ(p.l0.CheckedPublished(0).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(p.l0.published(), 0u);  // reset: a successor's valid position is taken again
  ASSERT_TRUE(p.l1.WriteAt(0, Frame(0)));
  p.l1.Publish(1);
  EXPECT_EQ(*p.l0.CheckedPublished(0), 1u);
  p.l1.SetConsumed(1000);  // an L1 scribbling on L0's own position: L0 repairs it
  p.l0.StoreConsumed(1);
  EXPECT_EQ(p.l1.consumed(), 1u);
  EXPECT_EQ(p.l0.CheckedPublished(2).status().code(), absl::StatusCode::kDataLoss);  // behind

  Pair rx = MakePair();  // receive ring: L0 writes, the L1 marks consumed
  ASSERT_TRUE(rx.l0.WriteAt(0, Frame(0), 0));
  rx.l0.StorePublished(1);
  rx.l1.SetConsumed(5);  // beyond what was published
  EXPECT_EQ(rx.l0.CheckedConsumed(0, 1).status().code(), absl::StatusCode::kOutOfRange);
  // L0 judges room by the position it accepted, not by the ring's.
  EXPECT_EQ(FrameRing::FreeAt(1, 0), kFrameRingSlots - 1);
  EXPECT_TRUE(rx.l0.WriteAt(1, Frame(1), 0));
  Pair rx2 = MakePair();
  rx2.l0.StorePublished(4);
  rx2.l1.SetConsumed(2);
  EXPECT_EQ(rx2.l0.CheckedConsumed(3, 4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*rx2.l0.CheckedConsumed(2, 4), 2u);
}

TEST(FrameRing, AnImpossibleSlotLengthIsReadAsAnEmptyFrame) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, Frame(0)));
  p.l1.Publish(1);
  // Scribble a length of 0xffffffff over the slot (an L1 may write anything there).
  auto* slot = static_cast<uint8_t*>(mmap(nullptr, kFrameRingDataOffset + kFrameRingSlotBytes,
                                          PROT_READ | PROT_WRITE, MAP_SHARED, p.l0.memfd(), 0));
  ASSERT_NE(slot, MAP_FAILED);
  const uint32_t bad = 0xffffffffu;
  std::memcpy(slot + kFrameRingDataOffset, &bad, 4);
  munmap(slot, kFrameRingDataOffset + kFrameRingSlotBytes);
  bool present = false;
  EXPECT_TRUE(Read(p.l0, 0, &present).empty());
  EXPECT_TRUE(present);
}

TEST(FrameRing, AttachChecksTheRing) {
  const int fd = memfd_create("not-a-ring", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(FrameRing::Attach(fd).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rehome
