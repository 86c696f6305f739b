// kvm-l0/cpu_state_io_test.cc: vCPU and VM state capture/restore on the real /dev/kvm. A CPL3
// guest counts in RBX and XMM0; its state is captured mid-run, sent through the RHSTATE codec,
// and restored into a second VM over the same guest-RAM memfd, which must continue the count.
#include "kvm-l0/cpu_state_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "base/mapped_region.h"
#include "base/status_macros.h"  // REHOME_CONCAT_
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "kvm-l0/state_io_test_vm.h"
#include "kvm-l0/vm_state_io.h"
#include "state-extract/state_codec.h"

namespace rehome::state_io_test {
namespace {

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const absl::Status status_ = (expr);                   \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_; \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                               \
  auto REHOME_CONCAT_(result_, __LINE__) = (expr);                    \
  ASSERT_TRUE(REHOME_CONCAT_(result_, __LINE__).ok())                 \
      << #expr << ": " << REHOME_CONCAT_(result_, __LINE__).status(); \
  lhs = std::move(REHOME_CONCAT_(result_, __LINE__)).value()

uint64_t XmmLow(const CpuState& s, int reg) {
  uint64_t v;
  std::memcpy(&v, s.fpu.xmm[reg].data(), 8);
  return v;
}

// Everything but the clock-driven parts must be identical; the TSC may only have moved on.
void ExpectSameApartFromTime(const CpuState& want, const CpuState& got) {
  EXPECT_TRUE(got.regs == want.regs);
  EXPECT_TRUE(got.sregs == want.sregs);
  EXPECT_TRUE(got.fpu == want.fpu);
  EXPECT_TRUE(got.xsave == want.xsave);
  EXPECT_TRUE(got.xcrs == want.xcrs);
  EXPECT_TRUE(got.lapic == want.lapic);
  EXPECT_TRUE(got.events == want.events);
  EXPECT_EQ(got.mp_state, want.mp_state);
  EXPECT_TRUE(got.debugregs == want.debugregs);
  EXPECT_EQ(got.tsc_khz, want.tsc_khz);
  EXPECT_GE(got.tsc, want.tsc);
  std::map<uint32_t, uint64_t> have;
  for (const MsrEntry& m : got.msrs) have[m.index] = m.data;
  std::string diff;
  for (const MsrEntry& m : want.msrs) {
    auto it = have.find(m.index);
    if (it == have.end()) {
      diff += absl::StrFormat(" 0x%x missing;", m.index);
    } else if (it->second != m.data) {
      diff += absl::StrFormat(" 0x%x: 0x%x -> 0x%x;", m.index, m.data, it->second);
    }
  }
  EXPECT_EQ(got.msrs.size(), want.msrs.size());
  EXPECT_EQ(diff, "");
}

class StateIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kvm_.Reset(open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm_.valid()) GTEST_SKIP() << "no /dev/kvm: " << std::strerror(errno);
    memfd_.Reset(memfd_create("rehome-state-io-test", MFD_CLOEXEC));
    ASSERT_TRUE(memfd_.valid());
    ASSERT_EQ(ftruncate(memfd_.get(), kTestRamSize), 0);
    ASSERT_OK_AND_ASSIGN(ram_, MapRam());
    WriteCounterGuest(ram_.bytes());
  }

