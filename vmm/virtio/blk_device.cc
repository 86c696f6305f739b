// vmm/virtio/blk_device.cc: virtio-blk request parsing and raw-image I/O.
#include "vmm/virtio/blk_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome::virtio {
namespace {

constexpr uint8_t kStateVersion = 1;
constexpr size_t kConfigSize = 24;  // capacity, size_max, seg_max, geometry, blk_size

// pread/pwrite of exactly `len` bytes; false on an error or end of file.
bool FullIo(int fd, bool write, uint8_t* p, uint64_t len, uint64_t offset);

// FullIo, or, with a capture (verified execution), a write captured and a read overlaid with the
// captured writes.
bool ImageIo(int fd, BlkWriteCapture* capture, bool write, uint8_t* p, uint64_t len,
             uint64_t offset) {
  if (capture != nullptr && write) {
    capture->Write(offset, std::span<const uint8_t>(p, len));
    return true;
  }
  if (!FullIo(fd, write, p, len, offset)) return false;
  if (capture != nullptr) capture->Overlay(offset, std::span<uint8_t>(p, len));
  return true;
}

bool FullIo(int fd, bool write, uint8_t* p, uint64_t len, uint64_t offset) {
  while (len > 0) {
    const ssize_t n = write ? ::pwrite(fd, p, len, static_cast<off_t>(offset))
                            : ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlkDevice>> BlkDevice::Create(UniqueFd image, bool read_only,
                                                             std::string id,
                                                             BlkWriteCapture* capture) {
  if (!image.valid()) return absl::InvalidArgumentError("virtio-blk: invalid image fd");
  if (id.size() > kIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("virtio-blk: id \"", id, "\" is longer than ", kIdLength, " bytes"));
  }
  struct stat st;
  if (::fstat(image.get(), &st) != 0) return LastErrnoStatus("virtio-blk: fstat image");
  const int flags = ::fcntl(image.get(), F_GETFL);
  if (flags < 0) return LastErrnoStatus("virtio-blk: fcntl image");
  // A capturing device (a verified replica) writes nothing to the image: read-only is right.
  if (!read_only && capture == nullptr && (flags & O_ACCMODE) == O_RDONLY) {
    return absl::InvalidArgumentError(
        "virtio-blk: the image is open read-only but the device is not read_only");
  }
  if (st.st_size <= 0 || st.st_size % kSectorSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat("virtio-blk: image size ", st.st_size,
                                                   " is not a positive multiple of ", kSectorSize));
  }
  const uint64_t sectors = static_cast<uint64_t>(st.st_size) / kSectorSize;
  const bool direct = (flags & O_DIRECT) != 0;
  std::unique_ptr<BlkDevice> device(
      new BlkDevice(std::move(image), read_only, std::move(id), sectors, direct));
  device->capture_ = capture;
  return device;
}

BlkDevice::BlkDevice(UniqueFd image, bool read_only, std::string id, uint64_t capacity_sectors,
                     bool direct)
    : image_(std::move(image)),
      read_only_(read_only),
      id_(std::move(id)),
      capacity_sectors_(capacity_sectors),
      direct_(direct) {}

uint64_t BlkDevice::device_features() const {
  uint64_t f = (uint64_t{1} << kFeatureSegMax) | (uint64_t{1} << kFeatureBlkSize) |
               (uint64_t{1} << kFeatureFlush);
  if (read_only_) f |= uint64_t{1} << kFeatureReadOnly;
  return f;
}

void BlkDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[kConfigSize] = {};
  const uint64_t capacity = capacity_sectors_;
  const uint32_t seg_max = Virtqueue::kMaxSize - 2;
  const uint32_t blk_size = kSectorSize;
  std::memcpy(config + 0, &capacity, 8);
  std::memcpy(config + 12, &seg_max, 4);
  std::memcpy(config + 20, &blk_size, 4);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < kConfigSize ? config[offset + i] : 0;
  }
}

