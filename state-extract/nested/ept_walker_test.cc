// state-extract/nested/ept_walker_test.cc: the EPT walker on synthetic tables: leaves of every
// size with their memory types, permissions, every misconfiguration rule, and the EPT pointer.
#include "state-extract/nested/ept_walker.h"

#include "gtest/gtest.h"
#include "state-extract/nested/testing_memory.h"

namespace rehome::nested {
namespace {

constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kPt = 0x4000;
constexpr uint64_t kRwx = kEptRead | kEptWrite | kEptExecute;
constexpr uint64_t kWb = uint64_t{kMemTypeWb} << kEptMemTypeShift;
constexpr uint64_t kUc = uint64_t{kMemTypeUc} << kEptMemTypeShift;
constexpr uint64_t kL2Ram = 0x1'0000'0000;

PageMemory FourLevels() {
  PageMemory m;
  m.SetEntry(kPml4, 0, kPdpt | kRwx);
  m.SetEntry(kPdpt, 0, kPd | kRwx);
  m.SetEntry(kPd, 0, kPt | kRwx);
  m.AddPage(kPt);
  return m;
}

TEST(EptWalker, LeavesOfEverySizeWithMemoryTypes) {
  PageMemory m = FourLevels();
  m.SetEntry(kPt, 3, (kL2Ram + 0x5000) | kRwx | kWb | kEptIgnorePat);
  m.SetEntry(kPd, 1, (kL2Ram + kPage2M * 3) | kEptRead | kEptWrite | kUc | kEptLarge);
  m.SetEntry(kPdpt, 2, (kL2Ram * 4) | kRwx | kWb | kEptLarge);
  EptFormat format;
  PageWalker walker(format, m, kPml4);

  Translation t4k = walker.Translate(0x3fff, Access::kExecute);
  ASSERT_TRUE(t4k.mapping.has_value()) << t4k.fault->ToString();
  EXPECT_EQ(t4k.mapping->l1_gpa, kL2Ram + 0x5000);
  EXPECT_EQ(t4k.mapping->memory_type, kMemTypeWb);
  EXPECT_TRUE(t4k.mapping->ignore_pat);

  Translation t2m = walker.Translate(kPage2M + 17, Access::kWrite);
  ASSERT_TRUE(t2m.mapping.has_value()) << t2m.fault->ToString();
  EXPECT_EQ(t2m.mapping->page_size, kPage2M);
  EXPECT_EQ(t2m.mapping->l1_gpa, kL2Ram + kPage2M * 3);
  EXPECT_EQ(t2m.mapping->memory_type, kMemTypeUc);
  EXPECT_EQ(walker.Translate(kPage2M, Access::kExecute).fault->kind, FaultKind::kPermission);

  Translation t1g = walker.Translate(2 * kPage1G + 5, Access::kRead);
  ASSERT_TRUE(t1g.mapping.has_value());
  EXPECT_EQ(t1g.mapping->page_size, kPage1G);
  EXPECT_EQ(t1g.mapping->l1_gpa, kL2Ram * 4);

  absl::StatusOr<Scan> scan = walker.ScanAll();
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->pages_4k, 1u);
  EXPECT_EQ(scan->pages_2m, 1u);
  EXPECT_EQ(scan->pages_1g, 1u);
  EXPECT_TRUE(scan->faults.empty());
}

TEST(EptWalker, NotPresentIsAViolationNotAMisconfiguration) {
  PageMemory m = FourLevels();
  EptFormat format;
  PageWalker walker(format, m, kPml4);
  Translation t = walker.Translate(0x1000, Access::kRead);
  ASSERT_TRUE(t.fault.has_value());
  EXPECT_EQ(t.fault->kind, FaultKind::kNotPresent);
  EXPECT_EQ(t.fault->level, 1);
}

TEST(EptWalker, ReadOnlyLeafRefusesWrites) {
  PageMemory m = FourLevels();
  m.SetEntry(kPt, 0, kL2Ram | kEptRead | kWb);
  EptFormat format;
  PageWalker walker(format, m, kPml4);
  EXPECT_TRUE(walker.Translate(0, Access::kRead).mapping.has_value());
  EXPECT_EQ(walker.Translate(0, Access::kWrite).fault->kind, FaultKind::kPermission);
  // Write denied at a higher level denies it for the whole subtree.
  m.SetEntry(kPt, 0, kL2Ram | kRwx | kWb);
  m.SetEntry(kPdpt, 0, kPd | kEptRead | kEptExecute);
  EXPECT_EQ(walker.Translate(0, Access::kWrite).fault->kind, FaultKind::kPermission);
}

struct MisconfigCase {
  const char* name;
  int level;
  uint64_t entry;
  EptOptions options;
};

TEST(EptWalker, EveryMalformedEntryIsAMisconfiguration) {
  const MisconfigCase cases[] = {
      {"write without read", 1, kL2Ram | kEptWrite | kWb, {}},
      {"write+execute without read", 1, kL2Ram | kEptWrite | kEptExecute | kWb, {}},
      {"execute-only unsupported", 1, kL2Ram | kEptExecute | kWb, {52, false, true}},
      {"memory type 2", 1, kL2Ram | kRwx | (2ull << kEptMemTypeShift), {}},
      {"memory type 3", 2, kL2Ram | kRwx | (3ull << kEptMemTypeShift) | kEptLarge, {}},
      {"memory type 7", 3, kL2Ram | kRwx | (7ull << kEptMemTypeShift) | kEptLarge, {}},
      {"address above MAXPHYADDR 39", 1, (1ull << 40) | kRwx | kWb, {39, true, true}},
      {"PML4E large", 4, kPdpt | kRwx | kEptLarge, {}},
      {"PML4E memory type bits", 4, kPdpt | kRwx | kWb, {}},
      {"non-leaf bits 6:3", 2, kPt | kRwx | kEptIgnorePat, {}},
      {"2 MiB bits 20:12", 2, kL2Ram | kRwx | kWb | kEptLarge | (1ull << 12), {}},
      {"1 GiB bits 29:12", 3, kL2Ram | kRwx | kWb | kEptLarge | (1ull << 21), {}},
      {"1 GiB unsupported", 3, kL2Ram | kRwx | kWb | kEptLarge, {52, true, false}},
  };
  for (const MisconfigCase& c : cases) {
    SCOPED_TRACE(c.name);
    PageMemory m = FourLevels();
    const uint64_t table = c.level == 4 ? kPml4 : c.level == 3 ? kPdpt : c.level == 2 ? kPd : kPt;
    m.SetEntry(table, 0, c.entry);
    EptFormat format(c.options);
    PageWalker walker(format, m, kPml4);
    Translation t = walker.Translate(0, Access::kRead);
    ASSERT_TRUE(t.fault.has_value());
    EXPECT_EQ(t.fault->kind, FaultKind::kMisconfigured) << t.fault->ToString();
    EXPECT_EQ(t.fault->level, c.level);
    absl::StatusOr<Scan> scan = walker.ScanAll();
    ASSERT_TRUE(scan.ok());
    ASSERT_EQ(scan->faults.size(), 1u);
    EXPECT_EQ(scan->faults[0].kind, FaultKind::kMisconfigured);
  }
}

TEST(EptWalker, ExecuteOnlyLeafIsValidWhenSupported) {
  PageMemory m = FourLevels();
  m.SetEntry(kPt, 0, kL2Ram | kEptExecute | kWb);
  EptFormat format;
  PageWalker walker(format, m, kPml4);
  EXPECT_TRUE(walker.Translate(0, Access::kExecute).mapping.has_value());
  EXPECT_EQ(walker.Translate(0, Access::kRead).fault->kind, FaultKind::kPermission);
}

TEST(EptWalker, EptPointerParsesAndRejectsWhatHardwareRejects) {
  absl::StatusOr<Eptp> eptp = ParseEptp(0x1234'5000 | (3 << 3) | (1 << 6) | kMemTypeWb);
  ASSERT_TRUE(eptp.ok()) << eptp.status();
  EXPECT_EQ(eptp->root, 0x1234'5000u);
  EXPECT_EQ(eptp->levels, 4);
  EXPECT_TRUE(eptp->accessed_dirty);
  EXPECT_EQ(eptp->memory_type, kMemTypeWb);
  EXPECT_EQ(EncodeEptp(*eptp), 0x1234'5000u | (3 << 3) | (1 << 6) | kMemTypeWb);

  EXPECT_FALSE(ParseEptp(0x1000 | (3 << 3) | kMemTypeWt).ok());  // memory type
  EXPECT_FALSE(ParseEptp(0x1000 | (4 << 3) | kMemTypeWb).ok());  // 5-level
  EXPECT_FALSE(ParseEptp(0x1000 | (3 << 3) | (1 << 8)).ok());    // reserved bit 8
  EXPECT_FALSE(ParseEptp((1ull << 42) | (3 << 3), 39).ok());     // beyond MAXPHYADDR
}

}  // namespace
}  // namespace rehome::nested
