// vmm/virtio/mmio_transport_test.cc: virtio-mmio registers, negotiation, interrupts, hostile
// rings and requests (DEVICE_NEEDS_RESET and recovery by reset), and state save/restore.
#include "vmm/virtio/mmio_transport.h"

#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/console_device.h"
#include "vmm/virtio/test_driver.h"

namespace rehome::virtio {
namespace {

using ::testing::HasSubstr;
using testutil::BlkRequest;
using testutil::kDataBase;
using testutil::kRamSize;
using testutil::MakeTempImage;
using testutil::PostBlkRequest;
using testutil::TestDriver;
using T = MmioTransport;

constexpr uint64_t kSectors = 64;
constexpr uint16_t kQueueSize = 64;

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<UniqueFd> fd = MakeTempImage(kSectors * 512);
    ASSERT_TRUE(fd.ok()) << fd.status();
    image_fd_ = ::dup(fd->get());
    transport_ = MakeTransport(std::move(*fd));
    driver_ = std::make_unique<TestDriver>(*transport_, ram_);
  }
  void TearDown() override { ::close(image_fd_); }

  std::unique_ptr<MmioTransport> MakeTransport(UniqueFd fd) {
    absl::StatusOr<std::unique_ptr<BlkDevice>> dev = BlkDevice::Create(std::move(fd), false, "t");
    EXPECT_TRUE(dev.ok()) << dev.status();
    return std::make_unique<MmioTransport>(
        std::move(*dev), mem_, [this](bool level) { irq_levels_.push_back(level); },
        [this](std::string_view m) { logs_.emplace_back(m); });
  }
  void Init() { ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, kQueueSize).ok()); }
  BlkDevice& blk(MmioTransport& t) { return static_cast<BlkDevice&>(t.device()); }
  bool Logged(const std::string& text) {
    for (const std::string& l : logs_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  // A good one-sector write; returns its status byte after notify (0xff if not processed).
  uint8_t GoodWrite(uint64_t sector, uint8_t fill) {
    BlkRequest r =
        PostBlkRequest(*driver_, BlkDevice::kTypeOut, sector, 512, std::vector<uint8_t>(512, fill));
    driver_->Notify(0);
    std::optional<TestDriver::Used> used = driver_->PopUsed(0);
    if (used) {
      EXPECT_EQ(used->id, r.head);
    }
    return *driver_->Host(r.status_gpa);
  }

  std::vector<uint8_t> ram_ = std::vector<uint8_t>(kRamSize);
  FlatGuestMemoryView mem_{ram_};
  int image_fd_ = -1;
  std::unique_ptr<MmioTransport> transport_;
  std::unique_ptr<TestDriver> driver_;
  std::vector<bool> irq_levels_;
  std::vector<std::string> logs_;
};

TEST_F(TransportTest, IdentifiesAsModernVirtioMmio) {
  EXPECT_EQ(driver_->Read32(T::kRegMagic), 0x74726976u);
  EXPECT_EQ(driver_->Read32(T::kRegVersion), 2u);
  EXPECT_EQ(driver_->Read32(T::kRegDeviceId), kDeviceIdBlock);
  EXPECT_EQ(driver_->Read32(T::kRegVendorId), 0x554d4551u);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNumMax), Virtqueue::kMaxSize);
  driver_->Write32(T::kRegQueueSel, 1);  // blk has one queue
  EXPECT_EQ(driver_->Read32(T::kRegQueueNumMax), 0u);
  EXPECT_EQ(driver_->Read32(T::kRegQueueReady), 0u);
  EXPECT_EQ(driver_->Read32(T::kRegConfigGeneration), 0u);
  EXPECT_EQ(transport_->name(), "virtio-mmio-blk");
}

// Found by mmio_transport_fuzz (corpus crash-empty-read): an access of no bytes was cleared
// with memset on a null pointer (undefined behaviour, seen by UBSan). It is ignored and counted.
TEST_F(TransportTest, ZeroLengthAccessesAreIgnored) {
  const uint64_t before = transport_->ignored_accesses();
  transport_->Read(T::kRegMagic, {});
  transport_->Read(T::kConfigOffset, {});
  transport_->Write(T::kRegStatus, {});
  EXPECT_EQ(transport_->ignored_accesses(), before + 3);
  EXPECT_EQ(transport_->status(), 0u);
}

