// kvm-l0/vcpu_fd.h: one vCPU of a VM owned by this process: the vCPU fd plus its mmap()ed
// kvm_run page. Move-only owner; the destructor unmaps and closes.
// Thread-safety: one thread runs the vCPU (Run); other ioctls may come from another thread only
// while no Run() is in progress (KVM would block them until KVM_RUN returns).
// SetImmediateExit() is the exception: it is one atomic byte store, safe from any thread and
// from a signal handler, used to stop a vCPU before or during KVM_RUN.
#ifndef REHOME_KVM_L0_VCPU_FD_H_
#define REHOME_KVM_L0_VCPU_FD_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"
#include "kvm-l0/cpuid.h"
#include "kvm-l0/kvm_exit.h"
#include "kvm-l0/kvm_system.h"
#include "kvm-l0/vm_fd.h"

namespace rehome {

inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint64_t kMiscEnableFastString = 1;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;
inline constexpr uint64_t kMtrrDefTypeEnableWriteBack = (1u << 11) | 6;  // MTRRs on, default WB

// Where a 64-bit Linux boot starts (vmm/loader/linux_loader.h fills it).
struct Linux64Boot {
  uint64_t entry = 0;        // RIP: the kernel's 64-bit entry
  uint64_t boot_params = 0;  // RSI: struct boot_params
  uint64_t cr3 = 0;          // identity page tables covering the kernel, zero page, cmdline
  uint64_t gdt_base = 0;
  uint16_t gdt_limit = 0;
  uint16_t cs = 0x10, ds = 0x18, tss = 0x20;  // __BOOT_CS, __BOOT_DS and a TSS selector
};

class VcpuFd final {
 public:
  // KVM_CREATE_VCPU with id `index`, then maps kvm_run. Errors: Internal.
  static absl::StatusOr<VcpuFd> Create(const KvmSystem& kvm, const VmFd& vm, int index);

  VcpuFd(VcpuFd&&) = default;
  VcpuFd& operator=(VcpuFd&&) = default;
  VcpuFd(const VcpuFd&) = delete;
  VcpuFd& operator=(const VcpuFd&) = delete;

  int fd() const { return fd_.get(); }
  int index() const { return index_; }

  // KVM_SET_CPUID2 (see SanitizeCpuid). Errors: InvalidArgument when empty, Internal from KVM.
  absl::Status SetCpuid(const std::vector<CpuidEntry>& entries);

  // KVM_RUN once. EINTR (a signal, or immediate_exit set) gives InterruptedExit; any other
  // failure is Internal. The data spans of I/O exits point into kvm_run and are valid until the
  // next Run(); the handler fills them for IN/MMIO reads and KVM consumes them on the next Run().
  absl::StatusOr<KvmExit> Run();

  // Sets kvm_run->immediate_exit: while set, KVM_RUN completes pending I/O and returns EINTR
  // without running the guest. Async-signal-safe; callable from any thread.
  void SetImmediateExit(bool value);

  // Boot state of the BSP for the Xen PVH ABI: 32-bit protected mode, paging off; CS flat 32-bit
  // code (selector 0x10), DS/ES/SS/FS/GS flat data (selector 0x18), busy 32-bit TSS in TR,
  // CR0 = PE|ET, CR4 = 0, EFER = 0, RIP = entry32, RBX = start_info_gpa, RFLAGS = 2, other
  // general registers 0. Errors: Internal.
  absl::Status SetupPvhBootState(uint64_t entry32, uint64_t start_info_gpa);

  // Boot state of the BSP for the Linux 64-bit boot protocol: long mode with paging (CR0 =
  // PE|ET|NE|PG, CR4 = PAE, EFER = LME|LMA, CR3 = boot.cr3), CS a flat 64-bit code segment,
  // DS/ES/SS/FS/GS flat data, a busy TSS in TR, GDTR = the boot GDT, interrupts off (RFLAGS 2),
  // RIP = entry, RSI = boot_params, other general registers 0. Errors: Internal.
  absl::Status SetupLinux64BootState(const Linux64Boot& boot);

  // KVM_SET_XCRS with XCR0 = `xcr0` (OK without doing anything when `xcr0` is 0 or KVM has no
  // XCRS). At boot rehome sets every supported XSAVE feature: a hypervisor that lets XSETBV
  // through without an exit (QEMU's TCG emulation of AMD SVM, this project's nested test bed)
  // never shows KVM the guest's own XSETBV, and KVM then loads its stale XCR0 at every entry
  // and reports a stale XSAVE size (CPUID 0xd EBX), after which Linux turns XSAVE off. With
  // XCR0 preset to what the guest will set, both agree; where XSETBV exits, nothing changes.
  absl::Status SetupBootXcr0(uint64_t xcr0);

  // Boot MSRs as Firecracker/kvmtool set them: IA32_MISC_ENABLE fast strings, MTRRdefType
  // enabled with write-back default. Errors: Internal naming the MSR KVM refused.
  absl::Status SetupBootMsrs();

 private:
  VcpuFd() = default;

  UniqueFd fd_;
  MappedRegion run_;  // struct kvm_run, vcpu_mmap_size bytes
  int index_ = -1;
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_VCPU_FD_H_
