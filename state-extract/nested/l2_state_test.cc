// state-extract/nested/l2_state_test.cc: which parts of L2's state come from the live L1 vCPU
// and which from the agent's last commit.
#include "state-extract/nested/l2_state.h"

#include "gtest/gtest.h"

namespace rehome::nested {
namespace {

VmState Committed() {
  VmState vm;
  vm.clock.clock = 111;
  vm.ioapic.emplace().chip[0] = 7;
  CpuState c;
  c.regs.rip = 0x1000;
  c.regs.rbx = 1;
  c.sregs.apic_base = 0xfee00900;
  c.sregs.cr3 = 0x5000;
  c.msrs = {{0xc0000082, 0xaaaa}, {0x277, 0x0007040600070406}, {0x174, 0x10}};
  c.lapic.emplace().regs[0x20] = 9;
  c.mp_state = 0;
  c.tsc = 424242;
  c.xsave.bytes.assign(4096, 1);
  vm.vcpus.push_back(c);
  return vm;
}

CpuState Live() {
  CpuState l;
  l.regs.rip = 0x2000;
  l.regs.rbx = 2;
  l.sregs.apic_base = 0xfee00d00;  // L1's
  l.sregs.cr3 = 0x9000;
  l.msrs = {{0xc0000082, 0xbbbb}, {0x277, 0x1}, {0x174, 0x20}, {0x10, 5}};
  l.lapic.emplace().regs[0x20] = 3;  // L1's LAPIC
  l.xsave.bytes.assign(4096, 2);
  l.events.interrupt.injected = 1;
  l.tsc = 1;
  return l;
}

TEST(L2State, RegistersSegmentsFpuAndEventsAreLiveTheRestIsCommitted) {
  absl::StatusOr<VmState> l2 = AssembleL2FromGuestMode(Live(), Committed());
  ASSERT_TRUE(l2.ok()) << l2.status();
  const CpuState& c = l2->vcpus[0];
  EXPECT_EQ(c.regs.rip, 0x2000u);
  EXPECT_EQ(c.regs.rbx, 2u);
  EXPECT_EQ(c.sregs.cr3, 0x9000u);
  EXPECT_EQ(c.sregs.apic_base, 0xfee00900u);  // L2's, from the commit
  EXPECT_EQ(c.xsave.bytes[100], 2);
  EXPECT_EQ(c.events.interrupt.injected, 1);
  // KVM reports L1's MSRs for an L1 vCPU in guest mode: L2's come from the commit.
  EXPECT_EQ(c.msrs, Committed().vcpus[0].msrs);
  EXPECT_EQ(c.lapic->regs[0x20], 9);  // L2's LAPIC from the commit
  EXPECT_EQ(c.tsc, 424242u);
  EXPECT_EQ(l2->clock.clock, 111u);
  EXPECT_EQ(l2->ioapic->chip[0], 7);
}

// The VMCB an L1's KVM ran L2 with, as L0 reads it at the VMRUN return: L2 in long mode.
Vmcb ExitVmcb() {
  Vmcb v;
  v.control.intercepts[4] = 1;  // VMRUN
  v.control.asid = 1;
  v.control.misc_ctl = 1;  // nested paging
  v.control.exit_code = kSvmExitNpf;
  v.control.int_ctl = 0x3;  // V_TPR 3
  v.control.int_state = 1;  // in an interrupt shadow
  v.save.efer = kEferSvme | kEferLme | kEferLma;
  v.save.cr0 = 0x80000011;
  v.save.cr3 = 0x7000;
  v.save.cr4 = 0x20;
  v.save.cr2 = 0xdead000;
  v.save.cs = {0x10, 0x29b, 0xffffffff, 0};  // L=1
  v.save.ss = {0x18, 0x293, 0xffffffff, 0};
  v.save.fs = {0, 0, 0, 0x1111};  // stale: VMSAVE state the L1 has not saved yet
  v.save.rip = 0x3000;
  v.save.rsp = 0x8000;
  v.save.rax = 0x77;
  v.save.rflags = 0x246;
  v.save.dr6 = 0xffff0ff0;
  v.save.dr7 = 0x400;
  return v;
}

CpuState L1AtReturn() {
  CpuState l = Live();
  l.regs.rax = 0x123000;  // the VMCB's address (VMRUN's operand), not L2's RAX
  l.regs.rip = 0xffffffffc0a12383;
  l.regs.rsp = 0xffffc90000123e80;
  l.regs.rbx = 0xb;
  l.regs.r15 = 0xf;
  l.sregs.fs.base = 0x2222;  // L2's FS, still in the CPU
  l.sregs.efer = kEferSvme | kEferLme | kEferLma;
  l.msrs.push_back({0xc0000102, 0x5555});  // L2's KERNEL_GS_BASE, still in the CPU
  return l;
}

TEST(L2State, AtAnExitTheVmcbGivesWhatExitSavesTheL1VcpuTheRest) {
  VmState committed = Committed();
  committed.vcpus[0].msrs.push_back({0xc0000102, 0x4444});
  committed.vcpus[0].events.exception.injected = 1;
  absl::StatusOr<VmState> l2 = AssembleL2FromExit(L1AtReturn(), ExitVmcb(), committed);
  ASSERT_TRUE(l2.ok()) << l2.status();
  const CpuState& c = l2->vcpus[0];
  EXPECT_EQ(c.regs.rip, 0x3000u);
  EXPECT_EQ(c.regs.rsp, 0x8000u);
  EXPECT_EQ(c.regs.rax, 0x77u);
  EXPECT_EQ(c.regs.rflags, 0x246u);
  EXPECT_EQ(c.regs.rbx, 0xbu);
  EXPECT_EQ(c.regs.r15, 0xfu);
  EXPECT_EQ(c.sregs.cr3, 0x7000u);
  EXPECT_EQ(c.sregs.cr2, 0xdead000u);
  EXPECT_EQ(c.sregs.cs.l, 1);
  EXPECT_EQ(c.sregs.fs.base, 0x2222u);           // from the CPU, not the VMCB
  EXPECT_EQ(c.sregs.efer, kEferLme | kEferLma);  // L2 has no SVME of its own
  EXPECT_EQ(c.sregs.cr8, 3u);
  EXPECT_EQ(c.sregs.apic_base, 0xfee00900u);
  EXPECT_EQ(c.xsave.bytes[100], 2);  // the FPU is still L2's in the CPU
  EXPECT_EQ(c.debugregs.dr6, 0xffff0ff0u);
  EXPECT_EQ(c.events.interrupt.shadow, 1);
  EXPECT_EQ(c.events.interrupt.injected, 0);
  EXPECT_EQ(c.events.exception.injected, 0);
  EXPECT_EQ(c.lapic->regs[0x20], 9);  // from the commit
  for (const MsrEntry& msr : c.msrs) {
    if (msr.index == 0xc0000102) {
      EXPECT_EQ(msr.data, 0x5555u);
    }
    if (msr.index == 0xc0000082) {
      EXPECT_EQ(msr.data, 0xaaaau);  // LSTAR: the commit's
    }
  }
  EXPECT_EQ(l2->clock.clock, 111u);
}

TEST(L2State, AnExitDuringEventDeliveryOrAnUnrunnableVmcbIsRefused) {
  Vmcb delivering = ExitVmcb();
  delivering.control.exit_int_info = 0x80000020;  // vector 32, external interrupt, valid
  absl::StatusOr<VmState> a = AssembleL2FromExit(L1AtReturn(), delivering, Committed());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(a.status().message().find("EXITINTINFO"), std::string::npos) << a.status();
  Vmcb garbage = ExitVmcb();
  garbage.control.asid = 0;
  garbage.save.efer = 0;
  absl::StatusOr<VmState> b = AssembleL2FromExit(L1AtReturn(), garbage, Committed());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(AssembleL2FromExit(L1AtReturn(), ExitVmcb(), VmState{}).ok());
}

TEST(L2State, NeedsExactlyOneCommittedVcpu) {
  VmState two = Committed();
  two.vcpus.push_back(two.vcpus[0]);
  EXPECT_FALSE(AssembleL2FromGuestMode(Live(), two).ok());
  EXPECT_FALSE(AssembleL2FromGuestMode(Live(), VmState{}).ok());
}

}  // namespace
}  // namespace rehome::nested
