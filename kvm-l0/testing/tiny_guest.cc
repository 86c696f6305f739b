// kvm-l0/testing/tiny_guest.cc: see tiny_guest.h. Test-only; not thread-safe.
#include "kvm-l0/testing/tiny_guest.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstring>

#include "base/errno_status.h"
#include "base/status_macros.h"
#include "kvm-l0/cpuid.h"

namespace rehome::testing {
namespace {

constexpr uint64_t kPml4 = 0x1000, kPdpt = 0x2000, kPd = 0x3000, kGdt = 0x4000, kTss = 0x5000;
constexpr uint64_t kIdt = 0x6000, kPdMmio = 0x7000;
constexpr uint16_t kTssLimit = 103;

absl::Status KvmFailure(const char* what) {
  return absl::InternalError(LastErrnoStatus(what).message());
}

absl::Status Put64(const GuestMemory& memory, uint64_t gpa, uint64_t value) {
  uint8_t bytes[8];
  std::memcpy(bytes, &value, 8);
  return memory.Write(gpa, bytes);
}

absl::Status WriteLongModeTables(const GuestMemory& memory) {
  RETURN_IF_ERROR(Put64(memory, kPml4, kPdpt | 7));
  RETURN_IF_ERROR(Put64(memory, kPdpt, kPd | 7));
  RETURN_IF_ERROR(Put64(memory, kPdpt + 3 * 8, kPdMmio | 7));
  for (uint64_t i = 0; i < 512; ++i) {
    RETURN_IF_ERROR(Put64(memory, kPd + 8 * i, (i << 21) | 0x87));  // P, RW, U, PS
    // 3..4 GiB (the MMIO hole), uncached: P, RW, U, PCD, PS.
    RETURN_IF_ERROR(Put64(memory, kPdMmio + 8 * i, ((3ull << 30) + (i << 21)) | 0x97));
  }
  RETURN_IF_ERROR(Put64(memory, kGdt + 8, 0x00209a0000000000ULL));   // 0x08 kernel code
  RETURN_IF_ERROR(Put64(memory, kGdt + 16, 0x0000920000000000ULL));  // 0x10 kernel data
  RETURN_IF_ERROR(Put64(memory, kGdt + 24, 0x0000f20000000000ULL));  // 0x1b user data
  RETURN_IF_ERROR(Put64(memory, kGdt + 32, 0x0020fa0000000000ULL));  // 0x23 user code
  RETURN_IF_ERROR(Put64(memory, kGdt + 40,
                        kTssLimit | ((kTss & 0xffffff) << 16) | (0x89ULL << 40) |
                            (((kTss >> 24) & 0xff) << 56)));  // 0x28 TSS
  return Put64(memory, kTss + 4, 0x70000);                    // rsp0
}

}  // namespace

std::vector<uint8_t> CounterLoop(uint8_t port) {
  return {0xff, 0xc3,   // inc ebx
          0x89, 0xd8,   // mov eax, ebx
          0xe7, port,   // out port, eax
          0xeb, 0xf8};  // jmp -8
}

std::vector<uint8_t> EchoIncrementLoop(uint8_t in_port, uint8_t out_port) {
  return {0xe5, in_port,   // in eax, in_port
          0xff, 0xc0,      // inc eax
          0xe7, out_port,  // out out_port, eax
          0xeb, 0xf8};     // jmp -8
}

std::vector<uint8_t> HaltLoop(uint8_t port) {
  return {0xe7, port,   // out port, eax
          0xf4,         // hlt
          0xff, 0xc0,   // inc eax
          0xeb, 0xf9};  // jmp -7
}

absl::StatusOr<TinyVm> CreateTinyVm(const TinyVmOptions& options) {
  ASSIGN_OR_RETURN(KvmSystem kvm, KvmSystem::Open());
  ASSIGN_OR_RETURN(GuestMemory memory, GuestMemory::Create(options.memory_size));
  ASSIGN_OR_RETURN(VmFd vm, VmFd::Create(kvm));
  RETURN_IF_ERROR(vm.MapMemory(memory));
  if (options.irqchip) {
    RETURN_IF_ERROR(vm.CreateIrqchipAndPit());
  } else if (::ioctl(vm.fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kKvmTssAddr)) < 0) {
    return KvmFailure("KVM_SET_TSS_ADDR");
  }
  RETURN_IF_ERROR(WriteLongModeTables(memory));
  ASSIGN_OR_RETURN(std::vector<CpuidEntry> supported, kvm.SupportedCpuid());
  std::vector<VcpuFd> vcpus;
  for (int i = 0; i < options.vcpu_count; ++i) {
    ASSIGN_OR_RETURN(VcpuFd vcpu, VcpuFd::Create(kvm, vm, i));
    RETURN_IF_ERROR(vcpu.SetCpuid(SanitizeCpuid(supported, i, options.vcpu_count)));
    vcpus.push_back(std::move(vcpu));
  }
  return TinyVm{std::move(kvm), std::move(memory), std::move(vm), std::move(vcpus)};
}

