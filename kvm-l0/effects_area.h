// kvm-l0/effects_area.h: the effects area of a verified replica L1 (verified execution,
// docs/failover.md): L0-owned shared memory, one per replica, where the replica leaves what one
// work item (an exit, a device notification, console input) would do to the world, instead of
// doing it: guest RAM writes (with their address), disk writes (with their offset) and flushes,
// interrupt edges, console bytes; plus the digest of its device state after the item. L0 compares
// the areas of the replicas and, once they agree, applies one copy itself. Nothing a replica
// writes here is trusted: L0 copies the area out, checks magic, version, lengths and CRC, and
// parses every entry with bounds (format in docs/exit-channel.md, "The effects area").
// Thread-safety: one writer (the replica's main thread, between taking an item and answering it)
// and one reader (L0, after the answer, while the replica waits for its next item). Move-only.
#ifndef REHOME_KVM_L0_EFFECTS_AREA_H_
#define REHOME_KVM_L0_EFFECTS_AREA_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

inline constexpr uint64_t kEffectsMagic = 0x3130544346454852ull;  // "RHEFCT01"
// 2: the network entries (6, 7); 3: kAvailWatch (8); 4: kAvailWatch's byte.
inline constexpr uint32_t kEffectsVersion = 4;
inline constexpr uint64_t kEffectsCapacity = 8u << 20;  // bytes of entries
inline constexpr uint64_t kEffectsDataOffset = 4096;

enum class EffectType : uint8_t {
  kRamWrite = 1,    // addr = guest-physical address; data = the bytes
  kDiskWrite = 2,   // addr = byte offset in the disk image; data = the bytes
  kDiskFlush = 3,   // no data
  kIrq = 4,         // addr = interrupt line (an edge: the line went up)
  kConsoleOut = 5,  // data = bytes for the console client
  kNetTx = 6,       // addr = transmit position (frames since boot); data = the Ethernet frame
  kNetRxDone = 7,   // addr = receive position: every received frame before it was delivered
  // addr = where a ready virtqueue's available index lives after the item (one entry per ready
  // queue, from the device state): L0 reads these words into the next item's
  // ExitRequest::avail_snapshot. data = 1 byte: 1 when the device takes the queue's buffers
  // unprompted (a request or transmit queue: L0's notification pump watches the word), 0 for a
  // receive queue (absent: taken as 1). Nothing to apply.
  kAvailWatch = 8,
};

struct EffectsHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t flags;  // bit 0 (kEffectsMore): the device has more pending work than this item took
  uint64_t capacity;
  uint64_t seq;          // the work item these effects belong to
  uint64_t length;       // bytes of entries in use
  uint32_t entries_crc;  // zlib crc32 of entries [0, length)
  uint32_t state_crc;    // zlib crc32 of the commit record the replica committed after the item
  uint64_t entry_count;
};
static_assert(sizeof(EffectsHeader) <= kEffectsDataOffset);
inline constexpr uint32_t kEffectsMore = 1;

// One entry as encoded: a 16-byte head, then `len` data bytes, padded to 8.
struct EffectEntryHead {
  uint8_t type;
  uint8_t reserved[3];
  uint32_t len;
  uint64_t addr;
};
static_assert(sizeof(EffectEntryHead) == 16);

// A parsed entry; `data` points into the Effects' own copy.
struct Effect {
  EffectType type;
  uint64_t addr = 0;
  std::span<const uint8_t> data;
};

// One replica's effects for one item, copied out of its area and checked.
struct Effects {
  Effects() = default;
  Effects(Effects&&) = default;
  Effects& operator=(Effects&&) = default;
  Effects(const Effects&) = delete;  // `entries` point into `bytes`
  Effects& operator=(const Effects&) = delete;
  uint64_t seq = 0;
  uint32_t flags = 0;
  uint32_t state_crc = 0;
  uint32_t entries_crc = 0;    // as the header said, checked against `bytes`
  std::vector<uint8_t> bytes;  // the encoded entries (compared between replicas)
  std::vector<Effect> entries;
  // Entries compare equal (same bytes, so same order, addresses and data), and the states.
  bool SameAs(const Effects& other) const {
    return flags == other.flags && state_crc == other.state_crc && bytes == other.bytes;
  }
};

// Appends one entry to an encoding (the replica side builds `entries` this way).
void AppendEffect(std::vector<uint8_t>* entries, EffectType type, uint64_t addr,
                  std::span<const uint8_t> data);

class EffectsArea final {
 public:
  EffectsArea() = default;
  EffectsArea(EffectsArea&&) = default;
  EffectsArea& operator=(EffectsArea&&) = default;

  // L0: a new area in a sealed-size memfd.
  static absl::StatusOr<EffectsArea> Create();
  // The replica: maps an inherited area (takes ownership of `memfd`); InvalidArgument for a
  // wrong size, magic, version or capacity.
  static absl::StatusOr<EffectsArea> Attach(int memfd);
  int memfd() const { return memfd_.get(); }

  // The replica: publishes `entries` (AppendEffect's encoding) as item `seq`'s effects.
  // ResourceExhausted when they exceed the capacity.
  absl::Status Write(uint64_t seq, uint32_t flags, uint32_t state_crc,
                     std::span<const uint8_t> entries);

  // L0: copies item `seq`'s effects out and checks them. InvalidArgument (the replica wrote
  // something impossible) for a wrong magic, version, seq or capacity, a length over the
  // capacity, a CRC mismatch, an entry of unknown type, an entry running past the end, or a
  // count that does not match. `checked`: another replica's effects of the same item, already
  // copied out and checked: when these entries are the same bytes under the same CRC, the CRC
  // is not computed again (the same bytes pass or fail it alike; agreeing replicas' entries are
  // identical, and the read data in them is kilobytes).
  absl::StatusOr<Effects> CopyOut(uint64_t seq, const Effects* checked = nullptr) const;

 private:
  EffectsHeader* header() const { return reinterpret_cast<EffectsHeader*>(mapping_.bytes()); }
  uint8_t* data() const { return mapping_.bytes() + kEffectsDataOffset; }

  UniqueFd memfd_;
  MappedRegion mapping_;
};

// Parses encoded entries (pure; also used by tests and fuzzing). InvalidArgument as CopyOut.
absl::StatusOr<std::vector<Effect>> ParseEffects(std::span<const uint8_t> bytes,
                                                 uint64_t expected_count);

}  // namespace rehome

#endif  // REHOME_KVM_L0_EFFECTS_AREA_H_
