// kvm-l0/state_io_test_vm.cc: see state_io_test_vm.h. Test-only; not thread-safe.
#include "kvm-l0/state_io_test_vm.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "kvm-l0/state_io_internal.h"

namespace rehome::state_io_test {
namespace {

constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kGdt = 0x4000, kTss = 0x5000;
constexpr uint64_t kIdt = 0x6000, kCode = 0x10000, kStack = 0x80000;

// The counting loop; see the header.
constexpr uint8_t kGuestCode[] = {
    0xb8, 0x01,         0x00, 0x00, 0x00,  // mov eax, 1
    0x66, 0x48,         0x0f, 0x6e, 0xc8,  // movq xmm1, rax
    0x66, 0x0f,         0xef, 0xc0,        // pxor xmm0, xmm0
    0x31, 0xdb,                            // xor ebx, ebx
    0x48, 0xff,         0xc3,              // loop: inc rbx
    0x66, 0x0f,         0xd4, 0xc1,        // paddq xmm0, xmm1
    0x89, 0xd8,                            // mov eax, ebx
    0xe7, kCounterPort,                    // out kCounterPort, eax
    0x66, 0x48,         0x0f, 0x7e, 0xc0,  // movq rax, xmm0
    0xe7, kXmmPort,                        // out kXmmPort, eax
    0xeb, 0xec,                            // jmp loop
};

absl::Status Fail(const char* what) { return absl::InternalError(LastErrnoStatus(what).message()); }

}  // namespace

void WriteCounterGuest(uint8_t* ram) {
  auto put64 = [ram](uint64_t at, uint64_t v) { std::memcpy(ram + at, &v, 8); };
  put64(kPml4, kPdpt | 7);
  put64(kPdpt, kPd | 7);
  put64(kPd, 0x87);                         // 2 MiB user page at 0
  put64(kPd + 8, 0x200000 | 0x87);          // and at 2 MiB
  put64(kGdt + 8, 0x00209a0000000000ULL);   // 0x08 kernel code
  put64(kGdt + 16, 0x0000920000000000ULL);  // 0x10 kernel data
  put64(kGdt + 24, 0x0000f20000000000ULL);  // 0x1b user data
  put64(kGdt + 32, 0x0020fa0000000000ULL);  // 0x23 user code
  const uint64_t limit = 103;
  put64(kGdt + 40, limit | ((kTss & 0xffffff) << 16) | (0x89ULL << 40) |
                       (((kTss >> 24) & 0xff) << 56));  // 0x28 TSS
  put64(kTss + 4, 0x70000);                             // rsp0
  std::memcpy(ram + kCode, kGuestCode, sizeof(kGuestCode));
}

absl::StatusOr<TestVm> TestVm::Create(int kvm_fd, uint8_t* ram, bool irqchip) {
  TestVm vm;
  vm.vm_.Reset(ioctl(kvm_fd, KVM_CREATE_VM, 0));
  if (!vm.vm_.valid()) return Fail("KVM_CREATE_VM");
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.memory_size = kTestRamSize;
  region.userspace_addr = reinterpret_cast<uint64_t>(ram);
  if (ioctl(vm.vm_fd(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return Fail("KVM_SET_USER_MEMORY_REGION");
  }
  if (ioctl(vm.vm_fd(), KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) return Fail("KVM_SET_TSS_ADDR");
  if (irqchip) {
    if (ioctl(vm.vm_fd(), KVM_CREATE_IRQCHIP, 0) < 0) return Fail("KVM_CREATE_IRQCHIP");
    kvm_pit_config pit{};
    if (ioctl(vm.vm_fd(), KVM_CREATE_PIT2, &pit) < 0) return Fail("KVM_CREATE_PIT2");
  }
  vm.vcpu_.Reset(ioctl(vm.vm_fd(), KVM_CREATE_VCPU, 0));
  if (!vm.vcpu_.valid()) return Fail("KVM_CREATE_VCPU");
  const int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return Fail("KVM_GET_VCPU_MMAP_SIZE");
  ASSIGN_OR_RETURN(
      vm.run_, MappedRegion::Map(run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm.vcpu_fd(), 0));
  // kvm_cpuid2 laid out as in C: nent, padding, then the entries (see state_io_internal.h).
  constexpr uint32_t kMaxEntries = 256;
  std::vector<uint8_t> cpuid(state_io::kKvmCpuid2HeaderSize +
                             kMaxEntries * sizeof(kvm_cpuid_entry2));
  std::memcpy(cpuid.data(), &kMaxEntries, 4);
  if (ioctl(kvm_fd, state_io::kKvmGetSupportedCpuid, cpuid.data()) < 0) {
    return Fail("KVM_GET_SUPPORTED_CPUID");
  }
  if (ioctl(vm.vcpu_fd(), state_io::kKvmSetCpuid2, cpuid.data()) < 0) {
    return Fail("KVM_SET_CPUID2");
  }
  uint32_t nent;
  std::memcpy(&nent, cpuid.data(), 4);
  for (uint32_t i = 0; i < nent; ++i) {
    kvm_cpuid_entry2 e;
    std::memcpy(&e, cpuid.data() + state_io::kKvmCpuid2HeaderSize + i * sizeof(e), sizeof(e));
    if (e.function == 1) vm.guest_has_xsave_ = (e.ecx >> 26) & 1;
  }
  return vm;
}

absl::Status TestVm::SetUpEntry() {
  kvm_sregs s;
  if (ioctl(vcpu_fd(), KVM_GET_SREGS, &s) < 0) return Fail("KVM_GET_SREGS");
  kvm_segment cs{};
  cs.limit = 0xffffffff, cs.present = 1, cs.type = 11, cs.s = 1, cs.l = 1, cs.g = 1;
  cs.selector = 0x23, cs.dpl = 3;
  kvm_segment ds{};
  ds.limit = 0xffffffff, ds.present = 1, ds.type = 3, ds.s = 1, ds.db = 1, ds.g = 1;
  ds.selector = 0x1b, ds.dpl = 3;
  s.cs = cs;
  s.ds = s.es = s.fs = s.gs = s.ss = ds;
  s.tr = kvm_segment{};
  s.tr.base = kTss, s.tr.limit = 103, s.tr.selector = 0x28, s.tr.present = 1, s.tr.type = 11;
  s.gdt.base = kGdt, s.gdt.limit = 7 * 8 - 1;  // null, 4 flat segments, 16-byte TSS
  s.idt.base = kIdt, s.idt.limit = 256 * 16 - 1;
  s.cr3 = kPml4;
  s.cr4 = (1 << 5) | (1 << 9) | (1 << 10);  // PAE, OSFXSR, OSXMMEXCPT
  s.cr0 = 0x80000001 | (1 << 5);            // PG, PE, NE
  s.efer = (1 << 8) | (1 << 10) | 1;        // LME, LMA, SCE
  const bool xsave = guest_has_xsave_ && ioctl(vm_fd(), KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
  if (xsave) s.cr4 |= 1 << 18;  // OSXSAVE
  if (ioctl(vcpu_fd(), KVM_SET_SREGS, &s) < 0) return Fail("KVM_SET_SREGS");
  if (xsave) {
    kvm_xcrs x{};
    x.nr_xcrs = 1;
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = 3;  // x87 | SSE
    if (ioctl(vcpu_fd(), KVM_SET_XCRS, &x) < 0) return Fail("KVM_SET_XCRS");
  }
  kvm_debugregs d{};
  d.db[0] = 0x123450;
  d.dr6 = 0xffff0ff0;
  d.dr7 = 0x400;
  if (ioctl(vcpu_fd(), KVM_SET_DEBUGREGS, &d) < 0) return Fail("KVM_SET_DEBUGREGS");
  kvm_regs r{};
  r.rip = kCode;
  r.rflags = 2 | (3 << 12);  // IOPL 3: OUT at CPL3
  r.rsp = kStack;
  if (ioctl(vcpu_fd(), KVM_SET_REGS, &r) < 0) return Fail("KVM_SET_REGS");
  return absl::OkStatus();
}

absl::StatusOr<PortOut> TestVm::RunToOut() {
  auto* run = static_cast<kvm_run*>(run_.get());
  for (;;) {
    if (ioctl(vcpu_fd(), KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      return Fail("KVM_RUN");
    }
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
        run->io.size == 4 && run->io.count == 1) {
      PortOut out;
      out.port = run->io.port;
      std::memcpy(&out.value, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 4);
      return out;
    }
    kvm_regs r{};
    ioctl(vcpu_fd(), KVM_GET_REGS, &r);
    return absl::InternalError(absl::StrFormat("unexpected exit %d at rip 0x%x (suberror %d)",
                                               run->exit_reason, r.rip, run->internal.suberror));
  }
}

absl::Status TestVm::CompletePendingIo() {
  auto* run = static_cast<kvm_run*>(run_.get());
  run->immediate_exit = 1;
  const int r = ioctl(vcpu_fd(), KVM_RUN, 0);
  const int saved_errno = errno;
  run->immediate_exit = 0;
  if (r == 0 || saved_errno != EINTR) {
    return absl::InternalError("KVM_RUN with immediate_exit did not return EINTR");
  }
  return absl::OkStatus();
}

}  // namespace rehome::state_io_test
