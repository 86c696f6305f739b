// vmm/virtio/net_device_test.cc: virtio-net through the MMIO transport over a recording backend:
// the MAC in the config space, frames delivered in order with the header, back-pressure both
// ways (no buffer, no room), malformed and oversized buffers, runt frames, and the state round
// trip (a restored device continues with exactly the frames after its saved positions).
#include "vmm/virtio/net_device.h"

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/virtio/mmio_transport.h"
#include "vmm/virtio/test_driver.h"

namespace rehome::virtio {
namespace {

using ::testing::HasSubstr;
using testutil::kRamSize;
using testutil::TestDriver;
using T = MmioTransport;
using Frame = std::vector<uint8_t>;

constexpr int kRx = NetDevice::kReceiveQueue;
constexpr int kTx = NetDevice::kTransmitQueue;
constexpr uint32_t kBuf = NetDevice::kHeaderBytes + NetDevice::kFrameMax;
constexpr MacAddress kMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

Frame MakeFrame(uint64_t n, size_t len = 64) {
  Frame f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(n * 7 + i);
  return f;
}

// Frames to receive by position; transmitted frames by position (a rewrite must be identical).
class RecordingBackend final : public NetBackend {
 public:
  std::optional<size_t> ReadRx(uint64_t pos, std::span<uint8_t> out) override {
    if (pos >= rx.size()) return std::nullopt;
    std::memcpy(out.data(), rx[pos].data(), rx[pos].size());
    return rx[pos].size();
  }
  void RxDone(uint64_t pos) override { rx_done = pos; }
  bool TxRoom(uint64_t pos) override { return pos < tx_limit; }
  void WriteTx(uint64_t pos, std::span<const uint8_t> frame) override {
    Frame f(frame.begin(), frame.end());
    if (tx.count(pos)) {
      EXPECT_EQ(tx[pos], f) << "a rewrite at " << pos << " differs";
    }
    tx[pos] = f;
  }
  std::vector<Frame> rx;
  uint64_t rx_done = 0;
  uint64_t tx_limit = ~uint64_t{0};
  std::map<uint64_t, Frame> tx;
};

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = MakeTransport();
    driver_ = std::make_unique<TestDriver>(*transport_, ram_);
    ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  }
  std::unique_ptr<MmioTransport> MakeTransport() {
    return std::make_unique<MmioTransport>(std::make_unique<NetDevice>(kMac, backend_), mem_,
                                           nullptr,
                                           [this](std::string_view m) { logs_.emplace_back(m); });
  }
  NetDevice& net(MmioTransport& t) { return static_cast<NetDevice&>(t.device()); }
  uint16_t UsedFlags(int q) {
    uint16_t flags;
    std::memcpy(&flags, driver_->Host(driver_->layout(q).used), 2);
    return flags;
  }

  void PostRx(int count, uint32_t len = kBuf) {
    for (int i = 0; i < count; ++i) {
      const uint64_t gpa = driver_->Alloc(len);
      rx_buffers_[driver_->Post(kRx, {{gpa, len, true}})] = gpa;
    }
  }
  // Frames received so far, without their headers (whose fields are checked).
  void CollectRx() {
    while (std::optional<TestDriver::Used> u = driver_->PopUsed(kRx)) {
      const uint8_t* p = driver_->Host(rx_buffers_.at(static_cast<uint16_t>(u->id)));
      ASSERT_GE(u->len, NetDevice::kHeaderBytes);
      for (uint32_t i = 0; i < NetDevice::kHeaderBytes; ++i) {
        EXPECT_EQ(p[i], i == 10 ? 1 : 0) << "header byte " << i;  // num_buffers = 1
      }
      received_.emplace_back(p + NetDevice::kHeaderBytes, p + u->len);
    }
  }
  // Posts a transmit chain: the header, then the frame split in two descriptors.
  void Send(const Frame& f) {
    const uint64_t hdr = driver_->Alloc(NetDevice::kHeaderBytes);
    const uint64_t data = driver_->Alloc(f.size() + 1);
    std::memcpy(driver_->Host(data), f.data(), f.size());
    const uint32_t half = static_cast<uint32_t>(f.size() / 2);
    driver_->Post(kTx, {{hdr, NetDevice::kHeaderBytes, false},
                        {data, half, false},
                        {data + half, static_cast<uint32_t>(f.size()) - half, false}});
  }

  std::shared_ptr<RecordingBackend> backend_ = std::make_shared<RecordingBackend>();
  std::vector<uint8_t> ram_ = std::vector<uint8_t>(kRamSize);
  FlatGuestMemoryView mem_{ram_};
  std::unique_ptr<MmioTransport> transport_;
  std::unique_ptr<TestDriver> driver_;
  std::map<uint16_t, uint64_t> rx_buffers_;
  std::vector<Frame> received_;
  std::vector<std::string> logs_;
};

