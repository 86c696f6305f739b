// kvm-l0/testing/tiny_guest.h: test helper: a small VM (KvmSystem + GuestMemory + VmFd + vCPUs
// with sanitised CPUID) and hand-assembled guests, for tests of kvm-l0 and of code above it.
// Guests run in 64-bit mode at CPL3 with IOPL 3 (native speed under PVM) or at CPL0 (emulated
// under PVM: keep such code to a few instructions). Layout in guest RAM: PML4 0x1000, PDPT
// 0x2000, PD 0x3000 (identity map of the first 1 GiB with 2 MiB user pages), PD 0x7000 (identity
// map of the MMIO hole 3..4 GiB, uncached user pages), GDT 0x4000 (null,
// kernel code 0x08, kernel data 0x10, user data 0x1b, user code 0x23, TSS 0x28), TSS 0x5000,
// IDT 0x6000 (empty), code from 0x10000. Not thread-safe (one test thread sets it up).
#ifndef REHOME_KVM_L0_TESTING_TINY_GUEST_H_
#define REHOME_KVM_L0_TESTING_TINY_GUEST_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kvm-l0/guest_memory.h"
#include "kvm-l0/kvm_system.h"
#include "kvm-l0/vcpu_fd.h"
#include "kvm-l0/vm_fd.h"

namespace rehome::testing {

inline constexpr uint64_t kTinyCodeGpa = 0x10000;
inline constexpr uint64_t kTinyStackTop = 0x80000;

// Hand-assembled guest loops (64-bit; the first three also decode identically in 32-bit mode).
// CounterLoop: inc ebx; mov eax, ebx; out port, eax; jmp back: OUTs 1, 2, 3, ... (from RBX 0).
std::vector<uint8_t> CounterLoop(uint8_t port);
// EchoLoop: in eax, in_port; inc eax; out out_port, eax; jmp back: OUTs each IN value + 1.
std::vector<uint8_t> EchoIncrementLoop(uint8_t in_port, uint8_t out_port);
// HaltLoop (CPL0 only): out port, eax; hlt; inc eax; jmp back. Offset of the hlt: 2.
std::vector<uint8_t> HaltLoop(uint8_t port);
inline constexpr uint64_t kHaltLoopHltOffset = 2;

struct TinyVmOptions {
  int vcpu_count = 1;
  bool irqchip = false;
  uint64_t memory_size = 16ull << 20;
};

// A VM with `vcpu_count` vCPUs (CPUID from SanitizeCpuid), the long-mode tables written and
// nothing else. Members are public so tests can hand the vCPUs to a VcpuSet.
struct TinyVm {
  KvmSystem kvm;
  GuestMemory memory;
  VmFd vm;
  std::vector<VcpuFd> vcpus;
};

// Opens /dev/kvm and builds the VM. NotFound when /dev/kvm is missing (tests skip on that).
absl::StatusOr<TinyVm> CreateTinyVm(const TinyVmOptions& options);

// Copies `code` to `gpa`.
absl::Status LoadCode(const GuestMemory& memory, uint64_t gpa, std::span<const uint8_t> code);

// Puts `vcpu` in 64-bit mode at `rip` with the given CPL (0 or 3; IOPL 3 either way), RSP
// kTinyStackTop - 0x1000 * vcpu.index(), RAX/RBX as given, and MP state runnable (so that an AP
// runs without INIT/SIPI).
absl::Status EnterLongMode(VcpuFd& vcpu, uint64_t rip, int cpl, uint64_t rax = 0, uint64_t rbx = 0);

// The general registers tests look at (KVM_GET_REGS). Only while the vCPU is not running.
struct BasicRegs {
  uint64_t rax = 0;
  uint64_t rbx = 0;
  uint64_t rip = 0;
  uint64_t rflags = 0;
};
absl::StatusOr<BasicRegs> GetBasicRegs(const VcpuFd& vcpu);

}  // namespace rehome::testing

#endif  // REHOME_KVM_L0_TESTING_TINY_GUEST_H_
