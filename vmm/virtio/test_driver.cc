// vmm/virtio/test_driver.cc: TEST-ONLY guest driver for the virtio library tests.
#include "vmm/virtio/test_driver.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace rehome::virtio::testutil {
namespace {

constexpr uint64_t kQueueBase = 0x1000;
constexpr uint64_t kQueueStride = 0x4000;

[[noreturn]] void Die(const char* why) {
  std::fprintf(stderr, "TestDriver: %s\n", why);
  std::abort();
}

}  // namespace

absl::StatusOr<UniqueFd> MakeTempImage(uint64_t size, bool read_only) {
  char path[] = "/tmp/rehome-virtio-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  if (!fd.valid()) return LastErrnoStatus("mkstemp");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    ::unlink(path);
    return LastErrnoStatus("ftruncate");
  }
  if (read_only) {
    UniqueFd ro(::open(path, O_RDONLY | O_CLOEXEC));
    ::unlink(path);
    if (!ro.valid()) return LastErrnoStatus("open read-only");
    return ro;
  }
  ::unlink(path);
  return fd;
}

TestDriver::TestDriver(MmioTransport& transport, std::vector<uint8_t>& ram)
    : transport_(&transport), ram_(ram) {}

uint32_t TestDriver::Read32(uint64_t offset) {
  uint8_t b[4];
  transport_->Read(offset, b);
  uint32_t v;
  std::memcpy(&v, b, 4);
  return v;
}

void TestDriver::Write32(uint64_t offset, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  transport_->Write(offset, b);
}

absl::Status TestDriver::Initialize(uint64_t features_mask, uint16_t queue_size) {
  using T = MmioTransport;
  Write32(T::kRegStatus, 0);
  queues_.clear();
  if (Read32(T::kRegMagic) != T::kMagic || Read32(T::kRegVersion) != 2) {
    return absl::FailedPreconditionError("not a virtio-mmio v2 device");
  }
  Write32(T::kRegStatus, kStatusAcknowledge);
  Write32(T::kRegStatus, kStatusAcknowledge | kStatusDriver);
  uint64_t features = 0;
  for (uint32_t sel = 0; sel < 2; ++sel) {
    Write32(T::kRegDeviceFeaturesSel, sel);
    features |= uint64_t{Read32(T::kRegDeviceFeatures)} << (32 * sel);
  }
  features &= features_mask;
  for (uint32_t sel = 0; sel < 2; ++sel) {
    Write32(T::kRegDriverFeaturesSel, sel);
    Write32(T::kRegDriverFeatures, static_cast<uint32_t>(features >> (32 * sel)));
  }
  const uint32_t s = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
  Write32(T::kRegStatus, s);
  if (!(Read32(T::kRegStatus) & kStatusFeaturesOk)) {
    return absl::FailedPreconditionError("device refused FEATURES_OK");
  }
  for (int q = 0; q < transport_->device().queue_count(); ++q) SetUpQueue(q, queue_size);
  Write32(T::kRegStatus, s | kStatusDriverOk);
  return absl::OkStatus();
}

void TestDriver::SetUpQueue(int q, uint16_t size) {
  using T = MmioTransport;
  Queue queue;
  const uint64_t base = kQueueBase + kQueueStride * static_cast<uint64_t>(q);
  queue.layout = QueueLayout{size, base, base + 0x1000, base + 0x2000};
  std::memset(Host(base), 0, kQueueStride);
  for (uint16_t i = 0; i < size; ++i) queue.free.push_back(i);
  Write32(T::kRegQueueSel, static_cast<uint32_t>(q));
  Write32(T::kRegQueueNum, size);
  Write32(T::kRegQueueDescLow, static_cast<uint32_t>(queue.layout.desc));
  Write32(T::kRegQueueDescHigh, static_cast<uint32_t>(queue.layout.desc >> 32));
  Write32(T::kRegQueueDriverLow, static_cast<uint32_t>(queue.layout.avail));
  Write32(T::kRegQueueDriverHigh, static_cast<uint32_t>(queue.layout.avail >> 32));
  Write32(T::kRegQueueDeviceLow, static_cast<uint32_t>(queue.layout.used));
  Write32(T::kRegQueueDeviceHigh, static_cast<uint32_t>(queue.layout.used >> 32));
  Write32(T::kRegQueueReady, 1);
  queues_[q] = std::move(queue);
}

uint64_t TestDriver::Alloc(uint64_t len, uint64_t align) {
  next_alloc_ = (next_alloc_ + align - 1) / align * align;
  const uint64_t gpa = next_alloc_;
  next_alloc_ += len;
  if (next_alloc_ > ram_.size()) Die("test RAM exhausted");
  return gpa;
}

