// state-extract/nested/linear_walk.cc: TranslateLinear.
#include "state-extract/nested/linear_walk.h"

#include "absl/strings/str_format.h"

namespace rehome::nested {

absl::StatusOr<uint64_t> TranslateLinear(const PhysicalMemory& memory, uint64_t cr3,
                                         uint64_t linear, int maxphyaddr) {
  const uint64_t upper = linear >> 47;
  if (upper != 0 && upper != 0x1ffff) {
    return absl::InvalidArgumentError(absl::StrFormat("0x%x is not canonical", linear));
  }
  constexpr uint64_t kPresent = 1, kLargePage = 1ull << 7;
  const uint64_t reserved = AddressReservedMask(maxphyaddr);
  uint64_t table = cr3 & kAddressMask;
  for (int level = kLevels; level >= 1; --level) {
    const uint64_t index = (linear >> (12 + 9 * (level - 1))) & 0x1ff;
    const std::optional<uint64_t> entry = memory.ReadU64(table + index * 8);
    if (!entry.has_value()) {
      return absl::DataLossError(
          absl::StrFormat("level-%d table at 0x%x is outside memory", level, table));
    }
    if ((*entry & kPresent) == 0) {
      return absl::NotFoundError(
          absl::StrFormat("0x%x: not present at level %d (entry 0x%x)", linear, level, *entry));
    }
    if ((*entry & reserved) != 0) {
      return absl::DataLossError(absl::StrFormat(
          "0x%x: entry 0x%x at level %d has reserved address bits", linear, *entry, level));
    }
    const uint64_t address = *entry & kAddressMask;
    if (level == 1 || ((level == 2 || level == 3) && (*entry & kLargePage) != 0)) {
      const uint64_t span = LevelSpan(level);
      return (address & ~(span - 1)) | (linear & (span - 1));
    }
    table = address;
  }
  return absl::InternalError("unreachable");
}

}  // namespace rehome::nested
