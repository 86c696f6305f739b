// vmm/virtio/blk_device.h: virtio-blk (device id 2) over a raw image file, one request queue.
// Offers VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE (512), VIRTIO_BLK_F_FLUSH and, for a
// read-only image, VIRTIO_BLK_F_RO. Requests are executed synchronously with pread/pwrite
// straight between the image and guest RAM: T_IN, T_OUT, T_FLUSH (fdatasync) and T_GET_ID.
// Other request types complete with VIRTIO_BLK_S_UNSUPP; sectors beyond the capacity, writes to
// a read-only image and host I/O errors complete with VIRTIO_BLK_S_IOERR. A malformed chain (no
// 16-byte header, no writable status byte, data in the wrong direction, a data length that is
// not a multiple of 512) is an error: the transport sets DEVICE_NEEDS_RESET. An image opened
// with O_DIRECT (bypassing the host page cache) is detected at Create(); its data moves through
// a 4 KiB-aligned bounce buffer, since guest buffers need not meet O_DIRECT's alignment.
// Thread-safety: VirtioDevice methods are called under the transport's lock; stats() may be
// called from any thread (atomic counters).
#ifndef REHOME_VMM_VIRTIO_BLK_DEVICE_H_
#define REHOME_VMM_VIRTIO_BLK_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "vmm/virtio/virtio_device.h"

namespace rehome::virtio {

// Where a verified replica's disk writes and flushes go instead of the image (vmm/l1 captures
// them as effects that L0 applies once the replicas agree). Reads still come from the image,
// overlaid with the writes captured since the last agreement.
class BlkWriteCapture {
 public:
  virtual ~BlkWriteCapture() = default;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual void Flush() = 0;
  // Overlays the captured writes onto `out`, which holds the image's bytes at `offset`.
  virtual void Overlay(uint64_t offset, std::span<uint8_t> out) const = 0;
};

class BlkDevice final : public VirtioDevice {
 public:
  static constexpr uint32_t kSectorSize = 512;
  static constexpr size_t kIdLength = 20;
  static constexpr size_t kHeaderSize = 16;  // le32 type, le32 reserved, le64 sector
  // Verified execution holds a request's data as an effect until the replicas agree: larger
  // requests complete with VIRTIO_BLK_S_IOERR there.
  static constexpr uint32_t kMaxCapturedRequest = 1 << 20;
  // Feature bits.
  static constexpr int kFeatureSegMax = 2;
  static constexpr int kFeatureReadOnly = 5;
  static constexpr int kFeatureBlkSize = 6;
  static constexpr int kFeatureFlush = 9;
  // Request types and status values.
  static constexpr uint32_t kTypeIn = 0;
  static constexpr uint32_t kTypeOut = 1;
  static constexpr uint32_t kTypeFlush = 4;
  static constexpr uint32_t kTypeGetId = 8;
  static constexpr uint8_t kStatusOk = 0;
  static constexpr uint8_t kStatusIoErr = 1;
  static constexpr uint8_t kStatusUnsupp = 2;

  struct Stats {
    uint64_t reads = 0;        // completed T_IN requests
    uint64_t writes = 0;       // completed T_OUT requests
    uint64_t flushes = 0;      // completed T_FLUSH requests
    uint64_t get_ids = 0;      // completed T_GET_ID requests
    uint64_t unsupported = 0;  // requests answered VIRTIO_BLK_S_UNSUPP
    uint64_t io_errors = 0;    // requests answered VIRTIO_BLK_S_IOERR
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
    bool operator==(const Stats&) const = default;
  };
  // The saved record: the configuration it was taken with (checked on restore) and the stats.
  struct State {
    uint64_t capacity_sectors = 0;
    bool read_only = false;
    Stats stats;
  };

  // `image` is an open raw image (O_RDWR, or O_RDONLY with read_only or a `capture`); capacity
  // = file size / 512. `capture` (not owned, may be null): where writes and flushes go instead
  // of the image (set_write_capture). InvalidArgument for an invalid fd, a size that is 0 or
  // not a multiple of 512, an id longer than 20 bytes, or a read-only fd without read_only or a
  // capture.
  static absl::StatusOr<std::unique_ptr<BlkDevice>> Create(UniqueFd image, bool read_only,
                                                           std::string id,
                                                           BlkWriteCapture* capture = nullptr);
  BlkDevice(const BlkDevice&) = delete;
  BlkDevice& operator=(const BlkDevice&) = delete;

  uint32_t device_id() const override { return kDeviceIdBlock; }
  uint64_t device_features() const override;
  int queue_count() const override { return 1; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  absl::StatusOr<bool> ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) override;
  void Reset() override {}  // no request outlives ProcessQueue; stats are kept
  // Null (the default): requests write and flush the image. Otherwise writes and flushes go to
  // `capture`, and reads see them (verified execution). Not owned; must outlive the device.
  void set_write_capture(BlkWriteCapture* capture) { capture_ = capture; }
  std::vector<uint8_t> SaveState() const override;
  // InvalidArgument for a bad record or one taken with another capacity or read_only setting.
  absl::Status RestoreState(std::span<const uint8_t> bytes) override;

  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  bool read_only() const { return read_only_; }
  bool direct() const { return direct_; }  // the image fd has O_DIRECT
  Stats stats() const;

 private:
  BlkWriteCapture* capture_ = nullptr;
  BlkDevice(UniqueFd image, bool read_only, std::string id, uint64_t capacity_sectors, bool direct);
  // Executes one request; returns the bytes written into the chain (data + status byte).
  absl::StatusOr<uint32_t> HandleRequest(const Virtqueue::Chain& chain, const GuestMemoryView& mem);
  uint8_t DoIo(bool write, const Virtqueue::Chain& chain, const GuestMemoryView& mem,
               uint64_t sector, uint32_t len);

  const UniqueFd image_;
  const bool read_only_;
  const std::string id_;
  const uint64_t capacity_sectors_;
  const bool direct_;
  std::atomic<uint64_t> reads_{0}, writes_{0}, flushes_{0}, get_ids_{0}, unsupported_{0},
      io_errors_{0}, bytes_read_{0}, bytes_written_{0};
};

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_BLK_DEVICE_H_
