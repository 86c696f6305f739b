// kvm-l0/vm_fd.h: one KVM VM (KVM_CREATE_VM): memslots, in-kernel irqchip + PIT, ioeventfds,
// irqfds and IRQ lines. Move-only owner of the VM fd.
// Thread-safety: KVM serialises VM ioctls itself, so the methods may be called from any thread;
// MapMemory must not race with itself (it allocates slot numbers).
#ifndef REHOME_KVM_L0_VM_FD_H_
#define REHOME_KVM_L0_VM_FD_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "kvm-l0/guest_memory.h"
#include "kvm-l0/kvm_system.h"

namespace rehome {

// Address space of an ioeventfd.
enum class IoSpace { kPio, kMmio };

// The identity-map and TSS pages KVM needs below 4 GiB (inside the MMIO hole, never RAM).
inline constexpr uint64_t kKvmIdentityMapAddr = 0xfffbc000;
inline constexpr uint64_t kKvmTssAddr = 0xfffbd000;

class VmFd final {
 public:
  // KVM_CREATE_VM (type 0). Errors: Internal.
  static absl::StatusOr<VmFd> Create(const KvmSystem& kvm);

  VmFd(VmFd&&) = default;
  VmFd& operator=(VmFd&&) = default;
  VmFd(const VmFd&) = delete;
  VmFd& operator=(const VmFd&) = delete;

  int fd() const { return fd_.get(); }

  // KVM_SET_USER_MEMORY_REGION, one new slot per region of `memory` (slots count up from 0
  // across calls). `memory` must outlive the VM's use of it. Errors: Internal.
  absl::Status MapMemory(const GuestMemory& memory);

  // KVM_SET_TSS_ADDR kKvmTssAddr, KVM_SET_IDENTITY_MAP_ADDR kKvmIdentityMapAddr (when
  // supported), KVM_CREATE_IRQCHIP (PIC + IOAPIC + per-vCPU LAPIC) and KVM_CREATE_PIT2 (flags
  // 0). Call before creating vCPUs. Errors: Internal.
  absl::Status CreateIrqchipAndPit();

  // KVM_IOEVENTFD: a guest write of `len` bytes (1, 2, 4 or 8; 0 = any length, MMIO only) to
  // `addr` signals `eventfd` instead of exiting; with `datamatch`, only writes of that value.
  // Errors: InvalidArgument for a bad length, Internal from KVM.
  absl::Status RegisterIoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                 std::optional<uint64_t> datamatch = std::nullopt);
  // Removes a registration made with the same arguments.
  absl::Status UnregisterIoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                   std::optional<uint64_t> datamatch = std::nullopt);

  // KVM_IRQFD: a write to `eventfd` raises (edge) GSI `gsi` of the in-kernel irqchip.
  absl::Status RegisterIrqFd(int eventfd, uint32_t gsi);
  absl::Status UnregisterIrqFd(int eventfd, uint32_t gsi);

  // KVM_IRQ_LINE: sets the level of input `irq` of the in-kernel irqchip.
  absl::Status SetIrqLine(uint32_t irq, bool level);

  // KVM_CHECK_EXTENSION on the VM fd (some capabilities are per VM). 0 when absent.
  int CheckExtension(int capability) const;

 private:
  VmFd() = default;
  absl::Status IoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                         std::optional<uint64_t> datamatch, bool deassign);
  absl::Status IrqFd(int eventfd, uint32_t gsi, bool deassign);

  UniqueFd fd_;
  uint32_t next_slot_ = 0;
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_VM_FD_H_
