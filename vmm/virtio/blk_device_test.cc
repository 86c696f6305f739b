// vmm/virtio/blk_device_test.cc: virtio-blk through the MMIO transport and a test driver,
// against a real temporary raw image file.
#include "vmm/virtio/blk_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
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
using testutil::BlkRequest;
using testutil::kRamSize;
using testutil::MakeTempImage;
using testutil::PostBlkRequest;
using testutil::TestDriver;

constexpr uint64_t kSectors = 64;

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

class BlkTest : public ::testing::Test {
 protected:
  void SetUpDevice(bool read_only, std::string id = "rehome-disk-0", bool direct = false) {
    absl::StatusOr<UniqueFd> rw = MakeTempImage(kSectors * 512, false);
    ASSERT_TRUE(rw.ok()) << rw.status();
    image_fd_ = ::dup(rw->get());  // test-side view of the same file
    ASSERT_GE(image_fd_, 0);
    UniqueFd device_fd = std::move(*rw);
    if (read_only || direct) {
      std::string path = "/proc/self/fd/" + std::to_string(image_fd_);
      device_fd = UniqueFd(::open(
          path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0)));
      if (direct && !device_fd.valid() && errno == EINVAL) {
        GTEST_SKIP() << "the file system under /tmp does not support O_DIRECT";
      }
      ASSERT_TRUE(device_fd.valid());
    }
    absl::StatusOr<std::unique_ptr<BlkDevice>> dev =
        BlkDevice::Create(std::move(device_fd), read_only, std::move(id));
    ASSERT_TRUE(dev.ok()) << dev.status();
    blk_ = dev->get();
    transport_ = std::make_unique<MmioTransport>(
        std::move(*dev), mem_, [this](bool level) { irq_levels_.push_back(level); },
        [this](std::string_view m) { logs_.emplace_back(m); });
    driver_ = std::make_unique<TestDriver>(*transport_, ram_);
    ASSERT_TRUE(driver_->Initialize(~uint64_t{0}, 64).ok());
  }
  void TearDown() override {
    if (image_fd_ >= 0) ::close(image_fd_);
  }
  // Posts, notifies and returns the status byte; expects exactly one used element.
  uint8_t Submit(uint32_t type, uint64_t sector, uint32_t len, std::span<const uint8_t> out = {},
                 BlkRequest* req = nullptr, uint32_t* used_len = nullptr) {
    BlkRequest r = PostBlkRequest(*driver_, type, sector, len, out);
    driver_->Notify(0);
    std::optional<TestDriver::Used> used = driver_->PopUsed(0);
    EXPECT_TRUE(used.has_value());
    if (!used) return 0xfe;
    EXPECT_EQ(used->id, r.head);
    if (used_len) *used_len = used->len;
    if (req) *req = r;
    EXPECT_FALSE(driver_->PopUsed(0).has_value());
    EXPECT_EQ(driver_->AckInterrupts(), MmioTransport::kInterruptUsedBuffer);
    return *driver_->Host(r.status_gpa);
  }
  std::vector<uint8_t> FileBytes(uint64_t offset, size_t n) {
    std::vector<uint8_t> v(n);
    EXPECT_EQ(::pread(image_fd_, v.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    return v;
  }

  std::vector<uint8_t> ram_ = std::vector<uint8_t>(kRamSize);
  FlatGuestMemoryView mem_{ram_};
  int image_fd_ = -1;
  BlkDevice* blk_ = nullptr;
  std::unique_ptr<MmioTransport> transport_;
  std::unique_ptr<TestDriver> driver_;
  std::vector<bool> irq_levels_;
  std::vector<std::string> logs_;
};

TEST(BlkCreate, RejectsBadImagesAndIds) {
  auto make = [](uint64_t size, bool ro_fd, bool read_only, std::string id) {
    absl::StatusOr<UniqueFd> fd = MakeTempImage(size, ro_fd);
    EXPECT_TRUE(fd.ok());
    return BlkDevice::Create(std::move(*fd), read_only, std::move(id)).status();
  };
  EXPECT_EQ(make(0, false, false, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(make(1000, false, false, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(make(4096, false, false, std::string(21, 'a')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(make(4096, true, false, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(make(4096, true, true, std::string(20, 'a')).ok());
  EXPECT_EQ(BlkDevice::Create(UniqueFd(), false, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BlkTest, ConfigReportsCapacityAndFeatures) {
  SetUpDevice(false);
  EXPECT_EQ(driver_->Read32(MmioTransport::kRegDeviceId), kDeviceIdBlock);
  uint8_t cap[8];
  transport_->Read(MmioTransport::kConfigOffset, cap);
  uint64_t capacity;
  std::memcpy(&capacity, cap, 8);
  EXPECT_EQ(capacity, kSectors);
  EXPECT_EQ(driver_->Read32(MmioTransport::kConfigOffset + 20), 512u);  // blk_size
  driver_->Write32(MmioTransport::kRegDeviceFeaturesSel, 0);
  const uint32_t f = driver_->Read32(MmioTransport::kRegDeviceFeatures);
  EXPECT_TRUE(f & (1u << BlkDevice::kFeatureFlush));
  EXPECT_FALSE(f & (1u << BlkDevice::kFeatureReadOnly));
  EXPECT_EQ(blk_->capacity_sectors(), kSectors);
}

TEST_F(BlkTest, WriteLandsInFileAndReadsBack) {
  SetUpDevice(false);
  const std::vector<uint8_t> data = Pattern(3 * 512, 11);
  uint32_t used_len = 0;
  EXPECT_EQ(Submit(BlkDevice::kTypeOut, 5, data.size(), data, nullptr, &used_len),
            BlkDevice::kStatusOk);
  EXPECT_EQ(used_len, 1u);
  EXPECT_EQ(FileBytes(5 * 512, data.size()), data);
  EXPECT_EQ(FileBytes(4 * 512, 512), std::vector<uint8_t>(512, 0));  // neighbours untouched
  EXPECT_EQ(FileBytes(8 * 512, 512), std::vector<uint8_t>(512, 0));

  BlkRequest r;
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, 5, data.size(), {}, &r, &used_len), BlkDevice::kStatusOk);
  EXPECT_EQ(used_len, data.size() + 1);
  EXPECT_EQ(
      std::vector<uint8_t>(driver_->Host(r.data_gpa), driver_->Host(r.data_gpa) + data.size()),
      data);
  const BlkDevice::Stats s = blk_->stats();
  EXPECT_EQ(s.writes, 1u);
  EXPECT_EQ(s.reads, 1u);
  EXPECT_EQ(s.bytes_written, data.size());
  EXPECT_EQ(s.bytes_read, data.size());
}

TEST_F(BlkTest, ReadsFileContentsWrittenByTheHost) {
  SetUpDevice(false);
  const std::vector<uint8_t> data = Pattern(512, 99);
  ASSERT_EQ(::pwrite(image_fd_, data.data(), data.size(), 63 * 512), 512);
  BlkRequest r;
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, 63, 512, {}, &r), BlkDevice::kStatusOk);
  EXPECT_EQ(std::vector<uint8_t>(driver_->Host(r.data_gpa), driver_->Host(r.data_gpa) + 512), data);
}

TEST_F(BlkTest, AnyDescriptorLayoutWorks) {
  SetUpDevice(false);
  // Header split 5 + 11 bytes, data split 100 + 924 bytes, status alone; then a read whose data
  // and status byte share one descriptor.
  const std::vector<uint8_t> data = Pattern(1024, 3);
  const uint64_t hdr = driver_->Alloc(16), d1 = driver_->Alloc(100), d2 = driver_->Alloc(924),
                 st = driver_->Alloc(1);
  const uint32_t type = BlkDevice::kTypeOut;
  const uint64_t sector = 10;
  std::memset(driver_->Host(hdr), 0, 16);
  std::memcpy(driver_->Host(hdr), &type, 4);
  std::memcpy(driver_->Host(hdr + 8), &sector, 8);
  std::memcpy(driver_->Host(d1), data.data(), 100);
  std::memcpy(driver_->Host(d2), data.data() + 100, 924);
  driver_->Post(
      0,
      {{hdr, 5, false}, {hdr + 5, 11, false}, {d1, 100, false}, {d2, 924, false}, {st, 1, true}});
  driver_->Notify(0);
  ASSERT_TRUE(driver_->PopUsed(0).has_value());
  EXPECT_EQ(*driver_->Host(st), BlkDevice::kStatusOk);
  EXPECT_EQ(FileBytes(10 * 512, 1024), data);

  const uint32_t in = BlkDevice::kTypeIn;
  const uint64_t hdr2 = driver_->Alloc(16), buf = driver_->Alloc(1025);
  std::memset(driver_->Host(hdr2), 0, 16);
  std::memcpy(driver_->Host(hdr2), &in, 4);
  std::memcpy(driver_->Host(hdr2 + 8), &sector, 8);
  driver_->Post(0, {{hdr2, 16, false}, {buf, 1025, true}});
  driver_->Notify(0);
  std::optional<TestDriver::Used> used = driver_->PopUsed(0);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, 1025u);
  EXPECT_EQ(std::vector<uint8_t>(driver_->Host(buf), driver_->Host(buf) + 1024), data);
  EXPECT_EQ(*driver_->Host(buf + 1024), BlkDevice::kStatusOk);
}

// An O_DIRECT image: the data goes through an aligned bounce buffer, so guest buffers at any
// address and split across descriptors work, and the bytes really reach the file.
TEST_F(BlkTest, DirectIoWorksWithUnalignedGuestBuffers) {
  SetUpDevice(false, "rehome-disk-0", /*direct=*/true);
  if (IsSkipped()) return;
  ASSERT_TRUE(blk_->direct());
  const std::vector<uint8_t> data = Pattern(1536, 9);
  const uint64_t hdr = driver_->Alloc(16), d1 = driver_->Alloc(3) + 1, d2 = driver_->Alloc(1536),
                 st = driver_->Alloc(1);
  const uint32_t type = BlkDevice::kTypeOut;
  const uint64_t sector = 7;
  std::memset(driver_->Host(hdr), 0, 16);
  std::memcpy(driver_->Host(hdr), &type, 4);
  std::memcpy(driver_->Host(hdr + 8), &sector, 8);
  std::memcpy(driver_->Host(d1), data.data(), 2);  // an odd address, 2 bytes
  std::memcpy(driver_->Host(d2), data.data() + 2, 1534);
  driver_->Post(0, {{hdr, 16, false}, {d1, 2, false}, {d2, 1534, false}, {st, 1, true}});
  driver_->Notify(0);
  ASSERT_TRUE(driver_->PopUsed(0).has_value());
  EXPECT_EQ(*driver_->Host(st), BlkDevice::kStatusOk);
  EXPECT_EQ(FileBytes(7 * 512, 1536), data);
  BlkRequest r;
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, 7, 1536, {}, &r), BlkDevice::kStatusOk);
  EXPECT_EQ(std::vector<uint8_t>(driver_->Host(r.data_gpa), driver_->Host(r.data_gpa) + 1536),
            data);
  EXPECT_EQ(blk_->stats().writes, 1u);
  EXPECT_EQ(blk_->stats().reads, 1u);
}

TEST_F(BlkTest, SeveralRequestsInOneKick) {
  SetUpDevice(false);
  std::vector<BlkRequest> reqs;
  for (int i = 0; i < 8; ++i) {
    reqs.push_back(PostBlkRequest(*driver_, BlkDevice::kTypeOut, i, 512, Pattern(512, i)));
  }
  driver_->Notify(0);
  for (int i = 0; i < 8; ++i) {
    std::optional<TestDriver::Used> used = driver_->PopUsed(0);
    ASSERT_TRUE(used.has_value());
    EXPECT_EQ(used->id, reqs[i].head);
    EXPECT_EQ(*driver_->Host(reqs[i].status_gpa), BlkDevice::kStatusOk);
    EXPECT_EQ(FileBytes(i * 512, 512), Pattern(512, i));
  }
  EXPECT_EQ(blk_->stats().writes, 8u);
}

TEST_F(BlkTest, FlushAndGetId) {
  SetUpDevice(false, "serial-42");
  EXPECT_EQ(Submit(BlkDevice::kTypeFlush, 0, 0), BlkDevice::kStatusOk);
  EXPECT_EQ(blk_->stats().flushes, 1u);
  BlkRequest r;
  uint32_t used_len = 0;
  EXPECT_EQ(Submit(BlkDevice::kTypeGetId, 0, 20, {}, &r, &used_len), BlkDevice::kStatusOk);
  EXPECT_EQ(used_len, 21u);
  std::string id(reinterpret_cast<const char*>(driver_->Host(r.data_gpa)), 20);
  EXPECT_EQ(id, std::string("serial-42") + std::string(11, '\0'));
  EXPECT_EQ(blk_->stats().get_ids, 1u);
}

TEST_F(BlkTest, OutOfRangeSectorsAreIoErrors) {
  SetUpDevice(false);
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, kSectors, 512), BlkDevice::kStatusIoErr);
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, kSectors - 1, 1024), BlkDevice::kStatusIoErr);
  EXPECT_EQ(Submit(BlkDevice::kTypeOut, ~uint64_t{0}, 512, Pattern(512, 1)),
            BlkDevice::kStatusIoErr);
  EXPECT_EQ(Submit(BlkDevice::kTypeOut, uint64_t{1} << 55, 512, Pattern(512, 1)),
            BlkDevice::kStatusIoErr);
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, kSectors - 1, 512), BlkDevice::kStatusOk);
  EXPECT_EQ(blk_->stats().io_errors, 4u);
  EXPECT_EQ(transport_->status() & kStatusNeedsReset, 0u);
}