absl::Status LoadCode(const GuestMemory& memory, uint64_t gpa, std::span<const uint8_t> code) {
  return memory.Write(gpa, code);
}

absl::Status EnterLongMode(VcpuFd& vcpu, uint64_t rip, int cpl, uint64_t rax, uint64_t rbx) {
  kvm_sregs s{};
  if (::ioctl(vcpu.fd(), KVM_GET_SREGS, &s) < 0) return KvmFailure("KVM_GET_SREGS");
  const uint8_t dpl = cpl == 0 ? 0 : 3;
  kvm_segment cs{};
  cs.limit = 0xffffffff, cs.present = 1, cs.type = 11, cs.s = 1, cs.l = 1, cs.g = 1;
  cs.selector = dpl ? 0x23 : 0x08, cs.dpl = dpl;
  kvm_segment ds{};
  ds.limit = 0xffffffff, ds.present = 1, ds.type = 3, ds.s = 1, ds.db = 1, ds.g = 1;
  ds.selector = dpl ? 0x1b : 0x10, ds.dpl = dpl;
  s.cs = cs;
  s.ds = s.es = s.fs = s.gs = s.ss = ds;
  s.tr = kvm_segment{};
  s.tr.base = kTss, s.tr.limit = kTssLimit, s.tr.selector = 0x28, s.tr.present = 1;
  s.tr.type = 11;
  s.gdt.base = kGdt, s.gdt.limit = 7 * 8 - 1;
  s.idt.base = kIdt, s.idt.limit = 256 * 16 - 1;
  s.cr3 = kPml4;
  s.cr4 = (1 << 5) | (1 << 9);        // PAE, OSFXSR
  s.cr0 = 0x80000001 | (1 << 5);      // PG, PE, NE
  s.efer = (1 << 8) | (1 << 10) | 1;  // LME, LMA, SCE
  if (::ioctl(vcpu.fd(), KVM_SET_SREGS, &s) < 0) return KvmFailure("KVM_SET_SREGS");
  kvm_regs r{};
  r.rip = rip;
  r.rax = rax;
  r.rbx = rbx;
  r.rflags = 2 | (3 << 12);  // IOPL 3
  r.rsp = kTinyStackTop - 0x1000 * static_cast<uint64_t>(vcpu.index());
  if (::ioctl(vcpu.fd(), KVM_SET_REGS, &r) < 0) return KvmFailure("KVM_SET_REGS");
  // With an in-kernel LAPIC, APs start in wait-for-SIPI; these guests start them directly.
  kvm_mp_state mp{};
  mp.mp_state = KVM_MP_STATE_RUNNABLE;
  if (::ioctl(vcpu.fd(), KVM_SET_MP_STATE, &mp) < 0) return KvmFailure("KVM_SET_MP_STATE");
  return absl::OkStatus();
}

absl::StatusOr<BasicRegs> GetBasicRegs(const VcpuFd& vcpu) {
  kvm_regs r{};
  if (::ioctl(vcpu.fd(), KVM_GET_REGS, &r) < 0) return KvmFailure("KVM_GET_REGS");
  return BasicRegs{r.rax, r.rbx, r.rip, r.rflags};
}

}  // namespace rehome::testing
