// kvm-l0/kvm_system_test.cc: KvmSystem on the real /dev/kvm.
#include "kvm-l0/kvm_system.h"

#include <linux/kvm.h>
#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace rehome {
namespace {

#define SKIP_WITHOUT_KVM()                                                               \
  do {                                                                                   \
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm here"; \
  } while (0)

TEST(KvmSystem, OpensAndReportsCapabilities) {
  SKIP_WITHOUT_KVM();
  auto kvm = KvmSystem::Open();
  ASSERT_TRUE(kvm.ok()) << kvm.status();
  EXPECT_GE(kvm->fd(), 0);
  EXPECT_GE(kvm->vcpu_mmap_size(), sizeof(kvm_run));
  EXPECT_GE(kvm->max_vcpus(), 1);
  EXPECT_GT(kvm->CheckExtension(KVM_CAP_IRQFD), 0);
  EXPECT_GT(kvm->CheckExtension(KVM_CAP_IMMEDIATE_EXIT), 0);
  EXPECT_EQ(kvm->CheckExtension(-1), 0);
}

TEST(KvmSystem, MissingDeviceIsNotFound) {
  auto kvm = KvmSystem::Open("/dev/does-not-exist-kvm");
  EXPECT_EQ(kvm.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(kvm.status().message(),
            "cannot open /dev/does-not-exist-kvm: No such file or directory");
}

TEST(KvmSystem, NonKvmDeviceFailsThePrecondition) {
  auto kvm = KvmSystem::Open("/dev/null");
  EXPECT_EQ(kvm.status().code(), absl::StatusCode::kFailedPrecondition) << kvm.status();
}

TEST(KvmSystem, SupportedCpuidHasTheBasicLeaves) {
  SKIP_WITHOUT_KVM();
  auto kvm = KvmSystem::Open();
  ASSERT_TRUE(kvm.ok()) << kvm.status();
  auto cpuid = kvm->SupportedCpuid();
  ASSERT_TRUE(cpuid.ok()) << cpuid.status();
  auto has = [&](uint32_t function) {
    return std::any_of(cpuid->begin(), cpuid->end(),
                       [&](const CpuidEntry& e) { return e.function == function; });
  };
  EXPECT_TRUE(has(0));
  EXPECT_TRUE(has(1));
  EXPECT_TRUE(has(0x80000000));
}

TEST(KvmSystem, MsrIndexListHasTheCommonMsrs) {
  SKIP_WITHOUT_KVM();
  auto kvm = KvmSystem::Open();
  ASSERT_TRUE(kvm.ok()) << kvm.status();
  auto msrs = kvm->MsrIndexList();
  ASSERT_TRUE(msrs.ok()) << msrs.status();
  auto has = [&](uint32_t index) {
    return std::find(msrs->begin(), msrs->end(), index) != msrs->end();
  };
  EXPECT_TRUE(has(0xc0000080 + 2));  // STAR
  EXPECT_TRUE(has(0x10));            // TSC
}

}  // namespace
}  // namespace rehome
