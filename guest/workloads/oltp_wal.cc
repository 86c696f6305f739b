// guest/workloads/oltp_wal.cc: page cache, write-ahead log, checkpoints and recovery of the
// `oltp` workload (see oltp_wal.h and docs/oltp-format.md). CPL3, vCPU 0 only.
#include "guest/workloads/oltp_wal.h"

#include "guest/workloads/block_pattern.h"

namespace rehome::guest::oltp {
namespace {

constexpr uint32_t kCachePages = 1024;  // 4 MiB
constexpr uint32_t kCacheBuckets = 2048;
constexpr uint32_t kMaxWrites = 256;  // records written by one transaction (Delivery: 190)
constexpr uint32_t kIdSlots = 8192;   // recent request ids remembered
constexpr uint32_t kIdBuckets = 16384;
constexpr uint32_t kWriteBehindScan = 64;  // slots past a dirty victim looked at for write-behind

struct Slot {
  uint64_t page;
  uint64_t pin_epoch;  // == epoch_: pinned by the running transaction
  int32_t next;        // hash chain: slot index + 1, 0 = end
  uint8_t valid, dirty, ref;
};

struct WriteRef {
  int32_t slot;
  uint16_t offset;
  uint16_t len;
};

struct IdEntry {
  uint64_t id;
  int32_t next;  // hash chain: entry index + 1, 0 = end
  uint16_t status, len;
  uint8_t valid;
};

uint8_t (*cache)[kPage];  // kCachePages pages in the arena
Slot slots[kCachePages];
int32_t buckets[kCacheBuckets];  // slot index + 1, 0 = empty
WriteRef write_set[kMaxWrites];
alignas(4096) uint8_t log_buf[kWalMaxEntry];
alignas(4096) uint8_t sector_buf[kSector];
alignas(64) uint8_t scratch[kPage];
IdEntry ids[kIdSlots];
uint8_t (*id_body)[kMaxResponse];  // kIdSlots bodies in the arena, after the cache
int32_t id_buckets[kIdBuckets];

uint32_t PageBucket(uint64_t page) { return static_cast<uint32_t>(page % kCacheBuckets); }
uint32_t IdBucket(uint64_t id) {
  return static_cast<uint32_t>(blockpattern::Mix64(id) % kIdBuckets);
}
uint64_t RoundSector(uint64_t n) { return (n + kSector - 1) / kSector * kSector; }
uint32_t Pad4(uint32_t n) { return (n + 3) & ~3u; }

}  // namespace

uint64_t Store::ArenaBytes() {
  return uint64_t{kCachePages} * kPage + uint64_t{kIdSlots} * kMaxResponse;
}

uint8_t* Store::Fail() {
  fatal_ = true;
  return scratch;
}

int32_t Store::FindSlot(uint64_t page) const {
  for (int32_t s = buckets[PageBucket(page)]; s != 0; s = slots[s - 1].next) {
    if (slots[s - 1].page == page) return s - 1;
  }
  return -1;
}

bool Store::WriteHomeBatch(const int32_t* slot_list, uint32_t n) {
  BlkWrite writes[kBlkMaxBatch];
  while (n != 0) {
    const uint32_t k = n < kBlkMaxBatch ? n : kBlkMaxBatch;
    for (uint32_t i = 0; i < k; ++i) {
      writes[i] = {slots[slot_list[i]].page * kSectorsPerPage, cache[slot_list[i]], kPage};
    }
    LineWriter err;
    err.Str("rehome-guest: oltp: page write: ");
    if (!(k == 1 ? blk_->Write(writes[0].sector, writes[0].buf, kPage, &err)
                 : blk_->WriteBatch(writes, k, &err))) {
      err.Flush();
      fatal_ = true;
      return false;
    }
    for (uint32_t i = 0; i < k; ++i) slots[slot_list[i]].dirty = 0;
    stats_.page_writes += k;
    slot_list += k;
    n -= k;
  }
  return true;
}

// Write-behind: the dirty victim `slot` goes home together with up to io_depth_ - 1 more dirty,
// unpinned pages that the clock hand reaches next (they stay cached, now clean), so a run of
// evictions costs one batched request instead of one request per page.
bool Store::WriteHomeWithNeighbours(int32_t slot) {
  int32_t batch[kBlkMaxBatch];
  uint32_t n = 0;
  batch[n++] = slot;
  for (uint32_t step = 1; step < kWriteBehindScan && n < io_depth_; ++step) {
    const int32_t s = static_cast<int32_t>((static_cast<uint32_t>(slot) + step) % kCachePages);
    const Slot& sl = slots[s];
    if (sl.valid && sl.dirty && sl.pin_epoch != epoch_) batch[n++] = s;
  }
  return WriteHomeBatch(batch, n);
}

// Clock: the first slot that is free, or unpinned with its reference bit clear (dirty pages are
// written home first: they hold committed data only, the running transaction's pages are pinned).
int32_t Store::Victim() {
  for (uint32_t tries = 0; tries < 3 * kCachePages; ++tries) {
    const int32_t s = static_cast<int32_t>(hand_);
    hand_ = (hand_ + 1) % kCachePages;
    Slot& sl = slots[s];
    if (!sl.valid) return s;
    if (sl.pin_epoch == epoch_) continue;
    if (sl.ref) {
      sl.ref = 0;
      continue;
    }
    if (sl.dirty && !WriteHomeWithNeighbours(s)) return -1;
    int32_t* link = &buckets[PageBucket(sl.page)];
    while (*link != s + 1) link = &slots[*link - 1].next;
    *link = sl.next;
    sl.valid = 0;
    return s;
  }
  LineWriter().Str("rehome-guest: oltp: page cache full of pinned pages").Flush();
  fatal_ = true;
  return -1;
}

int32_t Store::GetPage(uint64_t page, bool pin) {
  if (page >= layout_.total_pages) {
    LineWriter().Str("rehome-guest: oltp: page out of range ").Dec(page).Flush();
    fatal_ = true;
    return -1;
  }
  int32_t s = FindSlot(page);
  if (s < 0) {
    s = Victim();
    if (s < 0) return -1;
    LineWriter err;
    err.Str("rehome-guest: oltp: page read: ");
    if (!blk_->Read(page * kSectorsPerPage, cache[s], kPage, &err)) {
      err.Flush();
      fatal_ = true;
      return -1;
    }
    ++stats_.page_reads;
    Slot& sl = slots[s];
    sl.page = page;
    sl.valid = 1;
    sl.dirty = 0;
    sl.next = buckets[PageBucket(page)];
    buckets[PageBucket(page)] = s + 1;
  }
  slots[s].ref = 1;
  if (pin) slots[s].pin_epoch = epoch_;
  return s;
}

const uint8_t* Store::Read(Region region, uint64_t index) {
  const RegionInfo& r = layout_.region[region];
  if (fatal_ || index >= r.capacity) return Fail();
  const int32_t s = GetPage(r.start_page + index / r.per_page, true);
  if (s < 0) return Fail();
  return cache[s] + (index % r.per_page) * r.rec_size;
}

uint8_t* Store::Write(Region region, uint64_t index) {
  const RegionInfo& r = layout_.region[region];
  if (fatal_ || index >= r.capacity) return Fail();
  const int32_t s = GetPage(r.start_page + index / r.per_page, true);
  if (s < 0) return Fail();
  const uint16_t offset = static_cast<uint16_t>((index % r.per_page) * r.rec_size);
  slots[s].dirty = 1;
  bool known = false;
  for (uint32_t i = 0; i < writes_ && !known; ++i) {
    known = write_set[i].slot == s && write_set[i].offset == offset;
  }
  if (!known) {
    if (writes_ == kMaxWrites) return Fail();
    write_set[writes_++] = {s, offset, static_cast<uint16_t>(r.rec_size)};
  }
  return cache[s] + offset;
}

void Store::EndTxn() {
  ++epoch_;
  writes_ = 0;
}

void Store::Abandon() {
  if (writes_ != 0) {  // a caller bug: its changes cannot be undone
    LineWriter().Str("rehome-guest: oltp: abandoned a transaction that wrote").Flush();
    fatal_ = true;
  }
  EndTxn();
}

uint64_t Store::WalPosition(uint64_t lsn) const {
  const uint64_t in_lap = lsn % layout_.wal_bytes;
  if (layout_.wal_bytes - in_lap < kWalMaxEntry) lsn += layout_.wal_bytes - in_lap;
  return lsn;
}

uint64_t Store::WalSector(uint64_t lsn) const {
  return layout_.wal_start_page * kSectorsPerPage + (lsn % layout_.wal_bytes) / kSector;
}

void Store::Remember(uint64_t request_id, uint16_t status, const uint8_t* body, uint32_t len) {
  if (len > kMaxResponse) len = kMaxResponse;
  const uint32_t e = id_hand_;
  id_hand_ = (id_hand_ + 1) % kIdSlots;
  IdEntry& old = ids[e];
  if (old.valid) {
    int32_t* link = &id_buckets[IdBucket(old.id)];
    while (*link != 0 && *link != static_cast<int32_t>(e) + 1) link = &ids[*link - 1].next;
    if (*link != 0) *link = old.next;
  }
  ids[e] = {request_id, id_buckets[IdBucket(request_id)], status, static_cast<uint16_t>(len), 1};
  id_buckets[IdBucket(request_id)] = static_cast<int32_t>(e) + 1;
  memcpy(id_body[e], body, len);
}

bool Store::Lookup(uint64_t request_id, Recorded* out) const {
  for (int32_t e = id_buckets[IdBucket(request_id)]; e != 0; e = ids[e - 1].next) {
    const IdEntry& en = ids[e - 1];
    if (en.id == request_id) {
      *out = {en.status, en.len, id_body[e - 1]};
      return true;
    }
  }
  return false;
}

bool Store::Commit(uint16_t kind, uint64_t request_id, uint16_t status, const uint8_t* resp,
                   uint32_t resp_len) {
  if (fatal_) return false;
  if (resp_len > kMaxResponse) resp_len = kMaxResponse;
  const uint64_t lsn = WalPosition(next_lsn_);
  uint8_t* e = log_buf;
  uint32_t off = wal::kHeaderSize + Pad4(resp_len);
  memset(e, 0, off);
  memcpy(e + wal::kHeaderSize, resp, resp_len);
  for (uint32_t i = 0; i < writes_; ++i) {
    const WriteRef& w = write_set[i];
    const uint32_t need = wal::kRedoHeader + Pad4(w.len);
    if (off + need > kWalMaxEntry) {
      LineWriter().Str("rehome-guest: oltp: log entry too large").Flush();
      fatal_ = true;
      return false;
    }
    St32(e + off, static_cast<uint32_t>(slots[w.slot].page));
    St16(e + off + 4, w.offset);
    St16(e + off + 6, w.len);
    memset(e + off + 8, 0, Pad4(w.len));
    memcpy(e + off + 8, cache[w.slot] + w.offset, w.len);
    off += need;
  }
  St32(e + wal::kMagic, kWalMagic);
  St16(e + wal::kVersion, kWalVersion);
  St16(e + wal::kKind, kind);
  St64(e + wal::kLsn, lsn);
  St64(e + wal::kRequestId, request_id);
  St32(e + wal::kTotalLen, off);
  St16(e + wal::kStatus, status);
  St16(e + wal::kRespLen, static_cast<uint16_t>(resp_len));
  St32(e + wal::kRedoCount, writes_);
  St32(e + wal::kCrc, blockpattern::Crc32(e, off));
  const uint32_t padded = static_cast<uint32_t>(RoundSector(off));
  memset(e + off, 0, padded - off);
  LineWriter err;
  err.Str("rehome-guest: oltp: log write: ");
  if (!blk_->Write(WalSector(lsn), e, padded, &err) || (writes_ != 0 && !blk_->Flush(&err))) {
    err.Flush();
    fatal_ = true;
    return false;
  }
  if (writes_ != 0) ++stats_.flushes;
  ++stats_.commits;
  next_lsn_ = lsn + padded;
  Remember(request_id, status, resp, resp_len);
  EndTxn();
  return true;
}

bool Store::Checkpoint() {
  if (fatal_) return false;
  // Every dirty page, io_depth_ writes in flight at a time.
  int32_t batch[kBlkMaxBatch];
  uint32_t n = 0;
  for (uint32_t s = 0; s < kCachePages; ++s) {
    if (!slots[s].valid || !slots[s].dirty) continue;
    batch[n++] = static_cast<int32_t>(s);
    if (n == io_depth_) {
      if (!WriteHomeBatch(batch, n)) return false;
      n = 0;
    }
  }
  if (n != 0 && !WriteHomeBatch(batch, n)) return false;
  LineWriter err;
  err.Str("rehome-guest: oltp: checkpoint: ");
  if (!blk_->Flush(&err)) {
    err.Flush();
    fatal_ = true;
    return false;
  }
  const uint64_t seq = ck_seq_ + 1;
  memset(sector_buf, 0, kSector);
  St32(sector_buf + ck::kMagic, kCkMagic);
  St32(sector_buf + ck::kVersion, kCkVersion);
  St64(sector_buf + ck::kSeq, seq);
  St64(sector_buf + ck::kCkptLsn, next_lsn_);
  St64(sector_buf + ck::kPrevLsn, ckpt_lsn_);
  St32(sector_buf + ck::kCrc, blockpattern::Crc32(sector_buf, ck::kCrc));
  if (!blk_->Write(kCkSlotPage[seq % 2] * kSectorsPerPage, sector_buf, kSector, &err) ||
      !blk_->Flush(&err)) {
    err.Flush();
    fatal_ = true;
    return false;
  }
  ck_seq_ = seq;
  prev_lsn_ = ckpt_lsn_;
  ckpt_lsn_ = next_lsn_;
  ++stats_.checkpoints;
  stats_.flushes += 2;
  return true;
}

bool Store::MaybeCheckpoint() {
  if (next_lsn_ - ckpt_lsn_ + 2 * kWalMaxEntry <= layout_.wal_bytes / 2) return !fatal_;
  return Checkpoint();
}

// Reads the entry at `lsn` into log_buf and checks it; false where the log ends.
bool Store::ReadEntry(uint64_t lsn, uint32_t* total, LineWriter* err) {
  if (!blk_->Read(WalSector(lsn), log_buf, kSector, err)) {
    fatal_ = true;
    return false;
  }
  const uint8_t* e = log_buf;
  const uint32_t len = Ld32(e + wal::kTotalLen);
  if (Ld32(e + wal::kMagic) != kWalMagic || Ld16(e + wal::kVersion) != kWalVersion ||
      Ld64(e + wal::kLsn) != lsn || len < wal::kHeaderSize || len > kWalMaxEntry ||
      wal::kHeaderSize + Ld16(e + wal::kRespLen) > len) {
    return false;
  }
  const uint32_t padded = static_cast<uint32_t>(RoundSector(len));
  if (padded > kSector &&
      !blk_->Read(WalSector(lsn) + 1, log_buf + kSector, padded - kSector, err)) {
    fatal_ = true;
    return false;
  }
  const uint32_t crc = Ld32(log_buf + wal::kCrc);
  St32(log_buf + wal::kCrc, 0);
  if (blockpattern::Crc32(log_buf, len) != crc) return false;
  *total = len;
  return true;
}

bool Store::Open(VirtioBlk* blk, uint8_t* arena, LineWriter* err) {
  blk_ = blk;
  epoch_ = 1;
  cache = reinterpret_cast<uint8_t(*)[kPage]>(arena);
  id_body = reinterpret_cast<uint8_t(*)[kMaxResponse]>(arena + uint64_t{kCachePages} * kPage);
  if (!blk_->Read(0, log_buf, kSector, err)) return false;
  const uint8_t* s = log_buf;
  if (Ld32(s + sb::kMagic) != kSbMagic || Ld32(s + sb::kVersion) != kSbVersion ||
      Ld32(s + sb::kCrc) != blockpattern::Crc32(s, sb::kCrc)) {
    err->Str("no oltp database on the disk (bad superblock magic, version or CRC)");
    return false;
  }
  Layout& l = layout_;
  l.total_pages = Ld64(s + sb::kTotalPages);
  l.warehouses = Ld32(s + sb::kWarehouses);
  l.districts = Ld32(s + sb::kDistricts);
  l.customers_per_district = Ld32(s + sb::kCustomersPerDistrict);
  l.items = Ld32(s + sb::kItems);
  l.orders_cap = Ld32(s + sb::kOrdersCap);
  l.wal_start_page = Ld64(s + sb::kWalStartPage);
  l.wal_bytes = Ld64(s + sb::kWalPages) * kPage;
  bool ok = Ld32(s + sb::kPageSize) == kPage && Ld32(s + sb::kRegionCount) == kRegionCount &&
            l.warehouses == 1 && l.districts >= 1 && l.districts <= 10 &&
            l.customers_per_district >= 1 && l.customers_per_district <= 3000 && l.items >= 1 &&
            l.wal_bytes >= 8 * kWalMaxEntry &&
            l.total_pages <= blk_->capacity_sectors() / kSectorsPerPage &&
            l.wal_start_page + l.wal_bytes / kPage <= l.total_pages;
  for (uint32_t i = 0; ok && i < kRegionCount; ++i) {
    const uint8_t* r = s + sb::kRegions + i * sb::kRegionSize;
    RegionInfo& ri = l.region[i];
    ri = {Ld64(r), Ld64(r + 8), Ld32(r + 16), Ld32(r + 20), Ld64(r + 24)};
    ok = ri.rec_size == kRecordSize[i] && ri.per_page == kPage / ri.rec_size &&
         ri.pages == (ri.capacity + ri.per_page - 1) / ri.per_page &&
         ri.start_page + ri.pages <= l.total_pages;
  }
  ok = ok && l.region[kCustomer].capacity >= uint64_t{l.districts} * l.customers_per_district &&
       l.region[kNameIndex].capacity >= uint64_t{l.districts} * l.customers_per_district &&
       l.region[kOrder].capacity >= uint64_t{l.districts} * l.orders_cap &&
       l.region[kNewOrder].capacity >= uint64_t{l.districts} * l.orders_cap &&
       l.region[kOrderLine].capacity >= uint64_t{l.districts} * l.orders_cap * kMaxOrderLines &&
       l.region[kItem].capacity >= l.items && l.region[kStock].capacity >= l.items &&
       l.region[kDistrict].capacity >= l.districts && l.region[kWarehouse].capacity >= 1;
  if (!ok) {
    err->Str("unsupported oltp database layout (or the disk is smaller than it)");
    return false;
  }
  // The newest valid checkpoint slot.
  bool found = false;
  for (uint32_t i = 0; i < 2; ++i) {
    if (!blk_->Read(kCkSlotPage[i] * kSectorsPerPage, sector_buf, kSector, err)) return false;
    const uint8_t* c = sector_buf;
    if (Ld32(c + ck::kMagic) != kCkMagic || Ld32(c + ck::kVersion) != kCkVersion ||
        Ld32(c + ck::kCrc) != blockpattern::Crc32(c, ck::kCrc)) {
      continue;
    }
    if (!found || Ld64(c + ck::kSeq) > ck_seq_) {
      found = true;
      ck_seq_ = Ld64(c + ck::kSeq);
      ckpt_lsn_ = Ld64(c + ck::kCkptLsn);
      prev_lsn_ = Ld64(c + ck::kPrevLsn);
    }
  }
  if (!found) {
    err->Str("no valid checkpoint slot");
    return false;
  }
  // Replay: ids from prev_lsn on, redo from ckpt_lsn on.
  uint64_t lsn = prev_lsn_;
  bool restarted = false;
  for (;;) {
    lsn = WalPosition(lsn);
    uint32_t total = 0;
    if (!ReadEntry(lsn, &total, err)) {
      if (fatal_) return false;
      if (lsn < ckpt_lsn_ && !restarted) {
        lsn = ckpt_lsn_;
        restarted = true;
        continue;
      }
      break;
    }
    const uint8_t* e = log_buf;
    const uint32_t resp_len = Ld16(e + wal::kRespLen);
    ++stats_.recovered_entries;
    if (lsn >= ckpt_lsn_) {
      ++stats_.replayed_entries;
      uint32_t off = wal::kHeaderSize + Pad4(resp_len);
      const uint32_t n = Ld32(e + wal::kRedoCount);
      for (uint32_t i = 0; i < n; ++i) {
        if (off + wal::kRedoHeader > total) break;
        const uint64_t page = Ld32(e + off);
        const uint32_t poff = Ld16(e + off + 4), len = Ld16(e + off + 6);
        off += wal::kRedoHeader;
        if (off + len > total || poff + len > kPage) break;
        const int32_t slot = GetPage(page, false);
        if (slot < 0) return false;
        memcpy(cache[slot] + poff, e + off, len);
        slots[slot].dirty = 1;
        off += Pad4(len);
      }
    }
    Remember(Ld64(e + wal::kRequestId), Ld16(e + wal::kStatus), e + wal::kHeaderSize, resp_len);
    lsn += RoundSector(total);
  }
  next_lsn_ = lsn > ckpt_lsn_ ? lsn : ckpt_lsn_;
  if (stats_.replayed_entries != 0 && !Checkpoint()) return false;
  return !fatal_;
}

}  // namespace rehome::guest::oltp
