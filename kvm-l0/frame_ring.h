// kvm-l0/frame_ring.h: a ring of network frames in L0-owned shared memory (a sealed memfd), one
// writer and one reader, each possibly in another process. virtio-net uses two per VM: the
// receive ring (L0 writes the frames it reads from the tap, the active L1 reads them into the
// guest) and the transmit ring (the active L1 writes the guest's frames, L0 writes them to the
// tap). Positions are absolute frame counts since boot and map to slot `pos % kFrameRingSlots`.
// The writer fills slots at its produce position and later publishes a position (frames
// [0, published) may be read); the reader reads at its own position and later marks frames
// [0, consumed) done, which frees their slots. Each side of L0 validates what the L1 side wrote
// (CheckedPublished, CheckedConsumed, frame lengths); layout and the exactly-once argument are in
// docs/exit-channel.md and docs/failover.md. L0 keeps its own copy of the positions it owns and
// never trusts the shared ones.
// Thread-safety: one writer thread and one reader thread; each side calls only its own methods
// (the const accessors from either). Move-only; the mapping and fd are owned.
#ifndef REHOME_KVM_L0_FRAME_RING_H_
#define REHOME_KVM_L0_FRAME_RING_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

inline constexpr uint64_t kFrameRingMagic = 0x31454d4152464852ull;  // "RHFRAME1"
inline constexpr uint32_t kFrameRingVersion = 1;
inline constexpr uint32_t kFrameRingSlots = 512;       // a power of two
inline constexpr uint32_t kFrameRingSlotBytes = 2048;  // 8-byte slot header + frame
// The largest frame: an Ethernet frame without FCS, with one VLAN tag (1500 + 14 + 4).
inline constexpr uint32_t kFrameMaxBytes = 1518;
inline constexpr uint32_t kFrameRingDataOffset = 4096;

struct FrameRingHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t slots;
  uint32_t slot_bytes;
  uint32_t max_frame;
  alignas(64) std::atomic<uint64_t> published;  // written by the writer (release)
  alignas(64) std::atomic<uint64_t> consumed;   // written by the reader (release)
};
static_assert(sizeof(FrameRingHeader) <= kFrameRingDataOffset);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

class FrameRing final {
 public:
  FrameRing() = default;
  FrameRing(FrameRing&&) = default;
  FrameRing& operator=(FrameRing&&) = default;

  // L0: a new ring in a sealed-size memfd named `name`, both positions 0.
  static absl::StatusOr<FrameRing> Create(const char* name);
  // L1: maps an inherited ring (takes ownership of `memfd`); InvalidArgument for a wrong size,
  // magic, version or geometry.
  static absl::StatusOr<FrameRing> Attach(int memfd);

  int memfd() const { return memfd_.get(); }
  bool valid() const { return mapping_.valid(); }

  // ---- the writer ----
  // Slots free for a frame at `pos` given the reader's position `consumed`:
  // kFrameRingSlots - (pos - consumed), 0 when full.
  static uint64_t FreeAt(uint64_t pos, uint64_t consumed);
  uint64_t FreeAt(uint64_t pos) const { return FreeAt(pos, consumed()); }
  // Copies `frame` (1..kFrameMaxBytes bytes) into the slot of `pos`. False, writing nothing,
  // for a frame of another size or when the slot still holds an unconsumed frame (judged by
  // `consumed`: L0 passes the position it validated, an L1 the ring's).
  bool WriteAt(uint64_t pos, std::span<const uint8_t> frame, uint64_t consumed);
  bool WriteAt(uint64_t pos, std::span<const uint8_t> frame) {
    return WriteAt(pos, frame, consumed());
  }
  // Makes frames [.., pos) readable. Never moves backwards (the L1's side).
  void Publish(uint64_t pos);

  // ---- the reader ----
  // Copies the frame at `pos` into `out` (at least kFrameMaxBytes bytes; the slot is read once)
  // and returns its length; nullopt when `pos` is not published yet (judged by `published`, or
  // the ring's). 0 for a slot whose length is impossible (0 or over kFrameMaxBytes): the reader
  // skips it.
  std::optional<size_t> ReadAt(uint64_t pos, std::span<uint8_t> out, uint64_t published) const;
  std::optional<size_t> ReadAt(uint64_t pos, std::span<uint8_t> out) const {
    return ReadAt(pos, out, this->published());
  }
  // Marks frames [.., pos) done; their slots may be reused. Never moves backwards (the L1's
  // side).
  void SetConsumed(uint64_t pos);

  // ---- a position's only legitimate writer ----
  // Stores the position outright (also backwards), repairing whatever another process wrote
  // there: L0 for the positions it owns (receive ring: published; transmit ring: consumed), the
  // active L1 for its committed ones.
  void StorePublished(uint64_t pos) { header()->published.store(pos, std::memory_order_release); }
  void StoreConsumed(uint64_t pos) { header()->consumed.store(pos, std::memory_order_release); }
  // As the reader of the transmit ring, where L0 has sent frames [0, consumed): the published
  // position if it is possible (in [consumed, consumed + kFrameRingSlots]). Otherwise DataLoss,
  // and `published` is reset to `consumed` so that a later valid Publish (the successor L1's) is
  // taken.
  absl::StatusOr<uint64_t> CheckedPublished(uint64_t consumed);
  // As the writer of the receive ring, where L0 has published frames [0, published): the
  // consumed position if it lies in [floor, published] (`floor`: the last one L0 accepted);
  // otherwise OutOfRange and nothing changes.
  absl::StatusOr<uint64_t> CheckedConsumed(uint64_t floor, uint64_t published) const;

  uint64_t published() const { return header()->published.load(std::memory_order_acquire); }
  uint64_t consumed() const { return header()->consumed.load(std::memory_order_acquire); }

 private:
  FrameRingHeader* header() const { return reinterpret_cast<FrameRingHeader*>(mapping_.bytes()); }
  uint8_t* slot(uint64_t pos) const {
    return mapping_.bytes() + kFrameRingDataOffset + (pos % kFrameRingSlots) * kFrameRingSlotBytes;
  }

  UniqueFd memfd_;
  MappedRegion mapping_;
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_FRAME_RING_H_
