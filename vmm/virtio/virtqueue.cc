// vmm/virtio/virtqueue.cc: split virtqueue parsing and publishing over untrusted guest RAM.
#include "vmm/virtio/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace rehome::virtio {
namespace {

static_assert(std::endian::native == std::endian::little, "virtio rings are little-endian");

constexpr uint64_t kDescSize = 16;
constexpr uint64_t kUsedElemSize = 8;
constexpr uint64_t kRingHeader = 4;  // flags u16 + idx u16

uint64_t DescTableBytes(uint16_t size) { return kDescSize * size; }
uint64_t AvailBytes(uint16_t size) { return kRingHeader + 2ull * size + 2; }  // + used_event
uint64_t UsedBytes(uint16_t size) { return kRingHeader + kUsedElemSize * size + 2; }

std::string Hex(uint64_t v) { return absl::StrCat("0x", absl::Hex(v)); }

// Reads a little-endian integer at `gpa`; nullopt when it is not in guest RAM.
template <typename T>
std::optional<T> Load(const GuestMemoryView& mem, uint64_t gpa) {
  const uint8_t* p = mem.HostAddress(gpa, sizeof(T));
  if (p == nullptr) return std::nullopt;
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
bool Store(const GuestMemoryView& mem, uint64_t gpa, T v) {
  uint8_t* p = mem.WritableAddress(gpa, sizeof(T));
  if (p == nullptr) return false;
  std::memcpy(p, &v, sizeof(T));
  return true;
}

absl::Status CheckArea(const GuestMemoryView& mem, std::string_view what, uint64_t gpa,
                       uint64_t len, uint64_t align) {
  if (gpa % align != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " at ", Hex(gpa), " is not ", align, "-byte aligned"));
  }
  if (gpa + len < gpa || mem.HostAddress(gpa, len) == nullptr) {
    return absl::OutOfRangeError(
        absl::StrCat(std::string(what), " [", Hex(gpa), ", +", len, ") is not in guest RAM"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Virtqueue::CheckConfigurable() const {
  if (state_.ready) {
    return absl::FailedPreconditionError("queue setup cannot change while the queue is ready");
  }
  return absl::OkStatus();
}

absl::Status Virtqueue::set_size(uint16_t size) {
  RETURN_IF_ERROR(CheckConfigurable());
  state_.size = size;
  return absl::OkStatus();
}

absl::Status Virtqueue::set_desc_gpa(uint64_t gpa) {
  RETURN_IF_ERROR(CheckConfigurable());
  state_.desc_gpa = gpa;
  return absl::OkStatus();
}

absl::Status Virtqueue::set_avail_gpa(uint64_t gpa) {
  RETURN_IF_ERROR(CheckConfigurable());
  state_.avail_gpa = gpa;
  return absl::OkStatus();
}

absl::Status Virtqueue::set_used_gpa(uint64_t gpa) {
  RETURN_IF_ERROR(CheckConfigurable());
  state_.used_gpa = gpa;
  return absl::OkStatus();
}

absl::Status Virtqueue::CheckLayout(const State& s, const GuestMemoryView& mem) {
  if (s.size == 0 || s.size > kMaxSize || !std::has_single_bit(s.size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue size ", s.size, " is not a power of two in 1..", kMaxSize));
  }
  RETURN_IF_ERROR(CheckArea(mem, "descriptor table", s.desc_gpa, DescTableBytes(s.size), 16));
  RETURN_IF_ERROR(CheckArea(mem, "available ring", s.avail_gpa, AvailBytes(s.size), 2));
  RETURN_IF_ERROR(CheckArea(mem, "used ring", s.used_gpa, UsedBytes(s.size), 4));
  return absl::OkStatus();
}

absl::Status Virtqueue::Enable(const GuestMemoryView& mem) {
  if (state_.ready) return absl::OkStatus();
  RETURN_IF_ERROR(CheckLayout(state_, mem));
  state_.ready = true;
  state_.last_avail_idx = 0;
  state_.used_idx = 0;
  return absl::OkStatus();
}

void Virtqueue::Disable() {
  state_.ready = false;
  state_.last_avail_idx = 0;
  state_.used_idx = 0;
}

void Virtqueue::Reset() { state_ = State{}; }

absl::StatusOr<std::optional<Virtqueue::Chain>> Virtqueue::Pop(const GuestMemoryView& mem) {
  const State& s = state_;
  if (!s.ready) return absl::FailedPreconditionError("queue is not ready");
  const std::optional<uint16_t> avail_idx = mem.AvailableIndex(s.avail_gpa + 2);
  if (!avail_idx) return absl::OutOfRangeError("available ring is not in guest RAM");
  // Ring entries are read only after the index that published them.
  std::atomic_thread_fence(std::memory_order_acquire);
  const uint16_t pending = static_cast<uint16_t>(*avail_idx - s.last_avail_idx);
  if (pending == 0) return std::optional<Chain>();
  if (pending > s.size) {
    return absl::OutOfRangeError(absl::StrCat("available idx ", *avail_idx, " moved ", pending,
                                              " entries past the device's ", s.last_avail_idx,
                                              " (more than the queue size ", s.size, ")"));
  }
  const uint16_t slot = s.last_avail_idx % s.size;
  const std::optional<uint16_t> head = Load<uint16_t>(mem, s.avail_gpa + kRingHeader + 2ull * slot);
  if (!head) return absl::OutOfRangeError("available ring is not in guest RAM");
  if (*head >= s.size) {
    return absl::OutOfRangeError(absl::StrCat("available ring slot ", slot, " names head ", *head,
                                              " >= queue size ", s.size));
  }

  Chain chain;
  chain.head = *head;
  uint64_t readable = 0, writable = 0;
  bool seen_writable = false;
  uint16_t index = *head;
  for (int count = 0;; ++count) {
    if (count >= s.size) {
      return absl::InvalidArgumentError(absl::StrCat("descriptor chain from head ", *head,
                                                     " is longer than the queue size ", s.size,
                                                     " (a loop)"));
    }
    const uint8_t* raw = mem.HostAddress(s.desc_gpa + kDescSize * index, kDescSize);
    if (raw == nullptr) return absl::OutOfRangeError("descriptor table is not in guest RAM");
    uint8_t copy[kDescSize];  // read the guest's descriptor exactly once
    std::memcpy(copy, raw, kDescSize);
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    std::memcpy(&addr, copy, 8);
    std::memcpy(&len, copy + 8, 4);
    std::memcpy(&flags, copy + 12, 2);
    std::memcpy(&next, copy + 14, 2);
    const std::string where = absl::StrCat("descriptor ", index, " (chain head ", *head, ")");
    if (flags & kDescFlagIndirect) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated"));
    }
    if (len != 0 && addr + (len - 1) < addr) {
      return absl::OutOfRangeError(
          absl::StrCat(where, ": address ", Hex(addr), " + length ", len, " wraps around"));
    }
    if (len != 0 && mem.HostAddress(addr, len) == nullptr) {
      return absl::OutOfRangeError(
          absl::StrCat(where, ": buffer [", Hex(addr), ", +", len, ") is not in guest RAM"));
    }
    const bool write = (flags & kDescFlagWrite) != 0;
    if (write) {
      writable += len;
      seen_writable = true;
    } else {
      if (seen_writable) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " is device-readable but follows a device-writable one"));
      }
      readable += len;
    }
    if (readable + writable > UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("descriptor chain from head ", *head,
                                                     " is longer than 2^32 - 1 bytes in total"));
    }
    chain.descriptors.push_back(Descriptor{addr, len, write});
    if (!(flags & kDescFlagNext)) break;
    if (next >= s.size) {
      return absl::OutOfRangeError(
          absl::StrCat(where, " links to index ", next, " >= queue size ", s.size));
    }
    index = next;
  }
  chain.readable_len = static_cast<uint32_t>(readable);
  chain.writable_len = static_cast<uint32_t>(writable);
  ++state_.last_avail_idx;
  return std::optional<Chain>(std::move(chain));
}

