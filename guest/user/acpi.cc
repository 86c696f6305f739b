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

// The MADT reached from the RSDP at `rsdp_paddr`, or nullptr.
const uint8_t* FindMadt(uint64_t rsdp_paddr) {
  if (rsdp_paddr == 0 || rsdp_paddr + 36 >= kMappedLimit) return nullptr;
  const auto* rsdp = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(rsdp_paddr));
  if (!SignatureIs(rsdp, "RSD PTR ", 8)) return nullptr;
  const bool use_xsdt = rsdp[15] >= 2 && Read64(rsdp + 24) != 0;
  const uint8_t* root = Table(use_xsdt ? Read64(rsdp + 24) : Read32(rsdp + 16));
  if (root == nullptr) return nullptr;
  const uint32_t entry_size = use_xsdt ? 8 : 4;
  const uint32_t entries = (Read32(root + 4) - 36) / entry_size;
  for (uint32_t i = 0; i < entries; ++i) {
    const uint8_t* e = root + 36 + i * entry_size;
    const uint8_t* t = Table(use_xsdt ? Read64(e) : Read32(e));
    if (t != nullptr && SignatureIs(t, "APIC", 4)) return t;
  }
  return nullptr;
}

}  // namespace

uint32_t MadtApicIds(uint64_t rsdp_paddr, uint32_t* ids, uint32_t max) {
  const uint8_t* madt = FindMadt(rsdp_paddr);
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

bool MadtIoApicFor(uint64_t rsdp_paddr, uint32_t gsi, uint64_t* base, uint32_t* gsi_base) {
  const uint8_t* madt = FindMadt(rsdp_paddr);
  if (madt == nullptr) return false;
  const uint32_t length = Read32(madt + 4);
  bool found = false;
  for (uint32_t off = 44; off + 2 <= length;) {
    const uint8_t type = madt[off];
    const uint8_t len = madt[off + 1];
    if (len < 2 || off + len > length) break;
    // Type 1: I/O APIC (id, reserved, address, GSI base). The one with the highest base at or
    // below `gsi` serves it (its pin count is in its own version register).
    const uint32_t first = len >= 12 ? Read32(madt + off + 8) : 0;
    if (type == 1 && len >= 12 && first <= gsi && (!found || first > *gsi_base)) {
      *base = Read32(madt + off + 4);
      *gsi_base = first;
      found = true;
    }
    off += len;
  }
  return found;
}

}  // namespace rehome::guest
