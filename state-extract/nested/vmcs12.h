// state-extract/nested/vmcs12.h: KVM's vmcs12, the in-memory VMCS an L1 hypervisor gets from
// KVM's emulated VMX (Linux arch/x86/kvm/vmx/vmcs12.h: a packed layout whose offsets KVM
// promises never to change, revision id 0x11e57ed0). KVM_GET_NESTED_STATE returns it for an
// Intel L1; L0 reads from it L2's EPT pointer, the last exit and L2's guest-state area.
// Only the fields rehome uses are parsed; EncodeVmcs12 writes them (synthetic tests).
// Pure, thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_VMCS12_H_
#define REHOME_STATE_EXTRACT_NESTED_VMCS12_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome::nested {

inline constexpr uint32_t kVmcs12Revision = 0x11e57ed0;
inline constexpr size_t kVmcs12Size = 4096;
inline constexpr size_t kVmcs12MinBytes = 998;  // through guest_pml_index

// Primary/secondary processor-based controls that enable EPT.
inline constexpr uint32_t kVmxActivateSecondaryControls = 1u << 31;
inline constexpr uint32_t kVmxSecondaryEnableEpt = 1u << 1;
// Basic exit reasons rehome names (vm_exit_reason bits 15:0).
inline constexpr uint32_t kVmxExitExternalInterrupt = 1, kVmxExitTripleFault = 2,
                          kVmxExitCpuid = 10, kVmxExitHlt = 12, kVmxExitIo = 30,
                          kVmxExitEptViolation = 48, kVmxExitEptMisconfig = 49;

// A guest segment: access rights as in the VMCS (type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13,
// D/B 14, G 15, unusable 16).
struct Vmcs12Segment {
  uint16_t selector = 0;
  uint32_t limit = 0;
  uint32_t ar_bytes = 0;
  uint64_t base = 0;
  bool operator==(const Vmcs12Segment&) const = default;
};

struct Vmcs12 {
  uint32_t revision_id = kVmcs12Revision;  // bit 31: shadow VMCS
  uint32_t abort = 0;
  uint32_t launch_state = 0;  // 0 clear, 1 launched
  uint64_t io_bitmap_a = 0, io_bitmap_b = 0, msr_bitmap = 0, tsc_offset = 0;
  uint64_t virtual_apic_page_addr = 0, apic_access_addr = 0, ept_pointer = 0;
  uint64_t guest_physical_address = 0, vmcs_link_pointer = ~0ull;
  uint64_t guest_ia32_debugctl = 0, guest_ia32_pat = 0, guest_ia32_efer = 0;
  std::array<uint64_t, 4> guest_pdptr{};
  uint64_t cr0_guest_host_mask = 0, cr4_guest_host_mask = 0, cr0_read_shadow = 0,
           cr4_read_shadow = 0;
  uint64_t exit_qualification = 0, guest_linear_address = 0;
  uint64_t guest_cr0 = 0, guest_cr3 = 0, guest_cr4 = 0;
  Vmcs12Segment guest_es, guest_cs, guest_ss, guest_ds, guest_fs, guest_gs, guest_ldtr, guest_tr;
  uint64_t guest_gdtr_base = 0, guest_idtr_base = 0;
  uint32_t guest_gdtr_limit = 0, guest_idtr_limit = 0;
  uint64_t guest_dr7 = 0, guest_rsp = 0, guest_rip = 0, guest_rflags = 0;
  uint64_t guest_pending_dbg_exceptions = 0, guest_sysenter_esp = 0, guest_sysenter_eip = 0;
  uint32_t pin_based_vm_exec_control = 0, cpu_based_vm_exec_control = 0, exception_bitmap = 0;
  uint32_t vm_exit_controls = 0, vm_entry_controls = 0, vm_entry_intr_info_field = 0;
  uint32_t secondary_vm_exec_control = 0, vm_instruction_error = 0, vm_exit_reason = 0;
  uint32_t vm_exit_intr_info = 0, vm_exit_instruction_len = 0, idt_vectoring_info_field = 0;
  uint32_t guest_interruptibility_info = 0, guest_activity_state = 0, guest_sysenter_cs = 0;
  uint16_t virtual_processor_id = 0;
  bool ept_enabled() const {
    return (cpu_based_vm_exec_control & kVmxActivateSecondaryControls) != 0 &&
           (secondary_vm_exec_control & kVmxSecondaryEnableEpt) != 0;
  }
  bool operator==(const Vmcs12&) const = default;
};

// InvalidArgument when `bytes` is shorter than kVmcs12MinBytes, the revision id (bits 30:0) is
// not kVmcs12Revision, launch_state is not 0 or 1, or a segment's access rights set bits
// outside 16, 15:12, 7:0.
absl::StatusOr<Vmcs12> ParseVmcs12(std::span<const uint8_t> bytes);
// Writes every field above into `out` (at least kVmcs12MinBytes; other bytes untouched).
void EncodeVmcs12(const Vmcs12& vmcs12, std::span<uint8_t> out);

Segment SegmentFromVmcs12(const Vmcs12Segment& seg);
// Copies the guest-state area into `regs`/`sregs` (RIP, RSP, RFLAGS, segments, GDTR/IDTR,
// CR0/3/4, EFER); general registers but RSP are not in a VMCS and are left as they are.
void ApplyVmcs12Guest(const Vmcs12& vmcs12, Regs* regs, Sregs* sregs);
// SYSENTER_CS/ESP/EIP, PAT and DEBUGCTL of the guest-state area.
std::vector<MsrEntry> Vmcs12GuestMsrs(const Vmcs12& vmcs12);

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_VMCS12_H_
