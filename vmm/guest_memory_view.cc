// vmm/guest_memory_view.cc: FlatGuestMemoryView bounds checks (overflow-safe).
#include "vmm/guest_memory_view.h"

#include <cstring>

namespace rehome {

GuestMemoryView::~GuestMemoryView() = default;

std::optional<uint16_t> GuestMemoryView::AvailableIndex(uint64_t gpa) const {
  const uint8_t* p = HostAddress(gpa, sizeof(uint16_t));
  if (p == nullptr) return std::nullopt;
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

uint8_t* FlatGuestMemoryView::HostAddress(uint64_t gpa, uint64_t len) const {
  if (gpa < base_gpa_) return nullptr;
  const uint64_t offset = gpa - base_gpa_;
  const uint64_t size = memory_.size();
  if (offset > size || len > size - offset) return nullptr;
  return memory_.data() + offset;
}

}  // namespace rehome
