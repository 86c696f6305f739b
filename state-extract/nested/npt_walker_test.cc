// state-extract/nested/npt_walker_test.cc: the NPT walker on synthetic tables: 4 KiB, 2 MiB and
// 1 GiB pages, effective permissions, every reserved-bit rule, tables outside RAM, loops, the
// scan budget, and a deterministic fuzz loop over random tables.
#include "state-extract/nested/npt_walker.h"

#include <random>

#include "gtest/gtest.h"
#include "state-extract/nested/testing_memory.h"

namespace rehome::nested {
namespace {

constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kPt = 0x4000;
constexpr uint64_t kTable = kNptPresent | kNptWrite | kNptUser;  // a permissive non-leaf entry
constexpr uint64_t kLeafRw = kNptPresent | kNptWrite | kNptUser;
constexpr uint64_t kL2Ram = 0x1'0000'0000;  // where the synthetic L2 pages live in L1

// PML4[0] -> PDPT, PDPT[0] -> PD, PD[0] -> PT.
PageMemory FourLevels() {
  PageMemory m;
  m.SetEntry(kPml4, 0, kPdpt | kTable);
  m.SetEntry(kPdpt, 0, kPd | kTable);
  m.SetEntry(kPd, 0, kPt | kTable);
  m.AddPage(kPt);
  return m;
}

TEST(NptWalker, Translates4KPagesAndCoalescesContiguousOnes) {
  PageMemory m = FourLevels();
  for (uint64_t i = 0; i < 16; ++i) m.SetEntry(kPt, i, (kL2Ram + i * kPage4K) | kLeafRw);
  m.SetEntry(kPt, 20, 0x7000'0000 | kLeafRw);  // not contiguous with the run
  NptFormat format;
  PageWalker walker(format, m, kPml4);

  Translation t = walker.Translate(0x3abc, Access::kWrite);
  ASSERT_TRUE(t.mapping.has_value()) << t.fault->ToString();
  EXPECT_EQ(t.mapping->l2_gpa, 0x3000u);
  EXPECT_EQ(t.mapping->l1_gpa, kL2Ram + 0x3000);
  EXPECT_EQ(t.mapping->page_size, kPage4K);
  EXPECT_TRUE(t.mapping->perms.write);

  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok()) << scan.status();
  ASSERT_EQ(scan->mappings.size(), 2u);
  EXPECT_EQ(scan->mappings[0].l2_gpa, 0u);
  EXPECT_EQ(scan->mappings[0].l1_gpa, kL2Ram);
  EXPECT_EQ(scan->mappings[0].bytes, 16 * kPage4K);
  EXPECT_EQ(scan->mappings[1].l2_gpa, 20 * kPage4K);
  EXPECT_EQ(scan->mappings[1].l1_gpa, 0x7000'0000u);
  EXPECT_EQ(scan->pages_4k, 17u);
  EXPECT_EQ(scan->MappedBytes(), 17 * kPage4K);
  EXPECT_TRUE(scan->faults.empty());
  EXPECT_EQ(scan->table_pages, (std::vector<uint64_t>{kPml4, kPdpt, kPd, kPt}));
}

TEST(NptWalker, Translates2MAnd1GPagesWithTheirOffsets) {
  PageMemory m;
  m.SetEntry(kPml4, 0, kPdpt | kTable);
  m.SetEntry(kPdpt, 0, kPd | kTable);
  m.SetEntry(kPd, 1, (kL2Ram + kPage2M * 7) | kLeafRw | kNptLarge | kNptPatLarge);  // L2 2 MiB
  m.SetEntry(kPdpt, 1, (kL2Ram * 2) | kLeafRw | kNptLarge);                         // L2 1 GiB
  NptFormat format;
  PageWalker walker(format, m, kPml4);

  Translation t2m = walker.Translate(kPage2M + 0x12345, Access::kRead);
  ASSERT_TRUE(t2m.mapping.has_value()) << t2m.fault->ToString();
  EXPECT_EQ(t2m.mapping->page_size, kPage2M);
  EXPECT_EQ(t2m.mapping->l2_gpa, kPage2M);
  EXPECT_EQ(t2m.mapping->l1_gpa, kL2Ram + kPage2M * 7);
  EXPECT_EQ(t2m.mapping->memory_type, 4);  // PAT index: the large-page PAT bit

  Translation t1g = walker.Translate(kPage1G + 0x2345678, Access::kExecute);
  ASSERT_TRUE(t1g.mapping.has_value()) << t1g.fault->ToString();
  EXPECT_EQ(t1g.mapping->page_size, kPage1G);
  EXPECT_EQ(t1g.mapping->l1_gpa, kL2Ram * 2);

  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->pages_2m, 1u);
  EXPECT_EQ(scan->pages_1g, 1u);
  EXPECT_EQ(scan->MappedBytes(), kPage2M + kPage1G);
}

TEST(NptWalker, EffectivePermissionsAreTheAndOfEveryLevel) {
  PageMemory m = FourLevels();
  m.SetEntry(kPt, 0, kL2Ram | kLeafRw);
  m.SetEntry(kPt, 1, (kL2Ram + kPage4K) | kNptPresent | kNptUser);  // read-only
  m.SetEntry(kPt, 2, (kL2Ram + 2 * kPage4K) | kLeafRw | kNptNx);    // no execute
  NptFormat format;
  PageWalker walker(format, m, kPml4);
  EXPECT_TRUE(walker.Translate(0, Access::kExecute).mapping.has_value());
  EXPECT_TRUE(walker.Translate(kPage4K, Access::kRead).mapping.has_value());
  Translation ro = walker.Translate(kPage4K, Access::kWrite);
  ASSERT_TRUE(ro.fault.has_value());
  EXPECT_EQ(ro.fault->kind, FaultKind::kPermission);
  EXPECT_EQ(ro.fault->level, 1);
  EXPECT_EQ(walker.Translate(2 * kPage4K, Access::kExecute).fault->kind, FaultKind::kPermission);

  // U/S clear in the PDPT entry: a nested walk is a user access, so nothing is reachable.
  m.SetEntry(kPml4, 0, kPdpt | kNptPresent | kNptWrite);
  Translation supervisor = walker.Translate(0, Access::kRead);
  ASSERT_TRUE(supervisor.fault.has_value());
  EXPECT_EQ(supervisor.fault->kind, FaultKind::kPermission);
  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  EXPECT_FALSE(scan->mappings[0].perms.user);
}

TEST(NptWalker, NotPresentEntriesFaultAtTheirLevel) {
  PageMemory m = FourLevels();
  NptFormat format;
  PageWalker walker(format, m, kPml4);
  Translation pt = walker.Translate(0x5000, Access::kRead);
  ASSERT_TRUE(pt.fault.has_value());
  EXPECT_EQ(pt.fault->kind, FaultKind::kNotPresent);
  EXPECT_EQ(pt.fault->level, 1);
  EXPECT_EQ(pt.fault->entry_gpa, kPt + 5 * 8);
  Translation pml4 = walker.Translate(1ull << 40, Access::kRead);
  EXPECT_EQ(pml4.fault->level, 4);
  EXPECT_EQ(walker.Translate(1ull << 48, Access::kRead).fault->kind, FaultKind::kAddressTooWide);
}

struct ReservedCase {
  const char* name;
  int level;
  uint64_t entry;
  NptOptions options;
};

TEST(NptWalker, EveryReservedBitRuleIsAReservedBitFault) {
  const ReservedCase cases[] = {
      {"address above MAXPHYADDR 40", 1, (1ull << 45) | kLeafRw, {40, true, true}},
      {"NX without EFER.NXE", 1, kL2Ram | kLeafRw | kNptNx, {52, false, true}},
      {"PML4E PS", 4, kPdpt | kTable | kNptLarge, {}},
      {"PML4E bit 8", 4, kPdpt | kTable | (1ull << 8), {}},
      {"1 GiB page without support", 3, kL2Ram | kLeafRw | kNptLarge, {52, true, false}},
      {"1 GiB page bits 29:13", 3, kL2Ram | kLeafRw | kNptLarge | (1ull << 20), {}},
      {"2 MiB page bits 20:13", 2, kL2Ram | kLeafRw | kNptLarge | (1ull << 13), {}},
  };
  for (const ReservedCase& c : cases) {
    SCOPED_TRACE(c.name);
    PageMemory m;
    m.SetEntry(kPml4, 0, kPdpt | kTable);
    m.SetEntry(kPdpt, 0, kPd | kTable);
    m.SetEntry(kPd, 0, kPt | kTable);
    m.AddPage(kPt);
    const uint64_t table = c.level == 4 ? kPml4 : c.level == 3 ? kPdpt : c.level == 2 ? kPd : kPt;
    m.SetEntry(table, 0, c.entry);
    NptFormat format(c.options);
    PageWalker walker(format, m, kPml4);
    Translation t = walker.Translate(0, Access::kRead);
    ASSERT_TRUE(t.fault.has_value());
    EXPECT_EQ(t.fault->kind, FaultKind::kReservedBit) << t.fault->ToString();
    EXPECT_EQ(t.fault->level, c.level);
    EXPECT_FALSE(t.fault->detail.empty());
    absl::StatusOr<Scan> scan = walker.ScanAll();
    ASSERT_TRUE(scan.ok());
    ASSERT_EQ(scan->faults.size(), 1u);
    EXPECT_EQ(scan->faults[0].kind, FaultKind::kReservedBit);
    EXPECT_TRUE(scan->mappings.empty());
  }
}

TEST(NptWalker, TablesOutsideRamAndLoopsAreFaultsNotCrashes) {
  PageMemory m = FourLevels();
  m.SetEntry(kPt, 0, kL2Ram | kLeafRw);
  m.SetEntry(kPd, 1, 0x9990'0000 | kTable);  // next table not in L1 RAM
  m.SetEntry(kPdpt, 1, kPml4 | kTable);      // the PML4 page reused as a page directory
  NptFormat format;
  PageWalker walker(format, m, kPml4);
  EXPECT_EQ(walker.Translate(kPage2M, Access::kRead).fault->kind, FaultKind::kTableNotInMemory);

  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->faults.size(), 2u);
  EXPECT_EQ(scan->faults[0].kind, FaultKind::kTableNotInMemory);
  EXPECT_EQ(scan->faults[0].l2_gpa, kPage2M);
  EXPECT_EQ(scan->faults[1].kind, FaultKind::kLoop);
  EXPECT_EQ(scan->faults[1].l2_gpa, kPage1G);
  EXPECT_EQ(scan->MappedBytes(), kPage4K);  // the good page is still found

  PageWalker no_root(format, m, 0x5555'0000);
  absl::StatusOr<Scan> empty = no_root.ScanAll();
  ASSERT_TRUE(empty.ok());
  ASSERT_EQ(empty->faults.size(), 1u);
  EXPECT_EQ(empty->faults[0].kind, FaultKind::kTableNotInMemory);
}

TEST(NptWalker, SharedTablesAreBoundedByTheScanBudget) {
  PageMemory m;
  for (uint64_t i = 0; i < 512; ++i) {
    m.SetEntry(kPml4, i, kPdpt | kTable);
    m.SetEntry(kPdpt, i, kPd | kTable);
    m.SetEntry(kPd, i, kPt | kTable);
    m.SetEntry(kPt, i, (kL2Ram + i * kPage4K) | kLeafRw);
  }
  NptFormat format;
  PageWalker walker(format, m, kPml4);
  absl::StatusOr<Scan> scan = walker.ScanAll({.max_entries = 100000});
  EXPECT_EQ(scan.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(NptWalker, NestedCr3GivesTheRootOrAnError) {
  EXPECT_EQ(*NptRootFromNestedCr3(0x1234'5000 | 0x18), 0x1234'5000u);  // PWT/PCD ignored
  EXPECT_FALSE(NptRootFromNestedCr3(1ull << 55).ok());
  EXPECT_FALSE(NptRootFromNestedCr3(1ull << 45, 40).ok());
}

TEST(NptWalker, RandomTablesNeverCrashOrRunAway) {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 200; ++round) {
    PageMemory m;
    // Eight table pages whose entries point at each other, at pages outside RAM, or anywhere.
    for (uint64_t page = 1; page <= 8; ++page) {
      for (uint64_t i = 0; i < 512; i += 1 + rng() % 64) {
        uint64_t entry = rng();
        if (rng() % 2) entry = (entry & ~kAddressMask) | ((1 + rng() % 10) * kPage4K);
        m.SetEntry(page * kPage4K, i, entry);
      }
    }
    NptFormat format({static_cast<int>(36 + rng() % 17), (rng() % 2) == 0, (rng() % 2) == 0});
    PageWalker walker(format, m, kPage4K);
    absl::StatusOr<Scan> scan = walker.ScanAll({.max_entries = 1 << 16, .max_faults = 64});
    if (scan.ok()) {
      EXPECT_LE(scan->faults.size(), 64u);
      for (const Mapping& mapping : scan->mappings) EXPECT_EQ(mapping.bytes % kPage4K, 0u);
    }
    for (int i = 0; i < 64; ++i) {
      Translation t = walker.Translate(rng() & kMaxL2Gpa, Access::kRead);
      EXPECT_NE(t.mapping.has_value(), t.fault.has_value());
    }
  }
}

}  // namespace
}  // namespace rehome::nested
