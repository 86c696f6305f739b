// kvm-l0/nested_state_io.cc: GetNestedState, GetVcpuRegs, SetVcpuRegs.
#include "kvm-l0/nested_state_io.h"

#include <bit>
#include <cstring>

#include "kvm-l0/kvm_abi_internal.h"

namespace rehome {
namespace {

// The C value of KVM_GET_NESTED_STATE (sizeof(struct kvm_nested_state) is 128 in C; C++ sees a
// different size through __DECLARE_FLEX_ARRAY, see kvm_abi_internal.h).
constexpr unsigned long kKvmGetNestedState = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0xbe, 128);
static_assert(kKvmGetNestedState == 0xc080aebe);

}  // namespace

int NestedStateMaxSize(int kvm_fd) {
  const int size = ::ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
  return size > 0 ? size : 0;
}

absl::StatusOr<std::vector<uint8_t>> GetNestedState(int kvm_fd, int vcpu_fd) {
  const int max = NestedStateMaxSize(kvm_fd);
  if (max < 128) {
    return absl::FailedPreconditionError("KVM has no nested state (KVM_CAP_NESTED_STATE)");
  }
  std::vector<uint64_t> words((static_cast<size_t>(max) + 7) / 8, 0);
  auto* bytes = reinterpret_cast<uint8_t*>(words.data());
  const uint32_t size = static_cast<uint32_t>(max);
  std::memcpy(bytes + 4, &size, sizeof(size));  // kvm_nested_state.size: the buffer's size
  if (::ioctl(vcpu_fd, kKvmGetNestedState, bytes) < 0) {
    return kvm_internal::LastKvmError("KVM_GET_NESTED_STATE");
  }
  uint32_t filled = 0;
  std::memcpy(&filled, bytes + 4, sizeof(filled));
  if (filled < 128 || filled > size) filled = size;
  return std::vector<uint8_t>(bytes, bytes + filled);
}

absl::StatusOr<Regs> GetVcpuRegs(int vcpu_fd) {
  kvm_regs raw{};
  if (::ioctl(vcpu_fd, KVM_GET_REGS, &raw) < 0) return kvm_internal::LastKvmError("KVM_GET_REGS");
  static_assert(sizeof(Regs) == sizeof(kvm_regs));
  return std::bit_cast<Regs>(raw);
}

absl::Status SetVcpuRegs(int vcpu_fd, const Regs& regs) {
  kvm_regs raw{};
  std::memcpy(&raw, &regs, sizeof(raw));
  if (::ioctl(vcpu_fd, KVM_SET_REGS, &raw) < 0) return kvm_internal::LastKvmError("KVM_SET_REGS");
  return absl::OkStatus();
}

}  // namespace rehome
