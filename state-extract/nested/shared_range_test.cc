// state-extract/nested/shared_range_test.cc: placement of L2's pages in the shared range and
// their memfd offsets, from scans of synthetic NPT and EPT tables.
#include "state-extract/nested/shared_range.h"

#include "gtest/gtest.h"
#include "state-extract/nested/ept_walker.h"
#include "state-extract/nested/npt_walker.h"
#include "state-extract/nested/testing_memory.h"

namespace rehome::nested {
namespace {

constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kPt = 0x4000;
constexpr uint64_t kNpt = kNptPresent | kNptWrite | kNptUser;
constexpr SharedRange kRange{0x1'0000'0000, 64ull << 20};  // 64 MiB of L2 RAM at 4 GiB in L1

Scan ScanNpt(const PageMemory& m) {
  NptFormat format;
  PageWalker walker(format, m, kPml4);
  absl::StatusOr<Scan> scan = walker.ScanAll();
  EXPECT_TRUE(scan.ok()) << scan.status();
  return scan.ok() ? *scan : Scan{};
}

PageMemory Tables() {
  PageMemory m;
  m.SetEntry(kPml4, 0, kPdpt | kNpt);
  m.SetEntry(kPdpt, 0, kPd | kNpt);
  m.SetEntry(kPd, 0, kPt | kNpt);
  m.AddPage(kPt);
  return m;
}

TEST(SharedRange, IdentityLayoutMapsL2AddressesToEqualMemfdOffsets) {
  PageMemory m = Tables();
  for (uint64_t i = 0; i < 512; ++i) m.SetEntry(kPt, i, (kRange.l1_base + i * kPage4K) | kNpt);
  for (uint64_t i = 1; i < 32; ++i) {
    m.SetEntry(kPd, i, (kRange.l1_base + i * kPage2M) | kNpt | kNptLarge);
  }
  const PlacementReport report = CheckPlacement(ScanNpt(m), kRange);
  EXPECT_TRUE(report.ok) << report.Summary();
  EXPECT_EQ(report.mapped_bytes, kRange.size);
  EXPECT_EQ(report.bytes_in_range, kRange.size);
  ASSERT_EQ(report.extents.size(), 2u);  // the 4 KiB run and the 2 MiB run
  EXPECT_EQ(report.extents[0], (MemfdExtent{0, 0, kPage2M, true}));
  EXPECT_EQ(report.extents[1], (MemfdExtent{kPage2M, kPage2M, 31 * kPage2M, true}));
}

TEST(SharedRange, PagesOutsideTheRangeAreReportedAndSplitAtItsEdge) {
  PageMemory m = Tables();
  // A 1 GiB page at the range's base: its first 64 MiB are shared, the rest sticks out.
  m.SetEntry(kPdpt, 1, kRange.l1_base | kNpt | kNptLarge);
  // An L2 page backed by L1 memory that is not shared (the L1 kernel's, say).
  m.SetEntry(kPt, 0, 0x0020'0000 | kNpt);
  const PlacementReport report = CheckPlacement(ScanNpt(m), kRange);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bytes_in_range, kRange.size);
  ASSERT_EQ(report.outside.size(), 2u);
  EXPECT_EQ(report.outside[0].l1_gpa, 0x0020'0000u);
  EXPECT_EQ(report.outside[1].l2_gpa, kPage1G + kRange.size);
  EXPECT_EQ(report.outside[1].l1_gpa, kRange.l1_base + kRange.size);
  EXPECT_EQ(report.outside[1].bytes, kPage1G - kRange.size);
  ASSERT_EQ(report.extents.size(), 1u);
  EXPECT_EQ(report.extents[0], (MemfdExtent{kPage1G, 0, kRange.size, true}));
  EXPECT_NE(report.Summary().find("REJECTED"), std::string::npos);
}

TEST(SharedRange, ATablePageInsideTheRangeIsRejected) {
  PageMemory m = Tables();
  const uint64_t evil_pt = kRange.l1_base + 0x10000;  // L2 could rewrite this table
  m.SetEntry(kPd, 1, evil_pt | kNpt);
  m.SetEntry(evil_pt, 0, kRange.l1_base | kNpt);
  const PlacementReport report = CheckPlacement(ScanNpt(m), kRange);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.tables_inside, std::vector<uint64_t>{evil_pt});
}

TEST(SharedRange, MmioMarkersMapNothingAndDoNotBreakPlacement) {
  PageMemory m = Tables();
  m.SetEntry(kPt, 0, kRange.l1_base | kNpt);
  // KVM's MMIO marker on AMD: present with reserved address bits (MAXPHYADDR 40 here).
  m.SetEntry(kPt, 1, (0xfffull << 40) | 1);
  NptFormat format({40, true, true});
  PageWalker walker(format, m, kPml4);
  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  const PlacementReport report = CheckPlacement(*scan, kRange);
  EXPECT_TRUE(report.ok) << report.Summary();
  EXPECT_EQ(report.faults, 1u);
  EXPECT_EQ(report.mapped_bytes, kPage4K);
}

TEST(SharedRange, EptScanGivesTheSameExtents) {
  PageMemory m;
  constexpr uint64_t kRwx = kEptRead | kEptWrite | kEptExecute;
  constexpr uint64_t kWb = uint64_t{kMemTypeWb} << kEptMemTypeShift;
  m.SetEntry(kPml4, 0, kPdpt | kRwx);
  m.SetEntry(kPdpt, 0, kPd | kRwx);
  for (uint64_t i = 0; i < 32; ++i) {
    m.SetEntry(kPd, i, (kRange.l1_base + i * kPage2M) | kRwx | kWb | kEptLarge);
  }
  // Intel's MMIO marker in KVM: a misconfigured (write+execute, no read) entry.
  m.SetEntry(kPd, 100, kEptWrite | kEptExecute);
  EptFormat format;
  PageWalker walker(format, m, kPml4);
  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  const PlacementReport report = CheckPlacement(*scan, kRange);
  EXPECT_TRUE(report.ok) << report.Summary();
  ASSERT_EQ(report.extents.size(), 1u);
  EXPECT_EQ(report.extents[0], (MemfdExtent{0, 0, kRange.size, true}));
  EXPECT_EQ(report.faults, 1u);
}

TEST(SharedRange, MemfdOffsetIsOverflowSafe) {
  EXPECT_EQ(kRange.MemfdOffset(kRange.l1_base + 5, 10), 5u);
  EXPECT_FALSE(kRange.MemfdOffset(kRange.l1_base - 1, 2).has_value());
  EXPECT_FALSE(kRange.MemfdOffset(kRange.l1_base + kRange.size - 4, 8).has_value());
  EXPECT_FALSE(kRange.MemfdOffset(~0ull - 2, 8).has_value());
  EXPECT_TRUE(kRange.Contains(kRange.l1_base, kRange.size));
}

}  // namespace
}  // namespace rehome::nested
