// state-extract/nested/vmcb.cc: VMCB parse/encode from one field table, consistency checks and
// conversion to rehome's register types.
#include "state-extract/nested/vmcb.h"

#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "state-extract/nested/le_bytes.h"

namespace rehome::nested {
namespace {

// Calls f(offset, field) for every field ParseVmcb/EncodeVmcb know; `V` is Vmcb or const Vmcb.
template <typename V, typename F>
void ForEachField(V& v, F&& f) {
  auto& c = v.control;
  for (size_t i = 0; i < c.intercepts.size(); ++i) f(4 * i, c.intercepts[i]);
  f(0x03c, c.pause_filter_thresh);
  f(0x03e, c.pause_filter_count);
  f(0x040, c.iopm_base_pa);
  f(0x048, c.msrpm_base_pa);
  f(0x050, c.tsc_offset);
  f(0x058, c.asid);
  f(0x05c, c.tlb_ctl);
  f(0x060, c.int_ctl);
  f(0x064, c.int_vector);
  f(0x068, c.int_state);
  f(0x070, c.exit_code);
  f(0x078, c.exit_info_1);
  f(0x080, c.exit_info_2);
  f(0x088, c.exit_int_info);
  f(0x08c, c.exit_int_info_err);
  f(0x090, c.misc_ctl);
  f(0x098, c.avic_vapic_bar);
  f(0x0a0, c.ghcb_gpa);
  f(0x0a8, c.event_inj);
  f(0x0ac, c.event_inj_err);
  f(0x0b0, c.nested_cr3);
  f(0x0b8, c.misc_ctl2);
  f(0x0c0, c.clean);
  f(0x0c8, c.next_rip);
  f(0x0d0, c.insn_len);
  for (size_t i = 0; i < c.insn_bytes.size(); ++i) f(0x0d1 + i, c.insn_bytes[i]);

  auto& s = v.save;
  constexpr size_t b = kVmcbSaveOffset;
  auto seg = [&](size_t off, auto& sg) {
    f(b + off, sg.selector);
    f(b + off + 2, sg.attrib);
    f(b + off + 4, sg.limit);
    f(b + off + 8, sg.base);
  };
  seg(0x00, s.es);
  seg(0x10, s.cs);
  seg(0x20, s.ss);
  seg(0x30, s.ds);
  seg(0x40, s.fs);
  seg(0x50, s.gs);
  seg(0x60, s.gdtr);
  seg(0x70, s.ldtr);
  seg(0x80, s.idtr);
  seg(0x90, s.tr);
  f(b + 0x0cb, s.cpl);
  f(b + 0x0d0, s.efer);
  f(b + 0x148, s.cr4);
  f(b + 0x150, s.cr3);
  f(b + 0x158, s.cr0);
  f(b + 0x160, s.dr7);
  f(b + 0x168, s.dr6);
  f(b + 0x170, s.rflags);
  f(b + 0x178, s.rip);
  f(b + 0x1d8, s.rsp);
  f(b + 0x1e0, s.s_cet);
  f(b + 0x1e8, s.ssp);
  f(b + 0x1f0, s.isst_addr);
  f(b + 0x1f8, s.rax);
  f(b + 0x200, s.star);
  f(b + 0x208, s.lstar);
  f(b + 0x210, s.cstar);
  f(b + 0x218, s.sfmask);
  f(b + 0x220, s.kernel_gs_base);
  f(b + 0x228, s.sysenter_cs);
  f(b + 0x230, s.sysenter_esp);
  f(b + 0x238, s.sysenter_eip);
  f(b + 0x240, s.cr2);
  f(b + 0x268, s.g_pat);
  f(b + 0x270, s.dbgctl);
  f(b + 0x278, s.br_from);
  f(b + 0x280, s.br_to);
  f(b + 0x288, s.last_excp_from);
  f(b + 0x290, s.last_excp_to);
}

constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176,
                   kMsrPat = 0x277, kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082,
                   kMsrCstar = 0xc0000083, kMsrSfmask = 0xc0000084, kMsrKernelGsBase = 0xc0000102;

}  // namespace

const char* SvmExitName(uint64_t exit_code) {
  if (exit_code < 0x10) return "CR read";
  if (exit_code < 0x20) return "CR write";
  if (exit_code < 0x30) return "DR read";
  if (exit_code < 0x40) return "DR write";
  if (exit_code < 0x60) return "exception";
  switch (exit_code) {
    case kSvmExitIntr:
      return "INTR";
    case kSvmExitNmi:
      return "NMI";
    case kSvmExitCpuid:
      return "CPUID";
    case kSvmExitHlt:
      return "HLT";
    case kSvmExitIoio:
      return "IOIO";
    case kSvmExitMsr:
      return "MSR";
    case kSvmExitShutdown:
      return "SHUTDOWN";
    case kSvmExitVmrun:
      return "VMRUN";
    case kSvmExitVmmcall:
      return "VMMCALL";
    case kSvmExitNpf:
      return "NPF";
    case kSvmExitInvalid:
      return "INVALID";
    default:
      return "other";
  }
}

absl::StatusOr<Vmcb> ParseVmcb(std::span<const uint8_t> bytes) {
  if (bytes.size() < kVmcbMinBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("VMCB: ", bytes.size(), " bytes, need at least ", kVmcbMinBytes));
  }
  Vmcb vmcb;
  ForEachField(vmcb, [&](size_t offset, auto& field) {
    field = LoadLe<std::remove_reference_t<decltype(field)>>(bytes, offset);
  });
  const VmcbSegment* segs[] = {&vmcb.save.es, &vmcb.save.cs, &vmcb.save.ss,   &vmcb.save.ds,
                               &vmcb.save.fs, &vmcb.save.gs, &vmcb.save.ldtr, &vmcb.save.tr};
  for (const VmcbSegment* seg : segs) {
    if ((seg->attrib & 0xf000) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("VMCB: segment attrib 0x%04x has bits 15:12 set (selector 0x%x)",
                          seg->attrib, seg->selector));
    }
  }
  return vmcb;
}

