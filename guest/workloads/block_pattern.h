// guest/workloads/block_pattern.h: the self-describing 4 KiB block written by the `blk` and
// `virtio-bad` workloads (format in docs/guest-abi.md, "Block pattern"), and the pseudo-random
// helpers shared by the virtio workloads. Header-only, freestanding (<stdint.h> only), so host
// tools can recompute and check blocks in a disk image. Pure functions; thread-safe.
#ifndef REHOME_GUEST_WORKLOADS_BLOCK_PATTERN_H_
#define REHOME_GUEST_WORKLOADS_BLOCK_PATTERN_H_

#include <stdint.h>

namespace rehome::blockpattern {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kSectorsPerBlock = kBlockSize / 512;
inline constexpr uint32_t kMagic = 0x314b4252;  // "RBK1" little-endian: format version 1
inline constexpr uint32_t kHeaderSize = 32;     // magic, crc, seed, iteration, lba

// splitmix64 finaliser.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The 4 KiB block index that iteration `i` writes, in [0, blocks).
inline uint64_t BlockIndex(uint64_t seed, uint64_t i, uint64_t blocks) {
  return Mix64(Mix64(seed) ^ (i * 0xd1b54a32d192ed03ull)) % blocks;
}

// CRC-32 (IEEE 802.3, reflected 0xedb88320, init and final xor ~0: zlib's crc32()).
inline uint32_t Crc32(const uint8_t* p, uint32_t n) {
  static constexpr uint32_t kNibble[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
                                           0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
                                           0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                           0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
  uint32_t crc = ~0u;
  for (uint32_t i = 0; i < n; ++i) {
    crc ^= p[i];
    crc = (crc >> 4) ^ kNibble[crc & 15];
    crc = (crc >> 4) ^ kNibble[crc & 15];
  }
  return ~crc;
}

inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Fills `block` (kBlockSize bytes) with the content iteration `i` writes at block index `lba`.
inline void Fill(uint8_t* block, uint64_t seed, uint64_t i, uint64_t lba) {
  Put32(block, kMagic);
  Put64(block + 8, seed);
  Put64(block + 16, i);
  Put64(block + 24, lba);
  uint64_t state = Mix64(seed ^ Mix64(i ^ Mix64(lba)));
  for (uint32_t off = kHeaderSize; off < kBlockSize; off += 8) Put64(block + off, Mix64(state++));
  Put32(block + 4, Crc32(block + 8, kBlockSize - 8));
}

// True when `block` is a well-formed block of this format (magic and CRC), whatever its origin.
inline bool SelfConsistent(const uint8_t* block) {
  return Get32(block) == kMagic && Get32(block + 4) == Crc32(block + 8, kBlockSize - 8);
}

}  // namespace rehome::blockpattern

#endif  // REHOME_GUEST_WORKLOADS_BLOCK_PATTERN_H_
