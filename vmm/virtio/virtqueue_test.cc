// vmm/virtio/virtqueue_test.cc: split virtqueue parsing, publishing, hostile rings and state.
#include "vmm/virtio/virtqueue.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome::virtio {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000;
constexpr uint16_t kSize = 8;

class VirtqueueTest : public ::testing::Test {
 protected:
  VirtqueueTest() : ram_(64 * 1024), mem_(ram_) {
    EXPECT_TRUE(vq_.set_size(kSize).ok());
    EXPECT_TRUE(vq_.set_desc_gpa(kDesc).ok());
    EXPECT_TRUE(vq_.set_avail_gpa(kAvail).ok());
    EXPECT_TRUE(vq_.set_used_gpa(kUsed).ok());
    EXPECT_TRUE(vq_.Enable(mem_).ok());
  }
  template <typename T>
  void Put(uint64_t gpa, T v) {
    std::memcpy(ram_.data() + gpa, &v, sizeof(T));
  }
  template <typename T>
  T Get(uint64_t gpa) {
    T v;
    std::memcpy(&v, ram_.data() + gpa, sizeof(T));
    return v;
  }
  void Desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    Put<uint64_t>(kDesc + 16 * i, addr);
    Put<uint32_t>(kDesc + 16 * i + 8, len);
    Put<uint16_t>(kDesc + 16 * i + 12, flags);
    Put<uint16_t>(kDesc + 16 * i + 14, next);
  }
  void Publish(uint16_t head) {
    const uint16_t idx = Get<uint16_t>(kAvail + 2);
    Put<uint16_t>(kAvail + 4 + 2 * (idx % kSize), head);
    Put<uint16_t>(kAvail + 2, idx + 1);
  }
  // Pops and expects an error with `code` whose message contains `text`; the queue must not move.
  void ExpectPopError(absl::StatusCode code, const std::string& text) {
    const Virtqueue::State before = vq_.SaveState();
    absl::StatusOr<std::optional<Virtqueue::Chain>> r = vq_.Pop(mem_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(text));
    EXPECT_EQ(vq_.SaveState(), before);
  }

  std::vector<uint8_t> ram_;
  FlatGuestMemoryView mem_;
  Virtqueue vq_;
};

TEST_F(VirtqueueTest, EmptyQueuePopsNothing) {
  absl::StatusOr<std::optional<Virtqueue::Chain>> r = vq_.Pop(mem_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());
}

TEST_F(VirtqueueTest, PopsChainsInOrderAndPublishesUsed) {
  Desc(3, 0x8000, 16, kDescFlagNext, 5);
  Desc(5, 0x8100, 512, kDescFlagNext | kDescFlagWrite, 1);
  Desc(1, 0x8400, 1, kDescFlagWrite);
  Desc(2, 0x9000, 7, 0);
  Publish(3);
  Publish(2);

  absl::StatusOr<std::optional<Virtqueue::Chain>> a = vq_.Pop(mem_);
  ASSERT_TRUE(a.ok() && a->has_value()) << a.status();
  EXPECT_EQ((*a)->head, 3);
  ASSERT_EQ((*a)->descriptors.size(), 3u);
  EXPECT_EQ((*a)->descriptors[1].addr, 0x8100u);
  EXPECT_TRUE((*a)->descriptors[1].write);
  EXPECT_FALSE((*a)->descriptors[0].write);
  EXPECT_EQ((*a)->readable_len, 16u);
  EXPECT_EQ((*a)->writable_len, 513u);

  absl::StatusOr<std::optional<Virtqueue::Chain>> b = vq_.Pop(mem_);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->head, 2);
  EXPECT_EQ((*b)->readable_len, 7u);
  ASSERT_TRUE(vq_.Pop(mem_).ok());

  ASSERT_TRUE(vq_.PushUsed(mem_, 2, 0).ok());
  ASSERT_TRUE(vq_.PushUsed(mem_, 3, 513).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 2);
  EXPECT_EQ(Get<uint32_t>(kUsed + 4), 2u);
  EXPECT_EQ(Get<uint32_t>(kUsed + 8), 0u);
  EXPECT_EQ(Get<uint32_t>(kUsed + 12), 3u);
  EXPECT_EQ(Get<uint32_t>(kUsed + 16), 513u);
  EXPECT_EQ(vq_.SaveState().last_avail_idx, 2);
  EXPECT_EQ(vq_.SaveState().used_idx, 2);
}

