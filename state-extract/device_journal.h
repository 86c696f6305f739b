// state-extract/device_journal.h: the L0-owned, double-buffered commit area in which the active
// L1 publishes its committed hypervisor state (device model state plus the last answer it gave
// each vCPU), so that a standby continues from the last commit (docs/exit-channel.md, section
// "Commit journal"). Layout of the memfd: a 64-byte header {magic "RHJRNL01", version, buffer
// capacity, current buffer index (atomic), commit count (atomic)} followed by two buffers, each
// {payload length u32, CRC32 u32, commit number u64, payload}. A commit writes the buffer that
// is NOT current, then publishes it by storing the index (release). A writer killed mid-commit
// leaves the current buffer intact; a torn or forged buffer fails its CRC and is refused.
//
// Thread-safety: one writer (the active L1) at a time, which fencing guarantees; readers
// (a promoted standby, L0) read after the writer is fenced or from the writer's own thread.
#ifndef REHOME_STATE_EXTRACT_DEVICE_JOURNAL_H_
#define REHOME_STATE_EXTRACT_DEVICE_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

inline constexpr uint64_t kJournalMagic = 0x31304c4e524a4852ull;  // "RHJRNL01"
inline constexpr uint32_t kJournalVersion = 1;

class DeviceJournal final {
 public:
  struct Header {
    uint64_t magic;
    uint32_t version;
    uint32_t reserved;
    uint64_t capacity;              // payload bytes per buffer
    std::atomic<uint32_t> current;  // 0 or 1: the committed buffer
    uint32_t pad;
    std::atomic<uint64_t> commits;  // number of commits so far (0 = nothing committed)
    uint64_t pad2[3];
  };
  static_assert(sizeof(Header) == 64);

  // L0: a new journal whose buffers hold `capacity` payload bytes each.
  static absl::StatusOr<DeviceJournal> Create(uint64_t capacity);
  // L1: maps an inherited journal memfd (takes ownership of `memfd`).
  static absl::StatusOr<DeviceJournal> Attach(int memfd);
  // Maps a journal that lies at `offset` of `fd` in at most `size` bytes (a nested-mode agent
  // reaches it through /dev/mem). Takes ownership of `fd`. InvalidArgument when the header is
  // not a journal's or the journal needs more than `size` bytes.
  static absl::StatusOr<DeviceJournal> AttachAt(int fd, uint64_t offset, uint64_t size);
  // The bytes a journal of `capacity` occupies (header and both buffers).
  static uint64_t SizeFor(uint64_t capacity);
  // The largest capacity that fits in `bytes`.
  static uint64_t CapacityFor(uint64_t bytes);
  DeviceJournal(DeviceJournal&&) = default;
  DeviceJournal& operator=(DeviceJournal&&) = default;
  DeviceJournal(const DeviceJournal&) = delete;
  DeviceJournal& operator=(const DeviceJournal&) = delete;

  // Publishes `payload` as the new committed state. ResourceExhausted when it does not fit.
  absl::Status Commit(std::span<const uint8_t> payload);
  // The committed payload; NotFound when nothing was committed yet; DataLoss when the current
  // buffer fails its checksum.
  absl::StatusOr<std::string> ReadCommitted() const;
  // Verified execution: the payload, in either buffer, whose zlib crc32 (of the payload alone)
  // is `payload_crc` — the state the replicas agreed on, found in a replica's journal whatever
  // it committed since (the previous buffer holds the state before its last commit). The check
  // is L0's own: nothing the L1 wrote is trusted. nullopt when neither buffer holds it.
  std::optional<std::string> FindPayload(uint32_t payload_crc) const;
  uint64_t commits() const { return header_->commits.load(std::memory_order_acquire); }
  uint64_t capacity() const { return capacity_; }
  int memfd() const { return memfd_.get(); }

  // For tests of torn writes and hostile writers: the bytes of buffer `index` (0 or 1), header
  // included, and the shared header itself.
  std::span<uint8_t> RawBuffer(int index) const;
  Header& RawHeader() const { return *header_; }

 private:
  DeviceJournal() = default;
  uint8_t* Buffer(uint32_t index) const;

  UniqueFd memfd_;
  MappedRegion mapping_;
  Header* header_ = nullptr;
  // Our own copy: the header is writable by every L1, so L0 never trusts its capacity field.
  uint64_t capacity_ = 0;
};

}  // namespace rehome

#endif  // REHOME_STATE_EXTRACT_DEVICE_JOURNAL_H_
