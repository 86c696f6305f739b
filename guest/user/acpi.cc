// guest/user/acpi.cc: RSDP -> RSDT/XSDT -> MADT walk (see acpi.h). Tables must lie below 4 GiB
// (the identity map); anything else is treated as "no MADT".
#include "guest/user/acpi.h"

namespace rehome::guest {
namespace {

constexpr uint64_t kMappedLimit = 1ull << 32;

uint32_t Read32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

uint64_t Read64(const uint8_t* p) {
  return Read32(p) | (static_cast<uint64_t>(Read32(p + 4)) << 32);
}

bool SignatureIs(const uint8_t* p, const char* sig, int n) {
  for (int i = 0; i < n; ++i) {
    if (p[i] != static_cast<uint8_t>(sig[i])) return false;
  }
  return true;
}

const uint8_t* Table(uint64_t paddr) {
  if (paddr == 0 || paddr + 36 >= kMappedLimit) return nullptr;
  const auto* t = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(paddr));
  if (paddr + Read32(t + 4) >= kMappedLimit || Read32(t + 4) < 36) return nullptr;
  return t;
}

}  // namespace

uint32_t MadtApicIds(uint64_t rsdp_paddr, uint32_t* ids, uint32_t max) {
  if (rsdp_paddr == 0 || rsdp_paddr + 36 >= kMappedLimit) return 0;
  const auto* rsdp = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(rsdp_paddr));
  if (!SignatureIs(rsdp, "RSD PTR ", 8)) return 0;
  const bool use_xsdt = rsdp[15] >= 2 && Read64(rsdp + 24) != 0;
  const uint8_t* root = Table(use_xsdt ? Read64(rsdp + 24) : Read32(rsdp + 16));
  if (root == nullptr) return 0;
  const uint32_t entry_size = use_xsdt ? 8 : 4;
  const uint32_t entries = (Read32(root + 4) - 36) / entry_size;
  const uint8_t* madt = nullptr;
  for (uint32_t i = 0; i < entries && madt == nullptr; ++i) {
    const uint8_t* e = root + 36 + i * entry_size;
    const uint8_t* t = Table(use_xsdt ? Read64(e) : Read32(e));
    if (t != nullptr && SignatureIs(t, "APIC", 4)) madt = t;
  }
  if (madt == nullptr) return 0;
  const uint32_t length = Read32(madt + 4);
  uint32_t count = 0;
  for (uint32_t off = 44; off + 2 <= length;) {
    const uint8_t type = madt[off];
    const uint8_t len = madt[off + 1];
    if (len < 2 || off + len > length) break;
    if (type == 0 && len >= 8 && (Read32(madt + off + 4) & 0x3) != 0 && count < max) {
      // Insertion sort: the list is tiny.
      const uint32_t id = madt[off + 3];
      uint32_t j = count++;
      while (j > 0 && ids[j - 1] > id) {
        ids[j] = ids[j - 1];
        --j;
      }
      ids[j] = id;
    }
    off += len;
  }
  return count;
}

}  // namespace rehome::guest
