// kvm-l0/console_tx_ring_test.cc: ConsoleTxRing between two mappings of the same memfd (as L0
// and an L1 see it): ordering, wrap-around, back-pressure, an uncommitted write rewritten by a
// successor, and impossible positions from an untrusted writer.
#include "kvm-l0/console_tx_ring.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace rehome {
namespace {

struct Pair {
  ConsoleTxRing l0;
  ConsoleTxRing l1;
};

Pair MakePair() {
  absl::StatusOr<ConsoleTxRing> l0 = ConsoleTxRing::Create();
  EXPECT_TRUE(l0.ok()) << l0.status();
  absl::StatusOr<ConsoleTxRing> l1 = ConsoleTxRing::Attach(fcntl(l0->memfd(), F_DUPFD_CLOEXEC, 3));
  EXPECT_TRUE(l1.ok()) << l1.status();
  return Pair{std::move(*l0), std::move(*l1)};
}

TEST(ConsoleTxRing, OnlyPublishedBytesReachL0InOrder) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, "hello "));
  ASSERT_TRUE(p.l1.WriteAt(6, "world"));
  EXPECT_EQ(*p.l0.Take(), "");  // written, not published (not committed yet)
  p.l1.Publish(6);
  EXPECT_EQ(*p.l0.Take(), "hello ");
  p.l1.Publish(11);
  p.l1.Publish(3);  // never backwards
  EXPECT_EQ(*p.l0.Take(), "world");
  EXPECT_EQ(p.l0.consumed(), 11u);
  EXPECT_EQ(*p.l0.Take(), "");
}

TEST(ConsoleTxRing, AnUncommittedWriteIsRewrittenBySuccessor) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, "abc"));
  p.l1.Publish(3);
  ASSERT_TRUE(p.l1.WriteAt(3, "XYZ"));  // then the L1 dies before its commit
  absl::StatusOr<ConsoleTxRing> successor =
      ConsoleTxRing::Attach(fcntl(p.l0.memfd(), F_DUPFD_CLOEXEC, 3));
  ASSERT_TRUE(successor.ok());
  ASSERT_TRUE(successor->WriteAt(3, "def"));  // the same chains again, from the commit at 3
  successor->Publish(6);
  EXPECT_EQ(*p.l0.Take(), "abcdef");  // nothing lost, nothing twice
}

TEST(ConsoleTxRing, WrapsAroundAndAppliesBackPressure) {
  Pair p = MakePair();
  const std::string big(kConsoleTxRingCapacity - 10, 'a');
  ASSERT_TRUE(p.l1.WriteAt(0, big));
  p.l1.Publish(big.size());
  EXPECT_EQ(p.l1.FreeAt(big.size()), 10u);
  EXPECT_FALSE(p.l1.WriteAt(big.size(), std::string(11, 'b')));  // would overwrite unread bytes
  ASSERT_EQ(p.l0.Take()->size(), big.size());
  const std::string tail = "0123456789abcdefghij";  // crosses the end of the buffer
  ASSERT_TRUE(p.l1.WriteAt(big.size(), tail));
  p.l1.Publish(big.size() + tail.size());
  EXPECT_EQ(*p.l0.Take(), tail);
}

TEST(ConsoleTxRing, ImpossiblePositionsAreRejectedAndTakeNothing) {
  Pair p = MakePair();
  p.l1.Publish(uint64_t{kConsoleTxRingCapacity} + 1);  // a lying L1
  absl::StatusOr<std::string> taken = p.l0.Take();
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(p.l0.consumed(), 0u);
  // A trustworthy writer (the successor) publishes the committed position: taken again.
  ASSERT_TRUE(p.l1.WriteAt(0, "ok"));
  p.l1.Publish(2);
  EXPECT_EQ(*p.l0.Take(), "ok");
}

// L0 keeps its own count of what it took: a scribbled `consumed` neither makes it re-read nor
// skip bytes, and RepairShared puts the shared positions back before the next writer starts.
TEST(ConsoleTxRing, ScribbledPositionsAreRepairedFromL0sOwnCount) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, "abc"));
  p.l1.Publish(3);
  EXPECT_EQ(*p.l0.Take(), "abc");
  p.l1.RawHeader()->consumed.store(~0ull / 2);  // a hostile L1, far ahead
  p.l1.RawHeader()->published.store(~0ull);
  p.l0.RepairShared();
  EXPECT_EQ(p.l0.consumed(), 3u);
  EXPECT_EQ(p.l0.published(), 3u);
  ASSERT_TRUE(p.l1.WriteAt(3, "def"));
  p.l1.Publish(6);
  p.l1.RawHeader()->consumed.store(0);  // behind: Take does not read "abc" again
  EXPECT_EQ(*p.l0.Take(), "def");
}

// A successor whose committed position is behind what L0 took (an earlier L1 published bytes it
// had not committed) skips those positions instead of waiting for space forever.
TEST(ConsoleTxRing, WriterSkipsPositionsL0AlreadyTook) {
  Pair p = MakePair();
  ASSERT_TRUE(p.l1.WriteAt(0, "liar"));
  p.l1.Publish(4);
  EXPECT_EQ(*p.l0.Take(), "liar");
  ASSERT_TRUE(p.l1.WriteAt(2, "xyz"));  // the successor, from its commit at 2
  p.l1.Publish(5);
  EXPECT_EQ(*p.l0.Take(), "z");
}

TEST(ConsoleTxRing, AttachChecksTheRing) {
  const int fd = memfd_create("not-a-ring", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ConsoleTxRing::Attach(fd).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rehome
