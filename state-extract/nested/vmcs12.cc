// state-extract/nested/vmcs12.cc: vmcs12 parse/encode from one field table (offsets from
// KVM's CHECK_OFFSET list) and conversion to rehome's register types.
#include "state-extract/nested/vmcs12.h"

#include <array>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "state-extract/nested/le_bytes.h"

namespace rehome::nested {
namespace {

template <typename V, typename F>
void ForEachField(V& v, F&& f) {
  f(0, v.revision_id);
  f(4, v.abort);
  f(8, v.launch_state);
  f(40, v.io_bitmap_a);
  f(48, v.io_bitmap_b);
  f(56, v.msr_bitmap);
  f(88, v.tsc_offset);
  f(96, v.virtual_apic_page_addr);
  f(104, v.apic_access_addr);
  f(120, v.ept_pointer);
  f(168, v.guest_physical_address);
  f(176, v.vmcs_link_pointer);
  f(184, v.guest_ia32_debugctl);
  f(192, v.guest_ia32_pat);
  f(200, v.guest_ia32_efer);
  for (size_t i = 0; i < 4; ++i) f(216 + 8 * i, v.guest_pdptr[i]);
  f(344, v.cr0_guest_host_mask);
  f(352, v.cr4_guest_host_mask);
  f(360, v.cr0_read_shadow);
  f(368, v.cr4_read_shadow);
  f(408, v.exit_qualification);
  f(416, v.guest_linear_address);
  f(424, v.guest_cr0);
  f(432, v.guest_cr3);
  f(440, v.guest_cr4);
  // Segments: bases from 448 (es cs ss ds fs gs ldtr tr), limits from 840, access rights from
  // 880, selectors from 964, all in that order.
  const std::array segs{&v.guest_es, &v.guest_cs, &v.guest_ss,   &v.guest_ds,
                        &v.guest_fs, &v.guest_gs, &v.guest_ldtr, &v.guest_tr};
  for (size_t i = 0; i < 8; ++i) {
    f(448 + 8 * i, segs[i]->base);
    f(840 + 4 * i, segs[i]->limit);
    f(880 + 4 * i, segs[i]->ar_bytes);
    f(964 + 2 * i, segs[i]->selector);
  }
  f(512, v.guest_gdtr_base);
  f(520, v.guest_idtr_base);
  f(872, v.guest_gdtr_limit);
  f(876, v.guest_idtr_limit);
  f(528, v.guest_dr7);
  f(536, v.guest_rsp);
  f(544, v.guest_rip);
  f(552, v.guest_rflags);
  f(560, v.guest_pending_dbg_exceptions);
  f(568, v.guest_sysenter_esp);
  f(576, v.guest_sysenter_eip);
  f(744, v.pin_based_vm_exec_control);
  f(748, v.cpu_based_vm_exec_control);
  f(752, v.exception_bitmap);
  f(768, v.vm_exit_controls);
  f(780, v.vm_entry_controls);
  f(788, v.vm_entry_intr_info_field);
  f(804, v.secondary_vm_exec_control);
  f(808, v.vm_instruction_error);
  f(812, v.vm_exit_reason);
  f(816, v.vm_exit_intr_info);
  f(824, v.idt_vectoring_info_field);
  f(832, v.vm_exit_instruction_len);
  f(912, v.guest_interruptibility_info);
  f(916, v.guest_activity_state);
  f(920, v.guest_sysenter_cs);
  f(960, v.virtual_processor_id);
}

constexpr uint32_t kArValidBits = 0x1f0ff;  // 16 unusable, 15:12, 7:0
constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176,
                   kMsrPat = 0x277, kMsrDebugCtl = 0x1d9;

}  // namespace

absl::StatusOr<Vmcs12> ParseVmcs12(std::span<const uint8_t> bytes) {
  if (bytes.size() < kVmcs12MinBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vmcs12: %d bytes, need at least %d", bytes.size(), kVmcs12MinBytes));
  }
  Vmcs12 v;
  ForEachField(v, [&](size_t offset, auto& field) {
    field = LoadLe<std::remove_reference_t<decltype(field)>>(bytes, offset);
  });
  if ((v.revision_id & 0x7fffffff) != kVmcs12Revision) {
    return absl::InvalidArgumentError(absl::StrFormat("vmcs12: revision id 0x%08x, expected 0x%08x",
                                                      v.revision_id, kVmcs12Revision));
  }
  if (v.launch_state > 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vmcs12: launch state %d (0 or 1)", v.launch_state));
  }
  for (const Vmcs12Segment* seg : {&v.guest_es, &v.guest_cs, &v.guest_ss, &v.guest_ds, &v.guest_fs,
                                   &v.guest_gs, &v.guest_ldtr, &v.guest_tr}) {
    if ((seg->ar_bytes & ~kArValidBits) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("vmcs12: segment access rights 0x%x set reserved bits (selector 0x%x)",
                          seg->ar_bytes, seg->selector));
    }
  }
  return v;
}

void EncodeVmcs12(const Vmcs12& vmcs12, std::span<uint8_t> out) {
  ForEachField(vmcs12, [&](size_t offset, const auto& field) { StoreLe(out, offset, field); });
}

Segment SegmentFromVmcs12(const Vmcs12Segment& seg) {
  Segment out;
  out.base = seg.base;
  out.limit = seg.limit;
  out.selector = seg.selector;
  const uint32_t ar = seg.ar_bytes;
  out.type = ar & 0xf;
  out.s = (ar >> 4) & 1;
  out.dpl = (ar >> 5) & 3;
  out.present = (ar >> 7) & 1;
  out.avl = (ar >> 12) & 1;
  out.l = (ar >> 13) & 1;
  out.db = (ar >> 14) & 1;
  out.g = (ar >> 15) & 1;
  out.unusable = (ar >> 16) & 1;
  return out;
}

void ApplyVmcs12Guest(const Vmcs12& v, Regs* regs, Sregs* sregs) {
  regs->rip = v.guest_rip;
  regs->rsp = v.guest_rsp;
  regs->rflags = v.guest_rflags;
  sregs->cs = SegmentFromVmcs12(v.guest_cs);
  sregs->ds = SegmentFromVmcs12(v.guest_ds);
  sregs->es = SegmentFromVmcs12(v.guest_es);
  sregs->fs = SegmentFromVmcs12(v.guest_fs);
  sregs->gs = SegmentFromVmcs12(v.guest_gs);
  sregs->ss = SegmentFromVmcs12(v.guest_ss);
  sregs->tr = SegmentFromVmcs12(v.guest_tr);
  sregs->ldt = SegmentFromVmcs12(v.guest_ldtr);
  sregs->gdt.base = v.guest_gdtr_base;
  sregs->gdt.limit = static_cast<uint16_t>(v.guest_gdtr_limit);
  sregs->idt.base = v.guest_idtr_base;
  sregs->idt.limit = static_cast<uint16_t>(v.guest_idtr_limit);
  sregs->cr0 = v.guest_cr0;
  sregs->cr3 = v.guest_cr3;
  sregs->cr4 = v.guest_cr4;
  sregs->efer = v.guest_ia32_efer;
}

std::vector<MsrEntry> Vmcs12GuestMsrs(const Vmcs12& v) {
  return {{kMsrSysenterCs, v.guest_sysenter_cs},
          {kMsrSysenterEsp, v.guest_sysenter_esp},
          {kMsrSysenterEip, v.guest_sysenter_eip},
          {kMsrPat, v.guest_ia32_pat},
          {kMsrDebugCtl, v.guest_ia32_debugctl}};
}

}  // namespace rehome::nested
