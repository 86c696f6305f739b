// state-extract/nested/nested_state_test.cc: the KVM_GET_NESTED_STATE blob, the VMCB and
// vmcs12 on synthetic data for both vendors: field offsets against the published layouts,
// round trips, every rejection, conversion to rehome's register types, and a fuzz loop.
#include "state-extract/nested/nested_state.h"

#include <random>

#include "gtest/gtest.h"
#include "state-extract/nested/le_bytes.h"

namespace rehome::nested {
namespace {

// A long-mode L2 as KVM would have it in vmcb12 after a #VMEXIT on an OUT.
Vmcb LongModeVmcb() {
  Vmcb v;
  v.control.intercepts[4] = 1;  // VMRUN
  v.control.asid = 1;
  v.control.misc_ctl = 1;  // nested paging
  v.control.nested_cr3 = 0x3f00'0000;
  v.control.exit_code = kSvmExitIoio;
  v.control.exit_info_1 = 0x00f40010;
  v.control.next_rip = 0x10'0042;
  v.save.cs = {0x10, 0x029b, 0xffffffff, 0};  // code, S, P, L, G
  v.save.ss = {0x18, 0x0c93, 0xffffffff, 0};
  v.save.ds = v.save.es = v.save.ss;
  v.save.tr = {0x28, 0x008b, 0x67, 0x5000};
  v.save.gdtr = {0, 0, 0x2f, 0x4000};
  v.save.idtr = {0, 0, 0xfff, 0x7000};
  v.save.cpl = 3;
  v.save.efer = kEferSvme | kEferLme | kEferLma | kEferNxe;
  v.save.cr0 = 0x8000'0011;
  v.save.cr3 = 0x9000;
  v.save.cr4 = 0x20;
  v.save.rflags = 0x3202;
  v.save.rip = 0x10'0040;
  v.save.rsp = 0x7ff0;
  v.save.rax = 0x1234;
  v.save.dr6 = 0xffff0ff0;
  v.save.dr7 = 0x400;
  v.save.lstar = 0xffff'8000'0000'1000;
  v.save.g_pat = 0x0007'0406'0007'0406;
  return v;
}

std::vector<uint8_t> Page(const Vmcb& v) {
  std::vector<uint8_t> page(kVmcbSize, 0);
  EncodeVmcb(v, page);
  return page;
}

TEST(Vmcb, FieldsSitAtThePublishedOffsets) {
  const std::vector<uint8_t> page = Page(LongModeVmcb());
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x0b0), 0x3f00'0000u);    // N_CR3
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x070), kSvmExitIoio);    // EXITCODE
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x0c8), 0x10'0042u);      // nRIP
  EXPECT_EQ(LoadLe<uint16_t>(page, 0x400 + 0x10), 0x10u);    // CS selector
  EXPECT_EQ(LoadLe<uint16_t>(page, 0x400 + 0x12), 0x029bu);  // CS attrib
  EXPECT_EQ(page[0x400 + 0xcb], 3);                          // CPL
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x0d0) & kEferSvme, kEferSvme);
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x178), 0x10'0040u);              // RIP
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x1d8), 0x7ff0u);                 // RSP
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x1f8), 0x1234u);                 // RAX
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x208), 0xffff'8000'0000'1000u);  // LSTAR
  EXPECT_EQ(LoadLe<uint64_t>(page, 0x400 + 0x268), 0x0007'0406'0007'0406u);  // G_PAT
}

TEST(Vmcb, RoundTripsEveryField) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::vector<uint8_t> page(kVmcbSize);
    for (uint8_t& b : page) b = static_cast<uint8_t>(rng());
    for (size_t seg = 0; seg < 10; ++seg) page[0x400 + 16 * seg + 3] &= 0x0f;  // attrib 15:12
    absl::StatusOr<Vmcb> parsed = ParseVmcb(page);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    std::vector<uint8_t> again(kVmcbSize, 0);
    EncodeVmcb(*parsed, again);
    EXPECT_EQ(*ParseVmcb(again), *parsed);
  }
}

TEST(Vmcb, RejectsShortPagesAndImpossibleAttributes) {
  std::vector<uint8_t> page = Page(LongModeVmcb());
  EXPECT_FALSE(ParseVmcb(std::span<const uint8_t>(page).first(kVmcbMinBytes - 1)).ok());
  page[0x400 + 0x13] |= 0x10;  // CS attrib bit 12
  absl::StatusOr<Vmcb> bad = ParseVmcb(page);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("attrib"), std::string::npos);
}

