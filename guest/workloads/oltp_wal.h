// guest/workloads/oltp_wal.h: the storage engine under the `oltp` workload
// (docs/oltp-format.md): a page cache in guest RAM over the database image on a virtio-blk
// disk, a redo write-ahead log with commit records, checkpoints, recovery at start, and the
// table of recent request ids and their recorded responses (exactly-once answers).
//
// Transactions: between Begin-less calls to Read/Write (every page touched is pinned until the
// transaction ends) and Commit, which appends one log entry (the after-images of every record
// written, the request id and the response), FLUSHes the disk when anything was written, and only
// then returns; Abandon ends a transaction that wrote nothing and is not recorded. Pages go home
// lazily (evictions of unpinned pages, which only ever hold committed data, with the dirty
// unpinned pages the clock reaches next written behind in the same batch) and at checkpoints,
// which the caller asks for between transactions (MaybeCheckpoint); both put io_depth() page
// writes in flight at once. An I/O error or an
// inconsistency sets fatal(): the caller stops serving. Not thread-safe: vCPU 0 only; one
// instance (its tables are static).
#ifndef REHOME_GUEST_WORKLOADS_OLTP_WAL_H_
#define REHOME_GUEST_WORKLOADS_OLTP_WAL_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_blk.h"
#include "guest/workloads/oltp_tables.h"

namespace rehome::guest::oltp {

struct RegionInfo {
  uint64_t start_page;
  uint64_t pages;
  uint32_t rec_size;
  uint32_t per_page;
  uint64_t capacity;
};

struct Layout {
  uint64_t total_pages;
  uint32_t warehouses, districts, customers_per_district, items, orders_cap;
  uint64_t wal_start_page, wal_bytes;
  RegionInfo region[kRegionCount];
};

struct Recorded {
  uint16_t status;
  uint16_t len;
  const uint8_t* body;
};

struct StoreStats {
  uint64_t recovered_entries = 0;  // log entries read at start (their ids are recorded)
  uint64_t replayed_entries = 0;   // ... of which had their redo applied
  uint64_t commits = 0;            // entries appended
  uint64_t flushes = 0;
  uint64_t checkpoints = 0;
  uint64_t page_reads = 0;
  uint64_t page_writes = 0;
};

class Store final {
 public:
  // Reads the superblock and the newest checkpoint slot from `blk`, replays the log (redo of the
  // entries at or after the checkpoint; the ids of those after the previous one) and checkpoints
  // when it replayed anything. `arena` (ArenaBytes(), page-aligned, identity-mapped RAM the
  // store owns from now on) holds the page cache and the recorded responses. False with a reason
  // in `err`.
  bool Open(VirtioBlk* blk, uint8_t* arena, LineWriter* err);
  static uint64_t ArenaBytes();
  const Layout& layout() const { return layout_; }
  const StoreStats& stats() const { return stats_; }
  bool fatal() const { return fatal_; }
  uint64_t next_lsn() const { return next_lsn_; }

  // The record `index` of `region`, pinned until the transaction ends. Never null: on an I/O
  // error or an index out of range it sets fatal() and returns a scratch record.
  const uint8_t* Read(Region region, uint64_t index);
  // The same, for writing: its after-image goes into this transaction's log entry.
  uint8_t* Write(Region region, uint64_t index);
  // Ends the transaction: logs it (kind, request id, status, response), flushes when it wrote
  // anything, records the response for `request_id`. False (and fatal()) on an I/O error.
  bool Commit(uint16_t kind, uint64_t request_id, uint16_t status, const uint8_t* resp,
              uint32_t resp_len);
  // Ends a transaction that wrote nothing, without a log entry.
  void Abandon();
  // The recorded response of `request_id`, if it is among the recent ones.
  bool Lookup(uint64_t request_id, Recorded* out) const;
  // Between transactions: checkpoints when the log since the last checkpoint is near half the
  // WAL region (so the entries since the previous checkpoint are never overwritten).
  bool MaybeCheckpoint();
  // Writes every dirty page home, flushes, writes the next checkpoint slot (ckpt = the log's
  // end, prev = the last ckpt), flushes.
  bool Checkpoint();
  // Page writes in flight at once (checkpoints, and write-behind with an eviction): 1 ..
  // the disk's max_batch(); 1 writes one page per request, as before io_depth existed.
  void set_io_depth(uint32_t depth) { io_depth_ = depth; }
  uint32_t io_depth() const { return io_depth_; }

 private:
  int32_t FindSlot(uint64_t page) const;
  int32_t GetPage(uint64_t page, bool pin);  // -1 on failure (fatal_ set)
  int32_t Victim();
  bool WriteHomeBatch(const int32_t* slot_list, uint32_t n);  // n any; io_depth_ per request group
  bool WriteHomeWithNeighbours(int32_t slot);
  uint64_t WalPosition(uint64_t lsn) const;
  uint64_t WalSector(uint64_t lsn) const;
  bool ReadEntry(uint64_t lsn, uint32_t* total, LineWriter* err);  // into log_buf; false = end
  void Remember(uint64_t request_id, uint16_t status, const uint8_t* body, uint32_t len);
  void EndTxn();
  uint8_t* Fail();

  VirtioBlk* blk_ = nullptr;
  Layout layout_{};
  StoreStats stats_{};
  bool fatal_ = false;
  uint64_t epoch_ = 1;  // pages pinned by the running transaction carry this
  uint64_t ck_seq_ = 0;
  uint64_t ckpt_lsn_ = 0;
  uint64_t prev_lsn_ = 0;
  uint64_t next_lsn_ = 0;
  uint32_t hand_ = 0;
  uint32_t id_hand_ = 0;
  uint32_t writes_ = 0;  // entries in the write set
  uint32_t io_depth_ = 1;
};

}  // namespace rehome::guest::oltp

#endif  // REHOME_GUEST_WORKLOADS_OLTP_WAL_H_
