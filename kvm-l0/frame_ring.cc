// kvm-l0/frame_ring.cc: FrameRing.
#include "kvm-l0/frame_ring.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/sealed_memfd.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr size_t kRingBytes =
    size_t{kFrameRingDataOffset} + size_t{kFrameRingSlots} * kFrameRingSlotBytes;
constexpr size_t kSlotHeader = 8;  // u32 length, u32 reserved
static_assert(kSlotHeader + kFrameMaxBytes <= kFrameRingSlotBytes);
static_assert((kFrameRingSlots & (kFrameRingSlots - 1)) == 0);

}  // namespace

absl::StatusOr<FrameRing> FrameRing::Create(const char* name) {
  FrameRing ring;
  // The size is fixed for both sides' lifetime: no shrink (SIGBUS) or growth by an L1.
  ASSIGN_OR_RETURN(ring.memfd_, CreateSealedMemfd(name, kRingBytes));
  ASSIGN_OR_RETURN(ring.mapping_, MapSharedOfSize(ring.memfd_.get(), kRingBytes, "frame ring"));
  auto* h = new (ring.mapping_.get()) FrameRingHeader{};
  h->magic = kFrameRingMagic;
  h->version = kFrameRingVersion;
  h->slots = kFrameRingSlots;
  h->slot_bytes = kFrameRingSlotBytes;
  h->max_frame = kFrameMaxBytes;
  h->published.store(0, std::memory_order_release);
  h->consumed.store(0, std::memory_order_release);
  return ring;
}

absl::StatusOr<FrameRing> FrameRing::Attach(int memfd) {
  FrameRing ring;
  ring.memfd_.Reset(memfd);
  ASSIGN_OR_RETURN(ring.mapping_, MapSharedOfSize(memfd, kRingBytes, "frame ring", MAP_POPULATE));
  const FrameRingHeader* h = ring.header();
  if (h->magic != kFrameRingMagic || h->version != kFrameRingVersion ||
      h->slots != kFrameRingSlots || h->slot_bytes != kFrameRingSlotBytes ||
      h->max_frame != kFrameMaxBytes) {
    return absl::InvalidArgumentError("frame ring: bad magic, version or geometry");
  }
  return ring;
}

uint64_t FrameRing::FreeAt(uint64_t pos, uint64_t consumed) {
  const uint64_t used = pos - consumed;
  return used >= kFrameRingSlots ? 0 : kFrameRingSlots - used;
}

bool FrameRing::WriteAt(uint64_t pos, std::span<const uint8_t> frame, uint64_t consumed) {
  if (frame.empty() || frame.size() > kFrameMaxBytes || FreeAt(pos, consumed) == 0) return false;
  uint8_t* s = slot(pos);
  const auto length = static_cast<uint32_t>(frame.size());
  const uint32_t reserved = 0;
  std::memcpy(s, &length, 4);
  std::memcpy(s + 4, &reserved, 4);
  std::memcpy(s + kSlotHeader, frame.data(), frame.size());
  return true;
}

void FrameRing::Publish(uint64_t pos) {
  std::atomic<uint64_t>& published = header()->published;
  uint64_t current = published.load(std::memory_order_relaxed);
  // Release: the slots before `pos` are visible to the reader before the position is.
  while (pos > current &&
         !published.compare_exchange_weak(current, pos, std::memory_order_release)) {
  }
}

std::optional<size_t> FrameRing::ReadAt(uint64_t pos, std::span<uint8_t> out,
                                        uint64_t published) const {
  if (pos >= published) return std::nullopt;  // (loaded with acquire: the slot is complete)
  const uint8_t* s = slot(pos);
  uint32_t length = 0;
  std::memcpy(&length, s, 4);  // read once: the other side may scribble on it meanwhile
  if (length == 0 || length > kFrameMaxBytes || length > out.size()) return size_t{0};
  std::memcpy(out.data(), s + kSlotHeader, length);
  return size_t{length};
}

void FrameRing::SetConsumed(uint64_t pos) {
  std::atomic<uint64_t>& consumed = header()->consumed;
  uint64_t current = consumed.load(std::memory_order_relaxed);
  // Release: the slots before `pos` were read completely before the writer may reuse them.
  while (pos > current &&
         !consumed.compare_exchange_weak(current, pos, std::memory_order_release)) {
  }
}

absl::StatusOr<uint64_t> FrameRing::CheckedPublished(uint64_t consumed) {
  const uint64_t published_pos = published();
  if (published_pos < consumed || published_pos - consumed > kFrameRingSlots) {
    uint64_t expected = published_pos;  // forget the impossible position
    header()->published.compare_exchange_strong(expected, consumed, std::memory_order_acq_rel);
    return absl::DataLossError(absl::StrCat("frame ring: published position ", published_pos,
                                            " is impossible with ", consumed, " consumed"));
  }
  return published_pos;
}

absl::StatusOr<uint64_t> FrameRing::CheckedConsumed(uint64_t floor, uint64_t published) const {
  const uint64_t consumed_pos = consumed();
  if (consumed_pos < floor || consumed_pos > published) {
    return absl::OutOfRangeError(absl::StrCat("frame ring: consumed position ", consumed_pos,
                                              " is outside [", floor, ", ", published, "]"));
  }
  return consumed_pos;
}

}  // namespace rehome