TEST_F(VirtqueueTest, RingIndicesWrapAround) {
  // Start both indices near 65535 through a restore, as after a long-running guest.
  Virtqueue::State s = vq_.SaveState();
  s.last_avail_idx = 65534;
  s.used_idx = 65534;
  ASSERT_TRUE(vq_.RestoreState(s, mem_).ok());
  Put<uint16_t>(kAvail + 2, 65534);
  for (uint16_t i = 0; i < 4; ++i) {
    Desc(i, 0x8000 + i * 0x100, 8, 0);
    Publish(i);
  }
  for (uint16_t i = 0; i < 4; ++i) {
    absl::StatusOr<std::optional<Virtqueue::Chain>> c = vq_.Pop(mem_);
    ASSERT_TRUE(c.ok() && c->has_value()) << c.status();
    EXPECT_EQ((*c)->head, i);
    ASSERT_TRUE(vq_.PushUsed(mem_, i, 8).ok());
  }
  EXPECT_EQ(vq_.SaveState().last_avail_idx, 2);
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 2);
}

// A view that fixes the available index (a verified replica's, vmm/l1/effect_capture.h): the
// queue takes chains only up to it, however far the driver has moved the word in RAM.
class FixedAvailView final : public GuestMemoryView {
 public:
  FixedAvailView(const GuestMemoryView& ram, uint64_t gpa, uint16_t index)
      : ram_(ram), gpa_(gpa), index_(index) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }
  std::optional<uint16_t> AvailableIndex(uint64_t gpa) const override {
    return gpa == gpa_ ? std::optional<uint16_t>(index_) : ram_.AvailableIndex(gpa);
  }

 private:
  const GuestMemoryView& ram_;
  uint64_t gpa_;
  uint16_t index_;
};

TEST_F(VirtqueueTest, TakesChainsOnlyUpToTheViewsAvailableIndex) {
  Desc(0, 0x8000, 16, 0);
  Desc(1, 0x8100, 16, 0);
  Publish(0);
  Publish(1);
  FixedAvailView one(mem_, kAvail + 2, 1);  // the driver had published one chain
  EXPECT_TRUE(vq_.HasAvailable(one));
  absl::StatusOr<std::optional<Virtqueue::Chain>> a = vq_.Pop(one);
  ASSERT_TRUE(a.ok() && a->has_value()) << a.status();
  EXPECT_EQ((*a)->head, 0);
  EXPECT_FALSE(vq_.HasAvailable(one));
  absl::StatusOr<std::optional<Virtqueue::Chain>> none = vq_.Pop(one);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // chain 1 is in the ring, after the view's index
  EXPECT_TRUE(vq_.HasAvailable(mem_));
  absl::StatusOr<std::optional<Virtqueue::Chain>> b = vq_.Pop(mem_);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->head, 1);
}

TEST_F(VirtqueueTest, RejectsDescriptorLoop) {
  Desc(0, 0x8000, 8, kDescFlagNext, 1);
  Desc(1, 0x8000, 8, kDescFlagNext, 0);
  Publish(0);
  ExpectPopError(absl::StatusCode::kInvalidArgument, "loop");
}

TEST_F(VirtqueueTest, RejectsSelfLoop) {
  Desc(4, 0x8000, 8, kDescFlagNext, 4);
  Publish(4);
  ExpectPopError(absl::StatusCode::kInvalidArgument, "loop");
}

TEST_F(VirtqueueTest, RejectsHeadIndexBeyondSize) {
  Publish(kSize);
  ExpectPopError(absl::StatusCode::kOutOfRange, "head 8 >= queue size 8");
}

