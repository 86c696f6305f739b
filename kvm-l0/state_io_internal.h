// kvm-l0/state_io_internal.h: helpers shared by cpu_state_io.cc and vm_state_io.cc (not a
// public API). Thread-safe (stateless).
#ifndef REHOME_KVM_L0_STATE_IO_INTERNAL_H_
#define REHOME_KVM_L0_STATE_IO_INTERNAL_H_

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "base/errno_status.h"

namespace rehome::state_io {

// <linux/kvm.h> (Debian 12, linux-libc-dev 6.1) declares its variable-size structs with
// __DECLARE_FLEX_ARRAY, which in C++ puts an empty struct (1 byte) before the array: sizeof()
// and the array offsets differ from C (kvm_msrs: 16 vs 8, kvm_cpuid2: 12 vs 8, kvm_xsave: 4100
// vs 4096), and so do the ioctl numbers the _IO* macros derive from sizeof(). Never use those
// structs' flexible members or ioctl macros from C++: use these numbers (the C values) and lay
// out the buffers by hand (header, then entries at the C offset).
inline constexpr unsigned long kKvmGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
inline constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
inline constexpr unsigned long kKvmGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
inline constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
inline constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
inline constexpr unsigned long kKvmGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);
inline constexpr unsigned long kKvmSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, 4096);
inline constexpr unsigned long kKvmGetXsave2 = _IOC(_IOC_READ, KVMIO, 0xcf, 4096);
inline constexpr size_t kKvmMsrsHeaderSize = 8;    // nmsrs, pad; then kvm_msr_entry[]
inline constexpr size_t kKvmCpuid2HeaderSize = 8;  // nent, padding; then kvm_cpuid_entry2[]
static_assert(kKvmGetMsrs == 0xc008ae88 && kKvmGetXsave == 0x9000aea4);

// ioctl() retried on EINTR. Returns its result; errno is set on failure.
template <typename Arg>
int Ioctl(int fd, unsigned long request, Arg arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

// A failed KVM ioctl (errno) as an Internal status: "<what>: <strerror>".
inline absl::Status KvmError(std::string_view what) {
  return absl::InternalError(LastErrnoStatus(what).message());
}

// Copies between a KVM struct and its state-extract mirror (same size, both trivially copyable).
template <typename To, typename From>
void MirrorCopy(To& to, const From& from) {
  static_assert(sizeof(To) == sizeof(From), "mirror struct size differs from the KVM struct");
  static_assert(std::is_trivially_copyable_v<To> && std::is_trivially_copyable_v<From>);
  std::memcpy(static_cast<void*>(&to), static_cast<const void*>(&from), sizeof(To));
}

// KVM_GET_* into a mirror struct through the KVM struct K.
template <typename K, typename T>
absl::Status GetInto(int fd, unsigned long request, std::string_view name, T& out) {
  K k{};
  if (Ioctl(fd, request, &k) < 0) return KvmError(name);
  MirrorCopy(out, k);
  return absl::OkStatus();
}

// KVM_SET_* from a mirror struct through the KVM struct K.
template <typename K, typename T>
absl::Status SetFrom(int fd, unsigned long request, std::string_view name, const T& in) {
  K k;
  MirrorCopy(k, in);
  if (Ioctl(fd, request, &k) < 0) return KvmError(name);
  return absl::OkStatus();
}

}  // namespace rehome::state_io

#endif  // REHOME_KVM_L0_STATE_IO_INTERNAL_H_