TEST(Vmcb, ConsistencyChecksFindWhatVmrunRefuses) {
  EXPECT_TRUE(VmrunConsistencyErrors(LongModeVmcb()).empty());
  struct Case {
    const char* expect;
    void (*mutate)(Vmcb&);
  };
  const Case cases[] = {
      {"SVME", [](Vmcb& v) { v.save.efer &= ~kEferSvme; }},
      {"NW", [](Vmcb& v) { v.save.cr0 |= 1ull << 29; }},
      {"CR0[63:32]", [](Vmcb& v) { v.save.cr0 |= 1ull << 40; }},
      {"DR6", [](Vmcb& v) { v.save.dr6 |= 1ull << 33; }},
      {"DR7", [](Vmcb& v) { v.save.dr7 |= 1ull << 33; }},
      {"PAE", [](Vmcb& v) { v.save.cr4 = 0; }},
      {"CR0.PE", [](Vmcb& v) { v.save.cr0 &= ~1ull; }},
      {"CS.L and CS.D", [](Vmcb& v) { v.save.cs.attrib |= 1u << 10; }},
      {"VMRUN", [](Vmcb& v) { v.control.intercepts[4] = 0; }},
      {"ASID", [](Vmcb& v) { v.control.asid = 0; }},
  };
  for (const Case& c : cases) {
    Vmcb v = LongModeVmcb();
    c.mutate(v);
    const std::vector<std::string> errors = VmrunConsistencyErrors(v);
    ASSERT_EQ(errors.size(), 1u) << c.expect;
    EXPECT_NE(errors[0].find(c.expect), std::string::npos) << errors[0];
  }
}