TEST_F(VirtqueueTest, RejectsNextIndexBeyondSize) {
  Desc(0, 0x8000, 8, kDescFlagNext, 0xffff);
  Publish(0);
  ExpectPopError(absl::StatusCode::kOutOfRange, "links to index 65535");
}

TEST_F(VirtqueueTest, RejectsDescriptorOutsideRam) {
  Desc(0, ram_.size() - 4, 8, 0);
  Publish(0);
  ExpectPopError(absl::StatusCode::kOutOfRange, "not in guest RAM");
}

TEST_F(VirtqueueTest, RejectsAddressPlusLengthOverflow) {
  Desc(0, 0xfffffffffffff000ull, 0x2000, 0);
  Publish(0);
  ExpectPopError(absl::StatusCode::kOutOfRange, "wraps around");
}

TEST_F(VirtqueueTest, RejectsMaximalLength) {
  Desc(0, 0x8000, 0xffffffffu, kDescFlagWrite);
  Publish(0);
  ExpectPopError(absl::StatusCode::kOutOfRange, "not in guest RAM");
}

TEST_F(VirtqueueTest, RejectsAvailIdxJumpingPastQueueSize) {
  Put<uint16_t>(kAvail + 2, kSize + 1);
  ExpectPopError(absl::StatusCode::kOutOfRange, "more than the queue size");
  Put<uint16_t>(kAvail + 2, 0xffff);  // "backwards" is a huge jump forwards
  ExpectPopError(absl::StatusCode::kOutOfRange, "more than the queue size");
}

TEST_F(VirtqueueTest, RejectsIndirectDescriptors) {
  Desc(0, 0x8000, 32, kDescFlagIndirect);
  Publish(0);
  ExpectPopError(absl::StatusCode::kInvalidArgument, "indirect");
}

TEST_F(VirtqueueTest, RejectsReadableAfterWritable) {
  Desc(0, 0x8000, 8, kDescFlagNext | kDescFlagWrite, 1);
  Desc(1, 0x8100, 8, 0);
  Publish(0);
  ExpectPopError(absl::StatusCode::kInvalidArgument, "follows a device-writable");
}

// A view with a second, enormous "RAM" region whose bytes are never dereferenced by Pop.
class HugeView final : public GuestMemoryView {
 public:
  static constexpr uint64_t kHugeBase = uint64_t{1} << 40;
  explicit HugeView(std::vector<uint8_t>& ram) : ram_(ram) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    if (gpa >= kHugeBase && len <= kHugeBase && gpa - kHugeBase <= kHugeBase - len) {
      return ram_.data();  // never used for data by the code under test
    }
    return FlatGuestMemoryView(ram_).HostAddress(gpa, len);
  }

 private:
  std::vector<uint8_t>& ram_;
};

TEST_F(VirtqueueTest, RejectsChainLongerThanFourGiB) {
  HugeView huge(ram_);
  Desc(0, HugeView::kHugeBase, 0xffffffffu, kDescFlagNext, 1);
  Desc(1, HugeView::kHugeBase, 2, 0);
  Publish(0);
  absl::StatusOr<std::optional<Virtqueue::Chain>> r = vq_.Pop(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("2^32"));
}

