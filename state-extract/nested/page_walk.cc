// state-extract/nested/page_walk.cc: PageWalker (one translation, a whole-tree scan).
#include "state-extract/nested/page_walk.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace rehome::nested {
namespace {

Permissions Intersect(const Permissions& a, const Permissions& b) {
  return {a.read && b.read, a.write && b.write, a.execute && b.execute, a.user && b.user};
}

bool Allows(const Permissions& perms, Access access) {
  if (!perms.user) return false;
  switch (access) {
    case Access::kRead:
      return perms.read;
    case Access::kWrite:
      return perms.write;
    case Access::kExecute:
      return perms.execute;
  }
  return false;
}

uint64_t IndexAt(uint64_t l2_gpa, int level) { return (l2_gpa >> (12 + 9 * (level - 1))) & 511; }

constexpr Permissions kAll{true, true, true, true};

// The state of one ScanAll.
class Scanner final {
 public:
  Scanner(const EntryFormat& format, const PhysicalMemory& memory, ScanLimits limits)
      : format_(format), memory_(memory), limits_(limits) {}

  absl::Status ScanRoot(uint64_t root) {
    if (!memory_.ReadU64(root).has_value()) {
      AddFault(
          {FaultKind::kTableNotInMemory, kLevels, 0, root, 0, "the root table is not in L1 RAM"});
      return absl::OkStatus();
    }
    levels_[root] = kLevels;
    return Visit(root, kLevels, 0, kAll);
  }

  Scan Finish() && {
    for (const auto& [page, level] : levels_) scan_.table_pages.push_back(page);
    return std::move(scan_);
  }

 private:
  void AddFault(Fault fault) {
    if (scan_.faults.size() < limits_.max_faults) {
      scan_.faults.push_back(std::move(fault));
    } else {
      ++scan_.faults_dropped;
    }
  }

  void AddLeaf(uint64_t l2, const DecodedEntry& d, uint64_t span, const Permissions& perms) {
    if (span == kPage4K) ++scan_.pages_4k;
    if (span == kPage2M) ++scan_.pages_2m;
    if (span == kPage1G) ++scan_.pages_1g;
    if (!scan_.mappings.empty()) {
      Mapping& last = scan_.mappings.back();
      if (last.l2_gpa + last.bytes == l2 && last.l1_gpa + last.bytes == d.address &&
          last.page_size == span && last.perms == perms && last.memory_type == d.memory_type &&
          last.ignore_pat == d.ignore_pat) {
        last.bytes += span;
        return;
      }
    }
    scan_.mappings.push_back({l2, d.address, span, span, perms, d.memory_type, d.ignore_pat});
  }

  absl::Status Visit(uint64_t table, int level, uint64_t l2_base, const Permissions& above) {
    for (uint64_t i = 0; i < 512; ++i) {
      if (++scan_.entries_examined > limits_.max_entries) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "nested page table scan examined more than ", limits_.max_entries, " entries"));
      }
      const uint64_t entry_gpa = table + 8 * i;
      const std::optional<uint64_t> entry = memory_.ReadU64(entry_gpa);
      const uint64_t l2 = l2_base + i * LevelSpan(level);
      if (!entry.has_value()) {
        AddFault(
            {FaultKind::kTableNotInMemory, level, l2, entry_gpa, 0, "table page not in L1 RAM"});
        return absl::OkStatus();
      }
      const DecodedEntry d = format_.Decode(*entry, level);
      switch (d.kind) {
        case DecodedEntry::Kind::kNotPresent:
          break;
        case DecodedEntry::Kind::kMalformed:
          AddFault({d.malformed_as, level, l2, entry_gpa, *entry, d.detail});
          break;
        case DecodedEntry::Kind::kLeaf:
          AddLeaf(l2, d, LevelSpan(level), Intersect(above, d.perms));
          break;
        case DecodedEntry::Kind::kTable: {
          const auto seen = levels_.find(d.address);
          if (seen != levels_.end() && seen->second != level - 1) {
            AddFault({FaultKind::kLoop, level, l2, entry_gpa, *entry,
                      absl::StrFormat("table page 0x%x used at level %d and at level %d", d.address,
                                      seen->second, level - 1)});
            break;
          }
          if (!memory_.ReadU64(d.address).has_value()) {
            AddFault({FaultKind::kTableNotInMemory, level, l2, entry_gpa, *entry,
                      absl::StrFormat("next table 0x%x is not in L1 RAM", d.address)});
            break;
          }
          levels_[d.address] = level - 1;
          RETURN_IF_ERROR(Visit(d.address, level - 1, l2, Intersect(above, d.perms)));
          break;
        }
      }
    }
    return absl::OkStatus();
  }

  const EntryFormat& format_;
  const PhysicalMemory& memory_;
  ScanLimits limits_;
  std::map<uint64_t, int> levels_;  // table page -> the level it was first read at
  Scan scan_;
};

}  // namespace