TEST_F(TransportTest, OffersVersion1AndNothingUnsupported) {
  driver_->Write32(T::kRegDeviceFeaturesSel, 1);
  EXPECT_EQ(driver_->Read32(T::kRegDeviceFeatures), 1u);  // bit 32: VIRTIO_F_VERSION_1
  driver_->Write32(T::kRegDeviceFeaturesSel, 0);
  const uint32_t low = driver_->Read32(T::kRegDeviceFeatures);
  EXPECT_FALSE(low & (1u << kFeatureIndirectDesc));
  EXPECT_FALSE(low & (1u << kFeatureEventIdx));
  driver_->Write32(T::kRegDeviceFeaturesSel, 2);
  EXPECT_EQ(driver_->Read32(T::kRegDeviceFeatures), 0u);
}

TEST_F(TransportTest, RefusesLegacyDriverWithoutVersion1) {
  const absl::Status s = driver_->Initialize(~(uint64_t{1} << kFeatureVersion1), kQueueSize);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(transport_->status() & kStatusFeaturesOk);
  EXPECT_TRUE(Logged("VIRTIO_F_VERSION_1"));
}

TEST_F(TransportTest, RefusesUnofferedFeatures) {
  driver_->Write32(T::kRegStatus, kStatusAcknowledge | kStatusDriver);
  driver_->Write32(T::kRegDriverFeaturesSel, 0);
  driver_->Write32(T::kRegDriverFeatures, 1u << kFeatureIndirectDesc);
  driver_->Write32(T::kRegDriverFeaturesSel, 1);
  driver_->Write32(T::kRegDriverFeatures, 1);
  driver_->Write32(T::kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_FALSE(driver_->Read32(T::kRegStatus) & kStatusFeaturesOk);
  EXPECT_TRUE(Logged("unoffered"));
}

TEST_F(TransportTest, DriverOkNeedsFeaturesOkAndFeaturesFreezeAfterwards) {
  driver_->Write32(T::kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
  EXPECT_FALSE(transport_->status() & kStatusDriverOk);
  Init();
  EXPECT_TRUE(transport_->status() & kStatusDriverOk);
  const uint64_t ignored = transport_->ignored_accesses();
  driver_->Write32(T::kRegDriverFeaturesSel, 0);
  driver_->Write32(T::kRegDriverFeatures, 0);
  EXPECT_EQ(transport_->ignored_accesses(), ignored + 1);
  EXPECT_EQ(GoodWrite(0, 1), BlkDevice::kStatusOk);
}

TEST_F(TransportTest, UnalignedAndOddSizedAccessesAreIgnored) {
  uint8_t two[2] = {0xaa, 0xaa};
  transport_->Read(T::kRegMagic, two);
  EXPECT_EQ(two[0], 0);
  EXPECT_EQ(two[1], 0);
  uint8_t four[4] = {0xaa, 0xaa, 0xaa, 0xaa};
  transport_->Read(T::kRegMagic + 2, four);
  EXPECT_EQ(std::vector<uint8_t>(four, four + 4), std::vector<uint8_t>(4, 0));
  uint8_t eight[8];
  transport_->Read(T::kRegMagic, eight);
  EXPECT_EQ(std::vector<uint8_t>(eight, eight + 8), std::vector<uint8_t>(8, 0));
  const uint8_t one[1] = {kStatusAcknowledge};
  transport_->Write(T::kRegStatus, one);
  EXPECT_EQ(transport_->status(), 0u);
  uint8_t cfg[4];
  transport_->Read(T::kConfigOffset + 2, cfg);  // misaligned config access
  transport_->Read(T::kConfigOffset + 0xfc, std::span<uint8_t>(eight, 8));  // runs past 0x200
  EXPECT_EQ(transport_->ignored_accesses(), 6u);
  EXPECT_TRUE(Logged("register read of 2 bytes"));
  // Aligned config accesses of 1, 2, 4, 8 bytes work.
  uint8_t b;
  transport_->Read(T::kConfigOffset, std::span<uint8_t>(&b, 1));
  EXPECT_EQ(b, kSectors);
  // Writes to read-only registers are ignored.
  driver_->Write32(T::kRegMagic, 0);
  EXPECT_EQ(driver_->Read32(T::kRegMagic), T::kMagic);
}

TEST_F(TransportTest, QueueSetupIsRefusedWhileReady) {
  Init();
  driver_->Write32(T::kRegQueueSel, 0);
  const uint32_t desc = driver_->Read32(T::kRegQueueDescLow);
  driver_->Write32(T::kRegQueueNum, 8);
  driver_->Write32(T::kRegQueueDescLow, 0x100000);
  driver_->Write32(T::kRegQueueDriverHigh, 1);
  driver_->Write32(T::kRegQueueDeviceLow, 0x100000);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNum), kQueueSize);
  EXPECT_EQ(driver_->Read32(T::kRegQueueDescLow), desc);
  EXPECT_EQ(driver_->Read32(T::kRegQueueDriverHigh), 0u);
  EXPECT_TRUE(Logged("while queue 0 is ready"));
  EXPECT_EQ(GoodWrite(1, 2), BlkDevice::kStatusOk);
  // QueueReady = 0 disables the queue; then setup may change again.
  driver_->Write32(T::kRegQueueReady, 0);
  EXPECT_EQ(driver_->Read32(T::kRegQueueReady), 0u);
  driver_->Write32(T::kRegQueueNum, 8);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNum), 8u);
  driver_->Write32(T::kRegQueueNum, 512);  // above QueueNumMax: ignored
  EXPECT_EQ(driver_->Read32(T::kRegQueueNum), 8u);
}

