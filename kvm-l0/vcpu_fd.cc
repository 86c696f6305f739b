// kvm-l0/vcpu_fd.cc: see vcpu_fd.h.
#include "kvm-l0/vcpu_fd.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kvm-l0/kvm_abi_internal.h"

namespace rehome {
namespace {

using kvm_internal::FlexBuffer;
using kvm_internal::KvmError;
using kvm_internal::LastKvmError;

constexpr uint64_t kCr0Pe = 1;
constexpr uint64_t kCr0Et = 1 << 4;
constexpr uint64_t kCr0Ne = 1 << 5;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLme = 1 << 8;
constexpr uint64_t kEferLma = 1 << 10;

kvm_segment BusyTss(uint16_t selector) {
  kvm_segment tr{};
  tr.base = 0;
  tr.limit = 0x67;
  tr.selector = selector;
  tr.type = 11;  // busy TSS
  tr.present = 1;
  return tr;
}

kvm_segment FlatSegment(uint16_t selector, uint8_t type) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;
  s.s = 1;
  s.l = 0;
  s.g = 1;
  return s;
}

}  // namespace

absl::StatusOr<VcpuFd> VcpuFd::Create(const KvmSystem& kvm, const VmFd& vm, int index) {
  if (index < 0 || index >= kvm.max_vcpus()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vCPU index %d outside [0, %d)", index, kvm.max_vcpus()));
  }
  VcpuFd vcpu;
  vcpu.index_ = index;
  vcpu.fd_.Reset(::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(index)));
  if (!vcpu.fd_.valid()) return LastKvmError(absl::StrFormat("KVM_CREATE_VCPU %d", index));
  auto run =
      MappedRegion::Map(kvm.vcpu_mmap_size(), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.fd(), 0);
  if (!run.ok()) return absl::InternalError(run.status().message());
  vcpu.run_ = std::move(run).value();
  // With KVM_CAP_SYNC_REGS, KVM copies the general registers into kvm_run at every exit, so L0
  // records the vCPU state of each exit without an extra ioctl.
  if ((kvm.CheckExtension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0) {
    static_cast<kvm_run*>(vcpu.run_.get())->kvm_valid_regs = KVM_SYNC_X86_REGS;
  }
  return vcpu;
}

absl::Status VcpuFd::SetCpuid(const std::vector<CpuidEntry>& entries) {
  if (entries.empty()) return absl::InvalidArgumentError("SetCpuid: no entries");
  FlexBuffer<kvm_cpuid_entry2> cpuid(static_cast<uint32_t>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    kvm_cpuid_entry2& e = cpuid.entries()[i];
    e.function = entries[i].function;
    e.index = entries[i].index;
    e.flags = entries[i].flags;
    e.eax = entries[i].eax;
    e.ebx = entries[i].ebx;
    e.ecx = entries[i].ecx;
    e.edx = entries[i].edx;
  }
  if (::ioctl(fd(), kvm_internal::kKvmSetCpuid2, cpuid.data()) < 0)
    return LastKvmError("KVM_SET_CPUID2");
  return absl::OkStatus();
}

absl::StatusOr<KvmExit> VcpuFd::Run() {
  if (::ioctl(fd(), KVM_RUN, 0) < 0) {
    const int error_number = errno;
    // EINTR: a signal or immediate_exit. EAGAIN: an AP that was waiting for INIT/SIPI has just
    // received one; KVM wants KVM_RUN again. Both just mean "run again".
    if (error_number == EINTR || error_number == EAGAIN) return KvmExit{InterruptedExit{}};
    return KvmError(error_number, absl::StrFormat("KVM_RUN vCPU %d", index_));
  }
  auto* run = static_cast<kvm_run*>(run_.get());
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      const uint64_t bytes = uint64_t{run->io.size} * run->io.count;
      if (run->io.data_offset > run_.size() || bytes > run_.size() - run->io.data_offset) {
        return absl::InternalError(absl::StrFormat("KVM_EXIT_IO data [%d, +%d) outside kvm_run",
                                                   run->io.data_offset, bytes));
      }
      PortIoExit io;
      io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
      io.port = run->io.port;
      io.size = run->io.size;
      io.count = run->io.count;
      io.data = std::span<uint8_t>(run_.bytes() + run->io.data_offset, bytes);
      if (run->kvm_valid_regs & KVM_SYNC_X86_REGS) {
        io.rip = run->s.regs.regs.rip;
        io.rflags = run->s.regs.regs.rflags;
      }
      return KvmExit{io};
    }
    case KVM_EXIT_MMIO: {
      MmioExit mmio;
      mmio.is_write = run->mmio.is_write != 0;
      mmio.gpa = run->mmio.phys_addr;
      mmio.data = std::span<uint8_t>(run->mmio.data, std::min<uint32_t>(run->mmio.len, 8));
      if (run->kvm_valid_regs & KVM_SYNC_X86_REGS) {
        mmio.rip = run->s.regs.regs.rip;
        mmio.rflags = run->s.regs.regs.rflags;
      }
      return KvmExit{mmio};
    }
    case KVM_EXIT_HLT:
      return KvmExit{HltExit{}};
    case KVM_EXIT_SHUTDOWN:
      return KvmExit{ShutdownExit{}};
    case KVM_EXIT_INTR:
      return KvmExit{InterruptedExit{}};
    case KVM_EXIT_SYSTEM_EVENT: {
      SystemEventExit event;
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          event.type = SystemEventExit::Type::kShutdown;
          break;
        case KVM_SYSTEM_EVENT_RESET:
          event.type = SystemEventExit::Type::kReset;
          break;
        case KVM_SYSTEM_EVENT_CRASH:
          event.type = SystemEventExit::Type::kCrash;
          break;
        default:
          event.type = SystemEventExit::Type::kOther;
          break;
      }
      return KvmExit{event};
    }
    case KVM_EXIT_INTERNAL_ERROR: {
      InternalErrorExit error;
      error.suberror = run->internal.suberror;
      error.ndata = std::min<uint32_t>(
          run->internal.ndata,
          std::min<uint32_t>(std::size(run->internal.data), std::size(error.data)));
      std::copy_n(run->internal.data, error.ndata, error.data.begin());
      if (run->kvm_valid_regs & KVM_SYNC_X86_REGS) error.rip = run->s.regs.regs.rip;
      return KvmExit{error};
    }
    case KVM_EXIT_FAIL_ENTRY:
      return KvmExit{FailEntryExit{run->fail_entry.hardware_entry_failure_reason}};
    default:
      return KvmExit{UnknownExit{run->exit_reason}};
  }
}