TEST_F(BlkTest, UnsupportedTypeIsUnsupp) {
  SetUpDevice(false);
  EXPECT_EQ(Submit(11 /* DISCARD, not offered */, 0, 0), BlkDevice::kStatusUnsupp);
  EXPECT_EQ(Submit(0x12345678, 0, 512), BlkDevice::kStatusUnsupp);
  EXPECT_EQ(blk_->stats().unsupported, 2u);
  EXPECT_EQ(transport_->status() & kStatusNeedsReset, 0u);
}

TEST_F(BlkTest, ReadOnlyImageRejectsWrites) {
  SetUpDevice(true);
  driver_->Write32(MmioTransport::kRegDeviceFeaturesSel, 0);
  EXPECT_TRUE(driver_->Read32(MmioTransport::kRegDeviceFeatures) &
              (1u << BlkDevice::kFeatureReadOnly));
  EXPECT_EQ(Submit(BlkDevice::kTypeOut, 0, 512, Pattern(512, 5)), BlkDevice::kStatusIoErr);
  EXPECT_EQ(FileBytes(0, 512), std::vector<uint8_t>(512, 0));
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, 0, 512), BlkDevice::kStatusOk);
  EXPECT_EQ(Submit(BlkDevice::kTypeFlush, 0, 0), BlkDevice::kStatusOk);
}

