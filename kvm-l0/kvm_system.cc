// kvm-l0/kvm_system.cc: see kvm_system.h.
#include "kvm-l0/kvm_system.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "kvm-l0/kvm_abi_internal.h"

namespace rehome {
namespace {

using kvm_internal::FlexBuffer;
using kvm_internal::LastKvmError;

constexpr int kKvmApiVersion = 12;

struct Capability {
  int id;
  const char* name;
};

// Everything kvm-l0 and the state capture code use. Checked once in Open().
constexpr Capability kRequiredCapabilities[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
    {KVM_CAP_XCRS, "KVM_CAP_XCRS"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
    {KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK"},
};

}  // namespace

absl::StatusOr<KvmSystem> KvmSystem::Open(const char* path) {
  KvmSystem sys;
  sys.fd_.Reset(::open(path, O_RDWR | O_CLOEXEC));
  if (!sys.fd_.valid()) return LastErrnoStatus(absl::StrCat("cannot open ", path));
  const int version = ::ioctl(sys.fd(), KVM_GET_API_VERSION, 0);
  if (version != kKvmApiVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": KVM API version ", version, ", need ", kKvmApiVersion));
  }
  for (const Capability& cap : kRequiredCapabilities) {
    if (sys.CheckExtension(cap.id) <= 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("KVM lacks required capability ", cap.name));
    }
  }
  const int mmap_size = ::ioctl(sys.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return LastKvmError("KVM_GET_VCPU_MMAP_SIZE");
  }
  sys.vcpu_mmap_size_ = static_cast<size_t>(mmap_size);
  sys.max_vcpus_ = sys.CheckExtension(KVM_CAP_MAX_VCPUS);
  if (sys.max_vcpus_ <= 0) sys.max_vcpus_ = sys.CheckExtension(KVM_CAP_NR_VCPUS);
  if (sys.max_vcpus_ <= 0) sys.max_vcpus_ = 4;
  return sys;
}

int KvmSystem::CheckExtension(int capability) const {
  const int r = ::ioctl(fd(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

absl::StatusOr<std::vector<CpuidEntry>> KvmSystem::SupportedCpuid() const {
  for (uint32_t capacity = 256; capacity <= 4096; capacity *= 2) {
    FlexBuffer<kvm_cpuid_entry2> cpuid(capacity);
    if (::ioctl(fd(), kvm_internal::kKvmGetSupportedCpuid, cpuid.data()) < 0) {
      if (errno == E2BIG) continue;
      return LastKvmError("KVM_GET_SUPPORTED_CPUID");
    }
    std::vector<CpuidEntry> entries;
    entries.reserve(cpuid.count());
    for (uint32_t i = 0; i < cpuid.count() && i < capacity; ++i) {
      const kvm_cpuid_entry2& e = cpuid.entries()[i];
      entries.push_back(CpuidEntry{e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
    }
    return entries;
  }
  return absl::InternalError("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

absl::StatusOr<std::vector<uint32_t>> KvmSystem::MsrIndexList() const {
  // With nmsrs = 0 KVM fails with E2BIG and reports the count.
  FlexBuffer<uint32_t, kvm_internal::kMsrListHeaderSize> probe(0);
  if (::ioctl(fd(), kvm_internal::kKvmGetMsrIndexList, probe.data()) < 0 && errno != E2BIG) {
    return LastKvmError("KVM_GET_MSR_INDEX_LIST");
  }
  FlexBuffer<uint32_t, kvm_internal::kMsrListHeaderSize> list(probe.count());
  if (::ioctl(fd(), kvm_internal::kKvmGetMsrIndexList, list.data()) < 0) {
    return LastKvmError("KVM_GET_MSR_INDEX_LIST");
  }
  const uint32_t n = std::min(list.count(), list.capacity());
  return std::vector<uint32_t>(list.entries(), list.entries() + n);
}

}  // namespace rehome
