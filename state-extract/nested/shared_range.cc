// state-extract/nested/shared_range.cc: CheckPlacement.
#include "state-extract/nested/shared_range.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rehome::nested {
namespace {

void AddOutside(const Mapping& m, uint64_t l2, uint64_t l1, uint64_t bytes,
                PlacementReport* report) {
  if (bytes == 0) return;
  Mapping part = m;
  part.l2_gpa = l2;
  part.l1_gpa = l1;
  part.bytes = bytes;
  report->outside.push_back(part);
}

}  // namespace

PlacementReport CheckPlacement(const Scan& scan, const SharedRange& range) {
  PlacementReport report;
  const uint64_t range_end = range.l1_base + range.size;
  for (const Mapping& m : scan.mappings) {
    report.mapped_bytes += m.bytes;
    const uint64_t end = m.l1_gpa + m.bytes;
    const uint64_t lo = std::max(m.l1_gpa, range.l1_base);
    const uint64_t hi = std::min(end, range_end);
    if (lo >= hi) {
      AddOutside(m, m.l2_gpa, m.l1_gpa, m.bytes, &report);
      continue;
    }
    AddOutside(m, m.l2_gpa, m.l1_gpa, lo - m.l1_gpa, &report);
    report.bytes_in_range += hi - lo;
    report.extents.push_back(
        {m.l2_gpa + (lo - m.l1_gpa), lo - range.l1_base, hi - lo, m.perms.write});
    AddOutside(m, m.l2_gpa + (hi - m.l1_gpa), hi, end - hi, &report);
  }
  for (uint64_t page : scan.table_pages) {
    if (range.Contains(page, kPage4K)) report.tables_inside.push_back(page);
  }
  report.faults = scan.faults.size() + scan.faults_dropped;
  report.ok = report.outside.empty() && report.tables_inside.empty();
  return report;
}

std::string PlacementReport::Summary() const {
  std::string s =
      absl::StrFormat("%d of %d mapped bytes in the shared range", bytes_in_range, mapped_bytes);
  if (!outside.empty()) {
    absl::StrAppendFormat(&s, "; %d mapping(s) outside, first L2 0x%x -> L1 0x%x (%d bytes)",
                          outside.size(), outside[0].l2_gpa, outside[0].l1_gpa, outside[0].bytes);
  }
  if (!tables_inside.empty()) {
    absl::StrAppendFormat(&s, "; %d table page(s) inside the range, first 0x%x",
                          tables_inside.size(), tables_inside[0]);
  }
  if (faults > 0) absl::StrAppendFormat(&s, "; %d entries that map nothing", faults);
  absl::StrAppend(&s, ok ? " (ok)" : " (REJECTED)");
  return s;
}

}  // namespace rehome::nested
