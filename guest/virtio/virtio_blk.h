// guest/virtio/virtio_blk.h: a polled virtio-blk driver on one virtio-mmio transport (modern,
// only VIRTIO_F_VERSION_1 negotiated). Single requests: one in flight on queue 0, built from
// descriptors 0 (16-byte header, device-readable), 1 (data) and 2 (status byte,
// device-writable); FLUSH uses descriptors 0 and 2 only. WriteBatch puts up to
// kBlkMaxBatch writes in flight at once (request i on descriptors 3i..3i+2) behind one
// notification, as a block layer with a queue depth does. Buffers must be identity-mapped guest
// RAM. Not thread-safe: one vCPU drives the device.
#ifndef REHOME_GUEST_VIRTIO_VIRTIO_BLK_H_
#define REHOME_GUEST_VIRTIO_VIRTIO_BLK_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_mmio.h"

namespace rehome::guest {

inline constexpr uint32_t kBlkTypeIn = 0;
inline constexpr uint32_t kBlkTypeOut = 1;
inline constexpr uint32_t kBlkTypeFlush = 4;
inline constexpr uint32_t kBlkTypeGetId = 8;
inline constexpr uint8_t kBlkStatusOk = 0;
inline constexpr uint32_t kBlkIdBytes = 20;
inline constexpr uint32_t kSectorSize = 512;
// Request completion deadline (LAPIC ticks; 10 s at 250 Hz).
inline constexpr uint64_t kBlkTimeoutTicks = 2500;
// Writes WriteBatch puts in flight at once (3 descriptors each, within a 64-entry queue).
inline constexpr uint32_t kBlkMaxBatch = 16;

struct BlkRequestHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

// One write of a batch: `len` bytes (a multiple of kSectorSize) from `buf` at `sector`.
struct BlkWrite {
  uint64_t sector;
  const void* buf;
  uint32_t len;
};

class VirtioBlk final {
 public:
  VirtioBlk() = default;
  VirtioBlk(const VirtioBlk&) = delete;
  VirtioBlk& operator=(const VirtioBlk&) = delete;

  // (Re)initialises the device behind `base` from reset to DRIVER_OK and reads the capacity.
  bool Init(uint64_t base, LineWriter* err);
  uint64_t capacity_sectors() const { return capacity_; }

  // Each returns true when the device completed the request with VIRTIO_BLK_S_OK; otherwise
  // `err` gets the operation, sector and status (or "timeout").
  bool Read(uint64_t sector, void* buf, uint32_t len, LineWriter* err);
  bool Write(uint64_t sector, const void* buf, uint32_t len, LineWriter* err);
  bool Flush(LineWriter* err);
  // Writes `writes[0..n)` with up to min(kBlkMaxBatch, queue size / 3) in flight at once; true
  // when the device completed every one with VIRTIO_BLK_S_OK. No order among them is promised
  // (none overlaps another, the caller's duty); a FLUSH after it covers them all.
  bool WriteBatch(const BlkWrite* writes, uint32_t n, LineWriter* err);
  // The most writes WriteBatch puts in flight at once on this device (>= 1).
  uint32_t max_batch() const;
  // Fills `id` (kBlkIdBytes + 1 bytes) with the NUL-terminated device id string.
  bool GetId(char* id, LineWriter* err);

  // Raw access for the hostile-driver workload (virtio-bad).
  VirtioMmio& transport() { return mmio_; }
  Virtqueue& queue() { return vq_; }
  BlkRequestHeader* header() { return &header_; }
  uint8_t* status_byte() { return &status_; }

 private:
  bool Submit(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool device_writes,
              LineWriter* err);

  VirtioMmio mmio_;
  Virtqueue vq_;
  uint64_t capacity_ = 0;
  BlkRequestHeader header_{};
  uint8_t status_ = 0;
  BlkRequestHeader batch_headers_[kBlkMaxBatch]{};
  uint8_t batch_status_[kBlkMaxBatch]{};
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_VIRTIO_VIRTIO_BLK_H_
