// kvm-l0/console_tx_ring.h: the virtio-console transmit ring, L0-owned shared memory through
// which the active L1 hands the guest's console output to L0 (which owns the console socket)
// without an exit in the loop. Byte positions are absolute (bytes since boot); the L1 writes
// guest bytes at its produce position and, once the device state holding them is committed,
// publishes that position; L0 takes [consumed, published) and advances `consumed`. Bytes written
// but not published belong to an uncommitted execution: a new active L1 rewrites the same
// positions from the committed position. Layout, ordering and validation in docs/exit-channel.md.
// Thread-safety: one writer (the active L1's main thread) and one reader (L0's drain thread);
// each side calls only its own methods. Move-only; the mapping and fd are owned.
#ifndef REHOME_KVM_L0_CONSOLE_TX_RING_H_
#define REHOME_KVM_L0_CONSOLE_TX_RING_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

inline constexpr uint64_t kConsoleTxRingMagic = 0x3130525854434852ull;  // "RHCTXR01"
inline constexpr uint32_t kConsoleTxRingVersion = 1;
inline constexpr uint32_t kConsoleTxRingCapacity = 1u << 20;
inline constexpr uint32_t kConsoleTxRingDataOffset = 4096;

struct ConsoleTxRingHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t capacity;                            // bytes of data, a power of two
  alignas(64) std::atomic<uint64_t> published;  // written by the L1 (release)
  alignas(64) std::atomic<uint64_t> consumed;   // written by L0 (release)
};
static_assert(sizeof(ConsoleTxRingHeader) <= kConsoleTxRingDataOffset);

class ConsoleTxRing final {
 public:
  ConsoleTxRing() = default;
  ConsoleTxRing(ConsoleTxRing&& other) noexcept
      : memfd_(std::move(other.memfd_)),
        mapping_(std::move(other.mapping_)),
        taken_(other.taken_.load()) {}
  ConsoleTxRing& operator=(ConsoleTxRing&& other) noexcept {
    memfd_ = std::move(other.memfd_);
    mapping_ = std::move(other.mapping_);
    taken_.store(other.taken_.load());
    return *this;
  }

  // L0: a new ring in a sealed-size memfd, both positions 0.
  static absl::StatusOr<ConsoleTxRing> Create();
  // L1: maps an inherited ring (takes ownership of `memfd`); InvalidArgument for a wrong size,
  // magic, version or capacity.
  static absl::StatusOr<ConsoleTxRing> Attach(int memfd);

  int memfd() const { return memfd_.get(); }

  // ---- the L1 side ----
  // Copies `bytes` to absolute positions [pos, pos + size). False (nothing written) when that
  // would overwrite bytes L0 has not consumed yet. Bytes at positions L0 has already consumed
  // (possible only after a lying L1 published past its commit) are skipped.
  bool WriteAt(uint64_t pos, std::string_view bytes);
  // Bytes free for a write at `pos` (capacity - (pos - consumed)).
  uint64_t FreeAt(uint64_t pos) const;
  // Makes [.., pos) visible to L0. Never moves backwards.
  void Publish(uint64_t pos);

  // ---- the L0 side ----
  // Takes the published bytes not yet consumed and marks them consumed. DataLoss (and takes
  // nothing) when the published position is impossible (behind `consumed` or more than the
  // capacity ahead): the L1 that wrote it is not to be trusted; the position is reset to
  // `consumed`, so a later valid Publish is taken again.
  absl::StatusOr<std::string> Take();

  // L0, before another L1 becomes the writer (any thread): undoes what an earlier, possibly
  // hostile, writer may have left: `consumed` is rewritten from L0's own count (a value far
  // ahead would make the next writer skip its bytes), an impossible `published` is reset to it.
  void RepairShared();

  uint64_t published() const { return header()->published.load(std::memory_order_acquire); }
  uint64_t consumed() const { return header()->consumed.load(std::memory_order_acquire); }
  // For tests of hostile writers: the shared header.
  ConsoleTxRingHeader* RawHeader() const { return header(); }

 private:
  ConsoleTxRingHeader* header() const {
    return reinterpret_cast<ConsoleTxRingHeader*>(mapping_.bytes());
  }
  uint8_t* data() const { return mapping_.bytes() + kConsoleTxRingDataOffset; }

  UniqueFd memfd_;
  MappedRegion mapping_;
  // L0: bytes taken so far (the truth behind the shared `consumed`). Written by Take (the drain
  // thread), read by RepairShared (a failover thread).
  std::atomic<uint64_t> taken_{0};
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_CONSOLE_TX_RING_H_
