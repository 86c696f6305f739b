// kvm-l0/kvm_system.h: the /dev/kvm handle. Open() checks the API version and every capability
// rehome relies on, once, so that later code may assume them. Move-only owner of the fd.
// Thread-safe for concurrent const calls (each is one ioctl on the system fd).
#ifndef REHOME_KVM_L0_KVM_SYSTEM_H_
#define REHOME_KVM_L0_KVM_SYSTEM_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "kvm-l0/cpuid.h"

namespace rehome {

class KvmSystem final {
 public:
  // Opens `path` O_RDWR|O_CLOEXEC. Errors: NotFound "cannot open /dev/kvm: No such file or
  // directory" (other errno values map through ErrnoToStatus); FailedPrecondition when the API
  // version is not 12 or a required capability is missing ("KVM lacks required capability
  // KVM_CAP_IRQFD").
  static absl::StatusOr<KvmSystem> Open(const char* path = "/dev/kvm");

  KvmSystem(KvmSystem&&) = default;
  KvmSystem& operator=(KvmSystem&&) = default;
  KvmSystem(const KvmSystem&) = delete;
  KvmSystem& operator=(const KvmSystem&) = delete;

  int fd() const { return fd_.get(); }
  // Size of the per-vCPU kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE).
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  // KVM_CAP_MAX_VCPUS (or KVM_CAP_NR_VCPUS, or 4 as the API documents, when absent).
  int max_vcpus() const { return max_vcpus_; }

  // KVM_CHECK_EXTENSION on the system fd: 0 when absent, else the capability's value.
  int CheckExtension(int capability) const;

  // KVM_GET_SUPPORTED_CPUID (grows the buffer on E2BIG). Errors: Internal.
  absl::StatusOr<std::vector<CpuidEntry>> SupportedCpuid() const;

  // KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves/restores plus the emulated ones. Errors: Internal.
  absl::StatusOr<std::vector<uint32_t>> MsrIndexList() const;

 private:
  KvmSystem() = default;

  UniqueFd fd_;
  size_t vcpu_mmap_size_ = 0;
  int max_vcpus_ = 0;
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_KVM_SYSTEM_H_