TEST_F(TransportTest, BadQueueLayoutNeedsReset) {
  driver_->Write32(T::kRegStatus, kStatusAcknowledge | kStatusDriver);
  driver_->Write32(T::kRegQueueSel, 0);
  driver_->Write32(T::kRegQueueNum, 12);  // not a power of two
  driver_->Write32(T::kRegQueueReady, 1);
  EXPECT_EQ(driver_->Read32(T::kRegQueueReady), 0u);
  EXPECT_TRUE(transport_->status() & kStatusNeedsReset);
  EXPECT_THAT(transport_->last_error(), HasSubstr("queue 0: queue size 12"));
  // Not DRIVER_OK yet: no config interrupt.
  EXPECT_EQ(transport_->interrupt_status(), 0u);
  Init();
  EXPECT_FALSE(transport_->status() & kStatusNeedsReset);

  driver_->Write32(T::kRegStatus, 0);
  driver_->Write32(T::kRegQueueSel, 0);
  driver_->Write32(T::kRegQueueNum, 16);
  driver_->Write32(T::kRegQueueDescLow, static_cast<uint32_t>(kRamSize));  // outside RAM
  driver_->Write32(T::kRegQueueReady, 1);
  EXPECT_THAT(transport_->last_error(), HasSubstr("descriptor table"));
}

TEST_F(TransportTest, InterruptIsALevelUntilAcknowledged) {
  Init();
  irq_levels_.clear();
  EXPECT_EQ(GoodWrite(0, 7), BlkDevice::kStatusOk);
  EXPECT_EQ(irq_levels_, std::vector<bool>{true});
  EXPECT_TRUE(transport_->irq_level());
  EXPECT_EQ(driver_->Read32(T::kRegInterruptStatus), T::kInterruptUsedBuffer);
  EXPECT_EQ(GoodWrite(1, 7), BlkDevice::kStatusOk);  // still asserted: no new edge
  EXPECT_EQ(irq_levels_.size(), 1u);
  driver_->Write32(T::kRegInterruptAck, T::kInterruptUsedBuffer);
  EXPECT_EQ(irq_levels_, (std::vector<bool>{true, false}));
  EXPECT_EQ(driver_->Read32(T::kRegInterruptStatus), 0u);
  // A kick with nothing available raises nothing.
  driver_->Notify(0);
  EXPECT_EQ(irq_levels_.size(), 2u);
}

