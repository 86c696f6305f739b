// vmm/virtio/console_device_test.cc: virtio-console port 0 through the MMIO transport: transmit
// order, input delivery across kicks, the input bound, emergency writes, malformed buffers and
// state save/restore.
#include "vmm/virtio/console_device.h"

#include <cstring>
#include <map>
#include <memory>
#include <string>
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

constexpr int kRx = ConsoleDevice::kReceiveQueue;
constexpr int kTx = ConsoleDevice::kTransmitQueue;

std::string Text(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('!' + (seed + i * 13) % 90);
  return s;
}

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = MakeTransport();
    driver_ = std::make_unique<TestDriver>(*transport_, ram_);
    ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  }
  std::unique_ptr<MmioTransport> MakeTransport() {
    return std::make_unique<MmioTransport>(
        std::make_unique<ConsoleDevice>([this](std::string_view b) { output_.append(b); }), mem_,
        nullptr, [this](std::string_view m) { logs_.emplace_back(m); });
  }
  ConsoleDevice& console(MmioTransport& t) { return static_cast<ConsoleDevice&>(t.device()); }
  ConsoleDevice& console() { return console(*transport_); }

  void Send(const std::vector<std::string>& pieces) {
    std::vector<TestDriver::Segment> segs;
    for (const std::string& p : pieces) {
      const uint64_t gpa = driver_->Alloc(p.size());
      std::memcpy(driver_->Host(gpa), p.data(), p.size());
      segs.push_back({gpa, static_cast<uint32_t>(p.size()), false});
    }
    driver_->Post(kTx, segs);
  }
  // Posts `count` receive buffers of `len` bytes; remembers where they are by head.
  void PostRx(int count, uint32_t len) {
    for (int i = 0; i < count; ++i) {
      const uint64_t gpa = driver_->Alloc(len);
      rx_buffers_[driver_->Post(kRx, {{gpa, len, true}})] = gpa;
    }
  }
  // Collects everything the device returned on the receive queue so far, in order.
  void CollectRx() {
    while (std::optional<TestDriver::Used> u = driver_->PopUsed(kRx)) {
      ASSERT_TRUE(rx_buffers_.count(static_cast<uint16_t>(u->id)));
      const uint8_t* p = driver_->Host(rx_buffers_[static_cast<uint16_t>(u->id)]);
      received_.append(reinterpret_cast<const char*>(p), u->len);
    }
  }

  std::vector<uint8_t> ram_ = std::vector<uint8_t>(kRamSize);
  FlatGuestMemoryView mem_{ram_};
  std::unique_ptr<MmioTransport> transport_;
  std::unique_ptr<TestDriver> driver_;
  std::string output_;
  std::string received_;
  std::map<uint16_t, uint64_t> rx_buffers_;
  std::vector<std::string> logs_;
};

TEST_F(ConsoleTest, IdentifiesAsConsoleWithTwoQueues) {
  EXPECT_EQ(driver_->Read32(T::kRegDeviceId), kDeviceIdConsole);
  driver_->Write32(T::kRegQueueSel, 1);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNumMax), Virtqueue::kMaxSize);
  driver_->Write32(T::kRegQueueSel, 2);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNumMax), 0u);
  EXPECT_EQ(transport_->name(), "virtio-mmio-console");
}

TEST_F(ConsoleTest, TransmittedBytesReachTheSinkInOrder) {
  Send({"hello, "});
  Send({"wor", "", "ld", "!\n"});
  driver_->Notify(kTx);
  Send({"second kick\n"});
  driver_->Notify(kTx);
  EXPECT_EQ(output_, "hello, world!\nsecond kick\n");
  int used = 0;
  while (std::optional<TestDriver::Used> u = driver_->PopUsed(kTx)) {
    EXPECT_EQ(u->len, 0u);
    ++used;
  }
  EXPECT_EQ(used, 3);
  EXPECT_EQ(console().tx_bytes(), output_.size());
  EXPECT_EQ(transport_->interrupt_status(), T::kInterruptUsedBuffer);
}

TEST_F(ConsoleTest, LargeTransmitIsChunked) {
  const std::string big = Text(200 * 1024, 3);
  Send({big});
  driver_->Notify(kTx);
  EXPECT_EQ(output_, big);
}

TEST_F(ConsoleTest, InputIsDeliveredAcrossKicksWithoutLossOrDuplication) {
  const std::string input = Text(1000, 7);
  ASSERT_EQ(console().QueueInput(input), input.size());
  driver_->Notify(kRx);  // no buffers yet: nothing happens
  EXPECT_EQ(console().pending_input(), input.size());
  for (int round = 0; round < 100 && received_.size() < input.size(); ++round) {
    PostRx(3, 37);
    driver_->Notify(kRx);
    CollectRx();
  }
  EXPECT_EQ(received_, input);
  EXPECT_EQ(console().pending_input(), 0u);
  EXPECT_EQ(console().rx_bytes(), input.size());
  // Buffers left over stay posted for later input.
  PostRx(2, 64);
  driver_->Notify(kRx);
  CollectRx();
  ASSERT_EQ(console().QueueInput("late"), 4u);
  transport_->Kick(kRx);  // host-side kick after new input
  CollectRx();
  EXPECT_EQ(received_, input + "late");
}