absl::StatusOr<bool> BlkDevice::ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) {
  bool added = false;
  while (mem.HasRoomForWork()) {
    ASSIGN_OR_RETURN(std::optional<Virtqueue::Chain> chain, vq.Pop(mem));
    if (!chain) return added;
    ASSIGN_OR_RETURN(const uint32_t written, HandleRequest(*chain, mem));
    RETURN_IF_ERROR(vq.PushUsed(mem, chain->head, written));
    added = true;
  }
  return added;
}

uint8_t BlkDevice::DoIo(bool write, const Virtqueue::Chain& chain, const GuestMemoryView& mem,
                        uint64_t sector, uint32_t len) {
  const uint64_t nsectors = len / kSectorSize;
  if (sector > capacity_sectors_ || nsectors > capacity_sectors_ - sector) return kStatusIoErr;
  if (capture_ != nullptr && len > kMaxCapturedRequest) return kStatusIoErr;
  if (write && read_only_) return kStatusIoErr;
  uint64_t file_offset = sector * kSectorSize;
  if (direct_) {
    // O_DIRECT: offset and length are multiples of 512 already; the buffer must be aligned too.
    constexpr size_t kAlign = 4096;
    const size_t bounce_size = (static_cast<size_t>(len) + kAlign - 1) / kAlign * kAlign;
    std::unique_ptr<uint8_t, decltype(&std::free)> bounce(
        static_cast<uint8_t*>(std::aligned_alloc(kAlign, std::max(bounce_size, kAlign))),
        &std::free);
    if (bounce == nullptr) return kStatusIoErr;
    const std::span<uint8_t> data(bounce.get(), len);
    if (write) {
      if (!CopyFromChain(mem, chain, kHeaderSize, data).ok() ||
          !ImageIo(image_.get(), capture_, true, data.data(), len, file_offset)) {
        return kStatusIoErr;
      }
    } else if (!ImageIo(image_.get(), capture_, false, data.data(), len, file_offset) ||
               !CopyToChain(mem, chain, 0, data).ok()) {
      return kStatusIoErr;
    }
    (write ? writes_ : reads_).fetch_add(1, std::memory_order_relaxed);
    (write ? bytes_written_ : bytes_read_).fetch_add(len, std::memory_order_relaxed);
    return kStatusOk;
  }
  bool io_ok = true;
  const absl::Status walked = ForEachSegment(
      mem, chain, /*writable=*/!write, write ? kHeaderSize : 0, len, [&](std::span<uint8_t> seg) {
        if (!ImageIo(image_.get(), capture_, write, seg.data(), seg.size(), file_offset)) {
          io_ok = false;
          return absl::DataLossError("image I/O failed");
        }
        file_offset += seg.size();
        return absl::OkStatus();
      });
  if (!walked.ok() || !io_ok) return kStatusIoErr;
  (write ? writes_ : reads_).fetch_add(1, std::memory_order_relaxed);
  (write ? bytes_written_ : bytes_read_).fetch_add(len, std::memory_order_relaxed);
  return kStatusOk;
}