bool Virtqueue::HasAvailable(const GuestMemoryView& mem) const {
  if (!state_.ready) return false;
  const std::optional<uint16_t> avail_idx = mem.AvailableIndex(state_.avail_gpa + 2);
  return avail_idx.has_value() && *avail_idx != state_.last_avail_idx;
}

absl::Status Virtqueue::PushUsed(const GuestMemoryView& mem, uint16_t head, uint32_t written_len) {
  State& s = state_;
  if (!s.ready) return absl::FailedPreconditionError("queue is not ready");
  if (head >= s.size) {
    return absl::InvalidArgumentError(absl::StrCat("used head ", head, " >= queue size ", s.size));
  }
  const uint64_t elem = s.used_gpa + kRingHeader + kUsedElemSize * (s.used_idx % s.size);
  if (!Store<uint32_t>(mem, elem, head) || !Store<uint32_t>(mem, elem + 4, written_len)) {
    return absl::OutOfRangeError("used ring is not in guest RAM");
  }
  s.used_idx = static_cast<uint16_t>(s.used_idx + 1);
  if (deferred_publication_) return absl::OkStatus();
  return PublishUsed(mem);
}

absl::Status Virtqueue::PublishUsed(const GuestMemoryView& mem) {
  const State& s = state_;
  if (!s.ready) return absl::OkStatus();
  // The elements must be visible before the index that publishes them.
  std::atomic_thread_fence(std::memory_order_release);
  if (!Store<uint16_t>(mem, s.used_gpa + 2, s.used_idx)) {
    return absl::OutOfRangeError("used ring is not in guest RAM");
  }
  return absl::OkStatus();
}

