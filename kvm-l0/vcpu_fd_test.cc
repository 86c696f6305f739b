// kvm-l0/vcpu_fd_test.cc: VmFd + VcpuFd on the real /dev/kvm with hand-assembled guests: port
// I/O and MMIO exits with data round trips, HLT with and without the in-kernel irqchip,
// ioeventfd, irqfd, the PVH boot state and the boot MSRs.
#include "kvm-l0/vcpu_fd.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <variant>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kvm-l0/kvm_abi_internal.h"
#include "kvm-l0/testing/tiny_guest.h"

namespace rehome {
namespace {

using testing::CreateTinyVm;
using testing::EnterLongMode;
using testing::kTinyCodeGpa;
using testing::LoadCode;
using testing::TinyVm;
using testing::TinyVmOptions;

#define SKIP_WITHOUT_KVM()                                                               \
  do {                                                                                   \
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm here"; \
  } while (0)

uint32_t Le32(std::span<const uint8_t> data) {
  uint32_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(4, data.size()));
  return v;
}

void PutLe32(std::span<uint8_t> data, uint32_t v) { std::memcpy(data.data(), &v, 4); }

// Runs until the next exit that is not InterruptedExit.
absl::StatusOr<KvmExit> RunToExit(VcpuFd& vcpu) {
  for (;;) {
    auto exit = vcpu.Run();
    if (!exit.ok() || !std::holds_alternative<InterruptedExit>(*exit)) return exit;
  }
}

// Expects a PortIoExit on `port` with a 4-byte access in direction `is_write`.
PortIoExit ExpectPio(const absl::StatusOr<KvmExit>& exit, uint16_t port, bool is_write) {
  EXPECT_TRUE(exit.ok()) << exit.status();
  if (!exit.ok()) return {};
  const auto* io = std::get_if<PortIoExit>(&*exit);
  EXPECT_NE(io, nullptr) << "exit variant index " << exit->index();
  if (io == nullptr) return {};
  EXPECT_EQ(io->port, port);
  EXPECT_EQ(io->is_write, is_write);
  EXPECT_EQ(io->size, 4);
  EXPECT_EQ(io->count, 1u);
  EXPECT_EQ(io->data.size(), 4u);
  return *io;
}

void NoOp(int) {}

// Kicks a thread blocked in KVM_RUN: SIGUSR2 with a no-op handler (no SA_RESTART).
void InstallSigusr2() {
  struct sigaction action {};
  action.sa_handler = NoOp;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR2, &action, nullptr);
}

TEST(VcpuFd, CounterGuestOutsConsecutiveValues) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::CounterLoop(0x10)).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  EXPECT_EQ(vcpu.index(), 0);
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 3).ok());
  for (uint32_t n = 1; n <= 100; ++n) {
    PortIoExit io = ExpectPio(RunToExit(vcpu), 0x10, true);
    ASSERT_EQ(Le32(io.data), n);
  }
}

TEST(VcpuFd, ExitsCarryTheVcpuStateFromSyncRegs) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  if ((vm->kvm.CheckExtension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) == 0) {
    GTEST_SKIP() << "this KVM does not offer KVM_CAP_SYNC_REGS";
  }
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::CounterLoop(0x10)).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 3).ok());
  for (int n = 0; n < 3; ++n) {
    PortIoExit io = ExpectPio(RunToExit(vcpu), 0x10, true);
    // The OUT is inside the loop's few bytes; RFLAGS bit 1 always reads as 1.
    EXPECT_GE(io.rip, kTinyCodeGpa);
    EXPECT_LT(io.rip, kTinyCodeGpa + 16);
    EXPECT_EQ(io.rflags & 2, 2u);
  }
}

TEST(VcpuFd, InDataFilledByTheHostIsSeenByTheGuest) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::EchoIncrementLoop(0x11, 0x12)).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 3).ok());
  for (uint32_t value : {0u, 41u, 0xfffffffeu, 0x12345678u}) {
    PortIoExit in = ExpectPio(RunToExit(vcpu), 0x11, false);
    ASSERT_EQ(in.data.size(), 4u);
    PutLe32(in.data, value);
    PortIoExit out = ExpectPio(RunToExit(vcpu), 0x12, true);
    ASSERT_EQ(out.data.size(), 4u);
    EXPECT_EQ(Le32(out.data), value + 1);
  }
}

