// guest/workloads/block_cache.cc: the read-only 4 KiB block cache (see block_cache.h). CPL3.
#include "guest/workloads/block_cache.h"

#include "guest/workloads/block_pattern.h"

namespace rehome::guest {
namespace {

uint32_t Buckets(uint32_t slots) {
  uint32_t n = 1;
  while (n < slots) n <<= 1;
  return n;
}

}  // namespace

uint64_t BlockCache::BytesFor(uint32_t slots) {
  return static_cast<uint64_t>(slots) * (kBlockSize + 8 + 4 + 1) + 4ull * Buckets(slots) + 16;
}

void BlockCache::Init(VirtioBlk* blk, uint8_t* mem, uint32_t slots) {
  blk_ = blk;
  slots_ = slots;
  const uint32_t buckets = Buckets(slots);
  bucket_mask_ = buckets - 1;
  data_ = mem;
  uint8_t* p = mem + static_cast<uint64_t>(slots) * kBlockSize;
  tag_ = reinterpret_cast<uint64_t*>(p);
  p += 8ull * slots;
  next_ = reinterpret_cast<uint32_t*>(p);
  p += 4ull * slots;
  head_ = reinterpret_cast<uint32_t*>(p);
  p += 4ull * buckets;
  ref_ = p;
  for (uint32_t i = 0; i < slots; ++i) {
    tag_[i] = kEmpty;
    next_[i] = kNone;
    ref_[i] = 0;
  }
  for (uint32_t i = 0; i < buckets; ++i) head_[i] = kNone;
  hand_ = 0;
  stats_ = {};
}

uint32_t BlockCache::Bucket(uint64_t block) const {
  return static_cast<uint32_t>((block * 0x9e3779b97f4a7c15ull) >> 32) & bucket_mask_;
}

void BlockCache::Unlink(uint32_t slot) {
  uint32_t* link = &head_[Bucket(tag_[slot])];
  while (*link != kNone && *link != slot) link = &next_[*link];
  if (*link == slot) *link = next_[slot];
  next_[slot] = kNone;
  tag_[slot] = kEmpty;
}

uint32_t BlockCache::Victim() {
  for (;;) {
    const uint32_t s = hand_;
    hand_ = hand_ + 1 == slots_ ? 0 : hand_ + 1;
    if (tag_[s] == kEmpty || ref_[s] == 0) return s;
    ref_[s] = 0;
  }
}

const uint8_t* BlockCache::Get(uint64_t block, uint32_t expected_crc, LineWriter* err) {
  for (uint32_t s = head_[Bucket(block)]; s != kNone; s = next_[s]) {
    if (tag_[s] == block) {
      ++stats_.hits;
      ref_[s] = 1;
      return data_ + static_cast<uint64_t>(s) * kBlockSize;
    }
  }
  ++stats_.misses;
  const uint32_t s = Victim();
  if (tag_[s] != kEmpty) {
    ++stats_.evictions;
    Unlink(s);
  }
  uint8_t* buf = data_ + static_cast<uint64_t>(s) * kBlockSize;
  if (!blk_->Read(block * (kBlockSize / kSectorSize), buf, kBlockSize, err)) {
    ++stats_.io_errors;
    return nullptr;
  }
  const uint32_t crc = blockpattern::Crc32(buf, kBlockSize);
  if (crc != expected_crc) {
    ++stats_.crc_errors;
    err->Str("block ").Dec(block).Str(" crc ").Hex(crc).Str(" expected ").Hex(expected_crc);
    return nullptr;
  }
  tag_[s] = block;
  ref_[s] = 1;
  const uint32_t b = Bucket(block);
  next_[s] = head_[b];
  head_[b] = s;
  return buf;
}

}  // namespace rehome::guest