absl::Status Virtqueue::SetNotifications(const GuestMemoryView& mem, bool wanted) {
  if (!state_.ready) return absl::OkStatus();
  const bool stored = Store<uint16_t>(mem, state_.used_gpa, wanted ? 0 : kUsedFlagNoNotify);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!stored) return absl::OutOfRangeError("used ring is not in guest RAM");
  return absl::OkStatus();
}

absl::Status Virtqueue::RestoreState(const State& state, const GuestMemoryView& mem) {
  if (state.size > kMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue size ", state.size, " exceeds the maximum ", kMaxSize));
  }
  if (state.ready) RETURN_IF_ERROR(CheckLayout(state, mem));
  if (!state.ready && (state.last_avail_idx != 0 || state.used_idx != 0)) {
    return absl::InvalidArgumentError("a queue that is not ready has nonzero ring indices");
  }
  if (state.ready && static_cast<uint16_t>(state.last_avail_idx - state.used_idx) > state.size) {
    return absl::InvalidArgumentError(absl::StrCat("last_avail_idx ", state.last_avail_idx,
                                                   " is more than the queue size ahead of used ",
                                                   state.used_idx));
  }
  state_ = state;
  return absl::OkStatus();
}

void Virtqueue::EncodeState(const State& state, StateWriter& w) {
  w.U16(state.size);
  w.U8(state.ready ? 1 : 0);
  w.U64(state.desc_gpa);
  w.U64(state.avail_gpa);
  w.U64(state.used_gpa);
  w.U16(state.last_avail_idx);
  w.U16(state.used_idx);
}

Virtqueue::State Virtqueue::DecodeState(StateReader& r) {
  State s;
  s.size = r.U16();
  s.ready = r.Bool();
  s.desc_gpa = r.U64();
  s.avail_gpa = r.U64();
  s.used_gpa = r.U64();
  s.last_avail_idx = r.U16();
  s.used_idx = r.U16();
  return s;
}

absl::Status ForEachSegment(const GuestMemoryView& mem, const Virtqueue::Chain& chain,
                            bool writable, uint64_t offset, uint64_t len,
                            const std::function<absl::Status(std::span<uint8_t>)>& fn) {
  const uint64_t part = writable ? chain.writable_len : chain.readable_len;
  if (offset > part || len > part - offset) {
    return absl::OutOfRangeError(absl::StrCat("bytes [", offset, ", +", len, ") exceed the ", part,
                                              "-byte ", writable ? "writable" : "readable",
                                              " part of chain ", chain.head));
  }
  uint64_t pos = 0;  // offset of the current descriptor within the part
  for (const Virtqueue::Descriptor& d : chain.descriptors) {
    if (len == 0) break;
    if (d.write != writable) continue;
    const uint64_t end = pos + d.len;
    if (offset < end) {
      const uint64_t skip = offset - pos;
      const uint64_t n = std::min<uint64_t>(d.len - skip, len);
      uint8_t* p =
          writable ? mem.WritableAddress(d.addr + skip, n) : mem.HostAddress(d.addr + skip, n);
      if (p == nullptr) return absl::OutOfRangeError("descriptor buffer is not in guest RAM");
      RETURN_IF_ERROR(fn(std::span<uint8_t>(p, n)));
      offset += n;
      len -= n;
    }
    pos = end;
  }
  return absl::OkStatus();
}

absl::Status CopyFromChain(const GuestMemoryView& mem, const Virtqueue::Chain& chain,
                           uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  return ForEachSegment(mem, chain, /*writable=*/false, offset, out.size(),
                        [&](std::span<uint8_t> seg) {
                          std::memcpy(out.data() + done, seg.data(), seg.size());
                          done += seg.size();
                          return absl::OkStatus();
                        });
}

absl::Status CopyToChain(const GuestMemoryView& mem, const Virtqueue::Chain& chain, uint64_t offset,
                         std::span<const uint8_t> in) {
  size_t done = 0;
  return ForEachSegment(mem, chain, /*writable=*/true, offset, in.size(),
                        [&](std::span<uint8_t> seg) {
                          std::memcpy(seg.data(), in.data() + done, seg.size());
                          done += seg.size();
                          return absl::OkStatus();
                        });
}

}  // namespace rehome::virtio