// Split mode: the used elements are written at once, the driver-visible idx only at PublishUsed
// (after the L1 committed the state holding them); republishing is idempotent, and a queue
// restored from the saved state publishes the same idx.
TEST_F(VirtqueueTest, DeferredPublicationMovesTheUsedIdxOnlyWhenPublished) {
  for (uint16_t head = 0; head < 4; ++head) {
    Desc(head, 0x8000 + 0x100 * head, 16, 0);
    Publish(head);
    ASSERT_TRUE(vq_.Pop(mem_).ok());
  }
  vq_.set_deferred_publication(true);
  ASSERT_TRUE(vq_.PushUsed(mem_, 1, 7).ok());
  ASSERT_TRUE(vq_.PushUsed(mem_, 2, 9).ok());
  EXPECT_EQ(Get<uint32_t>(kUsed + 4), 1u);  // elements are in place
  EXPECT_EQ(Get<uint32_t>(kUsed + 16), 9u);
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 0);  // but the driver sees nothing yet
  EXPECT_EQ(vq_.SaveState().used_idx, 2);  // the state (what is committed) has them
  ASSERT_TRUE(vq_.PublishUsed(mem_).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 2);
  ASSERT_TRUE(vq_.PublishUsed(mem_).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 2);
  // A standby restoring the committed state after the active died before publishing.
  ASSERT_TRUE(vq_.PushUsed(mem_, 3, 1).ok());
  const Virtqueue::State committed = vq_.SaveState();
  Virtqueue standby;
  standby.set_deferred_publication(true);
  ASSERT_TRUE(standby.RestoreState(committed, mem_).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 2);
  ASSERT_TRUE(standby.PublishUsed(mem_).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 3);
  // Immediate publication (monolithic) is the default.
  Virtqueue immediate;
  ASSERT_TRUE(immediate.RestoreState(committed, mem_).ok());
  ASSERT_TRUE(immediate.PushUsed(mem_, 0, 0).ok());
  EXPECT_EQ(Get<uint16_t>(kUsed + 2), 4);
}