void VcpuFd::SetImmediateExit(bool value) {
  auto* run = static_cast<kvm_run*>(run_.get());
  __atomic_store_n(&run->immediate_exit, static_cast<uint8_t>(value ? 1 : 0), __ATOMIC_SEQ_CST);
}

absl::Status VcpuFd::SetupPvhBootState(uint64_t entry32, uint64_t start_info_gpa) {
  kvm_sregs sregs{};
  if (::ioctl(fd(), KVM_GET_SREGS, &sregs) < 0) return LastKvmError("KVM_GET_SREGS");
  sregs.cs = FlatSegment(0x10, 0xb);                // execute/read, accessed
  const kvm_segment data = FlatSegment(0x18, 0x3);  // read/write, accessed
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = BusyTss(0);
  sregs.cr0 = kCr0Pe | kCr0Et;
  sregs.cr3 = 0;
  sregs.cr4 = 0;
  sregs.efer = 0;
  if (::ioctl(fd(), KVM_SET_SREGS, &sregs) < 0) return LastKvmError("KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = entry32;
  regs.rbx = start_info_gpa;
  regs.rflags = 2;
  if (::ioctl(fd(), KVM_SET_REGS, &regs) < 0) return LastKvmError("KVM_SET_REGS");
  return absl::OkStatus();
}

absl::Status VcpuFd::SetupLinux64BootState(const Linux64Boot& boot) {
  kvm_sregs sregs{};
  if (::ioctl(fd(), KVM_GET_SREGS, &sregs) < 0) return LastKvmError("KVM_GET_SREGS");
  sregs.cs = FlatSegment(boot.cs, 0xb);  // execute/read, accessed
  sregs.cs.l = 1;
  sregs.cs.db = 0;
  const kvm_segment data = FlatSegment(boot.ds, 0x3);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = BusyTss(boot.tss);
  sregs.gdt.base = boot.gdt_base;
  sregs.gdt.limit = boot.gdt_limit;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  sregs.cr3 = boot.cr3;
  sregs.cr4 = kCr4Pae;
  sregs.efer = kEferLme | kEferLma;
  if (::ioctl(fd(), KVM_SET_SREGS, &sregs) < 0) return LastKvmError("KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = boot.entry;
  regs.rsi = boot.boot_params;
  regs.rflags = 2;
  if (::ioctl(fd(), KVM_SET_REGS, &regs) < 0) return LastKvmError("KVM_SET_REGS");
  return absl::OkStatus();
}

absl::Status VcpuFd::SetupBootXcr0(uint64_t xcr0) {
  if (xcr0 == 0) return absl::OkStatus();
  kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1;
  xcrs.xcrs[0].xcr = 0;
  xcrs.xcrs[0].value = xcr0;
  if (::ioctl(fd(), KVM_SET_XCRS, &xcrs) < 0) {
    if (errno == EINVAL || errno == ENOTTY) return absl::OkStatus();  // no XCRS here
    return LastKvmError("KVM_SET_XCRS");
  }
  return absl::OkStatus();
}

absl::Status VcpuFd::SetupBootMsrs() {
  FlexBuffer<kvm_msr_entry> msrs(2);
  msrs.entries()[0].index = kMsrIa32MiscEnable;
  msrs.entries()[0].data = kMiscEnableFastString;
  msrs.entries()[1].index = kMsrMtrrDefType;
  msrs.entries()[1].data = kMtrrDefTypeEnableWriteBack;
  const int set = ::ioctl(fd(), kvm_internal::kKvmSetMsrs, msrs.data());
  if (set < 0) return LastKvmError("KVM_SET_MSRS");
  if (set < 2) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_MSRS refused MSR 0x%x", msrs.entries()[set].index));
  }
  return absl::OkStatus();
}

}  // namespace rehome
