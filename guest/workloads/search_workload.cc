// guest/workloads/search_workload.cc: the `search` workload (see io_workloads.h, docs/guest-abi.md
// and docs/search-index.md): vCPU 0 brings up the first virtio-blk device (the index image written
// by bench/search/build_index.py) and the first virtio-net device, checks the superblock, loads
// the CRC table and the document lengths, and serves BM25 top-10 queries (AND / OR of 1..8
// terms) on UDP port service::kSearchPort with the framing of docs/service-protocol.md. Index
// blocks are read through a BlockCache in the RAM above the guest image; a block whose CRC32 does
// not match fails the query (status kFailed) rather than answer from corrupted data. Scores are
// integer Q16.16 (search_index.h). CPL3, vCPU 0 only.
#include "guest/kernel/serial.h"
#include "guest/net/net_stack.h"
#include "guest/net/service_protocol.h"
#include "guest/virtio/virtio_blk.h"
#include "guest/workloads/block_cache.h"
#include "guest/workloads/block_pattern.h"
#include "guest/workloads/io_workloads.h"
#include "guest/workloads/search_index.h"

extern "C" uint8_t __image_end[];  // guest.ld: the end of the loaded image and its .bss

namespace rehome::guest {
namespace {

namespace si = searchindex;
namespace sp = service;

constexpr uint16_t kKindAnd = 1;
constexpr uint16_t kKindOr = 2;
// Requests between stats lines. A line costs ~100 port exits on COM1 (milliseconds here) with the
// service stalled meanwhile: at 1000 it set the p99 of the full-load benchmark by itself.
constexpr uint64_t kStatsEvery = 100000;

struct Query {
  uint16_t kind;
  uint32_t terms;
  char term[si::kMaxQueryTerms][si::kMaxToken];  // folded, zero padded
};

struct Result {
  uint32_t doc;
  uint32_t score;
};

struct Counters {
  uint64_t requests;
  uint64_t ok;
  uint64_t malformed;
  uint64_t failed;
  uint64_t postings;  // postings decoded
};

VirtioBlk blk;
BlockCache cache;
alignas(4096) uint8_t super_buf[si::kBlockSize];
si::Superblock sb;
uint32_t* block_crc;  // [sb.blocks], in the RAM region
uint64_t* k_q24;      // [sb.docs]: K(d) in Q40.24
uint32_t* acc;        // [sb.docs]: score accumulators (valid where mask != 0)
uint8_t* mask;        // [sb.docs]: bit i = query term i matched
uint32_t* touched;    // [sb.docs]: documents with mask != 0
Counters counters;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Every block but the superblock and the CRC table's own (loaded at start) goes through here.
const uint8_t* Block(uint64_t b, LineWriter* err) {
  if (b >= sb.blocks) {
    err->Str("block ").Dec(b).Str(" beyond the index");
    return nullptr;
  }
  return cache.Get(b, block_crc[b], err);
}

const uint8_t* SectionBlock(uint32_t section, uint64_t i, LineWriter* err) {
  if (i >= sb.section[section].blocks) {
    err->Str("section ").Dec(section).Str(" block ").Dec(i).Str(" out of range");
    return nullptr;
  }
  return Block(sb.section[section].first_block + i, err);
}

int CompareTerm(const char* a, const char* b) {
  for (uint32_t i = 0; i < si::kMaxToken; ++i) {
    const uint8_t x = static_cast<uint8_t>(a[i]), y = static_cast<uint8_t>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

bool Fail(LineWriter* err) {
  err->Flush();
  return false;
}

// Checks the superblock in super_buf and copies its header into sb.
bool CheckSuperblock(uint64_t capacity_blocks, LineWriter* err) {
  const uint32_t want = si::Get32(super_buf + si::kBlockSize - 4);
  const uint32_t crc = blockpattern::Crc32(super_buf, si::kBlockSize - 4);
  __builtin_memcpy(&sb, super_buf, sizeof(sb));
  if (sb.magic != si::kMagic) {
    err->Str("no search index on the disk (magic ").Hex(sb.magic).Str(")");
    return false;
  }
  if (crc != want) {
    err->Str("superblock crc ").Hex(crc).Str(" expected ").Hex(want);
    return false;
  }
  if (sb.version != si::kVersion || sb.block_size != si::kBlockSize) {
    err->Str("index version ").Dec(sb.version).Str(" block size ").Dec(sb.block_size);
    err->Str(" (want ").Dec(si::kVersion).Str(", ").Dec(si::kBlockSize).Str(")");
    return false;
  }
  bool ok =
      sb.docs > 0 && sb.total_tokens > 0 && sb.blocks <= capacity_blocks && sb.crc_blocks >= 1 &&
      sb.crc_blocks <= si::kMaxCrcBlocks && sb.section[si::kCrc].first_block == 1 &&
      sb.section[si::kCrc].blocks == sb.crc_blocks &&
      static_cast<uint64_t>(sb.crc_blocks) * (si::kBlockSize / 4) >= sb.blocks &&
      sb.section[si::kDict].blocks == sb.dict_blocks && sb.dict_blocks >= 1 &&
      static_cast<uint64_t>(sb.section[si::kTindex].blocks) * si::kTindexPerBlock >=
          sb.dict_blocks &&
      static_cast<uint64_t>(sb.dict_blocks) * si::kDictPerBlock >= sb.terms &&
      static_cast<uint64_t>(sb.section[si::kDoclen].blocks) * (si::kBlockSize / 4) >= sb.docs &&
      static_cast<uint64_t>(sb.section[si::kPostings].blocks) * si::kBlockSize >= sb.postings_bytes;
  for (uint32_t s = 0; ok && s < si::kSections; ++s) {
    const uint64_t end = static_cast<uint64_t>(sb.section[s].first_block) + sb.section[s].blocks;
    ok = sb.section[s].first_block >= 1 && end <= sb.blocks;
  }
  ok = ok && si::KArithmeticFits(sb.docs, sb.total_tokens);
  if (!ok) err->Str("inconsistent superblock (sizes/sections)");
  return ok;
}

// Loads and checks the CRC table, then computes K(d) from the document lengths.
bool LoadTables(LineWriter* err) {
  for (uint32_t i = 0; i < sb.crc_blocks; ++i) {
    uint8_t* dst = reinterpret_cast<uint8_t*>(block_crc) + static_cast<uint64_t>(i) * 4096;
    if (!blk.Read((1ull + i) * (si::kBlockSize / kSectorSize), dst, si::kBlockSize, err)) {
      return false;
    }
    const uint32_t want = si::Get32(super_buf + si::kSuperCrcsAt + 4 * i);
    const uint32_t crc = blockpattern::Crc32(dst, si::kBlockSize);
    if (crc != want) {
      err->Str("crc table block ").Dec(i).Str(" crc ").Hex(crc).Str(" expected ").Hex(want);
      return false;
    }
  }
  const uint32_t per_block = si::kBlockSize / 4;
  uint64_t sum = 0;
  for (uint32_t d = 0; d < sb.docs; ++d) {
    const uint8_t* p = SectionBlock(si::kDoclen, d / per_block, err);
    if (p == nullptr) return false;
    const uint32_t dl = si::Get32(p + 4 * (d % per_block));
    sum += dl;
    if (sum > sb.total_tokens) break;  // KQ24 needs dl <= T; reported below
    k_q24[d] = si::KQ24(dl, sb.docs, sb.total_tokens);
    mask[d] = 0;
  }
  if (sum != sb.total_tokens) {
    err->Str("document lengths sum to ").Dec(sum).Str(", superblock says ").Dec(sb.total_tokens);
    return false;
  }
  return true;
}

// Parses a request body into *q: false when malformed.
bool ParseQuery(uint16_t kind, const uint8_t* body, uint32_t len, Query* q) {
  if (kind != kKindAnd && kind != kKindOr) return false;
  if (len < 1) return false;
  q->kind = kind;
  q->terms = body[0];
  if (q->terms < 1 || q->terms > si::kMaxQueryTerms) return false;
  uint32_t at = 1;
  for (uint32_t t = 0; t < q->terms; ++t) {
    if (at >= len) return false;
    const uint32_t n = body[at++];
    if (n < si::kMinToken || n > si::kMaxToken || len - at < n) return false;
    for (uint32_t i = 0; i < si::kMaxToken; ++i) {
      char c = 0;
      if (i < n) {
        c = static_cast<char>(body[at + i]);
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
      }
      q->term[t][i] = c;
    }
    at += n;
  }
  return at == len;  // trailing bytes: malformed
}

// Looks `term` up: true with *found = false when it is not in the dictionary; false on a read
// error or an inconsistent dictionary.
bool Lookup(const char* term, si::DictEntry* out, bool* found, LineWriter* err) {
  *found = false;
  // Last term-index entry whose first term <= term.
  uint32_t lo = 0, hi = sb.dict_blocks;  // invariant: entries < lo are <= term
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t* p = SectionBlock(si::kTindex, mid / si::kTindexPerBlock, err);
    if (p == nullptr) return false;
    const auto* e = reinterpret_cast<const si::TindexEntry*>(p) + mid % si::kTindexPerBlock;
    if (CompareTerm(e->term, term) <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return true;  // before the first term
  const uint32_t b = lo - 1;
  const uint8_t* p = SectionBlock(si::kTindex, b / si::kTindexPerBlock, err);
  if (p == nullptr) return false;
  const auto* ti = reinterpret_cast<const si::TindexEntry*>(p) + b % si::kTindexPerBlock;
  const uint32_t entries = ti->entries;
  if (ti->dict_block != b || entries < 1 || entries > si::kDictPerBlock) {
    err->Str("term index entry ").Dec(b).Str(" inconsistent");
    return false;
  }
  p = SectionBlock(si::kDict, b, err);
  if (p == nullptr) return false;
  uint32_t l = 0, h = entries;
  while (l < h) {
    const uint32_t mid = l + (h - l) / 2;
    si::DictEntry e;
    __builtin_memcpy(&e, p + mid * sizeof(si::DictEntry), sizeof(e));
    const int c = CompareTerm(e.term, term);
    if (c == 0) {
      if (e.df < 1 || e.df > sb.docs || e.idf_q16 >= si::kMaxIdfQ16 ||
          e.postings_off > sb.postings_bytes ||
          e.postings_bytes > sb.postings_bytes - e.postings_off) {
        err->Str("dictionary entry inconsistent");
        return false;
      }
      *out = e;
      *found = true;
      return true;
    }
    if (c < 0) {
      l = mid + 1;
    } else {
      h = mid;
    }
  }
  return true;
}

// A byte stream over a range of the postings section.
class PostingsReader {
 public:
  PostingsReader(uint64_t off, uint64_t len) : pos_(off), end_(off + len) {}
  bool Varint(uint32_t* v, LineWriter* err) {
    uint64_t value = 0;
    for (uint32_t shift = 0; shift < 35; shift += 7) {
      uint8_t byte;
      if (!Byte(&byte, err)) return false;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        if (value > 0xffffffffull) break;
        *v = static_cast<uint32_t>(value);
        return true;
      }
    }
    err->Str("bad varint in postings");
    return false;
  }
  bool AtEnd() const { return pos_ == end_; }

 private:
  bool Byte(uint8_t* out, LineWriter* err) {
    if (pos_ >= end_) {
      err->Str("postings overrun");
      return false;
    }
    const uint64_t b = pos_ / si::kBlockSize;
    if (block_ == nullptr || b != block_no_) {
      block_ = SectionBlock(si::kPostings, b, err);
      if (block_ == nullptr) return false;
      block_no_ = b;
    }
    *out = block_[pos_ % si::kBlockSize];
    ++pos_;
    return true;
  }
  uint64_t pos_;
  uint64_t end_;
  const uint8_t* block_ = nullptr;
  uint64_t block_no_ = 0;
};

// Adds term `bit`'s contributions to the accumulators.
bool ScoreTerm(const si::DictEntry& e, uint32_t bit, uint32_t* ntouched, LineWriter* err) {
  PostingsReader r(e.postings_off, e.postings_bytes);
  uint64_t doc = 0;
  for (uint32_t i = 0; i < e.df; ++i) {
    uint32_t delta, tf;
    if (!r.Varint(&delta, err) || !r.Varint(&tf, err)) return false;
    doc += delta;
    if ((i > 0 && delta == 0) || doc >= sb.docs || tf == 0) {
      err->Str("postings inconsistent");
      return false;
    }
    const uint32_t d = static_cast<uint32_t>(doc);
    if (mask[d] == 0) {
      touched[(*ntouched)++] = d;
      acc[d] = 0;
    }
    acc[d] += si::TermScoreQ16(e.idf_q16, tf, k_q24[d]);
    mask[d] |= static_cast<uint8_t>(1u << bit);
  }
  counters.postings += e.df;
  if (!r.AtEnd()) {
    err->Str("postings length mismatch");
    return false;
  }
  return true;
}

bool Better(const Result& a, const Result& b) {
  return a.score != b.score ? a.score > b.score : a.doc < b.doc;
}

// Evaluates `q`: the number of matching documents and the top results (*nresults of them).
bool Evaluate(const Query& q, uint32_t* matches, Result* top, uint32_t* nresults, LineWriter* err) {
  *matches = 0;
  *nresults = 0;
  si::DictEntry entry[si::kMaxQueryTerms];
  bool found[si::kMaxQueryTerms];
  for (uint32_t t = 0; t < q.terms; ++t) {
    if (!Lookup(q.term[t], &entry[t], &found[t], err)) return false;
    if (!found[t] && q.kind == kKindAnd) return true;  // no document has every term
  }
  uint32_t ntouched = 0;
  bool ok = true;
  for (uint32_t t = 0; ok && t < q.terms; ++t) {
    if (found[t]) ok = ScoreTerm(entry[t], t, &ntouched, err);
  }
  const uint32_t all = (1u << q.terms) - 1;
  for (uint32_t i = 0; i < ntouched; ++i) {
    const uint32_t d = touched[i];
    const bool match = q.kind == kKindOr || mask[d] == all;
    mask[d] = 0;
    if (!ok || !match) continue;
    ++*matches;
    const Result r{d, acc[d]};
    if (*nresults == si::kMaxResults && !Better(r, top[si::kMaxResults - 1])) continue;
    uint32_t at = *nresults < si::kMaxResults ? (*nresults)++ : si::kMaxResults - 1;
    while (at > 0 && Better(r, top[at - 1])) {
      top[at] = top[at - 1];
      --at;
    }
    top[at] = r;
  }
  return ok;
}

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t Reply(const sp::Header& req, uint16_t status, uint8_t* reply, uint32_t max,
               uint32_t body_len) {
  sp::Header h{sp::kResponseMagic, sp::kVersion, status, req.request_id};
  if (max < sizeof(h) + body_len) return 0;
  __builtin_memcpy(reply, &h, sizeof(h));
  return static_cast<uint32_t>(sizeof(h)) + body_len;
}

void PrintStats(const char* what) {
  const BlockCacheStats& c = cache.stats();
  LineWriter()
      .Str("rehome-guest: search ")
      .Str(what)
      .Str(" requests=")
      .Dec(counters.requests)
      .Str(" ok=")
      .Dec(counters.ok)
      .Str(" malformed=")
      .Dec(counters.malformed)
      .Str(" failed=")
      .Dec(counters.failed)
      .Str(" postings=")
      .Dec(counters.postings)
      .Str(" cache_hits=")
      .Dec(c.hits)
      .Str(" cache_misses=")
      .Dec(c.misses)
      .Str(" evictions=")
      .Dec(c.evictions)
      .Str(" crc_errors=")
      .Dec(c.crc_errors)
      .Str(" io_errors=")
      .Dec(c.io_errors)
      .Flush();
}

// The harness's stop request (service_protocol.h).
bool IsStopRequest(const sp::Header& h, const UdpRequest& req) {
  return h.magic == sp::kRequestMagic && h.version == sp::kVersion && h.kind == sp::kStopService &&
         req.len == sizeof(h) + sizeof(sp::kStopBody) &&
         __builtin_memcmp(req.data + sizeof(h), sp::kStopBody, sizeof(sp::kStopBody)) == 0;
}

uint32_t Serve(void*, const UdpRequest& req, uint8_t* reply, uint32_t max) {
  if (req.len < sizeof(sp::Header)) return 0;  // not even a header: dropped
  ++counters.requests;
  if (counters.requests % kStatsEvery == 0) PrintStats("stats");
  sp::Header h;
  __builtin_memcpy(&h, req.data, sizeof(h));
  if (IsStopRequest(h, req)) return Reply(h, sp::kOk, reply, max, 0) | kUdpStopAfterReply;
  Query q;
  if (h.magic != sp::kRequestMagic || h.version != sp::kVersion ||
      !ParseQuery(h.kind, req.data + sizeof(h), req.len - static_cast<uint32_t>(sizeof(h)), &q)) {
    ++counters.malformed;
    return Reply(h, sp::kMalformed, reply, max, 0);
  }
  uint32_t matches = 0, n = 0;
  Result top[si::kMaxResults];
  LineWriter err;
  err.Str("rehome-guest: search: request ").Dec(h.request_id).Str(" failed: ");
  if (!Evaluate(q, &matches, top, &n, &err)) {
    ++counters.failed;
    err.Flush();
    return Reply(h, sp::kFailed, reply, max, 0);
  }
  ++counters.ok;
  uint8_t* body = reply + sizeof(sp::Header);
  const uint32_t body_len = 5 + 8 * n;
  if (max < sizeof(sp::Header) + body_len) return 0;
  Put32(body, matches);
  body[4] = static_cast<uint8_t>(n);
  for (uint32_t i = 0; i < n; ++i) {
    Put32(body + 5 + 8 * i, top[i].doc);
    Put32(body + 9 + 8 * i, top[i].score);
  }
  return Reply(h, sp::kOk, reply, max, body_len);
}

}  // namespace

bool RunSearch(const VirtioDevices& devices, uint32_t ip, uint64_t steps, uint64_t cache_kib,
               uint64_t ram_end) {
  LineWriter err;
  err.Str("rehome-guest: search: ");
  VirtioMmio found;
  if (!FindVirtioDevice(devices.regions, devices.count, kVirtioIdBlock, &found)) {
    err.Str("no virtio-blk device (needs --disk with an index from bench/search/build_index.py)");
    return Fail(&err);
  }
  if (!blk.Init(found.base(), &err)) return Fail(&err);
  if (!blk.Read(0, super_buf, si::kBlockSize, &err)) return Fail(&err);
  if (!CheckSuperblock(blk.capacity_sectors() / (si::kBlockSize / kSectorSize), &err)) {
    return Fail(&err);
  }
  // The RAM above the image: CRC table, per-document arrays, then the cache.
  uint64_t at = AlignUp(reinterpret_cast<uint64_t>(__image_end), 4096);
  const uint64_t region_start = at;
  block_crc = reinterpret_cast<uint32_t*>(at);
  at += static_cast<uint64_t>(sb.crc_blocks) * si::kBlockSize;
  k_q24 = reinterpret_cast<uint64_t*>(at);
  at += 8ull * sb.docs;
  acc = reinterpret_cast<uint32_t*>(at);
  at += 4ull * sb.docs;
  touched = reinterpret_cast<uint32_t*>(at);
  at += 4ull * sb.docs;
  mask = reinterpret_cast<uint8_t*>(at);
  at = AlignUp(at + sb.docs, 4096);
  uint64_t slots = cache_kib / 4;
  while (slots > 0 && at + BlockCache::BytesFor(static_cast<uint32_t>(slots)) > ram_end) {
    slots = slots > 64 ? slots - slots / 8 : slots - 1;
  }
  if (slots == 0 || slots > 0xffffffu) {
    err.Str("cache_kib=").Dec(cache_kib).Str(" does not fit the RAM (tables need ");
    err.Dec((at - region_start) >> 10).Str(" KiB above ").Hex(region_start).Str(")");
    return Fail(&err);
  }
  cache.Init(&blk, reinterpret_cast<uint8_t*>(at), static_cast<uint32_t>(slots));
  if (!LoadTables(&err)) return Fail(&err);
  NetStack* net = nullptr;
  if (!BringUpNet(devices, ip, &net, &err)) return Fail(&err);
  LineWriter()
      .Str("rehome-guest: search serving udp port=")
      .Dec(sp::kSearchPort)
      .Str(" docs=")
      .Dec(sb.docs)
      .Str(" terms=")
      .Dec(sb.terms)
      .Str(" blocks=")
      .Dec(sb.blocks)
      .Str(" cache_blocks=")
      .Dec(slots)
      .Flush();
  if (!net->UdpServe(sp::kSearchPort, Serve, nullptr, steps, &err)) return Fail(&err);
  PrintStats("done");
  return true;
}

}  // namespace rehome::guest