// Split mode: a processed request is in the state at once, but the driver sees its completion
// (used idx) and the interrupt only when the L1 publishes, after committing that state.
TEST_F(TransportTest, DeferredPublicationHoldsCompletionAndInterruptUntilPublished) {
  Init();
  transport_->SetDeferredPublication(true);
  irq_levels_.clear();
  BlkRequest r =
      PostBlkRequest(*driver_, BlkDevice::kTypeOut, 3, 512, std::vector<uint8_t>(512, 0x5c));
  EXPECT_TRUE(transport_->Kick(0));  // consumed a chain: the state changed
  EXPECT_EQ(*driver_->Host(r.status_gpa), BlkDevice::kStatusOk);  // the I/O is done
  EXPECT_FALSE(driver_->PopUsed(0).has_value());                  // but not visible
  EXPECT_TRUE(irq_levels_.empty());
  transport_->PublishUsed();
  std::optional<TestDriver::Used> used = driver_->PopUsed(0);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->id, r.head);
  EXPECT_EQ(irq_levels_, std::vector<bool>{true});
  transport_->PublishUsed();  // idempotent: nothing new, no new edge
  EXPECT_FALSE(driver_->PopUsed(0).has_value());
  EXPECT_EQ(irq_levels_.size(), 1u);
  EXPECT_FALSE(transport_->Kick(0));  // nothing available: no state change
}

TEST_F(TransportTest, NotificationsNeedDriverOkAndAReadyQueue) {
  driver_->Write32(T::kRegStatus, kStatusAcknowledge);
  driver_->Notify(0);
  driver_->Notify(5);
  EXPECT_TRUE(Logged("before DRIVER_OK"));
  Init();
  driver_->Notify(5);
  EXPECT_TRUE(Logged("QueueNotify for queue 5"));
  EXPECT_EQ(transport_->status() & kStatusNeedsReset, 0u);
}

// What a verified replica reports of the ready queues (EffectType::kAvailWatch): where each
// available index lives, and whether the device takes the queue's buffers unprompted (the blk
// request queue and the console's transmit queue yes, the console's receive queue no: its
// buffers wait for host input).
TEST_F(TransportTest, ReportsTheReadyQueuesAvailableIndicesAndWhichAreTakenUnprompted) {
  std::vector<AvailIndexAddress> addresses;
  transport_->AppendAvailIndexAddresses(&addresses);
  EXPECT_TRUE(addresses.empty());  // no queue ready yet
  Init();
  transport_->AppendAvailIndexAddresses(&addresses);
  ASSERT_EQ(addresses.size(), 1u);
  EXPECT_EQ(addresses[0].gpa, driver_->layout(0).avail + 2);
  EXPECT_TRUE(addresses[0].unprompted);

  MmioTransport console(std::make_unique<ConsoleDevice>(nullptr), mem_, nullptr, nullptr);
  TestDriver console_driver(console, ram_);
  ASSERT_TRUE(console_driver.Initialize(~uint64_t{0}, kQueueSize).ok());
  addresses.clear();
  console.AppendAvailIndexAddresses(&addresses);
  ASSERT_EQ(addresses.size(), 2u);
  EXPECT_EQ(addresses[0].gpa, console_driver.layout(0).avail + 2);
  EXPECT_FALSE(addresses[0].unprompted);  // receiveq0
  EXPECT_EQ(addresses[1].gpa, console_driver.layout(1).avail + 2);
  EXPECT_TRUE(addresses[1].unprompted);  // transmitq0
}

TEST_F(TransportTest, WritingStatusZeroResets) {
  Init();
  EXPECT_EQ(GoodWrite(0, 1), BlkDevice::kStatusOk);
  driver_->Write32(T::kRegStatus, 0);
  EXPECT_EQ(transport_->status(), 0u);
  EXPECT_EQ(transport_->interrupt_status(), 0u);
  EXPECT_FALSE(transport_->irq_level());
  driver_->Write32(T::kRegQueueSel, 0);
  EXPECT_EQ(driver_->Read32(T::kRegQueueReady), 0u);
  EXPECT_EQ(driver_->Read32(T::kRegQueueNum), 0u);
  Init();
  EXPECT_EQ(GoodWrite(0, 2), BlkDevice::kStatusOk);
}

// One hostile ring or request per case; each must set DEVICE_NEEDS_RESET with a reason, stop
// processing, and leave a device that works again after a reset.
struct HostileCase {
  const char* name;
  std::function<void(TestDriver&)> corrupt;
  const char* reason;
  bool good_request_completes = true;  // false when the defect is seen before any chain
};