TEST_F(NetTest, IdentifiesAsNetWithTheMacInConfigSpace) {
  EXPECT_EQ(driver_->Read32(T::kRegDeviceId), kDeviceIdNet);
  EXPECT_EQ(transport_->name(), "virtio-mmio-net");
  driver_->Write32(T::kRegDeviceFeaturesSel, 0);
  EXPECT_EQ(driver_->Read32(T::kRegDeviceFeatures), 1u << NetDevice::kFeatureMac);
  EXPECT_EQ(driver_->Read32(T::kConfigOffset), 0x12005452u);
  EXPECT_EQ(driver_->Read32(T::kConfigOffset + 4), 0x5634u);  // mac[4..5], status 0
  driver_->Write32(T::kRegQueueSel, 2);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNumMax), 0u);
}

TEST_F(NetTest, FramesAreDeliveredInOrderOnlyIntoPostedBuffers) {
  for (uint64_t i = 0; i < 5; ++i) backend_->rx.push_back(MakeFrame(i, 60 + i * 300));
  transport_->Kick(kRx);  // no buffer yet: nothing is taken
  EXPECT_EQ(net(*transport_).rx_frames(), 0u);
  EXPECT_EQ(UsedFlags(kRx), 0);  // a frame waits: re-posted buffers must be notified
  PostRx(2);
  driver_->Notify(kRx);
  CollectRx();
  ASSERT_EQ(received_.size(), 2u);
  EXPECT_EQ(backend_->rx_done, 2u);
  PostRx(8);
  driver_->Notify(kRx);
  CollectRx();
  ASSERT_EQ(received_.size(), 5u);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(received_[i], MakeFrame(i, 60 + i * 300));
  EXPECT_EQ(UsedFlags(kRx), kUsedFlagNoNotify);  // buffers left, no frame waits
  backend_->rx.push_back(MakeFrame(5, NetDevice::kFrameMax));
  EXPECT_TRUE(transport_->Kick(kRx));  // a host-side kick after a new frame
  CollectRx();
  ASSERT_EQ(received_.size(), 6u);
  EXPECT_EQ(received_[5], MakeFrame(5, NetDevice::kFrameMax));
  EXPECT_EQ(transport_->interrupt_status(), T::kInterruptUsedBuffer);
  EXPECT_EQ(net(*transport_).state().rx_bytes, 60 + 360 + 660 + 960 + 1260 + NetDevice::kFrameMax);
}

