// vmm/guest_memory_view.h: how devices and loaders reach guest RAM without knowing how it is
// mapped. HostAddress(gpa, len) returns a host pointer to `len` contiguous bytes of guest memory
// starting at `gpa`, or nullptr if any byte of [gpa, gpa + len) is outside guest RAM (or the range
// is not contiguous in the host mapping). Thread-safety: implementations must allow concurrent
// HostAddress calls (lookups only); the memory itself is shared with running vCPUs.
#ifndef REHOME_VMM_GUEST_MEMORY_VIEW_H_
#define REHOME_VMM_GUEST_MEMORY_VIEW_H_

#include <cstdint>
#include <span>

namespace rehome {

class GuestMemoryView {
 public:
  virtual ~GuestMemoryView();
  virtual uint8_t* HostAddress(uint64_t gpa, uint64_t len) const = 0;
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