TEST(VcpuFd, MmioWritesAndReadsRoundTrip) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  const std::vector<uint8_t> code = {
      0xb8, 0x44, 0x33, 0x22, 0x11,                          // mov eax, 0x11223344
      0xa3, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00,  // mov [0xd0000000], eax
      0xa1, 0x04, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00,  // mov eax, [0xd0000004]
      0xe7, 0x10,                                            // out 0x10, eax
      0xeb, 0xfe,                                            // jmp $
  };
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, code).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 3).ok());
  auto exit = RunToExit(vcpu);
  ASSERT_TRUE(exit.ok()) << exit.status();
  auto* write = std::get_if<MmioExit>(&*exit);
  ASSERT_NE(write, nullptr) << "exit variant index " << exit->index();
  EXPECT_TRUE(write->is_write);
  EXPECT_EQ(write->gpa, 0xd0000000u);
  ASSERT_EQ(write->data.size(), 4u);
  EXPECT_EQ(Le32(write->data), 0x11223344u);
  exit = RunToExit(vcpu);
  ASSERT_TRUE(exit.ok()) << exit.status();
  auto* read = std::get_if<MmioExit>(&*exit);
  ASSERT_NE(read, nullptr) << "exit variant index " << exit->index();
  EXPECT_FALSE(read->is_write);
  EXPECT_EQ(read->gpa, 0xd0000004u);
  ASSERT_EQ(read->data.size(), 4u);
  PutLe32(read->data, 0xdeadbeef);
  EXPECT_EQ(Le32(ExpectPio(RunToExit(vcpu), 0x10, true).data), 0xdeadbeefu);
}

TEST(VcpuFd, HltWithoutIrqchipIsAnExit) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::HaltLoop(0x10)).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 0, /*rax=*/7).ok());
  EXPECT_EQ(Le32(ExpectPio(RunToExit(vcpu), 0x10, true).data), 7u);
  auto exit = RunToExit(vcpu);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(std::holds_alternative<HltExit>(*exit)) << "exit variant index " << exit->index();
  EXPECT_EQ(Le32(ExpectPio(RunToExit(vcpu), 0x10, true).data), 8u);
}

TEST(VcpuFd, HltWithInKernelIrqchipBlocksUntilKicked) {
  SKIP_WITHOUT_KVM();
  InstallSigusr2();
  auto vm = CreateTinyVm(TinyVmOptions{.irqchip = true});
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::HaltLoop(0x10)).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 0, /*rax=*/7).ok());
  EXPECT_EQ(Le32(ExpectPio(RunToExit(vcpu), 0x10, true).data), 7u);
  // Run in a second thread and kick it until KVM_RUN returns. Until the hlt has executed, a kick
  // may land first; then run again, kicking later each time.
  const uint64_t after_hlt = kTinyCodeGpa + testing::kHaltLoopHltOffset + 1;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int halted_returns = 0;
  for (int attempt = 1; halted_returns < 2; ++attempt) {
    ASSERT_LT(absl::Now(), deadline) << "vCPU never returned from a halt";
    vcpu.SetImmediateExit(false);
    std::atomic<bool> done{false};
    absl::StatusOr<KvmExit> result;
    std::thread runner([&] {
      result = vcpu.Run();
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(attempt));  // kick later each time
    while (!done) {
      vcpu.SetImmediateExit(true);
      pthread_kill(runner.native_handle(), SIGUSR2);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    runner.join();
    ASSERT_TRUE(result.ok()) << result.status();
    // In-kernel halt: never an HltExit, never the next OUT; only the kick ends KVM_RUN.
    ASSERT_TRUE(std::holds_alternative<InterruptedExit>(*result))
        << "exit variant index " << result->index();
    auto regs = testing::GetBasicRegs(vcpu);
    ASSERT_TRUE(regs.ok()) << regs.status();
    EXPECT_EQ(regs->rax, 7u);
    if (regs->rip == after_hlt) ++halted_returns;
  }
  kvm_mp_state mp{};
  ASSERT_EQ(ioctl(vcpu.fd(), KVM_GET_MP_STATE, &mp), 0);
  EXPECT_EQ(mp.mp_state, static_cast<uint32_t>(KVM_MP_STATE_HALTED));
}

TEST(VcpuFd, IoEventFdSignalsInsteadOfExiting) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{.irqchip = true});
  ASSERT_TRUE(vm.ok()) << vm.status();
  const std::vector<uint8_t> code = {0xe7, 0x20,   // out 0x20, eax
                                     0xe7, 0x10,   // out 0x10, eax
                                     0xeb, 0xfa};  // jmp back
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, code).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(EnterLongMode(vcpu, kTinyCodeGpa, 3, /*rax=*/5).ok());
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  ASSERT_TRUE(vm->vm.RegisterIoEventFd(efd, IoSpace::kPio, 0x20, 4).ok());
  for (int i = 0; i < 3; ++i) ExpectPio(RunToExit(vcpu), 0x10, true);
  uint64_t count = 0;
  ASSERT_EQ(read(efd, &count, 8), 8);
  EXPECT_EQ(count, 3u);
  ASSERT_TRUE(vm->vm.UnregisterIoEventFd(efd, IoSpace::kPio, 0x20, 4).ok());
  ExpectPio(RunToExit(vcpu), 0x20, true);
  EXPECT_EQ(vm->vm.RegisterIoEventFd(efd, IoSpace::kPio, 0x20, 3).code(),
            absl::StatusCode::kInvalidArgument);
  close(efd);
}