TEST(Vmcb, SaveAreaBecomesRegistersAndSegments) {
  const Vmcb v = LongModeVmcb();
  Regs regs;
  regs.rbx = 77;  // not in a VMCB: must survive
  Sregs sregs;
  ApplyVmcbSave(v.save, &regs, &sregs);
  EXPECT_EQ(regs.rip, 0x10'0040u);
  EXPECT_EQ(regs.rsp, 0x7ff0u);
  EXPECT_EQ(regs.rax, 0x1234u);
  EXPECT_EQ(regs.rflags, 0x3202u);
  EXPECT_EQ(regs.rbx, 77u);
  EXPECT_EQ(sregs.cs.l, 1);
  EXPECT_EQ(sregs.cs.db, 0);
  EXPECT_EQ(sregs.cs.dpl, 0);
  EXPECT_EQ(sregs.cs.present, 1);
  EXPECT_EQ(sregs.cs.type, 0xb);
  EXPECT_EQ(sregs.ss.db, 1);
  EXPECT_EQ(sregs.ss.g, 1);
  EXPECT_EQ(sregs.fs.unusable, 1);  // attrib 0: not present
  EXPECT_EQ(sregs.tr.base, 0x5000u);
  EXPECT_EQ(sregs.gdt.limit, 0x2f);
  EXPECT_EQ(sregs.idt.base, 0x7000u);
  EXPECT_EQ(sregs.efer, v.save.efer);
  for (const VmcbSegment& seg : {v.save.cs, v.save.ss, v.save.tr}) {
    EXPECT_EQ(VmcbFromSegment(SegmentFromVmcb(seg)), seg);
  }
  const std::vector<MsrEntry> msrs = VmcbSaveMsrs(v.save);
  ASSERT_EQ(msrs.size(), 9u);
  EXPECT_EQ(msrs[1].index, 0xc0000082u);
  EXPECT_EQ(msrs[1].data, v.save.lstar);
}

Vmcs12 LongModeVmcs12() {
  Vmcs12 v;
  v.launch_state = 1;
  v.ept_pointer = 0x5000 | (3 << 3) | 6;
  v.cpu_based_vm_exec_control = kVmxActivateSecondaryControls;
  v.secondary_vm_exec_control = kVmxSecondaryEnableEpt;
  v.guest_cs = {0x10, 0xffffffff, 0xa09b, 0};
  v.guest_ss = {0x18, 0xffffffff, 0xc093, 0};
  v.guest_fs = {0, 0, 0x10000, 0};  // unusable
  v.guest_tr = {0x28, 0x67, 0x8b, 0x5000};
  v.guest_gdtr_base = 0x4000;
  v.guest_gdtr_limit = 0x2f;
  v.guest_cr0 = 0x8000'0031;
  v.guest_cr3 = 0x9000;
  v.guest_cr4 = 0x2020;
  v.guest_ia32_efer = 0xd00;
  v.guest_rip = 0x10'0040;
  v.guest_rsp = 0x7ff0;
  v.guest_rflags = 0x202;
  v.vm_exit_reason = kVmxExitIo;
  v.exit_qualification = 0xf40000;
  v.guest_physical_address = 0xd000'0050;
  return v;
}

TEST(Vmcs12, FieldsSitAtKvmsFixedOffsets) {
  std::vector<uint8_t> page(kVmcs12Size, 0);
  EncodeVmcs12(LongModeVmcs12(), page);
  EXPECT_EQ(LoadLe<uint32_t>(page, 0), kVmcs12Revision);
  EXPECT_EQ(LoadLe<uint64_t>(page, 120), 0x5000u | (3 << 3) | 6);  // ept_pointer
  EXPECT_EQ(LoadLe<uint64_t>(page, 168), 0xd000'0050u);            // guest_physical_address
  EXPECT_EQ(LoadLe<uint64_t>(page, 544), 0x10'0040u);              // guest_rip
  EXPECT_EQ(LoadLe<uint32_t>(page, 812), kVmxExitIo);              // vm_exit_reason
  EXPECT_EQ(LoadLe<uint32_t>(page, 884), 0xa09bu);                 // guest_cs_ar_bytes
  EXPECT_EQ(LoadLe<uint16_t>(page, 966), 0x10u);                   // guest_cs_selector
  EXPECT_EQ(LoadLe<uint64_t>(page, 504), 0x5000u);                 // guest_tr_base
}

TEST(Vmcs12, RoundTripsAndConvertsTheGuestState) {
  const Vmcs12 v = LongModeVmcs12();
  std::vector<uint8_t> page(kVmcs12Size, 0);
  EncodeVmcs12(v, page);
  absl::StatusOr<Vmcs12> parsed = ParseVmcs12(page);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, v);
  EXPECT_TRUE(parsed->ept_enabled());
  Regs regs;
  regs.rcx = 5;
  Sregs sregs;
  ApplyVmcs12Guest(*parsed, &regs, &sregs);
  EXPECT_EQ(regs.rip, 0x10'0040u);
  EXPECT_EQ(regs.rcx, 5u);
  EXPECT_EQ(sregs.cs.l, 1);
  EXPECT_EQ(sregs.cs.g, 1);
  EXPECT_EQ(sregs.ss.db, 1);
  EXPECT_EQ(sregs.fs.unusable, 1);
  EXPECT_EQ(sregs.efer, 0xd00u);
  EXPECT_EQ(Vmcs12GuestMsrs(*parsed).size(), 5u);
}

TEST(Vmcs12, RejectsForeignRevisionsAndBadFields) {
  std::vector<uint8_t> page(kVmcs12Size, 0);
  Vmcs12 v = LongModeVmcs12();
  v.revision_id = kVmcs12Revision | 0x8000'0000;  // shadow VMCS: accepted
  EncodeVmcs12(v, page);
  EXPECT_TRUE(ParseVmcs12(page).ok());
  StoreLe<uint32_t>(page, 0, 0x12345678);
  EXPECT_FALSE(ParseVmcs12(page).ok());
  EncodeVmcs12(LongModeVmcs12(), page);
  StoreLe<uint32_t>(page, 8, 2);  // launch state
  EXPECT_FALSE(ParseVmcs12(page).ok());
  EncodeVmcs12(LongModeVmcs12(), page);
  StoreLe<uint32_t>(page, 884, 0xa09b | (1u << 20));  // CS AR reserved bit
  EXPECT_FALSE(ParseVmcs12(page).ok());
  EXPECT_FALSE(ParseVmcs12(std::span<const uint8_t>(page).first(100)).ok());
}

TEST(NestedState, SvmOutsideGuestModeIsJustAHeader) {
  NestedState s;
  s.format = NestedFormat::kSvm;
  s.flags = kNestedGifSet;
  const std::vector<uint8_t> blob = EncodeNestedState(s);
  ASSERT_EQ(blob.size(), kNestedStateHeaderSize);
  absl::StatusOr<NestedState> parsed = ParseNestedState(blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->guest_mode());
  EXPECT_FALSE(parsed->vmcb.has_value());
}

TEST(NestedState, SvmGuestModeCarriesTheVmcb) {
  NestedState s;
  s.format = NestedFormat::kSvm;
  s.flags = kNestedGuestMode | kNestedGifSet;
  s.vmcb_pa = 0x7654'3000;
  s.vmcb = LongModeVmcb();
  const std::vector<uint8_t> blob = EncodeNestedState(s);
  EXPECT_EQ(blob.size(), kNestedStateHeaderSize + kVmcbSize);
  EXPECT_EQ(LoadLe<uint16_t>(blob, 2), 1);  // format SVM
  EXPECT_EQ(LoadLe<uint64_t>(blob, 8), 0x7654'3000u);
  absl::StatusOr<NestedState> parsed = ParseNestedState(blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  s.size = static_cast<uint32_t>(blob.size());
  EXPECT_EQ(*parsed, s);
  EXPECT_EQ(parsed->vmcb->control.nested_cr3, 0x3f00'0000u);
}

TEST(NestedState, VmxWithVmcs12AndShadow) {
  NestedState s;
  s.format = NestedFormat::kVmx;
  s.flags = kNestedGuestMode | kNestedRunPending;
  s.vmxon_pa = 0x10000;
  s.vmcs12_pa = 0x11000;
  s.vmx_flags = kNestedVmxPreemptionTimerDeadline;
  s.preemption_timer_deadline = 123456789;
  s.vmcs12 = LongModeVmcs12();
  s.shadow_vmcs12 = LongModeVmcs12();
  s.shadow_vmcs12->revision_id |= 0x8000'0000;
  const std::vector<uint8_t> blob = EncodeNestedState(s);
  EXPECT_EQ(blob.size(), kNestedStateMaxSize);
  absl::StatusOr<NestedState> parsed = ParseNestedState(blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  s.size = static_cast<uint32_t>(blob.size());
  EXPECT_EQ(*parsed, s);
  EXPECT_TRUE(parsed->run_pending());

  NestedState off;  // VMX off: no VMXON region
  off.format = NestedFormat::kVmx;
  absl::StatusOr<NestedState> parsed_off = ParseNestedState(EncodeNestedState(off));
  ASSERT_TRUE(parsed_off.ok()) << parsed_off.status();
  EXPECT_FALSE(parsed_off->vmcs12.has_value());
}

TEST(NestedState, RejectsMalformedBlobs) {
  NestedState svm;
  svm.format = NestedFormat::kSvm;
  svm.flags = kNestedGuestMode;
  svm.vmcb_pa = 0x5000;
  svm.vmcb = LongModeVmcb();
  const std::vector<uint8_t> good = EncodeNestedState(svm);
  struct Case {
    const char* expect;
    std::vector<uint8_t> blob;
  };
  auto with = [&](size_t offset, auto value) {
    std::vector<uint8_t> b = good;
    StoreLe(std::span<uint8_t>(b), offset, value);
    return b;
  };
  std::vector<Case> cases = {
      {"shorter than", std::vector<uint8_t>(good.begin(), good.begin() + 100)},
      {"size", with(4, uint32_t{9000})},
      {"size", with(4, uint32_t{64})},
      {"unknown format", with(2, uint16_t{7})},
      {"SVM flags", with(0, uint16_t{kNestedGuestMode | kNestedEvmcs})},
      {"RUN_PENDING", with(0, uint16_t{kNestedRunPending})},
      {"vmcb_pa", with(8, uint64_t{0x5008})},
      {"bytes of VMCB", with(4, uint32_t{kNestedStateHeaderSize + 100})},
  };
  NestedState vmx;
  vmx.format = NestedFormat::kVmx;
  vmx.flags = kNestedGuestMode;
  vmx.vmxon_pa = 0x10000;
  vmx.vmcs12_pa = kInvalidGpa;
  cases.push_back({"without a current vmcs12", EncodeNestedState(vmx)});
  vmx.vmxon_pa = kInvalidGpa;
  vmx.flags = 0;
  vmx.vmcs12_pa = 0x11000;
  cases.push_back({"without VMXON", EncodeNestedState(vmx)});
  vmx.vmxon_pa = 0x10000;
  vmx.vmcs12 = LongModeVmcs12();
  vmx.vmcs12->revision_id = 1;
  cases.push_back({"revision id", EncodeNestedState(vmx)});
  for (const Case& c : cases) {
    absl::StatusOr<NestedState> parsed = ParseNestedState(c.blob);
    ASSERT_FALSE(parsed.ok()) << c.expect;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.expect), std::string::npos)
        << parsed.status().message();
  }
}

TEST(NestedState, RandomBlobsNeverCrashTheParser) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> blob(rng() % (kNestedStateMaxSize + 64));
    for (uint8_t& b : blob) b = static_cast<uint8_t>(rng());
    if (blob.size() >= 8 && rng() % 2) {
      StoreLe<uint32_t>(blob, 4, static_cast<uint32_t>(blob.size()));
      StoreLe<uint16_t>(blob, 2, static_cast<uint16_t>(rng() % 2));
    }
    (void)ParseNestedState(blob);
  }
}

}  // namespace
}  // namespace rehome::nested