class HostileTest : public TransportTest, public ::testing::WithParamInterface<HostileCase> {};

uint64_t Header(TestDriver& d, uint32_t type, uint64_t sector = 0) {
  const uint64_t h = d.Alloc(16);
  std::memset(d.Host(h), 0, 16);
  std::memcpy(d.Host(h), &type, 4);
  std::memcpy(d.Host(h + 8), &sector, 8);
  return h;
}

const HostileCase kHostileCases[] = {
    {"Loop",
     [](TestDriver& d) {
       const uint64_t h = Header(d, BlkDevice::kTypeIn);
       d.WriteDesc(0, 40, h, 16, kDescFlagNext, 41);
       d.WriteDesc(0, 41, h, 16, kDescFlagNext, 40);
       d.PublishHead(0, 40);
     },
     "loop"},
    {"HeadIndexBeyondSize", [](TestDriver& d) { d.PublishHead(0, kQueueSize); }, "names head 64"},
    {"NextIndexBeyondSize",
     [](TestDriver& d) {
       d.WriteDesc(0, 40, Header(d, BlkDevice::kTypeIn), 16, kDescFlagNext, 4000);
       d.PublishHead(0, 40);
     },
     "links to index 4000"},
    {"DescriptorOutsideRam",
     [](TestDriver& d) {
       d.WriteDesc(0, 40, kRamSize + 0x1000, 16, 0, 0);
       d.PublishHead(0, 40);
     },
     "is not in guest RAM"},
    {"AddressPlusLengthOverflow",
     [](TestDriver& d) {
       d.WriteDesc(0, 40, 0xfffffffffffffff0ull, 0x100, 0, 0);
       d.PublishHead(0, 40);
     },
     "wraps around"},
    {"LengthAllOnes",
     [](TestDriver& d) {
       d.WriteDesc(0, 40, kDataBase, 0xffffffffu, kDescFlagWrite, 0);
       d.PublishHead(0, 40);
     },
     "is not in guest RAM"},
    {"AvailIdxJump", [](TestDriver& d) { d.SetAvailIdx(0, kQueueSize + 1); },
     "more than the queue size", false},
    {"IndirectDescriptor",
     [](TestDriver& d) {
       d.WriteDesc(0, 40, d.Alloc(64), 64, kDescFlagIndirect, 0);
       d.PublishHead(0, 40);
     },
     "VIRTIO_F_INDIRECT_DESC"},
    {"MissingStatusDescriptor",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeFlush), 16, false}});
     },
     "no device-writable status byte"},
    {"StatusNotWritable",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeFlush), 16, false}, {d.Alloc(1), 1, false}});
     },
     "no device-writable status byte"},
    {"MissingHeader",
     [](TestDriver& d) {
       d.Post(0, {{d.Alloc(8), 8, false}, {d.Alloc(1), 1, true}});
     },
     "no 16-byte header"},
    {"ReadWithReadableData",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeIn), 16, false},
                  {d.Alloc(512), 512, false},
                  {d.Alloc(1), 1, true}});
     },
     "device-readable data"},
    {"WriteWithWritableData",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeOut), 16, false},
                  {d.Alloc(512), 512, true},
                  {d.Alloc(1), 1, true}});
     },
     "device-writable data"},
    {"DataNotSectorMultiple",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeOut), 16, false},
                  {d.Alloc(100), 100, false},
                  {d.Alloc(1), 1, true}});
     },
     "not a multiple of 512"},
    {"ReadableAfterWritable",
     [](TestDriver& d) {
       d.Post(0, {{Header(d, BlkDevice::kTypeIn), 16, false},
                  {d.Alloc(1), 1, true},
                  {d.Alloc(512), 512, false}});
     },
     "follows a device-writable"},
};

