// state-extract/nested/ept_walker.cc: EptFormat and the EPT pointer.
#include "state-extract/nested/ept_walker.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace rehome::nested {
namespace {

constexpr uint64_t Bits(int hi, int lo) { return ((~0ull) >> (63 - hi)) & ~((1ull << lo) - 1); }

DecodedEntry Misconfigured(std::string detail) {
  DecodedEntry d;
  d.kind = DecodedEntry::Kind::kMalformed;
  d.malformed_as = FaultKind::kMisconfigured;
  d.detail = std::move(detail);
  return d;
}

bool ValidLeafMemoryType(uint8_t type) {
  return type == kMemTypeUc || type == kMemTypeWc || type == kMemTypeWt || type == kMemTypeWp ||
         type == kMemTypeWb;
}

}  // namespace

DecodedEntry EptFormat::Decode(uint64_t entry, int level) const {
  DecodedEntry d;
  const bool r = (entry & kEptRead) != 0;
  const bool w = (entry & kEptWrite) != 0;
  const bool x = (entry & kEptExecute) != 0;
  if (!r && !w && !x) return d;
  if (w && !r) return Misconfigured("writable but not readable");
  if (x && !r && !options_.execute_only) {
    return Misconfigured("execute-only without execute-only support");
  }
  if ((entry & AddressReservedMask(options_.maxphyaddr)) != 0) {
    return Misconfigured(absl::StrFormat("address bits above MAXPHYADDR %d", options_.maxphyaddr));
  }
  if (level == 4 && (entry & Bits(7, 3)) != 0) return Misconfigured("PML4E bits 7:3 must be zero");
  d.perms = {r, w, x, true};
  const bool large = (level == 3 || level == 2) && (entry & kEptLarge) != 0;
  if (level == 1 || large) {
    const uint8_t type = static_cast<uint8_t>((entry >> kEptMemTypeShift) & 7);
    if (!ValidLeafMemoryType(type)) {
      return Misconfigured(absl::StrFormat("reserved memory type %d", type));
    }
    if (level == 3 && !options_.gbpages) return Misconfigured("1 GiB page without support");
    if (level == 3 && (entry & Bits(29, 12)) != 0) {
      return Misconfigured("1 GiB page with bits 29:12 set");
    }
    if (level == 2 && large && (entry & Bits(20, 12)) != 0) {
      return Misconfigured("2 MiB page with bits 20:12 set");
    }
    d.kind = DecodedEntry::Kind::kLeaf;
    d.address = entry & kAddressMask & ~(LevelSpan(level) - 1);
    d.memory_type = type;
    d.ignore_pat = (entry & kEptIgnorePat) != 0;
    return d;
  }
  if (level < 4 && (entry & Bits(6, 3)) != 0) {
    return Misconfigured("non-leaf entry with bits 6:3 set");
  }
  d.kind = DecodedEntry::Kind::kTable;
  d.address = entry & kAddressMask;
  return d;
}

absl::StatusOr<Eptp> ParseEptp(uint64_t value, int maxphyaddr) {
  Eptp eptp;
  eptp.memory_type = static_cast<uint8_t>(value & 7);
  eptp.levels = static_cast<int>((value >> 3) & 7) + 1;
  eptp.accessed_dirty = (value & (1ull << 6)) != 0;
  eptp.root = value & kAddressMask;
  if (eptp.memory_type != kMemTypeUc && eptp.memory_type != kMemTypeWb) {
    return absl::InvalidArgumentError(
        absl::StrFormat("EPTP 0x%x: memory type %d (only UC and WB)", value, eptp.memory_type));
  }
  if (eptp.levels != 4) {
    return absl::InvalidArgumentError(
        absl::StrFormat("EPTP 0x%x: %d-level walk (only 4-level EPT)", value, eptp.levels));
  }
  if ((value & Bits(11, 7)) != 0 || (value & Bits(63, 52)) != 0 ||
      (value & AddressReservedMask(maxphyaddr)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("EPTP 0x%x: reserved bits set", value));
  }
  return eptp;
}

uint64_t EncodeEptp(const Eptp& eptp) {
  return (eptp.root & kAddressMask) | (eptp.accessed_dirty ? 1ull << 6 : 0) |
         (static_cast<uint64_t>(eptp.levels - 1) << 3) | eptp.memory_type;
}

}  // namespace rehome::nested