TEST(VmFd, IrqFdAndIrqLineNeedTheIrqchip) {
  SKIP_WITHOUT_KVM();
  const int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  {
    auto vm = CreateTinyVm(TinyVmOptions{.irqchip = true});
    ASSERT_TRUE(vm.ok()) << vm.status();
    EXPECT_TRUE(vm->vm.RegisterIrqFd(efd, 5).ok());
    EXPECT_TRUE(vm->vm.UnregisterIrqFd(efd, 5).ok());
    EXPECT_TRUE(vm->vm.SetIrqLine(4, true).ok());
    EXPECT_TRUE(vm->vm.SetIrqLine(4, false).ok());
  }
  {
    auto vm = CreateTinyVm(TinyVmOptions{});
    ASSERT_TRUE(vm.ok()) << vm.status();
    EXPECT_EQ(vm->vm.RegisterIrqFd(efd, 5).code(), absl::StatusCode::kInternal);
    EXPECT_EQ(vm->vm.SetIrqLine(4, true).code(), absl::StatusCode::kInternal);
  }
  close(efd);
}

TEST(VcpuFd, PvhBootStateEntersFlat32BitCodeWithStartInfoInEbx) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  const std::vector<uint8_t> code32 = {0x89, 0xd8,  // mov eax, ebx
                                       0xe7, 0x10,  // out 0x10, eax
                                       0xf4};       // hlt
  ASSERT_TRUE(LoadCode(vm->memory, 0x100000, code32).ok());
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(vcpu.SetupPvhBootState(0x100000, 0x6000).ok());
  kvm_sregs s{};
  ASSERT_EQ(ioctl(vcpu.fd(), KVM_GET_SREGS, &s), 0);
  EXPECT_EQ(s.cr0 & 0x80000011u, 0x11u);
  EXPECT_EQ(s.cs.selector, 0x10);
  EXPECT_EQ(s.cs.db, 1);
  EXPECT_EQ(s.ds.selector, 0x18);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(Le32(ExpectPio(RunToExit(vcpu), 0x10, true).data), 0x6000u);
  auto exit = RunToExit(vcpu);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(std::holds_alternative<HltExit>(*exit)) << "exit variant index " << exit->index();
}

TEST(VcpuFd, BootMsrsEnableFastStrings) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  VcpuFd& vcpu = vm->vcpus[0];
  ASSERT_TRUE(vcpu.SetupBootMsrs().ok());
  kvm_internal::FlexBuffer<kvm_msr_entry> msrs(1);
  msrs.entries()[0].index = kMsrIa32MiscEnable;
  ASSERT_EQ(ioctl(vcpu.fd(), kvm_internal::kKvmGetMsrs, msrs.data()), 1);
  EXPECT_TRUE(msrs.entries()[0].data & kMiscEnableFastString);
}

TEST(VcpuFd, CreateRejectsABadIndex) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{});
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ(VcpuFd::Create(vm->kvm, vm->vm, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VcpuFd::Create(vm->kvm, vm->vm, 0).status().code(), absl::StatusCode::kInternal)
      << "vCPU 0 exists already";
}

}  // namespace
}  // namespace rehome