absl::StatusOr<uint32_t> BlkDevice::HandleRequest(const Virtqueue::Chain& chain,
                                                  const GuestMemoryView& mem) {
  if (chain.readable_len < kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat("virtio-blk request (head ", chain.head,
                                                   ") has no 16-byte header: ", chain.readable_len,
                                                   " readable bytes"));
  }
  if (chain.writable_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("virtio-blk request (head ", chain.head,
                                                   ") has no device-writable status byte"));
  }
  uint8_t header[kHeaderSize];
  RETURN_IF_ERROR(CopyFromChain(mem, chain, 0, header));
  uint32_t type;
  uint64_t sector;
  std::memcpy(&type, header, 4);
  std::memcpy(&sector, header + 8, 8);
  const uint32_t data_out = chain.readable_len - kHeaderSize;  // driver -> device data
  const uint32_t data_in = chain.writable_len - 1;             // device -> driver data
  const std::string what =
      absl::StrCat("virtio-blk request type ", type, " (head ", chain.head, ")");
  auto wrong_direction = [&](uint32_t n, const char* dir) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " carries ", n, " device-", dir, " data bytes it must not have"));
  };
  auto not_sectors = [&](uint32_t n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": data length ", n, " is not a multiple of ", kSectorSize));
  };

  uint8_t status = kStatusOk;
  uint32_t written = 1;  // the status byte
  switch (type) {
    case kTypeIn:
      if (data_out != 0) return wrong_direction(data_out, "readable");
      if (data_in % kSectorSize != 0) return not_sectors(data_in);
      status = DoIo(/*write=*/false, chain, mem, sector, data_in);
      if (status == kStatusOk) written += data_in;
      break;
    case kTypeOut:
      if (data_in != 0) return wrong_direction(data_in, "writable");
      if (data_out % kSectorSize != 0) return not_sectors(data_out);
      status = DoIo(/*write=*/true, chain, mem, sector, data_out);
      break;
    case kTypeFlush:
      if (data_out != 0) return wrong_direction(data_out, "readable");
      if (data_in != 0) return wrong_direction(data_in, "writable");
      if (capture_ != nullptr && !read_only_) {
        capture_->Flush();
        flushes_.fetch_add(1, std::memory_order_relaxed);
      } else if (!read_only_ && ::fdatasync(image_.get()) != 0) {
        status = kStatusIoErr;
      } else {
        flushes_.fetch_add(1, std::memory_order_relaxed);
      }
      break;
    case kTypeGetId: {
      if (data_out != 0) return wrong_direction(data_out, "readable");
      uint8_t id[kIdLength] = {};
      std::memcpy(id, id_.data(), id_.size());
      const uint32_t n = std::min<uint32_t>(data_in, kIdLength);
      RETURN_IF_ERROR(CopyToChain(mem, chain, 0, std::span<const uint8_t>(id, n)));
      written += n;
      get_ids_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    default:
      status = kStatusUnsupp;
      unsupported_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  if (status == kStatusIoErr) io_errors_.fetch_add(1, std::memory_order_relaxed);
  RETURN_IF_ERROR(CopyToChain(mem, chain, data_in, std::span<const uint8_t>(&status, 1)));
  return written;
}

BlkDevice::Stats BlkDevice::stats() const {
  Stats s;
  s.reads = reads_.load();
  s.writes = writes_.load();
  s.flushes = flushes_.load();
  s.get_ids = get_ids_.load();
  s.unsupported = unsupported_.load();
  s.io_errors = io_errors_.load();
  s.bytes_read = bytes_read_.load();
  s.bytes_written = bytes_written_.load();
  return s;
}

std::vector<uint8_t> BlkDevice::SaveState() const {
  return EncodeState(State{capacity_sectors_, read_only_, stats()});
}

absl::Status BlkDevice::RestoreState(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(const State s, DecodeState(bytes));
  if (s.capacity_sectors != capacity_sectors_ || s.read_only != read_only_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "virtio-blk state: taken with capacity ", s.capacity_sectors, " sectors, read_only ",
        s.read_only, "; this device has ", capacity_sectors_, ", ", read_only_));
  }
  reads_ = s.stats.reads;
  writes_ = s.stats.writes;
  flushes_ = s.stats.flushes;
  get_ids_ = s.stats.get_ids;
  unsupported_ = s.stats.unsupported;
  io_errors_ = s.stats.io_errors;
  bytes_read_ = s.stats.bytes_read;
  bytes_written_ = s.stats.bytes_written;
  return absl::OkStatus();
}

std::vector<uint8_t> BlkDevice::EncodeState(const State& s) {
  StateWriter w(kStateVersion);
  w.U64(s.capacity_sectors);
  w.U8(s.read_only ? 1 : 0);
  for (uint64_t v :
       {s.stats.reads, s.stats.writes, s.stats.flushes, s.stats.get_ids, s.stats.unsupported,
        s.stats.io_errors, s.stats.bytes_read, s.stats.bytes_written}) {
    w.U64(v);
  }
  return w.Finish();
}

absl::StatusOr<BlkDevice::State> BlkDevice::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "virtio-blk");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  s.capacity_sectors = r.U64();
  s.read_only = r.Bool();
  for (uint64_t* v :
       {&s.stats.reads, &s.stats.writes, &s.stats.flushes, &s.stats.get_ids, &s.stats.unsupported,
        &s.stats.io_errors, &s.stats.bytes_read, &s.stats.bytes_written}) {
    *v = r.U64();
  }
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome::virtio
