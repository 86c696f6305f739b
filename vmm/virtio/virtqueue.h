// vmm/virtio/virtqueue.h: the device side of one virtio 1.x split virtqueue living in guest RAM
// (descriptor table, available ring, used ring), plus helpers that move bytes between a popped
// descriptor chain and host buffers. Every value read from guest memory is untrusted: Pop()
// validates a whole chain (indices, loops, bounds, lengths, flags) before returning it, reads
// each ring entry exactly once, and never touches memory outside guest RAM. Indirect
// descriptors and VIRTIO_F_EVENT_IDX are not offered, so both are treated as driver errors.
// Thread-safety: not thread-safe; the owning transport serialises all calls. Guest RAM is shared
// with running vCPUs: ring indices are read/written with acquire/release ordering.
#ifndef REHOME_VMM_VIRTIO_VIRTQUEUE_H_
#define REHOME_VMM_VIRTIO_VIRTQUEUE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/guest_memory_view.h"
#include "vmm/state_codec.h"

namespace rehome::virtio {

// Descriptor flags (virtio 1.1 section 2.6.5).
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
// Used ring flags.
inline constexpr uint16_t kUsedFlagNoNotify = 1;

class Virtqueue final {
 public:
  // QueueNumMax: the largest queue size a driver may choose (sizes are powers of two).
  static constexpr uint16_t kMaxSize = 256;

  struct Descriptor {
    uint64_t addr = 0;
    uint32_t len = 0;
    bool write = false;  // device-writable
  };
  struct Chain {
    uint16_t head = 0;
    std::vector<Descriptor> descriptors;  // readable ones first, then writable ones
    uint32_t readable_len = 0;            // sum of the readable descriptors' lengths
    uint32_t writable_len = 0;            // sum of the writable descriptors' lengths
  };
  // Everything a failover must carry. Ring contents live in guest RAM and are not part of it.
  struct State {
    uint16_t size = 0;  // QueueNum chosen by the driver
    bool ready = false;
    uint64_t desc_gpa = 0;        // QueueDesc
    uint64_t avail_gpa = 0;       // QueueDriver
    uint64_t used_gpa = 0;        // QueueDevice
    uint16_t last_avail_idx = 0;  // next available ring slot the device will consume
    uint16_t used_idx = 0;        // used ring idx the device last published
    bool operator==(const State&) const = default;
  };

  Virtqueue() = default;
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;
  Virtqueue(Virtqueue&&) = default;
  Virtqueue& operator=(Virtqueue&&) = default;

  // Queue setup (QueueNum, QueueDesc, QueueDriver, QueueDevice). FailedPrecondition while ready.
  absl::Status set_size(uint16_t size);
  absl::Status set_desc_gpa(uint64_t gpa);
  absl::Status set_avail_gpa(uint64_t gpa);
  absl::Status set_used_gpa(uint64_t gpa);

  // QueueReady = 1: checks the size (a power of two in 1..kMaxSize) and that the three areas
  // are aligned (16/2/4) and lie in guest RAM (InvalidArgument / OutOfRange naming the defect),
  // then marks the queue ready with both indices at 0. QueueReady = 0: Disable().
  absl::Status Enable(const GuestMemoryView& mem);
  void Disable();  // not ready, indices back to 0; addresses and size are kept
  void Reset();    // back to the power-on state

  bool ready() const { return state_.ready; }
  uint16_t size() const { return state_.size; }
  // Where the driver's available index lives (the available ring + 2); meaningful when ready.
  uint64_t avail_index_gpa() const { return state_.avail_gpa + 2; }

  // The next available chain, or nullopt when the driver has made none available. Errors
  // (the queue state is unchanged on error): FailedPrecondition when not ready; OutOfRange for
  // an avail idx that moved by more than the queue size, a head or next index >= size, a ring
  // or descriptor outside guest RAM, or an address + length that wraps; InvalidArgument for a
  // loop, an indirect descriptor, a readable descriptor after a writable one, or a chain whose
  // total length exceeds 2^32 - 1.
  absl::StatusOr<std::optional<Chain>> Pop(const GuestMemoryView& mem);

  // Whether the driver has made a chain available that Pop has not taken (a look at the
  // available index only; false when not ready or the ring is not in guest RAM).
  bool HasAvailable(const GuestMemoryView& mem) const;

  // Publishes chain `head` as used with `written_len` bytes written by the device.
  // InvalidArgument for head >= size, FailedPrecondition when not ready, OutOfRange when the
  // used ring is not in guest RAM. With deferred publication the element is written but the used
  // ring's idx (what the driver looks at) only moves at PublishUsed().
  absl::Status PushUsed(const GuestMemoryView& mem, uint16_t head, uint32_t written_len);

  // Deferred publication (split mode: completions become visible only after the state that
  // contains them is committed). A mode, not state: it survives Reset() and is not saved.
  void set_deferred_publication(bool deferred) { deferred_publication_ = deferred; }
  // Writes the device's used_idx to the used ring (release-ordered after the elements). A no-op
  // when the queue is not ready; idempotent. OutOfRange when the used ring is not in guest RAM.
  absl::Status PublishUsed(const GuestMemoryView& mem);

  // Notification suppression (virtio 1.x 2.7.10, VIRTQ_USED_F_NO_NOTIFY in the used ring's
  // flags): `wanted` false tells the driver it need not notify new buffers. A hint, not state:
  // nothing is saved, and a driver may notify anyway. Followed by a full fence, so that a device
  // that asks for notifications and then looks at the available ring once more cannot miss a
  // buffer the driver added meanwhile (the driver fences between publishing and reading the
  // flags). A no-op when the queue is not ready; OutOfRange when the used ring is not in RAM.
  absl::Status SetNotifications(const GuestMemoryView& mem, bool wanted);

  State SaveState() const { return state_; }
  // Validates like Enable() when the state is ready (indices are kept as given) and then
  // applies it; InvalidArgument / OutOfRange otherwise, leaving the queue unchanged.
  absl::Status RestoreState(const State& state, const GuestMemoryView& mem);
  // The queue's fields inside an enclosing record (see docs/virtio.md).
  static void EncodeState(const State& state, StateWriter& w);
  static State DecodeState(StateReader& r);

 private:
  static absl::Status CheckLayout(const State& s, const GuestMemoryView& mem);
  absl::Status CheckConfigurable() const;

  State state_;
  bool deferred_publication_ = false;
};

// Calls `fn` on the host spans covering bytes [offset, offset + len) of the chain's readable
// (writable = false) or writable (writable = true) part, in order. OutOfRange if the part is
// shorter than offset + len or a descriptor is no longer in guest RAM; stops at the first error
// `fn` returns and returns it.
absl::Status ForEachSegment(const GuestMemoryView& mem, const Virtqueue::Chain& chain,
                            bool writable, uint64_t offset, uint64_t len,
                            const std::function<absl::Status(std::span<uint8_t>)>& fn);
// Copies readable bytes [offset, offset + out.size()) into `out`.
absl::Status CopyFromChain(const GuestMemoryView& mem, const Virtqueue::Chain& chain,
                           uint64_t offset, std::span<uint8_t> out);
// Copies `in` into writable bytes [offset, offset + in.size()).
absl::Status CopyToChain(const GuestMemoryView& mem, const Virtqueue::Chain& chain, uint64_t offset,
                         std::span<const uint8_t> in);

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_VIRTQUEUE_H_
