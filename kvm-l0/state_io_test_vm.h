// kvm-l0/state_io_test_vm.h: test-only raw-ioctl VM for the state capture/restore tests: one
// vCPU, optional in-kernel irqchip + PIT2, guest RAM from a caller-owned memfd mapping, and a
// tiny 64-bit CPL3 guest that counts in RBX and XMM0 and reports both with OUT. Not
// thread-safe (one test thread drives it).
//
// Guest: identity-mapped 4 MiB (2 MiB user pages), flat GDT, IOPL 3. Loop:
//   inc rbx; paddq xmm0, xmm1 (xmm1 = 1); out kCounterPort, ebx; movq rax, xmm0;
//   out kXmmPort, eax; jmp loop
// so the n-th iteration writes n to kCounterPort and then n to kXmmPort.
#ifndef REHOME_KVM_L0_STATE_IO_TEST_VM_H_
#define REHOME_KVM_L0_STATE_IO_TEST_VM_H_

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome::state_io_test {

inline constexpr size_t kTestRamSize = 4 << 20;
inline constexpr uint16_t kCounterPort = 0x10;
inline constexpr uint16_t kXmmPort = 0x11;

// Writes page tables, GDT, TSS and the counting loop into guest RAM.
void WriteCounterGuest(uint8_t* ram);

struct PortOut {
  uint16_t port = 0;
  uint32_t value = 0;
};

class TestVm final {
 public:
  // A VM whose slot 0 is `ram` (kTestRamSize bytes, e.g. a mapping of a memfd).
  static absl::StatusOr<TestVm> Create(int kvm_fd, uint8_t* ram, bool irqchip);
  TestVm(TestVm&&) = default;
  TestVm& operator=(TestVm&&) = default;
  TestVm(const TestVm&) = delete;
  TestVm& operator=(const TestVm&) = delete;

  // Points the vCPU at the guest's entry (CPL3, long mode); sets CR4.OSXSAVE and XCR0 = x87|SSE
  // when the guest CPUID has XSAVE, and a DR0 value, so that those parts of the state are not
  // all default.
  absl::Status SetUpEntry();
  // Runs until the guest does an OUT; any other exit is an error.
  absl::StatusOr<PortOut> RunToOut();
  // KVM_RUN with immediate_exit: completes a pending I/O instruction without running the guest.
  absl::Status CompletePendingIo();

  int vm_fd() const { return vm_.get(); }
  int vcpu_fd() const { return vcpu_.get(); }

 private:
  TestVm() = default;
  UniqueFd vm_;
  UniqueFd vcpu_;
  MappedRegion run_;
  bool guest_has_xsave_ = false;
};

}  // namespace rehome::state_io_test

#endif  // REHOME_KVM_L0_STATE_IO_TEST_VM_H_
