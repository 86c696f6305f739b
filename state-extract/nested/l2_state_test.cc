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

TEST(L2State, NeedsExactlyOneCommittedVcpu) {
  VmState two = Committed();
  two.vcpus.push_back(two.vcpus[0]);
  EXPECT_FALSE(AssembleL2FromGuestMode(Live(), two).ok());
  EXPECT_FALSE(AssembleL2FromGuestMode(Live(), VmState{}).ok());
}

}  // namespace
}  // namespace rehome::nested
