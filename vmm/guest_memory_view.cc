// vmm/guest_memory_view.cc: FlatGuestMemoryView bounds checks (overflow-safe).
#include "vmm/guest_memory_view.h"

namespace rehome {

GuestMemoryView::~GuestMemoryView() = default;

uint8_t* FlatGuestMemoryView::HostAddress(uint64_t gpa, uint64_t len) const {
  if (gpa < base_gpa_) return nullptr;
  const uint64_t offset = gpa - base_gpa_;
  const uint64_t size = memory_.size();
  if (offset > size || len > size - offset) return nullptr;
  return memory_.data() + offset;
}

}  // namespace rehome
