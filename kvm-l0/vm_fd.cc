// kvm-l0/vm_fd.cc: see vm_fd.h.
#include "kvm-l0/vm_fd.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "absl/strings/str_format.h"
#include "kvm-l0/kvm_abi_internal.h"

namespace rehome {

using kvm_internal::LastKvmError;

absl::StatusOr<VmFd> VmFd::Create(const KvmSystem& kvm) {
  VmFd vm;
  vm.fd_.Reset(::ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!vm.fd_.valid()) return LastKvmError("KVM_CREATE_VM");
  return vm;
}

absl::Status VmFd::MapMemory(const GuestMemory& memory) {
  for (const GuestMemory::Region& r : memory.regions()) {
    kvm_userspace_memory_region region{};
    region.slot = next_slot_;
    region.flags = 0;
    region.guest_phys_addr = r.gpa;
    region.memory_size = r.size;
    region.userspace_addr = reinterpret_cast<uint64_t>(r.host);
    if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
      return LastKvmError(absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot %d [0x%x, +0x%x)",
                                          next_slot_, r.gpa, r.size));
    }
    ++next_slot_;
  }
  return absl::OkStatus();
}

absl::Status VmFd::CreateIrqchipAndPit() {
  if (::ioctl(fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kKvmTssAddr)) < 0) {
    return LastKvmError("KVM_SET_TSS_ADDR");
  }
  if (CheckExtension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
    uint64_t identity_map = kKvmIdentityMapAddr;
    if (::ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
      return LastKvmError("KVM_SET_IDENTITY_MAP_ADDR");
    }
  }
  if (::ioctl(fd(), KVM_CREATE_IRQCHIP, 0) < 0) return LastKvmError("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = 0;
  if (::ioctl(fd(), KVM_CREATE_PIT2, &pit) < 0) return LastKvmError("KVM_CREATE_PIT2");
  return absl::OkStatus();
}

absl::Status VmFd::IoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                             std::optional<uint64_t> datamatch, bool deassign) {
  const bool any_len_ok = space == IoSpace::kMmio && !datamatch.has_value();
  if (!(len == 1 || len == 2 || len == 4 || len == 8 || (len == 0 && any_len_ok))) {
    return absl::InvalidArgumentError(absl::StrFormat("ioeventfd length %d", len));
  }
  kvm_ioeventfd io{};
  io.fd = eventfd;
  io.addr = addr;
  io.len = len;
  if (space == IoSpace::kPio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch.has_value()) {
    io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    io.datamatch = *datamatch;
  }
  if (deassign) io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd(), KVM_IOEVENTFD, &io) < 0) {
    return LastKvmError(absl::StrFormat("KVM_IOEVENTFD%s %s 0x%x len %d",
                                        deassign ? " (deassign)" : "",
                                        space == IoSpace::kPio ? "port" : "mmio", addr, len));
  }
  return absl::OkStatus();
}

absl::Status VmFd::RegisterIoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                     std::optional<uint64_t> datamatch) {
  return IoEventFd(eventfd, space, addr, len, datamatch, /*deassign=*/false);
}

absl::Status VmFd::UnregisterIoEventFd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                       std::optional<uint64_t> datamatch) {
  return IoEventFd(eventfd, space, addr, len, datamatch, /*deassign=*/true);
}

absl::Status VmFd::IrqFd(int eventfd, uint32_t gsi, bool deassign) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  irqfd.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0;
  if (::ioctl(fd(), KVM_IRQFD, &irqfd) < 0) {
    return LastKvmError(absl::StrFormat("KVM_IRQFD%s gsi %d", deassign ? " (deassign)" : "", gsi));
  }
  return absl::OkStatus();
}

absl::Status VmFd::RegisterIrqFd(int eventfd, uint32_t gsi) {
  return IrqFd(eventfd, gsi, /*deassign=*/false);
}

absl::Status VmFd::UnregisterIrqFd(int eventfd, uint32_t gsi) {
  return IrqFd(eventfd, gsi, /*deassign=*/true);
}

absl::Status VmFd::SetIrqLine(uint32_t irq, bool level) {
  kvm_irq_level line{};
  line.irq = irq;
  line.level = level ? 1 : 0;
  if (::ioctl(fd(), KVM_IRQ_LINE, &line) < 0) {
    return LastKvmError(absl::StrFormat("KVM_IRQ_LINE irq %d level %d", irq, line.level));
  }
  return absl::OkStatus();
}

int VmFd::CheckExtension(int capability) const {
  const int r = ::ioctl(fd(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

}  // namespace rehome