TEST_P(HostileTest, SetsNeedsResetAndRecoversAfterReset) {
  Init();
  // A good request before the bad one in the same kick still completes.
  BlkRequest good =
      PostBlkRequest(*driver_, BlkDevice::kTypeOut, 3, 512, std::vector<uint8_t>(512, 0x5a));
  GetParam().corrupt(*driver_);
  irq_levels_.clear();
  driver_->Notify(0);
  const bool good_done = GetParam().good_request_completes;
  EXPECT_EQ(*driver_->Host(good.status_gpa), good_done ? BlkDevice::kStatusOk : 0xff);
  EXPECT_TRUE(transport_->status() & kStatusNeedsReset);
  EXPECT_THAT(transport_->last_error(), HasSubstr(GetParam().reason));
  EXPECT_THAT(transport_->last_error(), HasSubstr("queue 0: "));
  EXPECT_TRUE(Logged("device needs reset"));
  EXPECT_EQ(transport_->interrupt_status(),
            (good_done ? T::kInterruptUsedBuffer : 0) | T::kInterruptConfigChange);
  EXPECT_EQ(irq_levels_, std::vector<bool>{true});

  // Processing has stopped: a further good request is not touched.
  const uint16_t used = driver_->UsedIdx(0);
  driver_->SetAvailIdx(0, driver_->UsedIdx(0));  // drop the bad entry from the driver's view
  BlkRequest ignored = PostBlkRequest(*driver_, BlkDevice::kTypeFlush, 0, 0);
  driver_->Notify(0);
  EXPECT_EQ(driver_->UsedIdx(0), used);
  EXPECT_EQ(*driver_->Host(ignored.status_gpa), 0xff);
  // The driver may still write Status bits; NEEDS_RESET stays until reset.
  driver_->Write32(T::kRegStatus, transport_->status() & ~kStatusNeedsReset);
  EXPECT_TRUE(transport_->status() & kStatusNeedsReset);

  // Reset and re-initialise: the device works again.
  Init();
  EXPECT_FALSE(transport_->status() & kStatusNeedsReset);
  EXPECT_FALSE(transport_->irq_level());
  EXPECT_EQ(GoodWrite(4, 0x6b), BlkDevice::kStatusOk);
  std::vector<uint8_t> file(512);
  ASSERT_EQ(::pread(image_fd_, file.data(), 512, 4 * 512), 512);
  EXPECT_EQ(file, std::vector<uint8_t>(512, 0x6b));
}

