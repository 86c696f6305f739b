// state-extract/nested/nested_state.cc: ParseNestedState / EncodeNestedState.
#include "state-extract/nested/nested_state.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "state-extract/nested/le_bytes.h"

namespace rehome::nested {
namespace {

constexpr size_t kData = kNestedStateHeaderSize;
constexpr uint16_t kSvmFlags = kNestedGuestMode | kNestedRunPending | kNestedGifSet;
constexpr uint16_t kVmxFlags =
    kNestedGuestMode | kNestedRunPending | kNestedEvmcs | kNestedMtfPending;

absl::Status Bad(std::string message) {
  return absl::InvalidArgumentError(absl::StrCat("nested state: ", message));
}

bool Aligned(uint64_t gpa) { return gpa == kInvalidGpa || (gpa & 0xfff) == 0; }

}  // namespace

absl::StatusOr<NestedState> ParseNestedState(std::span<const uint8_t> blob) {
  if (blob.size() < kNestedStateHeaderSize) {
    return Bad(absl::StrCat(blob.size(), " bytes, shorter than the 128-byte header"));
  }
  NestedState s;
  s.flags = LoadLe<uint16_t>(blob, 0);
  const uint16_t format = LoadLe<uint16_t>(blob, 2);
  s.size = LoadLe<uint32_t>(blob, 4);
  if (s.size < kNestedStateHeaderSize || s.size > blob.size()) {
    return Bad(absl::StrCat("size ", s.size, " outside [128, ", blob.size(), "]"));
  }
  if ((s.flags & kNestedRunPending) != 0 && (s.flags & kNestedGuestMode) == 0) {
    return Bad("RUN_PENDING without GUEST_MODE");
  }
  const std::span<const uint8_t> data = blob.subspan(kData, s.size - kData);
  if (format == static_cast<uint16_t>(NestedFormat::kSvm)) {
    s.format = NestedFormat::kSvm;
    if ((s.flags & ~kSvmFlags) != 0) return Bad(absl::StrFormat("SVM flags 0x%x", s.flags));
    s.vmcb_pa = LoadLe<uint64_t>(blob, 8);
    if (!s.guest_mode()) return s;
    if ((s.vmcb_pa & 0xfff) != 0) return Bad(absl::StrFormat("vmcb_pa 0x%x", s.vmcb_pa));
    if (data.size() < kVmcbSize) {
      return Bad(absl::StrCat("SVM guest mode with ", data.size(), " bytes of VMCB"));
    }
    ASSIGN_OR_RETURN(s.vmcb, ParseVmcb(data.first(kVmcbSize)));
    return s;
  }
  if (format != static_cast<uint16_t>(NestedFormat::kVmx)) {
    return Bad(absl::StrCat("unknown format ", format));
  }
  s.format = NestedFormat::kVmx;
  if ((s.flags & ~kVmxFlags) != 0) return Bad(absl::StrFormat("VMX flags 0x%x", s.flags));
  s.vmxon_pa = LoadLe<uint64_t>(blob, 8);
  s.vmcs12_pa = LoadLe<uint64_t>(blob, 16);
  s.smm_flags = LoadLe<uint16_t>(blob, 24);
  s.vmx_flags = LoadLe<uint32_t>(blob, 28);
  s.preemption_timer_deadline = LoadLe<uint64_t>(blob, 32);
  if (!Aligned(s.vmxon_pa) || !Aligned(s.vmcs12_pa)) {
    return Bad(absl::StrFormat("vmxon_pa 0x%x / vmcs12_pa 0x%x not page aligned", s.vmxon_pa,
                               s.vmcs12_pa));
  }
  if ((s.smm_flags & ~(kNestedSmmGuestMode | kNestedSmmVmxon)) != 0 ||
      (s.vmx_flags & ~kNestedVmxPreemptionTimerDeadline) != 0) {
    return Bad(absl::StrFormat("VMX header flags smm 0x%x / 0x%x", s.smm_flags, s.vmx_flags));
  }
  if (s.vmxon_pa == kInvalidGpa) {
    if (s.guest_mode() || s.vmcs12_pa != kInvalidGpa) return Bad("a VMCS without VMXON");
    return s;
  }
  if (s.vmcs12_pa == kInvalidGpa) {
    if (s.guest_mode()) return Bad("VMX guest mode without a current vmcs12");
    return s;
  }
  if (data.size() < kVmcs12Size) {
    return Bad(absl::StrCat("vmcs12_pa set with ", data.size(), " bytes of vmcs12"));
  }
  ASSIGN_OR_RETURN(s.vmcs12, ParseVmcs12(data.first(kVmcs12Size)));
  if (data.size() >= 2 * kVmcs12Size) {
    ASSIGN_OR_RETURN(s.shadow_vmcs12, ParseVmcs12(data.subspan(kVmcs12Size, kVmcs12Size)));
  }
  return s;
}

std::vector<uint8_t> EncodeNestedState(const NestedState& s) {
  size_t data = 0;
  if (s.format == NestedFormat::kSvm && s.vmcb.has_value()) data = kVmcbSize;
  if (s.format == NestedFormat::kVmx && s.vmcs12.has_value()) {
    data = s.shadow_vmcs12.has_value() ? 2 * kVmcs12Size : kVmcs12Size;
  }
  std::vector<uint8_t> blob(kData + data, 0);
  std::span<uint8_t> out(blob);
  StoreLe(out, 0, s.flags);
  StoreLe(out, 2, static_cast<uint16_t>(s.format));
  StoreLe(out, 4, static_cast<uint32_t>(blob.size()));
  if (s.format == NestedFormat::kSvm) {
    StoreLe(out, 8, s.vmcb_pa);
    if (s.vmcb.has_value()) EncodeVmcb(*s.vmcb, out.subspan(kData, kVmcbSize));
    return blob;
  }
  StoreLe(out, 8, s.vmxon_pa);
  StoreLe(out, 16, s.vmcs12_pa);
  StoreLe(out, 24, s.smm_flags);
  StoreLe(out, 28, s.vmx_flags);
  StoreLe(out, 32, s.preemption_timer_deadline);
  if (s.vmcs12.has_value()) EncodeVmcs12(*s.vmcs12, out.subspan(kData, kVmcs12Size));
  if (s.shadow_vmcs12.has_value()) {
    EncodeVmcs12(*s.shadow_vmcs12, out.subspan(kData + kVmcs12Size, kVmcs12Size));
  }
  return blob;
}

}  // namespace rehome::nested