template <typename T>
void TestDriver::Put(uint64_t gpa, T v) {
  std::memcpy(Host(gpa), &v, sizeof(T));
}

template <typename T>
T TestDriver::Get(uint64_t gpa) {
  T v;
  std::memcpy(&v, Host(gpa), sizeof(T));
  return v;
}

void TestDriver::WriteDesc(int q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                           uint16_t next) {
  const uint64_t d = queues_.at(q).layout.desc + 16ull * index;
  Put<uint64_t>(d, addr);
  Put<uint32_t>(d + 8, len);
  Put<uint16_t>(d + 12, flags);
  Put<uint16_t>(d + 14, next);
}

void TestDriver::PublishHead(int q, uint16_t head) {
  Queue& queue = queues_.at(q);
  const QueueLayout& l = queue.layout;
  Put<uint16_t>(l.avail + 4 + 2ull * (queue.avail_idx % l.size), head);
  ++queue.avail_idx;
  Put<uint16_t>(l.avail + 2, queue.avail_idx);
}

void TestDriver::SetAvailIdx(int q, uint16_t idx) {
  Queue& queue = queues_.at(q);
  queue.avail_idx = idx;
  Put<uint16_t>(queue.layout.avail + 2, idx);
}

uint16_t TestDriver::UsedIdx(int q) { return Get<uint16_t>(queues_.at(q).layout.used + 2); }

uint16_t TestDriver::Post(int q, const std::vector<Segment>& segments) {
  Queue& queue = queues_.at(q);
  if (segments.empty() || segments.size() > queue.free.size()) {
    Die("Post: no room for the chain");
  }
  std::vector<uint16_t> ids(queue.free.begin(), queue.free.begin() + segments.size());
  queue.free.erase(queue.free.begin(), queue.free.begin() + segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    const uint16_t flags = static_cast<uint16_t>((last ? 0 : kDescFlagNext) |
                                                 (segments[i].write ? kDescFlagWrite : 0));
    WriteDesc(q, ids[i], segments[i].gpa, segments[i].len, flags, last ? 0 : ids[i + 1]);
  }
  queue.chains[ids[0]] = ids;
  PublishHead(q, ids[0]);
  return ids[0];
}

std::optional<TestDriver::Used> TestDriver::PopUsed(int q) {
  Queue& queue = queues_.at(q);
  if (UsedIdx(q) == queue.last_used) return std::nullopt;
  const uint64_t e = queue.layout.used + 4 + 8ull * (queue.last_used % queue.layout.size);
  Used used{Get<uint32_t>(e), Get<uint32_t>(e + 4)};
  ++queue.last_used;
  auto it = queue.chains.find(static_cast<uint16_t>(used.id));
  if (it != queue.chains.end()) {
    queue.free.insert(queue.free.end(), it->second.begin(), it->second.end());
    queue.chains.erase(it);
  }
  return used;
}

uint32_t TestDriver::AckInterrupts() {
  const uint32_t s = Read32(MmioTransport::kRegInterruptStatus);
  if (s != 0) Write32(MmioTransport::kRegInterruptAck, s);
  return s;
}

BlkRequest PostBlkRequest(TestDriver& driver, uint32_t type, uint64_t sector, uint32_t data_len,
                          std::span<const uint8_t> out_data) {
  BlkRequest r;
  const uint64_t header = driver.Alloc(16);
  const uint32_t reserved = 0;
  std::memcpy(driver.Host(header), &type, 4);
  std::memcpy(driver.Host(header + 4), &reserved, 4);
  std::memcpy(driver.Host(header + 8), &sector, 8);
  std::vector<TestDriver::Segment> segs = {{header, 16, false}};
  if (data_len != 0) {
    r.data_gpa = driver.Alloc(data_len);
    const bool device_reads = type == 1;  // T_OUT
    if (device_reads) {
      std::memcpy(driver.Host(r.data_gpa), out_data.data(),
                  std::min<size_t>(data_len, out_data.size()));
    } else {
      std::memset(driver.Host(r.data_gpa), 0xee, data_len);
    }
    segs.push_back({r.data_gpa, data_len, !device_reads});
  }
  r.status_gpa = driver.Alloc(1);
  *driver.Host(r.status_gpa) = 0xff;
  segs.push_back({r.status_gpa, 1, true});
  r.head = driver.Post(0, segs);
  return r;
}

}  // namespace rehome::virtio::testutil