TEST_F(NetTest, TransmittedFramesReachTheBackendInOrderAndWaitForRoom) {
  backend_->tx_limit = 2;
  for (uint64_t i = 0; i < 4; ++i) Send(MakeFrame(i, 100 + i));
  driver_->Notify(kTx);
  ASSERT_EQ(backend_->tx.size(), 2u);  // the rest stays available until the backend has room
  int used = 0;
  while (driver_->PopUsed(kTx)) ++used;
  EXPECT_EQ(used, 2);
  backend_->tx_limit = 100;
  EXPECT_TRUE(transport_->Kick(kTx));
  ASSERT_EQ(backend_->tx.size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(backend_->tx[i], MakeFrame(i, 100 + i));
  EXPECT_EQ(net(*transport_).tx_frames(), 4u);
}

TEST_F(NetTest, TellsWhetherTheGuestHasATransmitChainWaiting) {
  EXPECT_FALSE(transport_->HasAvailable(kTx));
  Send(MakeFrame(0));  // published, not notified
  EXPECT_TRUE(transport_->HasAvailable(kTx));
  EXPECT_FALSE(transport_->HasAvailable(kRx));
  driver_->Notify(kTx);
  EXPECT_FALSE(transport_->HasAvailable(kTx));
  Send(MakeFrame(1));
  driver_->Write32(T::kRegStatus, 0);  // reset: nothing is available to a device without a driver
  EXPECT_FALSE(transport_->HasAvailable(kTx));
}

TEST_F(NetTest, RuntFramesAreDroppedAndCompleted) {
  Send(MakeFrame(0, 13));
  Send(MakeFrame(1, 14));
  driver_->Notify(kTx);
  EXPECT_EQ(backend_->tx.size(), 1u);
  EXPECT_EQ(backend_->tx[0], MakeFrame(1, 14));
  EXPECT_EQ(net(*transport_).state().tx_dropped, 1u);
  int used = 0;
  while (driver_->PopUsed(kTx)) ++used;
  EXPECT_EQ(used, 2);
}

TEST_F(NetTest, MalformedAndOversizedBuffersNeedResetAndLoseNoFrame) {
  backend_->rx.push_back(MakeFrame(0, 1000));
  PostRx(1, 500);  // too small for the frame
  driver_->Notify(kRx);
  EXPECT_TRUE(transport_->status() & kStatusNeedsReset);
  EXPECT_THAT(transport_->last_error(), HasSubstr("cannot hold a 1000-byte frame"));
  EXPECT_EQ(net(*transport_).rx_frames(), 0u);  // the frame stays for the next driver

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  driver_->Post(kRx, {{driver_->Alloc(kBuf), kBuf, false}});  // device-readable
  driver_->Notify(kRx);
  EXPECT_THAT(transport_->last_error(), HasSubstr("device-readable"));

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  Send(MakeFrame(1, NetDevice::kFrameMax + 1));
  driver_->Notify(kTx);
  EXPECT_THAT(transport_->last_error(), HasSubstr("1519-byte frame (at most 1518)"));
  EXPECT_TRUE(backend_->tx.empty());

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  driver_->Post(kTx, {{driver_->Alloc(8), 8, false}});  // no room for the header
  driver_->Notify(kTx);
  EXPECT_THAT(transport_->last_error(), HasSubstr("shorter than the 12-byte header"));

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  driver_->Post(kTx, {{driver_->Alloc(64), 64, true}});
  driver_->Notify(kTx);
  EXPECT_THAT(transport_->last_error(), HasSubstr("device-writable"));

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  rx_buffers_.clear();
  PostRx(1);
  driver_->Notify(kRx);
  CollectRx();
  ASSERT_EQ(received_.size(), 1u);
  EXPECT_EQ(received_[0], MakeFrame(0, 1000));
}

TEST_F(NetTest, StateRoundTripContinuesAfterTheSavedPositions) {
  // As in split mode: completions become visible at PublishUsed, after the state is committed.
  transport_->SetDeferredPublication(true);
  for (uint64_t i = 0; i < 6; ++i) backend_->rx.push_back(MakeFrame(i));
  PostRx(3);
  driver_->Notify(kRx);
  Send(MakeFrame(100));
  driver_->Notify(kTx);
  transport_->PublishUsed();
  CollectRx();
  ASSERT_EQ(received_.size(), 3u);
  const std::vector<uint8_t> device_bytes = net(*transport_).SaveState();
  absl::StatusOr<NetDevice::State> s = NetDevice::DecodeState(device_bytes);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->mac, kMac);
  EXPECT_EQ(s->rx_frames, 3u);
  EXPECT_EQ(s->tx_frames, 1u);
  EXPECT_EQ(NetDevice::EncodeState(*s), device_bytes);

  // Save ("commit") the whole transport, let the old one run ahead without publishing (an
  // execution that dies before its commit), then restore into a fresh one: it delivers and
  // transmits exactly what came after the save, the same frames at the same positions.
  PostRx(2);
  Send(MakeFrame(101));
  const std::vector<uint8_t> bytes = transport_->SaveState();
  driver_->Notify(kRx);
  driver_->Notify(kTx);
  EXPECT_EQ(net(*transport_).rx_frames(), 5u);
  std::unique_ptr<MmioTransport> restored = MakeTransport();
  restored->SetDeferredPublication(true);
  ASSERT_TRUE(restored->RestoreState(bytes).ok());
  EXPECT_EQ(restored->SaveState(), bytes);
  driver_->Rebind(*restored);
  driver_->Notify(kRx);
  driver_->Notify(kTx);
  PostRx(1);
  driver_->Notify(kRx);
  restored->PublishUsed();
  CollectRx();
  ASSERT_EQ(received_.size(), 6u);
  for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(received_[i], MakeFrame(i)) << i;
  EXPECT_EQ(backend_->tx.size(), 2u);  // frame 101 written twice at position 1, identically
  EXPECT_EQ(backend_->tx[1], MakeFrame(101));

  // Bad records.
  std::vector<uint8_t> bad = device_bytes;
  bad[0] = 9;
  EXPECT_EQ(net(*restored).RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
  NetDevice::State other = *s;
  other.mac[5] ^= 1;
  EXPECT_EQ(net(*restored).RestoreState(NetDevice::EncodeState(other)).code(),
            absl::StatusCode::kInvalidArgument);
  bad = device_bytes;
  bad.pop_back();
  EXPECT_EQ(net(*restored).RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(net(*restored).rx_frames(), 6u);  // unchanged by the refused records
}

}  // namespace
}  // namespace rehome::virtio
