// kvm-l0/cpuid_test.cc: SanitizeCpuid on made-up CPUID tables (pure function, no KVM).
#include "kvm-l0/cpuid.h"

#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

const CpuidEntry* Find(const std::vector<CpuidEntry>& entries, uint32_t function,
                       uint32_t index = 0) {
  for (const CpuidEntry& e : entries) {
    if (e.function == function && e.index == index) return &e;
  }
  return nullptr;
}

std::vector<CpuidEntry> MadeUpSupported() {
  return {
      {0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},
      {1, 0, 0, 0x000806ec, 0x00ff0800 | 0x42,
       kCpuidLeaf1EcxVmx | kCpuidLeaf1EcxPdcm | kCpuidLeaf1EcxOsxsave | 0x1, 0x178bfbff},
      {4, 0, kCpuidFlagSignificantIndex, 0x1c004121, 0x01c0003f, 0x3f, 0},
      {4, 1, kCpuidFlagSignificantIndex, 0, 0, 0, 0},
      {6, 0, 0, 0x4, 0x1, 0x1, 0},
      {7, 0, kCpuidFlagSignificantIndex, 0, 0x219c07ab, 0x4, 0xac000400},
      {0xa, 0, 0, 0x07300402, 0, 0, 0x603},
      {0xb, 0, kCpuidFlagSignificantIndex, 1, 2, 0x100, 7},
      {0xb, 1, kCpuidFlagSignificantIndex, 4, 8, 0x201, 7},
      {0xb, 2, kCpuidFlagSignificantIndex, 0, 0, 2, 7},
      {0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d},
      {0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800},
  };
}

TEST(SanitizeCpuid, SetsApicIdsAndTopologyPerVcpu) {
  const std::vector<CpuidEntry> out = SanitizeCpuid(MadeUpSupported(), 2, 4);
  const CpuidEntry* leaf1 = Find(out, 1);
  ASSERT_NE(leaf1, nullptr);
  EXPECT_EQ(leaf1->ebx >> 24, 2u);
  EXPECT_EQ((leaf1->ebx >> 16) & 0xff, 4u);
  EXPECT_EQ((leaf1->ebx >> 8) & 0xff, 8u);
  EXPECT_EQ(leaf1->ebx & 0xff, 0x42u);  // brand index kept
  EXPECT_TRUE(leaf1->edx & kCpuidLeaf1EdxHtt);
  for (uint32_t sub = 0; sub < 3; ++sub) {
    const CpuidEntry* topo = Find(out, 0xb, sub);
    ASSERT_NE(topo, nullptr);
    EXPECT_EQ(topo->edx, 2u) << "sub-leaf " << sub;
    EXPECT_EQ(topo->ecx & 0xff, sub);
  }
  EXPECT_EQ(Find(out, 0xb, 0)->ebx, 1u);
  EXPECT_EQ(Find(out, 0xb, 1)->ebx, 4u);
  EXPECT_EQ(Find(out, 0xb, 1)->eax, 2u);  // 2 bits of core id for 4 vCPUs
  EXPECT_EQ((Find(out, 0xb, 1)->ecx >> 8) & 0xff, 2u);
  EXPECT_EQ((Find(out, 0xb, 2)->ecx >> 8) & 0xff, 0u);
  EXPECT_EQ(Find(out, 4, 0)->eax >> 26, 3u);
  EXPECT_EQ(Find(out, 4, 1)->eax, 0u);  // the null cache entry stays null
}

TEST(SanitizeCpuid, MarksHypervisorAndClearsUnemulatedFeatures) {
  const std::vector<CpuidEntry> out = SanitizeCpuid(MadeUpSupported(), 0, 1);
  const CpuidEntry* leaf1 = Find(out, 1);
  ASSERT_NE(leaf1, nullptr);
  EXPECT_TRUE(leaf1->ecx & kCpuidLeaf1EcxHypervisor);
  EXPECT_FALSE(leaf1->ecx & kCpuidLeaf1EcxVmx);
  EXPECT_FALSE(leaf1->ecx & kCpuidLeaf1EcxPdcm);
  EXPECT_FALSE(leaf1->ecx & kCpuidLeaf1EcxOsxsave);
  EXPECT_TRUE(leaf1->ecx & 0x1);  // other features kept
  EXPECT_FALSE(leaf1->edx & kCpuidLeaf1EdxHtt);
  EXPECT_EQ(*Find(out, 6), (CpuidEntry{6, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(*Find(out, 0xa), (CpuidEntry{0xa, 0, 0, 0, 0, 0, 0}));
}

TEST(SanitizeCpuid, PassesOtherLeavesThroughInOrder) {
  const std::vector<CpuidEntry> in = MadeUpSupported();
  const std::vector<CpuidEntry> out = SanitizeCpuid(in, 1, 2);
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].function, in[i].function);
    EXPECT_EQ(out[i].index, in[i].index);
    EXPECT_EQ(out[i].flags, in[i].flags);
  }
  EXPECT_EQ(*Find(out, 0), in[0]);
  EXPECT_EQ(*Find(out, 7), *Find(in, 7));
  EXPECT_EQ(*Find(out, 0x40000000), *Find(in, 0x40000000));  // KVM signature kept
  EXPECT_EQ(*Find(out, 0x80000001), *Find(in, 0x80000001));
}

TEST(SupportedXcr0, IsLeafDSubleafZeroWhenXsaveIsThere) {
  std::vector<CpuidEntry> cpuid = MadeUpSupported();
  EXPECT_EQ(SupportedXcr0(cpuid), 0u);  // no leaf 0xd
  cpuid.push_back({0xd, 0, kCpuidFlagSignificantIndex, 0x7, 0x240, 0x340, 0});
  EXPECT_EQ(SupportedXcr0(cpuid), 0u);  // leaf 1 without XSAVE
  cpuid[1].ecx |= 1u << 26;
  EXPECT_EQ(SupportedXcr0(cpuid), 0x7u);
}

TEST(SanitizeCpuid, IsPureAndDeterministic) {
  EXPECT_EQ(SanitizeCpuid(MadeUpSupported(), 3, 8), SanitizeCpuid(MadeUpSupported(), 3, 8));
  EXPECT_NE(SanitizeCpuid(MadeUpSupported(), 3, 8), SanitizeCpuid(MadeUpSupported(), 4, 8));
  EXPECT_TRUE(SanitizeCpuid({}, 0, 1).empty());
}

}  // namespace
}  // namespace rehome