INSTANTIATE_TEST_SUITE_P(Chains, HostileTest, ::testing::ValuesIn(kHostileCases),
                         [](const ::testing::TestParamInfo<HostileCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(TransportTest, StateRoundTripContinuesWithoutLossOrRepeat) {
  Init();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(GoodWrite(i, static_cast<uint8_t>(i + 1)), 0);
  driver_->AckInterrupts();
  // Two more requests made available but not yet notified, and one pending interrupt.
  std::vector<BlkRequest> pending;
  for (int i = 3; i < 5; ++i) {
    pending.push_back(PostBlkRequest(*driver_, BlkDevice::kTypeOut, i, 512,
                                     std::vector<uint8_t>(512, static_cast<uint8_t>(i + 1))));
  }
  const std::vector<uint8_t> bytes = transport_->SaveState();

  absl::StatusOr<T::State> s = T::DecodeState(bytes);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->device_id, kDeviceIdBlock);
  EXPECT_EQ(s->status, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  EXPECT_EQ(s->driver_features & (uint64_t{1} << kFeatureVersion1),
            uint64_t{1} << kFeatureVersion1);
  ASSERT_EQ(s->queues.size(), 1u);
  EXPECT_TRUE(s->queues[0].ready);
  EXPECT_EQ(s->queues[0].size, kQueueSize);
  EXPECT_EQ(s->queues[0].last_avail_idx, 3);
  EXPECT_EQ(s->queues[0].used_idx, 3);
  EXPECT_EQ(BlkDevice::DecodeState(s->device_state)->stats.writes, 3u);
  EXPECT_EQ(T::EncodeState(*s), bytes);

  // A fresh transport and device over the same RAM and image continue the stream.
  std::unique_ptr<MmioTransport> restored = MakeTransport(UniqueFd(::dup(image_fd_)));
  irq_levels_.clear();
  ASSERT_TRUE(restored->RestoreState(bytes).ok());
  EXPECT_EQ(restored->SaveState(), bytes);
  EXPECT_EQ(irq_levels_, std::vector<bool>{false});  // level reported after restore
  driver_->Rebind(*restored);
  driver_->Notify(0);
  for (const BlkRequest& r : pending) {
    std::optional<TestDriver::Used> used = driver_->PopUsed(0);
    ASSERT_TRUE(used.has_value());
    EXPECT_EQ(used->id, r.head);
    EXPECT_EQ(*driver_->Host(r.status_gpa), BlkDevice::kStatusOk);
  }
  EXPECT_FALSE(driver_->PopUsed(0).has_value());
  EXPECT_EQ(driver_->UsedIdx(0), 5);
  EXPECT_EQ(blk(*restored).stats().writes, 5u);
  EXPECT_EQ(blk(*transport_).stats().writes, 3u);
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> file(512);
    ASSERT_EQ(::pread(image_fd_, file.data(), 512, i * 512), 512);
    EXPECT_EQ(file, std::vector<uint8_t>(512, static_cast<uint8_t>(i + 1)));
  }
  EXPECT_TRUE(restored->irq_level());
}

TEST_F(TransportTest, RestoreCarriesPendingInterruptAndNeedsReset) {
  Init();
  EXPECT_EQ(GoodWrite(0, 1), 0);
  driver_->PublishHead(0, kQueueSize);  // hostile: needs reset
  driver_->Notify(0);
  ASSERT_TRUE(transport_->status() & kStatusNeedsReset);
  const std::vector<uint8_t> bytes = transport_->SaveState();
  std::unique_ptr<MmioTransport> restored = MakeTransport(UniqueFd(::dup(image_fd_)));
  irq_levels_.clear();
  ASSERT_TRUE(restored->RestoreState(bytes).ok());
  EXPECT_EQ(irq_levels_, std::vector<bool>{true});
  EXPECT_TRUE(restored->status() & kStatusNeedsReset);
  EXPECT_EQ(restored->last_error(), transport_->last_error());
  EXPECT_EQ(restored->interrupt_status(), T::kInterruptUsedBuffer | T::kInterruptConfigChange);
}

TEST_F(TransportTest, RestoreRejectsBadRecordsAndChangesNothing) {
  Init();
  EXPECT_EQ(GoodWrite(0, 1), 0);
  const std::vector<uint8_t> bytes = transport_->SaveState();
  std::unique_ptr<MmioTransport> target = MakeTransport(UniqueFd(::dup(image_fd_)));
  const std::vector<uint8_t> pristine = target->SaveState();

  std::vector<uint8_t> bad = bytes;
  bad[0] = 2;
  EXPECT_THAT(std::string(target->RestoreState(bad).message()), HasSubstr("unsupported version"));
  bad = std::vector<uint8_t>(bytes.begin(), bytes.end() - 1);
  EXPECT_EQ(target->RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = bytes;
  bad.push_back(0);
  EXPECT_THAT(std::string(target->RestoreState(bad).message()), HasSubstr("trailing"));
  EXPECT_EQ(target->RestoreState({}).code(), absl::StatusCode::kInvalidArgument);

  T::State s = *T::DecodeState(bytes);
  s.queues[0].desc_gpa = kRamSize;
  EXPECT_EQ(target->RestoreState(T::EncodeState(s)).code(), absl::StatusCode::kOutOfRange);
  s = *T::DecodeState(bytes);
  s.device_state[0] = 77;  // unknown blk record version
  EXPECT_THAT(std::string(target->RestoreState(T::EncodeState(s)).message()),
              HasSubstr("virtio-blk"));
  s = *T::DecodeState(bytes);
  s.queues.push_back({});
  EXPECT_THAT(std::string(target->RestoreState(T::EncodeState(s)).message()),
              HasSubstr("2 queues"));
  s = *T::DecodeState(bytes);
  s.interrupt_status = 0x80;
  EXPECT_EQ(target->RestoreState(T::EncodeState(s)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(target->SaveState(), pristine);

  // A console transport refuses a blk record.
  MmioTransport console(std::make_unique<ConsoleDevice>(nullptr), mem_, nullptr, nullptr);
  EXPECT_THAT(std::string(console.RestoreState(bytes).message()), HasSubstr("device id 2"));
}

}  // namespace
}  // namespace rehome::virtio
