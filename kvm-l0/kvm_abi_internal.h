// kvm-l0/kvm_abi_internal.h: private to kvm-l0 (and its tests). (1) A failed KVM ioctl becomes
// an Internal status ("KVM errors" have a fixed code in this project) carrying errno's text.
// (2) The C values of the ioctls on variable-size structs: Debian 12's <linux/kvm.h> declares
// flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ inserts an empty struct before the
// array, so sizeof(), the entry offsets and the _IOWR()-derived ioctl numbers differ from C.
// Never use those structs' flexible members or ioctl macros from C++; lay buffers out by hand:
// an 8-byte header (count, padding) then the entries. Thread-safe (stateless).
#ifndef REHOME_KVM_L0_KVM_ABI_INTERNAL_H_
#define REHOME_KVM_L0_KVM_ABI_INTERNAL_H_

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/errno_status.h"

namespace rehome::kvm_internal {

inline constexpr unsigned long kKvmGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
inline constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
inline constexpr unsigned long kKvmGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
inline constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
inline constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
inline constexpr size_t kFlexHeaderSize = 8;     // u32 count, u32 padding (kvm_msrs, kvm_cpuid2)
inline constexpr size_t kMsrListHeaderSize = 4;  // kvm_msr_list: u32 nmsrs, then u32 indices[]
static_assert(kKvmGetMsrs == 0xc008ae88 && kKvmSetCpuid2 == 0x4008ae90);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

// A zeroed, 8-byte aligned buffer: a HeaderSize-byte header starting with the u32 count (= n),
// then n entries of type Entry.
template <typename Entry, size_t HeaderSize = kFlexHeaderSize>
class FlexBuffer final {
 public:
  explicit FlexBuffer(uint32_t n) : words_((HeaderSize + size_t{n} * sizeof(Entry) + 7) / 8, 0) {
    set_count(n);
  }
  void* data() { return words_.data(); }
  uint32_t count() const {
    uint32_t n;
    std::memcpy(&n, words_.data(), 4);
    return n;
  }
  void set_count(uint32_t n) { std::memcpy(words_.data(), &n, 4); }
  Entry* entries() {
    return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(words_.data()) + HeaderSize);
  }
  // Room for this many entries.
  uint32_t capacity() const {
    return static_cast<uint32_t>((words_.size() * 8 - HeaderSize) / sizeof(Entry));
  }

 private:
  std::vector<uint64_t> words_;
};

// Builds Internal("<what>: <strerror(error_number)>").
inline absl::Status KvmError(int error_number, std::string_view what) {
  return absl::InternalError(ErrnoToStatus(error_number, what).message());
}

// Same, reading errno.
inline absl::Status LastKvmError(std::string_view what) { return KvmError(errno, what); }

}  // namespace rehome::kvm_internal

#endif  // REHOME_KVM_L0_KVM_ABI_INTERNAL_H_