TEST_F(VirtqueueTest, PushUsedRejectsBadHead) {
  EXPECT_EQ(vq_.PushUsed(mem_, kSize, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST(VirtqueueSetup, EnableValidatesLayout) {
  std::vector<uint8_t> ram(0x10000);
  FlatGuestMemoryView mem(ram);
  Virtqueue vq;
  auto setup = [&](uint16_t size, uint64_t d, uint64_t a, uint64_t u) {
    vq.Disable();
    EXPECT_TRUE(vq.set_size(size).ok());
    EXPECT_TRUE(vq.set_desc_gpa(d).ok());
    EXPECT_TRUE(vq.set_avail_gpa(a).ok());
    EXPECT_TRUE(vq.set_used_gpa(u).ok());
    return vq.Enable(mem);
  };
  EXPECT_THAT(std::string(setup(0, 0x1000, 0x2000, 0x3000).message()), HasSubstr("power of two"));
  EXPECT_THAT(std::string(setup(6, 0x1000, 0x2000, 0x3000).message()), HasSubstr("power of two"));
  EXPECT_THAT(std::string(setup(512, 0x1000, 0x2000, 0x3000).message()), HasSubstr("power of two"));
  EXPECT_THAT(std::string(setup(8, 0x1008, 0x2000, 0x3000).message()), HasSubstr("aligned"));
  EXPECT_THAT(std::string(setup(8, 0x1000, 0x2001, 0x3000).message()), HasSubstr("aligned"));
  EXPECT_THAT(std::string(setup(8, 0x1000, 0x2000, 0x3002).message()), HasSubstr("aligned"));
  EXPECT_EQ(setup(8, 0xfff0, 0x2000, 0x3000).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(setup(8, 0x1000, 0x2000, 0xfffffffffffffff0ull).code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(vq.ready());
  ASSERT_TRUE(setup(8, 0x1000, 0x2000, 0x3000).ok());
  EXPECT_TRUE(vq.ready());
  // No setup change while ready.
  EXPECT_EQ(vq.set_size(4).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vq.set_desc_gpa(0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vq.set_avail_gpa(0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vq.set_used_gpa(0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vq.size(), 8);
}

TEST_F(VirtqueueTest, PopWhenNotReadyIsFailedPrecondition) {
  vq_.Disable();
  EXPECT_EQ(vq_.Pop(mem_).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vq_.PushUsed(mem_, 0, 0).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(VirtqueueTest, SegmentsAndCopiesCrossDescriptorBoundaries) {
  Desc(0, 0x8000, 5, kDescFlagNext, 1);
  Desc(1, 0x8100, 0, kDescFlagNext, 2);  // zero-length descriptors are allowed and skipped
  Desc(2, 0x8200, 7, kDescFlagNext, 3);
  Desc(3, 0x8300, 4, kDescFlagNext | kDescFlagWrite, 4);
  Desc(4, 0x8400, 4, kDescFlagWrite);
  std::memcpy(ram_.data() + 0x8000, "hello", 5);
  std::memcpy(ram_.data() + 0x8200, " world!", 7);
  Publish(0);
  absl::StatusOr<std::optional<Virtqueue::Chain>> c = vq_.Pop(mem_);
  ASSERT_TRUE(c.ok() && c->has_value());
  std::vector<uint8_t> out(9);
  ASSERT_TRUE(CopyFromChain(mem_, **c, 3, out).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), "lo world!");
  std::vector<uint8_t> too_long(10);
  EXPECT_EQ(CopyFromChain(mem_, **c, 3, too_long).code(), absl::StatusCode::kOutOfRange);
  const uint8_t in[] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(CopyToChain(mem_, **c, 1, in).ok());
  EXPECT_EQ(ram_[0x8301], 1);
  EXPECT_EQ(ram_[0x8303], 3);
  EXPECT_EQ(ram_[0x8400], 4);
  EXPECT_EQ(ram_[0x8402], 6);
  EXPECT_EQ(CopyToChain(mem_, **c, 3, in).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(VirtqueueTest, StateRoundTripsThroughEncoding) {
  Desc(0, 0x8000, 8, 0);
  Publish(0);
  ASSERT_TRUE(vq_.Pop(mem_).ok());
  ASSERT_TRUE(vq_.PushUsed(mem_, 0, 8).ok());
  const Virtqueue::State saved = vq_.SaveState();
  StateWriter w(1);
  Virtqueue::EncodeState(saved, w);
  const std::vector<uint8_t> bytes = w.Finish();
  StateReader r(bytes, "test");
  ASSERT_TRUE(r.ExpectVersion(1).ok());
  const Virtqueue::State decoded = Virtqueue::DecodeState(r);
  ASSERT_TRUE(r.Finish().ok());
  EXPECT_EQ(decoded, saved);

  Virtqueue fresh;
  ASSERT_TRUE(fresh.RestoreState(decoded, mem_).ok());
  EXPECT_EQ(fresh.SaveState(), saved);
  // The restored queue continues where the old one stopped.
  Desc(1, 0x8100, 8, 0);
  Publish(1);
  absl::StatusOr<std::optional<Virtqueue::Chain>> c = fresh.Pop(mem_);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->head, 1);
  EXPECT_FALSE(fresh.Pop(mem_)->has_value());
}

TEST(VirtqueueState, RestoreRejectsInvalidStates) {
  std::vector<uint8_t> ram(0x10000);
  FlatGuestMemoryView mem(ram);
  Virtqueue vq;
  Virtqueue::State s{8, true, 0x1000, 0x2000, 0x3000, 0, 0};
  s.size = 1024;
  EXPECT_EQ(vq.RestoreState(s, mem).code(), absl::StatusCode::kInvalidArgument);
  s.size = 8;
  s.desc_gpa = 0x100000;  // outside RAM
  EXPECT_EQ(vq.RestoreState(s, mem).code(), absl::StatusCode::kOutOfRange);
  s.desc_gpa = 0x1000;
  s.last_avail_idx = 20;  // 20 in flight on an 8-entry queue
  EXPECT_EQ(vq.RestoreState(s, mem).code(), absl::StatusCode::kInvalidArgument);
  s.ready = false;
  EXPECT_EQ(vq.RestoreState(s, mem).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(vq.SaveState(), Virtqueue::State{});
  // Decoding a truncated record fails (sticky reader).
  StateWriter w(1);
  Virtqueue::EncodeState(Virtqueue::State{}, w);
  std::vector<uint8_t> bytes = w.Finish();
  bytes.pop_back();
  StateReader r(bytes, "test");
  ASSERT_TRUE(r.ExpectVersion(1).ok());
  Virtqueue::DecodeState(r);
  EXPECT_FALSE(r.Finish().ok());
}

}  // namespace
}  // namespace rehome::virtio