  absl::StatusOr<MappedRegion> MapRam() {
    return MappedRegion::Map(kTestRamSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
  }

  // Runs the guest through iterations first..last, checking both reports of each.
  static void RunIterations(TestVm& vm, uint32_t first, uint32_t last) {
    for (uint32_t n = first; n <= last; ++n) {
      for (uint16_t port : {kCounterPort, kXmmPort}) {
        ASSERT_OK_AND_ASSIGN(PortOut out, vm.RunToOut());
        ASSERT_EQ(out.port, port) << "iteration " << n;
        ASSERT_EQ(out.value, n) << "port " << port;
      }
    }
  }

  UniqueFd kvm_;
  UniqueFd memfd_;
  MappedRegion ram_;
};

TEST_F(StateIoTest, SecondVmOverSameMemfdContinuesWhereTheFirstStopped) {
  VmState captured;
  {
    ASSERT_OK_AND_ASSIGN(TestVm vm1, TestVm::Create(kvm_.get(), ram_.bytes(), true));
    ASSERT_OK(vm1.SetUpEntry());
    RunIterations(vm1, 1, 500);
    if (HasFatalFailure()) return;
    ASSERT_OK(vm1.CompletePendingIo());
    const int vcpus[] = {vm1.vcpu_fd()};
    ASSERT_OK_AND_ASSIGN(captured, CaptureVm(kvm_.get(), vm1.vm_fd(), vcpus));
  }  // The first VM is gone; only the memfd remains.
  ASSERT_EQ(captured.vcpus.size(), 1u);
  const CpuState& cpu = captured.vcpus[0];
  EXPECT_EQ(cpu.regs.rbx, 500u);
  EXPECT_EQ(XmmLow(cpu, 0), 500u);
  EXPECT_EQ(XmmLow(cpu, 1), 1u);
  EXPECT_TRUE(cpu.lapic.has_value());
  EXPECT_TRUE(captured.pic_master && captured.pic_slave && captured.ioapic && captured.pit);
  EXPECT_FALSE(cpu.msrs.empty());
  EXPECT_GT(cpu.tsc, 0u);

  const std::string bytes = EncodeVmState(captured);
  ASSERT_OK_AND_ASSIGN(VmState decoded, DecodeVmState(bytes));
  ASSERT_TRUE(decoded == captured);

  ASSERT_OK_AND_ASSIGN(MappedRegion ram2, MapRam());  // a fresh view of the same memfd
  ASSERT_OK_AND_ASSIGN(TestVm vm2, TestVm::Create(kvm_.get(), ram2.bytes(), true));
  const int vcpus2[] = {vm2.vcpu_fd()};
  ASSERT_OK(RestoreVm(kvm_.get(), vm2.vm_fd(), vcpus2, decoded));

  ASSERT_OK_AND_ASSIGN(VmState restored, CaptureVm(kvm_.get(), vm2.vm_fd(), vcpus2));
  ExpectSameApartFromTime(captured.vcpus[0], restored.vcpus[0]);
  EXPECT_TRUE(restored.pic_master == captured.pic_master);
  EXPECT_TRUE(restored.pic_slave == captured.pic_slave);
  EXPECT_TRUE(restored.ioapic == captured.ioapic);
  EXPECT_GE(restored.clock.clock, captured.clock.clock);

  RunIterations(vm2, 501, 1500);
}

TEST_F(StateIoTest, CaptureThenRestoreIntoTheSameVcpuIsIdentity) {
  ASSERT_OK_AND_ASSIGN(TestVm vm, TestVm::Create(kvm_.get(), ram_.bytes(), true));
  ASSERT_OK(vm.SetUpEntry());
  RunIterations(vm, 1, 100);
  if (HasFatalFailure()) return;
  ASSERT_OK(vm.CompletePendingIo());
  ASSERT_OK_AND_ASSIGN(CpuState first, CaptureCpuState(kvm_.get(), vm.vcpu_fd()));
  ASSERT_OK(RestoreCpuState(kvm_.get(), vm.vcpu_fd(), first));
  ASSERT_OK_AND_ASSIGN(CpuState second, CaptureCpuState(kvm_.get(), vm.vcpu_fd()));
  ExpectSameApartFromTime(first, second);
  ASSERT_OK_AND_ASSIGN(VmState vm_first, CaptureVmState(vm.vm_fd()));
  ASSERT_OK(RestoreVmState(vm.vm_fd(), vm_first));
  ASSERT_OK_AND_ASSIGN(VmState vm_second, CaptureVmState(vm.vm_fd()));
  EXPECT_TRUE(vm_second.pic_master == vm_first.pic_master);
  EXPECT_TRUE(vm_second.ioapic == vm_first.ioapic);
  EXPECT_TRUE(vm_second.pit.has_value());
  EXPECT_GE(vm_second.clock.clock, vm_first.clock.clock);
  RunIterations(vm, 101, 200);
}

TEST_F(StateIoTest, ThePartialCaptureMatchesTheFullOneWhereItCaptures) {
  ASSERT_OK_AND_ASSIGN(TestVm vm, TestVm::Create(kvm_.get(), ram_.bytes(), true));
  ASSERT_OK(vm.SetUpEntry());
  RunIterations(vm, 1, 50);
  if (HasFatalFailure()) return;
  ASSERT_OK(vm.CompletePendingIo());
  ASSERT_OK_AND_ASSIGN(CpuState full, CaptureCpuState(kvm_.get(), vm.vcpu_fd()));
  const std::vector<uint32_t> wanted{0xc0000102, 0xc0000082};  // KERNEL_GS_BASE, LSTAR
  ASSERT_OK_AND_ASSIGN(CpuState part,
                       CaptureRegistersAndFpu(kvm_.get(), vm.vcpu_fd(), wanted));
  EXPECT_EQ(part.regs, full.regs);
  EXPECT_EQ(part.sregs, full.sregs);
  EXPECT_EQ(part.fpu, full.fpu);
  EXPECT_EQ(part.xsave, full.xsave);
  ASSERT_EQ(part.msrs.size(), 2u);
  for (const MsrEntry& msr : part.msrs) {
    bool found = false;
    for (const MsrEntry& f : full.msrs) found |= f == msr;
    EXPECT_TRUE(found) << std::hex << msr.index;
  }
  EXPECT_FALSE(part.lapic.has_value());
  EXPECT_EQ(part.tsc, 0u);
}

TEST_F(StateIoTest, VmWithoutIrqchipHasNoLapicIrqchipOrPit) {
  ASSERT_OK_AND_ASSIGN(TestVm with, TestVm::Create(kvm_.get(), ram_.bytes(), true));
  ASSERT_OK_AND_ASSIGN(CpuState with_lapic, CaptureCpuState(kvm_.get(), with.vcpu_fd()));
  ASSERT_OK_AND_ASSIGN(VmState with_chips, CaptureVmState(with.vm_fd()));
  ASSERT_TRUE(with_lapic.lapic.has_value());

  ASSERT_OK_AND_ASSIGN(MappedRegion ram2, MapRam());
  ASSERT_OK_AND_ASSIGN(TestVm bare, TestVm::Create(kvm_.get(), ram2.bytes(), false));
  ASSERT_OK(bare.SetUpEntry());
  ASSERT_OK_AND_ASSIGN(CpuState cpu, CaptureCpuState(kvm_.get(), bare.vcpu_fd()));
  ASSERT_OK_AND_ASSIGN(VmState vm, CaptureVmState(bare.vm_fd()));
  EXPECT_FALSE(cpu.lapic.has_value());
  EXPECT_FALSE(vm.pic_master || vm.pic_slave || vm.ioapic || vm.pit);

  // Its own state restores; a LAPIC or irqchip it lacks does not.
  ASSERT_OK(RestoreCpuState(kvm_.get(), bare.vcpu_fd(), cpu));
  ASSERT_OK(RestoreVmState(bare.vm_fd(), vm));
  cpu.lapic = with_lapic.lapic;
  EXPECT_EQ(RestoreCpuState(kvm_.get(), bare.vcpu_fd(), cpu).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RestoreVmState(bare.vm_fd(), with_chips).code(), absl::StatusCode::kFailedPrecondition);
  RunIterations(bare, 1, 10);
}

TEST_F(StateIoTest, MismatchedOrBadInputsAreRejected) {
  ASSERT_OK_AND_ASSIGN(TestVm vm, TestVm::Create(kvm_.get(), ram_.bytes(), true));
  ASSERT_OK_AND_ASSIGN(VmState state, CaptureVm(kvm_.get(), vm.vm_fd(), {}));
  const int vcpus[] = {vm.vcpu_fd()};
  EXPECT_EQ(RestoreVm(kvm_.get(), vm.vm_fd(), vcpus, state).code(),
            absl::StatusCode::kInvalidArgument);
  CpuState cpu;
  cpu.xsave.bytes.resize(100);
  EXPECT_EQ(RestoreCpuState(kvm_.get(), vm.vcpu_fd(), cpu).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CaptureCpuState(kvm_.get(), -1).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(CaptureVmState(-1).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace rehome::state_io_test
