// kvm-l0/vm_state_io.cc: VM-wide state (irqchip, PIT, clock) and whole-VM capture/restore with
// raw KVM ioctls. Thread-safe (stateless).
#include "kvm-l0/vm_state_io.h"

#include <linux/kvm.h>

#include <cstddef>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kvm-l0/cpu_state_io.h"
#include "kvm-l0/state_io_internal.h"

namespace rehome {
namespace {

using state_io::Ioctl;
using state_io::KvmError;
using state_io::MirrorCopy;

static_assert(sizeof(Irqchip) == sizeof(kvm_irqchip) && sizeof(Irqchip) == 520);
static_assert(offsetof(Irqchip, chip) == offsetof(kvm_irqchip, chip));
static_assert(sizeof(PitChannel) == sizeof(kvm_pit_channel_state));
static_assert(sizeof(PitState2) == sizeof(kvm_pit_state2));
static_assert(offsetof(PitState2, flags) == offsetof(kvm_pit_state2, flags));
static_assert(sizeof(ClockData) == sizeof(kvm_clock_data));
static_assert(offsetof(ClockData, realtime) == offsetof(kvm_clock_data, realtime));

// KVM_GET_IRQCHIP for one chip. NotFound when the VM has no (full) in-kernel irqchip.
absl::StatusOr<Irqchip> GetIrqchip(int vm_fd, uint32_t chip_id) {
  kvm_irqchip k{};
  k.chip_id = chip_id;
  if (Ioctl(vm_fd, KVM_GET_IRQCHIP, &k) < 0) {
    if (errno == ENXIO) return absl::NotFoundError("no in-kernel irqchip");
    return KvmError(absl::StrFormat("KVM_GET_IRQCHIP(chip %d)", chip_id));
  }
  Irqchip out;
  MirrorCopy(out, k);
  return out;
}

absl::Status SetIrqchip(int vm_fd, const Irqchip& chip, uint32_t expected_id) {
  if (chip.chip_id != expected_id) {
    return absl::InvalidArgumentError(
        absl::StrFormat("irqchip slot %d holds chip id %d", expected_id, chip.chip_id));
  }
  kvm_irqchip k;
  MirrorCopy(k, chip);
  if (Ioctl(vm_fd, KVM_SET_IRQCHIP, &k) < 0) {
    if (errno == ENXIO) return absl::FailedPreconditionError("VM has no in-kernel irqchip");
    return KvmError(absl::StrFormat("KVM_SET_IRQCHIP(chip %d)", chip.chip_id));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VmState> CaptureVmState(int vm_fd) {
  VmState vm;
  absl::StatusOr<Irqchip> master = GetIrqchip(vm_fd, Irqchip::kPicMaster);
  if (master.ok()) {
    vm.pic_master = *master;
    ASSIGN_OR_RETURN(vm.pic_slave, GetIrqchip(vm_fd, Irqchip::kPicSlave));
    ASSIGN_OR_RETURN(vm.ioapic, GetIrqchip(vm_fd, Irqchip::kIoapic));
  } else if (!absl::IsNotFound(master.status())) {
    return master.status();
  }
  kvm_pit_state2 pit{};
  if (Ioctl(vm_fd, KVM_GET_PIT2, &pit) == 0) {
    MirrorCopy(vm.pit.emplace(), pit);
  } else if (errno != ENXIO) {  // ENXIO: no in-kernel PIT
    return KvmError("KVM_GET_PIT2");
  }
  RETURN_IF_ERROR(
      state_io::GetInto<kvm_clock_data>(vm_fd, KVM_GET_CLOCK, "KVM_GET_CLOCK", vm.clock));
  return vm;
}

absl::Status RestoreVmState(int vm_fd, const VmState& state) {
  const bool has_irqchip[] = {state.pic_master.has_value(), state.pic_slave.has_value(),
                              state.ioapic.has_value()};
  if (has_irqchip[0] != has_irqchip[1] || has_irqchip[0] != has_irqchip[2]) {
    return absl::InvalidArgumentError("VmState holds only some of the three irqchips");
  }
  if (state.pic_master) {
    RETURN_IF_ERROR(SetIrqchip(vm_fd, *state.pic_master, Irqchip::kPicMaster));
    RETURN_IF_ERROR(SetIrqchip(vm_fd, *state.pic_slave, Irqchip::kPicSlave));
    RETURN_IF_ERROR(SetIrqchip(vm_fd, *state.ioapic, Irqchip::kIoapic));
  }
  if (state.pit) {
    kvm_pit_state2 pit;
    MirrorCopy(pit, *state.pit);
    if (Ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0) {
      if (errno == ENXIO) return absl::FailedPreconditionError("VM has no in-kernel PIT");
      return KvmError("KVM_SET_PIT2");
    }
  }
  ClockData clock = state.clock;
  clock.flags = 0;  // see the header: no KVM_CLOCK_REALTIME catch-up, nothing KVM may refuse
  clock.realtime = 0;
  clock.host_tsc = 0;
  return state_io::SetFrom<kvm_clock_data>(vm_fd, KVM_SET_CLOCK, "KVM_SET_CLOCK", clock);
}

absl::StatusOr<VmState> CaptureVm(int kvm_fd, int vm_fd, std::span<const int> vcpu_fds) {
  // vCPUs first: KVM_GET_MP_STATE may deliver pending LAPIC events that touch the irqchip.
  std::vector<CpuState> vcpus;
  vcpus.reserve(vcpu_fds.size());
  for (int fd : vcpu_fds) {
    ASSIGN_OR_RETURN(CpuState cpu, CaptureCpuState(kvm_fd, fd));
    vcpus.push_back(std::move(cpu));
  }
  ASSIGN_OR_RETURN(VmState vm, CaptureVmState(vm_fd));
  vm.vcpus = std::move(vcpus);
  return vm;
}

absl::Status RestoreVm(int kvm_fd, int vm_fd, std::span<const int> vcpu_fds, const VmState& state) {
  if (vcpu_fds.size() != state.vcpus.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("state has %d vCPUs, target VM %d", state.vcpus.size(), vcpu_fds.size()));
  }
  RETURN_IF_ERROR(RestoreVmState(vm_fd, state));
  for (size_t i = 0; i < vcpu_fds.size(); ++i) {
    RETURN_IF_ERROR(RestoreCpuState(kvm_fd, vcpu_fds[i], state.vcpus[i]));
  }
  return absl::OkStatus();
}

}  // namespace rehome