std::optional<uint64_t> SpanPhysicalMemory::ReadU64(uint64_t gpa) const {
  auto it = regions_.upper_bound(gpa);
  if (it == regions_.begin()) return std::nullopt;
  --it;
  const uint64_t offset = gpa - it->first;
  if (offset >= it->second.size() || it->second.size() - offset < 8) return std::nullopt;
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(it->second[offset + i]) << (8 * i);
  return value;
}

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kNotPresent:
      return "not present";
    case FaultKind::kReservedBit:
      return "reserved bit set";
    case FaultKind::kMisconfigured:
      return "misconfigured";
    case FaultKind::kPermission:
      return "permission";
    case FaultKind::kTableNotInMemory:
      return "table outside L1 RAM";
    case FaultKind::kLoop:
      return "loop";
    case FaultKind::kAddressTooWide:
      return "address too wide";
  }
  return "unknown";
}

std::string Fault::ToString() const {
  std::string s = absl::StrFormat("%s at L2 GPA 0x%x", FaultKindName(kind), l2_gpa);
  if (level > 0) {
    absl::StrAppendFormat(&s, " (level %d entry 0x%016x at L1 GPA 0x%x)", level, entry, entry_gpa);
  }
  if (!detail.empty()) absl::StrAppend(&s, ": ", detail);
  return s;
}

uint64_t Scan::MappedBytes() const {
  uint64_t total = 0;
  for (const Mapping& m : mappings) total += m.bytes;
  return total;
}

Translation PageWalker::Translate(uint64_t l2_gpa, Access access) const {
  Translation result;
  if (l2_gpa > kMaxL2Gpa) {
    result.fault = Fault{
        FaultKind::kAddressTooWide, 0, l2_gpa, 0, 0, "4-level tables translate 48-bit addresses"};
    return result;
  }
  uint64_t table = root_;
  Permissions perms = kAll;
  for (int level = kLevels; level >= 1; --level) {
    const uint64_t entry_gpa = table + 8 * IndexAt(l2_gpa, level);
    const std::optional<uint64_t> entry = memory_.ReadU64(entry_gpa);
    if (!entry.has_value()) {
      result.fault = Fault{FaultKind::kTableNotInMemory, level, l2_gpa, entry_gpa, 0,
                           "table page not in L1 RAM"};
      return result;
    }
    const DecodedEntry d = format_.Decode(*entry, level);
    switch (d.kind) {
      case DecodedEntry::Kind::kNotPresent:
        result.fault = Fault{FaultKind::kNotPresent, level, l2_gpa, entry_gpa, *entry, ""};
        return result;
      case DecodedEntry::Kind::kMalformed:
        result.fault = Fault{d.malformed_as, level, l2_gpa, entry_gpa, *entry, d.detail};
        return result;
      case DecodedEntry::Kind::kTable:
        perms = Intersect(perms, d.perms);
        table = d.address;
        continue;
      case DecodedEntry::Kind::kLeaf: {
        perms = Intersect(perms, d.perms);
        const uint64_t span = LevelSpan(level);
        if (!Allows(perms, access)) {
          result.fault = Fault{FaultKind::kPermission,
                               level,
                               l2_gpa,
                               entry_gpa,
                               *entry,
                               "the access is not allowed by every level"};
          return result;
        }
        result.mapping = Mapping{l2_gpa & ~(span - 1), d.address,   span, span, perms,
                                 d.memory_type,        d.ignore_pat};
        return result;
      }
    }
  }
  // Level 1 entries are always leaves or faults; a format that says otherwise is a bug.
  result.fault = Fault{FaultKind::kMisconfigured, 1, l2_gpa, 0, 0, "no leaf at level 1"};
  return result;
}

absl::StatusOr<Scan> PageWalker::ScanAll(ScanLimits limits) const {
  Scanner scanner(format_, memory_, limits);
  absl::Status status = scanner.ScanRoot(root_);
  if (!status.ok()) return status;
  return std::move(scanner).Finish();
}

}  // namespace rehome::nested
