// vmm/l1/effect_capture_test.cc: a replica's network backend (CapturingNetBackend): it delivers
// only frames before the item's limit (reconstructed from its low 32 bits, across a 32-bit
// wrap too), and captures the receive position and transmitted frames as effects, in order.
#include "vmm/l1/effect_capture.h"

#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(CapturingNetBackend, DeliversOnlyFramesBeforeTheItemsLimit) {
  absl::StatusOr<FrameRing> l0 = FrameRing::Create("test-rx");
  ASSERT_TRUE(l0.ok()) << l0.status();
  const std::vector<uint8_t> frame(60, 0xab);
  for (uint64_t pos = 0; pos < 3; ++pos) ASSERT_TRUE(l0->WriteAt(pos, frame));
  l0->Publish(3);
  absl::StatusOr<FrameRing> replica = FrameRing::Attach(dup(l0->memfd()));
  ASSERT_TRUE(replica.ok()) << replica.status();
  EffectCapture capture(1 << 20);
  CapturingNetBackend backend(std::move(*replica), capture);
  std::vector<uint8_t> out(kFrameMaxBytes);

  backend.SetRxLimit(2, 0);  // L0 had produced 2 frames when it posted the item
  EXPECT_EQ(backend.ReadRx(0, out), std::optional<size_t>(60));
  EXPECT_EQ(backend.ReadRx(1, out), std::optional<size_t>(60));
  EXPECT_EQ(backend.ReadRx(2, out), std::nullopt);  // in the ring, but after the limit
  backend.SetRxLimit(3, 2);
  EXPECT_EQ(backend.ReadRx(2, out), std::optional<size_t>(60));

  // The limit is at most a ring above the position: its low 32 bits name it across a wrap.
  backend.SetRxLimit(1, 0xfffffffeull);
  EXPECT_EQ(backend.rx_limit(), 0x100000001ull);
  backend.SetRxLimit(0x10, 0x700000010ull);
  EXPECT_EQ(backend.rx_limit(), 0x700000010ull);  // nothing new: nothing to deliver

  // Positions and frames are effects, in order; nothing is written to the ring.
  backend.RxDone(2);
  EXPECT_TRUE(backend.TxRoom(0));
  backend.WriteTx(0, frame);
  std::vector<uint8_t> encoded;
  capture.EncodeInto(&encoded);
  absl::StatusOr<std::vector<Effect>> effects = ParseEffects(encoded, 2);
  ASSERT_TRUE(effects.ok()) << effects.status();
  EXPECT_EQ((*effects)[0].type, EffectType::kNetRxDone);
  EXPECT_EQ((*effects)[0].addr, 2u);
  EXPECT_EQ((*effects)[1].type, EffectType::kNetTx);
  EXPECT_EQ((*effects)[1].addr, 0u);
  EXPECT_EQ((*effects)[1].data.size(), frame.size());
  EXPECT_EQ(l0->consumed(), 0u);
}

TEST(CapturingRamView, AvailableIndicesComeFromTheItemsSnapshot) {
  std::vector<uint8_t> ram(4096, 0);
  FlatGuestMemoryView mem(ram);
  EffectCapture capture(1 << 20);
  CapturingRamView view(mem, capture);
  const uint16_t live = 9;
  std::memcpy(ram.data() + 0x102, &live, 2);
  std::memcpy(ram.data() + 0x202, &live, 2);
  EXPECT_EQ(view.AvailableIndex(0x102), std::optional<uint16_t>(9));  // no snapshot: guest RAM

  AvailIndexSnapshot snapshot[kMaxAvailSnapshot + 1];
  snapshot[0].gpa = 0x102;
  snapshot[0].index = 4;
  view.SetAvailSnapshot(snapshot, 1);
  EXPECT_EQ(view.AvailableIndex(0x102), std::optional<uint16_t>(4));  // L0's reading
  EXPECT_EQ(view.AvailableIndex(0x202), std::optional<uint16_t>(9));  // not in it: guest RAM
  EXPECT_EQ(view.AvailableIndex(4095), std::nullopt);                 // not in guest RAM

  // A count from L0 beyond the array is bounded: the extra entry is never read.
  for (uint32_t i = 0; i <= kMaxAvailSnapshot; ++i) {
    snapshot[i].gpa = 0x202;
    snapshot[i].index = static_cast<uint16_t>(i == kMaxAvailSnapshot ? 7 : 5);
  }
  view.SetAvailSnapshot(snapshot, 1000);
  EXPECT_EQ(view.AvailableIndex(0x202), std::optional<uint16_t>(5));
  EXPECT_EQ(view.AvailableIndex(0x102), std::optional<uint16_t>(9));  // the old item's is gone
  view.SetAvailSnapshot(snapshot, 0);
  EXPECT_EQ(view.AvailableIndex(0x202), std::optional<uint16_t>(9));
}

}  // namespace
}  // namespace rehome
