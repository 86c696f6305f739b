// guest/workloads/block_cache.h: a read-only page cache of 4 KiB disk blocks in guest RAM in
// front of a polled virtio-blk device (used by the search workload). `slots` blocks live in a
// caller-provided RAM region (identity mapped, 4 KiB aligned); a hash table (chained, power-of-two
// buckets) finds a cached block and the clock algorithm (one reference bit per slot) picks the
// victim on a miss. Every block read from the disk is checked against the CRC32 the caller
// expects before it enters the cache; a mismatch or an I/O error leaves nothing cached. A
// returned pointer stays valid until the next Get. Not thread-safe: one vCPU.
#ifndef REHOME_GUEST_WORKLOADS_BLOCK_CACHE_H_
#define REHOME_GUEST_WORKLOADS_BLOCK_CACHE_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_blk.h"

namespace rehome::guest {

struct BlockCacheStats {
  uint64_t hits;
  uint64_t misses;  // disk reads
  uint64_t evictions;
  uint64_t crc_errors;  // blocks read whose CRC32 did not match
  uint64_t io_errors;   // reads the device failed
};

class BlockCache final {
 public:
  static constexpr uint32_t kBlockSize = 4096;
  BlockCache() = default;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Bytes of RAM a cache of `slots` blocks needs (data first, then the metadata).
  static uint64_t BytesFor(uint32_t slots);
  // `mem`: BytesFor(slots) bytes, 4 KiB aligned; slots >= 1.
  void Init(VirtioBlk* blk, uint8_t* mem, uint32_t slots);

  // The contents of disk block `block`: from RAM on a hit, else read (and checked against
  // `expected_crc`, zlib's CRC32 of the 4096 bytes) into the clock's victim slot. nullptr with
  // the reason in `err` on an I/O error or a CRC mismatch.
  const uint8_t* Get(uint64_t block, uint32_t expected_crc, LineWriter* err);

  uint32_t slots() const { return slots_; }
  const BlockCacheStats& stats() const { return stats_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static constexpr uint32_t kNone = ~0u;
  uint32_t Bucket(uint64_t block) const;
  void Unlink(uint32_t slot);
  uint32_t Victim();

  VirtioBlk* blk_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t* tag_ = nullptr;   // block held by each slot, kEmpty when none
  uint32_t* next_ = nullptr;  // hash chain
  uint32_t* head_ = nullptr;  // bucket heads
  uint8_t* ref_ = nullptr;    // clock reference bits
  uint32_t slots_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t hand_ = 0;
  BlockCacheStats stats_ = {};
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_WORKLOADS_BLOCK_CACHE_H_