void EncodeVmcb(const Vmcb& vmcb, std::span<uint8_t> out) {
  ForEachField(vmcb, [&](size_t offset, const auto& field) { StoreLe(out, offset, field); });
}

std::vector<std::string> VmrunConsistencyErrors(const Vmcb& vmcb) {
  std::vector<std::string> errors;
  const VmcbSave& s = vmcb.save;
  constexpr uint64_t kCr0Pe = 1, kCr0Nw = 1ull << 29, kCr0Cd = 1ull << 30, kCr0Pg = 1ull << 31;
  constexpr uint64_t kCr4Pae = 1ull << 5;
  if ((s.efer & kEferSvme) == 0) errors.push_back("EFER.SVME is clear");
  if ((s.cr0 & kCr0Cd) == 0 && (s.cr0 & kCr0Nw) != 0) errors.push_back("CR0.NW set without CD");
  if ((s.cr0 >> 32) != 0) errors.push_back("CR0[63:32] set");
  if ((s.dr6 >> 32) != 0) errors.push_back("DR6[63:32] set");
  if ((s.dr7 >> 32) != 0) errors.push_back("DR7[63:32] set");
  const bool long_paging = (s.efer & kEferLme) != 0 && (s.cr0 & kCr0Pg) != 0;
  if (long_paging && (s.cr4 & kCr4Pae) == 0) errors.push_back("long mode without CR4.PAE");
  if (long_paging && (s.cr0 & kCr0Pe) == 0) errors.push_back("long mode without CR0.PE");
  const bool cs_l = (s.cs.attrib & (1u << 9)) != 0;
  const bool cs_d = (s.cs.attrib & (1u << 10)) != 0;
  if (long_paging && (s.cr4 & kCr4Pae) != 0 && cs_l && cs_d) {
    errors.push_back("CS.L and CS.D both set in long mode");
  }
  if (!vmcb.control.intercepts_vmrun()) errors.push_back("VMRUN is not intercepted");
  if (vmcb.control.asid == 0) errors.push_back("ASID 0");
  return errors;
}

Segment SegmentFromVmcb(const VmcbSegment& seg) {
  Segment out;
  out.base = seg.base;
  out.limit = seg.limit;
  out.selector = seg.selector;
  out.type = seg.attrib & 0xf;
  out.s = (seg.attrib >> 4) & 1;
  out.dpl = (seg.attrib >> 5) & 3;
  out.present = (seg.attrib >> 7) & 1;
  out.avl = (seg.attrib >> 8) & 1;
  out.l = (seg.attrib >> 9) & 1;
  out.db = (seg.attrib >> 10) & 1;
  out.g = (seg.attrib >> 11) & 1;
  out.unusable = out.present ? 0 : 1;
  return out;
}

VmcbSegment VmcbFromSegment(const Segment& seg) {
  VmcbSegment out;
  out.selector = seg.selector;
  out.limit = seg.limit;
  out.base = seg.base;
  if (seg.unusable == 0) {
    out.attrib = static_cast<uint16_t>((seg.type & 0xf) | (seg.s & 1) << 4 | (seg.dpl & 3) << 5 |
                                       (seg.present & 1) << 7 | (seg.avl & 1) << 8 |
                                       (seg.l & 1) << 9 | (seg.db & 1) << 10 | (seg.g & 1) << 11);
  }
  return out;
}

void ApplyVmcbSave(const VmcbSave& save, Regs* regs, Sregs* sregs) {
  regs->rip = save.rip;
  regs->rsp = save.rsp;
  regs->rax = save.rax;
  regs->rflags = save.rflags;
  sregs->cs = SegmentFromVmcb(save.cs);
  sregs->ds = SegmentFromVmcb(save.ds);
  sregs->es = SegmentFromVmcb(save.es);
  sregs->fs = SegmentFromVmcb(save.fs);
  sregs->gs = SegmentFromVmcb(save.gs);
  sregs->ss = SegmentFromVmcb(save.ss);
  sregs->tr = SegmentFromVmcb(save.tr);
  sregs->ldt = SegmentFromVmcb(save.ldtr);
  sregs->gdt.base = save.gdtr.base;
  sregs->gdt.limit = static_cast<uint16_t>(save.gdtr.limit);
  sregs->idt.base = save.idtr.base;
  sregs->idt.limit = static_cast<uint16_t>(save.idtr.limit);
  sregs->cr0 = save.cr0;
  sregs->cr2 = save.cr2;
  sregs->cr3 = save.cr3;
  sregs->cr4 = save.cr4;
  sregs->efer = save.efer;
}

std::vector<MsrEntry> VmcbSaveMsrs(const VmcbSave& save) {
  return {{kMsrStar, save.star},
          {kMsrLstar, save.lstar},
          {kMsrCstar, save.cstar},
          {kMsrSfmask, save.sfmask},
          {kMsrKernelGsBase, save.kernel_gs_base},
          {kMsrSysenterCs, save.sysenter_cs},
          {kMsrSysenterEsp, save.sysenter_esp},
          {kMsrSysenterEip, save.sysenter_eip},
          {kMsrPat, save.g_pat}};
}

}  // namespace rehome::nested
