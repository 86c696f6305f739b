// recovery/nested/l1_memory.h: an L1 VM's guest-physical memory as L0 maps it, seen as the
// PhysicalMemory the nested page walkers read (state-extract/nested/page_walk.h). Header-only;
// as thread-safe as the memory under it (L0 walks with the L1 paused).
#ifndef REHOME_RECOVERY_NESTED_L1_MEMORY_H_
#define REHOME_RECOVERY_NESTED_L1_MEMORY_H_

#include <cstring>

#include "kvm-l0/guest_memory.h"
#include "state-extract/nested/page_walk.h"

namespace rehome {

class L1Memory final : public nested::PhysicalMemory {
 public:
  explicit L1Memory(const GuestMemory& ram) : ram_(ram) {}
  std::optional<uint64_t> ReadU64(uint64_t gpa) const override {
    const uint8_t* p = ram_.HostAddress(gpa, 8);
    if (p == nullptr) return std::nullopt;
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }

 private:
  const GuestMemory& ram_;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_L1_MEMORY_H_