TEST_F(BlkTest, StateRoundTripsAndChecksConfiguration) {
  SetUpDevice(false);
  EXPECT_EQ(Submit(BlkDevice::kTypeOut, 0, 512, Pattern(512, 1)), BlkDevice::kStatusOk);
  EXPECT_EQ(Submit(BlkDevice::kTypeIn, 0, 1024), BlkDevice::kStatusOk);
  EXPECT_EQ(Submit(7, 0, 0), BlkDevice::kStatusUnsupp);
  const std::vector<uint8_t> bytes = blk_->SaveState();
  absl::StatusOr<BlkDevice::State> decoded = BlkDevice::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->capacity_sectors, kSectors);
  EXPECT_FALSE(decoded->read_only);
  EXPECT_EQ(decoded->stats, blk_->stats());
  EXPECT_EQ(BlkDevice::EncodeState(*decoded), bytes);

  absl::StatusOr<UniqueFd> fd = MakeTempImage(kSectors * 512);
  ASSERT_TRUE(fd.ok());
  absl::StatusOr<std::unique_ptr<BlkDevice>> other = BlkDevice::Create(std::move(*fd), false, "");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->RestoreState(bytes).ok());
  EXPECT_EQ((*other)->stats(), blk_->stats());

  absl::StatusOr<UniqueFd> small_fd = MakeTempImage(512);
  ASSERT_TRUE(small_fd.ok());
  absl::StatusOr<std::unique_ptr<BlkDevice>> small =
      BlkDevice::Create(std::move(*small_fd), false, "");
  ASSERT_TRUE(small.ok());
  EXPECT_THAT(std::string((*small)->RestoreState(bytes).message()), HasSubstr("capacity"));
  std::vector<uint8_t> bad = bytes;
  bad[0] = 9;
  EXPECT_EQ((*small)->RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = bytes;
  bad.push_back(0);
  EXPECT_EQ((*other)->RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rehome::virtio
