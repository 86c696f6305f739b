// vmm/guest_memory_view.h: how devices and loaders reach guest RAM without knowing how it is
// mapped. HostAddress(gpa, len) returns a host pointer to `len` contiguous bytes of guest memory
// starting at `gpa`, or nullptr if any byte of [gpa, gpa + len) is outside guest RAM (or the range
// is not contiguous in the host mapping). Thread-safety: implementations must allow concurrent
// HostAddress calls (lookups only); the memory itself is shared with running vCPUs.
#ifndef REHOME_VMM_GUEST_MEMORY_VIEW_H_
#define REHOME_VMM_GUEST_MEMORY_VIEW_H_

#include <cstdint>
#include <optional>
#include <span>

namespace rehome {

class GuestMemoryView {
 public:
  virtual ~GuestMemoryView();
  virtual uint8_t* HostAddress(uint64_t gpa, uint64_t len) const = 0;
  // Where a device *writes* `len` bytes of guest memory at `gpa` (nullptr outside guest RAM). By
  // default the guest's memory itself; a verified replica's view (vmm/l1/effect_capture.h)
  // returns a private buffer holding the current bytes and records the write as an effect that
  // L0 applies once the replicas agree.
  virtual uint8_t* WritableAddress(uint64_t gpa, uint64_t len) const {
    return HostAddress(gpa, len);
  }
  // Whether a device may take on another request now: a verified replica bounds the effects of
  // one work item (the rest waits for the next item); always true by default.
  virtual bool HasRoomForWork() const { return true; }
  // A virtqueue's available index: the driver's 16-bit word at `gpa` (its available ring + 2) as
  // the device may act on it now; nullopt outside guest RAM. By default the word in guest memory.
  // A verified replica's view returns the value L0 read when it posted the work item
  // (ExitRequest::avail_snapshot) where it has one, so that every replica, and a recruit that
  // executes the item later, takes the same chains however far the guest's vCPUs, which run
  // meanwhile, have moved the index.
  virtual std::optional<uint16_t> AvailableIndex(uint64_t gpa) const;
};

// A view over one host buffer that holds guest-physical [base_gpa, base_gpa + memory.size()).
// Does not own the buffer. Thread-safe (immutable).
class FlatGuestMemoryView final : public GuestMemoryView {
 public:
  explicit FlatGuestMemoryView(std::span<uint8_t> memory, uint64_t base_gpa = 0)
      : memory_(memory), base_gpa_(base_gpa) {}
  FlatGuestMemoryView(const FlatGuestMemoryView&) = delete;
  FlatGuestMemoryView& operator=(const FlatGuestMemoryView&) = delete;

  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override;

 private:
  std::span<uint8_t> memory_;
  uint64_t base_gpa_;
};

}  // namespace rehome

#endif  // REHOME_VMM_GUEST_MEMORY_VIEW_H_
