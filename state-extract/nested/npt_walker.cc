// state-extract/nested/npt_walker.cc: NptFormat.
#include "state-extract/nested/npt_walker.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace rehome::nested {
namespace {

constexpr uint64_t Bits(int hi, int lo) { return ((~0ull) >> (63 - hi)) & ~((1ull << lo) - 1); }

DecodedEntry Malformed(std::string detail) {
  DecodedEntry d;
  d.kind = DecodedEntry::Kind::kMalformed;
  d.malformed_as = FaultKind::kReservedBit;
  d.detail = std::move(detail);
  return d;
}

}  // namespace

DecodedEntry NptFormat::Decode(uint64_t entry, int level) const {
  DecodedEntry d;
  if ((entry & kNptPresent) == 0) return d;
  if ((entry & AddressReservedMask(options_.maxphyaddr)) != 0) {
    return Malformed(absl::StrFormat("address bits above MAXPHYADDR %d", options_.maxphyaddr));
  }
  if (!options_.nx_enabled && (entry & kNptNx) != 0) return Malformed("NX without EFER.NXE");
  if (level == 4 && (entry & Bits(8, 7)) != 0) return Malformed("PML4E bits 8:7 must be zero");
  d.perms.read = true;
  d.perms.write = (entry & kNptWrite) != 0;
  d.perms.user = (entry & kNptUser) != 0;
  d.perms.execute = (entry & kNptNx) == 0;
  const uint8_t pwt_pcd =
      static_cast<uint8_t>(((entry & kNptPcd) ? 2 : 0) | ((entry & kNptPwt) ? 1 : 0));
  const bool large = (level == 3 || level == 2) && (entry & kNptLarge) != 0;
  if (level == 3 && large) {
    if (!options_.gbpages) return Malformed("1 GiB page without 1 GiB page support");
    if ((entry & Bits(29, 13)) != 0) return Malformed("1 GiB page with bits 29:13 set");
  }
  if (level == 2 && large && (entry & Bits(20, 13)) != 0) {
    return Malformed("2 MiB page with bits 20:13 set");
  }
  if (level == 1 || large) {
    d.kind = DecodedEntry::Kind::kLeaf;
    d.address = entry & kAddressMask & ~(LevelSpan(level) - 1);
    const bool pat = (entry & (level == 1 ? kNptPat4K : kNptPatLarge)) != 0;
    d.memory_type = static_cast<uint8_t>((pat ? 4 : 0) | pwt_pcd);
    return d;
  }
  d.kind = DecodedEntry::Kind::kTable;
  d.address = entry & kAddressMask;
  return d;
}

absl::StatusOr<uint64_t> NptRootFromNestedCr3(uint64_t n_cr3, int maxphyaddr) {
  if ((n_cr3 & ~((1ull << 52) - 1)) != 0 || (n_cr3 & AddressReservedMask(maxphyaddr)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("N_CR3 0x%x has bits at or above MAXPHYADDR %d", n_cr3, maxphyaddr));
  }
  return n_cr3 & kAddressMask;
}

}  // namespace rehome::nested
