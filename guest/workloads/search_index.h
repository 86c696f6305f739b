// guest/workloads/search_index.h: the on-disk layout of the search workload's inverted index
// (written by bench/search/build_index.py; docs/search-index.md is the reference) and the BM25
// fixed-point arithmetic the guest scores with. Little-endian, 4 KiB blocks; block 0 is the
// superblock, every other block is covered by a CRC32 in the CRC-table section whose own blocks'
// CRC32s are in the superblock. Plain data and pure functions, freestanding (<stdint.h> only);
// thread-safe.
#ifndef REHOME_GUEST_WORKLOADS_SEARCH_INDEX_H_
#define REHOME_GUEST_WORKLOADS_SEARCH_INDEX_H_

#include <stdint.h>

namespace rehome::searchindex {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kMagic = 0x58494852;  // "RHIX" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kMinToken = 2;
inline constexpr uint32_t kMaxToken = 24;
inline constexpr uint32_t kMaxQueryTerms = 8;
inline constexpr uint32_t kMaxResults = 10;
inline constexpr uint32_t kQ = 1u << 16;  // Q16.16 fixed point: idf, scores, K

enum Section : uint32_t { kCrc = 0, kTindex = 1, kDict = 2, kDoclen = 3, kPostings = 4 };
inline constexpr uint32_t kSections = 5;

struct SectionRef {
  uint32_t first_block;
  uint32_t blocks;
};

// Block 0, bytes 0..95; bytes 96.. hold crc_blocks u32 CRC32s of the CRC-table blocks, and the
// last 4 bytes (4092) the CRC32 of bytes 0..4091.
struct __attribute__((packed)) Superblock {
  uint32_t magic;
  uint32_t version;
  uint32_t block_size;    // kBlockSize
  uint32_t docs;          // N; document ids 0..N-1
  uint64_t total_tokens;  // T = sum of document lengths (avgdl = T / N)
  uint32_t avgdl_q16;     // round(T * 2^16 / N), informational (scores use T and N exactly)
  uint32_t terms;         // dictionary entries
  uint32_t blocks;        // image blocks, superblock included
  uint32_t flags;         // 0
  SectionRef section[kSections];
  uint64_t postings_bytes;
  uint32_t dict_blocks;  // = term index entries
  uint32_t crc_blocks;   // = section[kCrc].blocks
};
static_assert(sizeof(Superblock) == 96, "superblock header is 96 bytes");
inline constexpr uint32_t kSuperCrcsAt = 96;
inline constexpr uint32_t kMaxCrcBlocks = (kBlockSize - 4 - kSuperCrcsAt) / 4;  // 999

// Term index: one entry per dictionary block: the block's first term.
struct TindexEntry {
  char term[kMaxToken];  // zero padded
  uint32_t dict_block;   // relative to the dict section
  uint32_t entries;      // entries in that dictionary block (1..kDictPerBlock)
};
static_assert(sizeof(TindexEntry) == 32, "term index entry is 32 bytes");
inline constexpr uint32_t kTindexPerBlock = kBlockSize / sizeof(TindexEntry);  // 128

// Dictionary: sorted (bytewise on the zero-padded term), kDictPerBlock entries per block (the
// last 16 bytes of a block are zero), entries never straddle blocks.
struct __attribute__((packed)) DictEntry {
  char term[kMaxToken];
  uint32_t df;              // documents containing the term
  uint32_t idf_q16;         // round(ln(1 + (N - df + 0.5) / (df + 0.5)) * 2^16)
  uint64_t postings_off;    // byte offset in the postings section
  uint32_t postings_bytes;  // df (doc delta, tf) LEB128 varint pairs
  uint32_t max_tf;
};
static_assert(sizeof(DictEntry) == 48, "dictionary entry is 48 bytes");
inline constexpr uint32_t kDictPerBlock = kBlockSize / sizeof(DictEntry);  // 85

inline uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

inline constexpr uint32_t kKShift = 24;           // K(d) is kept in Q40.24
inline constexpr uint32_t kMaxTf = 32767;         // scoring clamps tf here (64-bit intermediates)
inline constexpr uint32_t kMaxIdfQ16 = 1u << 20;  // idf < 16, i.e. N < ~4.4 million

// True when KQ24's arithmetic cannot overflow: T < 2^36 and T * (3 + 9 N) < 2^64.
inline bool KArithmeticFits(uint64_t docs, uint64_t total_tokens) {
  return total_tokens > 0 && total_tokens < (1ull << 36) && docs < (1ull << 32) &&
         3 + 9 * docs <= ~0ull / total_tokens;
}

// K(d) = k1 * (1 - b + b * dl / avgdl) in Q40.24 with k1 = 6/5, b = 3/4, avgdl = T / N, exactly
// floor(2^24 * (3 T + 9 dl N) / (10 T)), computed as quotient and remainder so that nothing
// overflows when KArithmeticFits(N, T) and dl <= T.
inline uint64_t KQ24(uint64_t dl, uint64_t docs, uint64_t total_tokens) {
  const uint64_t y = 3 * total_tokens + 9 * dl * docs;
  const uint64_t d = 10 * total_tokens;
  return ((y / d) << kKShift) + (((y % d) << kKShift) / d);
}

// One term's BM25 contribution in Q16.16: idf * tf (k1 + 1) / (tf + K), as
// floor(idf_q16 * t * 11 * 2^24 / (5 * (t * 2^24 + K_q24))), t = min(tf, kMaxTf);
// idf_q16 < kMaxIdfQ16 keeps the numerator below 2^63.
inline uint32_t TermScoreQ16(uint32_t idf_q16, uint32_t tf, uint64_t k_q24) {
  const uint64_t t = tf > kMaxTf ? kMaxTf : tf;
  const uint64_t num = static_cast<uint64_t>(idf_q16) * t * 11 << kKShift;
  const uint64_t den = 5 * ((t << kKShift) + k_q24);
  return static_cast<uint32_t>(num / den);
}

}  // namespace rehome::searchindex

#endif  // REHOME_GUEST_WORKLOADS_SEARCH_INDEX_H_