// Receive notifications are suppressed while no input waits (as virtio-net's): re-posted buffers
// need no kick, host input finds them; input that finds no buffer asks for the next one.
TEST_F(ConsoleTest, ReceiveBuffersNeedNoNotificationUnlessInputWaits) {
  auto used_flags = [&] {
    uint16_t flags;
    std::memcpy(&flags, driver_->Host(driver_->layout(kRx).used), 2);
    return flags;
  };
  PostRx(2, 4);
  driver_->Notify(kRx);
  EXPECT_EQ(used_flags(), kUsedFlagNoNotify);  // nothing waits
  console().QueueInput("abcdefghijkl");        // 12 bytes, 8 of room
  transport_->Kick(kRx);
  CollectRx();
  EXPECT_EQ(received_, "abcdefgh");
  EXPECT_EQ(used_flags(), 0);  // input waits: the next buffer must be notified
  PostRx(1, 4);
  driver_->Notify(kRx);
  CollectRx();
  EXPECT_EQ(received_, "abcdefghijkl");
  EXPECT_EQ(used_flags(), kUsedFlagNoNotify);
  PostRx(1, 8);  // posted without a notification, as a driver that honours the flag does
  console().QueueInput("mn");
  transport_->Kick(kRx);
  CollectRx();
  EXPECT_EQ(received_, "abcdefghijklmn");
}

TEST_F(ConsoleTest, HostKickDeliversIntoWaitingBuffersAndInterrupts) {
  PostRx(4, 8);
  driver_->Notify(kRx);
  EXPECT_EQ(transport_->interrupt_status(), 0u);
  console().QueueInput("abcdefghij");
  transport_->Kick(kRx);
  CollectRx();
  EXPECT_EQ(received_, "abcdefghij");
  EXPECT_EQ(transport_->interrupt_status(), T::kInterruptUsedBuffer);
}

TEST_F(ConsoleTest, InputQueueIsBounded) {
  const std::string big = Text(ConsoleDevice::kMaxPendingInput + 100, 1);
  EXPECT_EQ(console().QueueInput(big), ConsoleDevice::kMaxPendingInput);
  EXPECT_EQ(console().QueueInput("x"), 0u);
  EXPECT_EQ(console().dropped_input(), 101u);
  PostRx(1, 4096);
  driver_->Notify(kRx);
  EXPECT_EQ(console().QueueInput(std::string(5000, 'y')), 4096u);
}

TEST_F(ConsoleTest, EmergencyWriteGoesToTheSink) {
  driver_->Write32(T::kConfigOffset + ConsoleDevice::kEmergWriteOffset, 'Z');
  EXPECT_EQ(output_, "Z");
  EXPECT_EQ(driver_->Read32(T::kConfigOffset), 0u);
  driver_->Write32(T::kRegDeviceFeaturesSel, 0);
  EXPECT_EQ(driver_->Read32(T::kRegDeviceFeatures), 1u << ConsoleDevice::kFeatureEmergWrite);
}

TEST_F(ConsoleTest, MalformedBuffersNeedResetAndInputSurvivesIt) {
  console().QueueInput("keep me");
  driver_->Post(kRx, {{driver_->Alloc(8), 8, false}});  // receive buffer the device cannot write
  driver_->Notify(kRx);
  EXPECT_TRUE(transport_->status() & kStatusNeedsReset);
  EXPECT_THAT(transport_->last_error(), HasSubstr("queue 0: virtio-console receive buffer"));
  EXPECT_EQ(console().pending_input(), 7u);

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  driver_->Post(kTx, {{driver_->Alloc(8), 8, true}});  // transmit buffer that is writable
  driver_->Notify(kTx);
  EXPECT_THAT(transport_->last_error(), HasSubstr("queue 1: virtio-console transmit buffer"));
  EXPECT_EQ(output_, "");

  ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 32).ok());
  rx_buffers_.clear();
  PostRx(1, 16);
  driver_->Notify(kRx);
  CollectRx();
  EXPECT_EQ(received_, "keep me");
}

TEST_F(ConsoleTest, StateRoundTripCarriesPendingInput) {
  PostRx(1, 4);
  console().QueueInput("0123456789");
  driver_->Notify(kRx);
  CollectRx();
  ASSERT_EQ(received_, "0123");
  Send({"out"});
  driver_->Notify(kTx);
  const std::vector<uint8_t> device_bytes = console().SaveState();
  absl::StatusOr<ConsoleDevice::State> s = ConsoleDevice::DecodeState(device_bytes);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->pending_input, "456789");
  EXPECT_EQ(s->rx_bytes, 4u);
  EXPECT_EQ(s->tx_bytes, 3u);
  EXPECT_EQ(ConsoleDevice::EncodeState(*s), device_bytes);

  // Whole transport into a fresh one over the same RAM: the rest of the input arrives once.
  PostRx(1, 4);  // posted, not yet notified
  const std::vector<uint8_t> bytes = transport_->SaveState();
  std::unique_ptr<MmioTransport> restored = MakeTransport();
  ASSERT_TRUE(restored->RestoreState(bytes).ok());
  EXPECT_EQ(restored->SaveState(), bytes);
  driver_->Rebind(*restored);
  driver_->Notify(kRx);
  CollectRx();
  EXPECT_EQ(received_, "01234567");
  PostRx(2, 4);
  driver_->Notify(kRx);
  CollectRx();
  EXPECT_EQ(received_, "0123456789");
  EXPECT_EQ(console(*restored).pending_input(), 0u);
  EXPECT_EQ(console(*transport_).pending_input(), 6u);  // the old one is untouched

  // Bad records.
  std::vector<uint8_t> bad = device_bytes;
  bad[0] = 0;
  EXPECT_EQ(console().RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
  ConsoleDevice::State huge;
  huge.pending_input.assign(ConsoleDevice::kMaxPendingInput + 1, 'q');
  EXPECT_EQ(console().RestoreState(ConsoleDevice::EncodeState(huge)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(console().pending_input(), 6u);
}

}  // namespace
}  // namespace rehome::virtio
