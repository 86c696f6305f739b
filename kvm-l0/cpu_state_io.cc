// kvm-l0/cpu_state_io.cc: vCPU state capture/restore with raw KVM ioctls. See the header for
// the ordering rules. Thread-safe (stateless).
#include "kvm-l0/cpu_state_io.h"

#include <linux/kvm.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <span>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kvm-l0/state_io_internal.h"

namespace rehome {
namespace {

using state_io::GetInto;
using state_io::Ioctl;
using state_io::KvmError;
using state_io::SetFrom;

static_assert(sizeof(Regs) == sizeof(kvm_regs));
static_assert(sizeof(Segment) == sizeof(kvm_segment));
static_assert(sizeof(DTable) == sizeof(kvm_dtable));
static_assert(sizeof(Sregs) == sizeof(kvm_sregs));
static_assert(offsetof(Sregs, apic_base) == offsetof(kvm_sregs, apic_base));
static_assert(sizeof(Fpu) == sizeof(kvm_fpu));
static_assert(offsetof(Fpu, xmm) == offsetof(kvm_fpu, xmm));
static_assert(XsaveArea::kLegacySize == sizeof(kvm_xsave::region));
static_assert(sizeof(Xcrs) == sizeof(kvm_xcrs));
static_assert(sizeof(MsrEntry) == sizeof(kvm_msr_entry));
static_assert(sizeof(LapicState) == sizeof(kvm_lapic_state));
static_assert(sizeof(VcpuEvents) == sizeof(kvm_vcpu_events) && sizeof(VcpuEvents) == 64);
static_assert(offsetof(VcpuEvents, flags) == offsetof(kvm_vcpu_events, flags));
static_assert(offsetof(VcpuEvents, exception_payload) ==
              offsetof(kvm_vcpu_events, exception_payload));
static_assert(sizeof(DebugRegs) == sizeof(kvm_debugregs));

constexpr uint32_t kMsrIa32Tsc = 0x10;
constexpr uint32_t kMsrIa32TscDeadline = 0x6e0;
constexpr size_t kMaxMsrsPerIoctl = 255;  // KVM refuses nmsrs >= MAX_IO_MSRS (256)
constexpr uint32_t kTscKhzTolerancePpm = 250;

int CheckExtension(int kvm_fd, int cap) {
  int r = Ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

// A kvm_msrs with room for n entries, laid out as in C (see state_io_internal.h).
class MsrBuffer final {
 public:
  explicit MsrBuffer(size_t n) : words_(1 + 2 * n) { words_[0] = n; }  // nmsrs = n, pad = 0
  MsrBuffer(const MsrBuffer&) = delete;
  MsrBuffer& operator=(const MsrBuffer&) = delete;
  void* get() { return words_.data(); }
  kvm_msr_entry& entry(size_t i) {
    static_assert(sizeof(kvm_msr_entry) == 16 && state_io::kKvmMsrsHeaderSize == 8);
    return reinterpret_cast<kvm_msr_entry*>(words_.data() + 1)[i];
  }

 private:
  std::vector<uint64_t> words_;  // kvm_msrs header (8 bytes) + 16 bytes per entry
};

absl::StatusOr<std::vector<uint32_t>> MsrIndexList(int kvm_fd) {
  std::vector<uint32_t> buf(1, 0);  // kvm_msr_list: nmsrs, then indices
  for (int attempt = 0; attempt < 4; ++attempt) {
    const uint32_t room = static_cast<uint32_t>(buf.size() - 1);
    buf[0] = room;
    if (Ioctl(kvm_fd, state_io::kKvmGetMsrIndexList, buf.data()) == 0) {
      return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + buf[0]);
    }
    if (errno != E2BIG) return KvmError("KVM_GET_MSR_INDEX_LIST");
    buf.assign(1 + std::max<size_t>(buf[0], room + 1), 0);  // KVM wrote back the needed count
  }
  return absl::InternalError("KVM_GET_MSR_INDEX_LIST: list keeps growing");
}

// Reads `indices` in batches; an MSR that KVM refuses is dropped and the rest retried.
absl::StatusOr<std::vector<MsrEntry>> ReadMsrs(int vcpu_fd, std::span<const uint32_t> indices) {
  std::vector<MsrEntry> out;
  out.reserve(indices.size());
  while (!indices.empty()) {
    const size_t n = std::min(indices.size(), kMaxMsrsPerIoctl);
    MsrBuffer buf(n);
    for (size_t i = 0; i < n; ++i) buf.entry(i).index = indices[i];
    const int got = Ioctl(vcpu_fd, state_io::kKvmGetMsrs, buf.get());
    if (got < 0) return KvmError("KVM_GET_MSRS");
    for (int i = 0; i < got; ++i) out.push_back({buf.entry(i).index, buf.entry(i).data});
    // KVM stops at the first MSR it refuses: skip that one.
    indices = indices.subspan(std::min(n, static_cast<size_t>(got) + 1));
  }
  return out;
}

// Writes `msrs` in batches. KVM may refuse to write a value it reported (e.g. the PV EOI MSR
// without an in-kernel LAPIC); such an MSR is accepted if the vCPU already holds that value.
absl::Status WriteMsrs(int vcpu_fd, std::span<const MsrEntry> msrs) {
  while (!msrs.empty()) {
    const size_t n = std::min(msrs.size(), kMaxMsrsPerIoctl);
    MsrBuffer buf(n);
    for (size_t i = 0; i < n; ++i) {
      buf.entry(i).index = msrs[i].index;
      buf.entry(i).data = msrs[i].data;
    }
    const int set = Ioctl(vcpu_fd, state_io::kKvmSetMsrs, buf.get());
    if (set < 0) return KvmError("KVM_SET_MSRS");
    if (static_cast<size_t>(set) == n) {
      msrs = msrs.subspan(n);
      continue;
    }
    const MsrEntry& refused = msrs[set];
    const uint32_t index[] = {refused.index};
    ASSIGN_OR_RETURN(std::vector<MsrEntry> current, ReadMsrs(vcpu_fd, index));
    if (current.empty() || current[0].data != refused.data) {
      return absl::InternalError(
          absl::StrFormat("KVM_SET_MSRS refused MSR 0x%x = 0x%x", refused.index, refused.data));
    }
    msrs = msrs.subspan(set + 1);
  }
  return absl::OkStatus();
}

absl::Status CaptureXsave(int kvm_fd, int vcpu_fd, XsaveArea& out) {
  const int size2 = CheckExtension(kvm_fd, KVM_CAP_XSAVE2);
  if (size2 > 0) {
    out.bytes.assign(std::max<size_t>(size2, XsaveArea::kLegacySize), 0);
    if (Ioctl(vcpu_fd, state_io::kKvmGetXsave2, out.bytes.data()) < 0)
      return KvmError("KVM_GET_XSAVE2");
  } else if (CheckExtension(kvm_fd, KVM_CAP_XSAVE) > 0) {
    out.bytes.assign(XsaveArea::kLegacySize, 0);
    if (Ioctl(vcpu_fd, state_io::kKvmGetXsave, out.bytes.data()) < 0)
      return KvmError("KVM_GET_XSAVE");
  }
  return absl::OkStatus();
}

absl::Status RestoreXsave(int kvm_fd, int vcpu_fd, const XsaveArea& xsave) {
  if (xsave.bytes.empty()) return absl::OkStatus();
  // KVM_SET_XSAVE reads as many bytes as this vCPU's XSAVE size; pad with zeros up to it.
  std::vector<uint8_t> buf = xsave.bytes;
  const int size2 = CheckExtension(kvm_fd, KVM_CAP_XSAVE2);
  if (size2 > 0 && static_cast<size_t>(size2) > buf.size()) buf.resize(size2, 0);
  if (Ioctl(vcpu_fd, state_io::kKvmSetXsave, buf.data()) < 0) return KvmError("KVM_SET_XSAVE");
  return absl::OkStatus();
}

absl::Status RestoreTscKhz(int vcpu_fd, uint32_t want) {
  if (want == 0) return absl::OkStatus();
  const int now = Ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
  if (now > 0 && static_cast<uint64_t>(std::abs(now - static_cast<int64_t>(want))) * 1000000 <=
                     static_cast<uint64_t>(want) * kTscKhzTolerancePpm) {
    return absl::OkStatus();
  }
  if (Ioctl(vcpu_fd, KVM_SET_TSC_KHZ, static_cast<unsigned long>(want)) < 0) {
    return KvmError(absl::StrFormat("KVM_SET_TSC_KHZ(%d) (vCPU runs at %d kHz)", want, now));
  }
  return absl::OkStatus();
}

// KVM_GET_LAPIC fails with EINVAL (ENXIO on old kernels) when the LAPIC is not in the kernel.
bool NoInKernelLapic(int error) { return error == EINVAL || error == ENXIO; }

absl::Status RestoreEvents(int vcpu_fd, const VcpuEvents& events) {
  constexpr uint32_t kKnown = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                              KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
                              KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
  constexpr uint32_t kNeedsVmCap = KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
  VcpuEvents e = events;
  e.flags = (e.flags & kKnown) | KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
            KVM_VCPUEVENT_VALID_SHADOW;
  kvm_vcpu_events k;
  state_io::MirrorCopy(k, e);
  if (Ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &k) == 0) return absl::OkStatus();
  if (errno != EINVAL || (e.flags & kNeedsVmCap) == 0) return KvmError("KVM_SET_VCPU_EVENTS");
  // The source VM had KVM_CAP_EXCEPTION_PAYLOAD / X86_TRIPLE_FAULT_EVENT enabled and this one
  // has not: fall back to the legacy form, where a pending exception is reported as injected.
  e.flags &= ~kNeedsVmCap;
  e.exception.injected |= e.exception.pending;
  e.exception.pending = 0;
  e.exception_has_payload = 0;
  e.exception_payload = 0;
  e.triple_fault_pending = 0;
  return SetFrom<kvm_vcpu_events>(vcpu_fd, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", e);
}

}  // namespace

absl::StatusOr<CpuState> CaptureRegistersAndFpu(int kvm_fd, int vcpu_fd,
                                                std::span<const uint32_t> msr_indices) {
  CpuState s;
  RETURN_IF_ERROR(GetInto<kvm_regs>(vcpu_fd, KVM_GET_REGS, "KVM_GET_REGS", s.regs));
  RETURN_IF_ERROR(GetInto<kvm_sregs>(vcpu_fd, KVM_GET_SREGS, "KVM_GET_SREGS", s.sregs));
  RETURN_IF_ERROR(GetInto<kvm_fpu>(vcpu_fd, KVM_GET_FPU, "KVM_GET_FPU", s.fpu));
  RETURN_IF_ERROR(CaptureXsave(kvm_fd, vcpu_fd, s.xsave));
  if (!msr_indices.empty()) {
    ASSIGN_OR_RETURN(s.msrs, ReadMsrs(vcpu_fd, msr_indices));
  }
  return s;
}

absl::StatusOr<CpuState> CaptureCpuState(int kvm_fd, int vcpu_fd) {
  CpuState s;
  // MP_STATE first: KVM_GET_MP_STATE processes pending INIT/SIPI, which changes other state.
  RETURN_IF_ERROR(GetInto<kvm_mp_state>(vcpu_fd, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", s.mp_state));
  RETURN_IF_ERROR(GetInto<kvm_regs>(vcpu_fd, KVM_GET_REGS, "KVM_GET_REGS", s.regs));
  RETURN_IF_ERROR(GetInto<kvm_sregs>(vcpu_fd, KVM_GET_SREGS, "KVM_GET_SREGS", s.sregs));
  RETURN_IF_ERROR(GetInto<kvm_fpu>(vcpu_fd, KVM_GET_FPU, "KVM_GET_FPU", s.fpu));
  RETURN_IF_ERROR(CaptureXsave(kvm_fd, vcpu_fd, s.xsave));
  if (CheckExtension(kvm_fd, KVM_CAP_XCRS) > 0) {
    RETURN_IF_ERROR(GetInto<kvm_xcrs>(vcpu_fd, KVM_GET_XCRS, "KVM_GET_XCRS", s.xcrs.emplace()));
  }
  RETURN_IF_ERROR(
      GetInto<kvm_debugregs>(vcpu_fd, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", s.debugregs));
  {
    kvm_lapic_state lapic{};
    if (Ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) == 0) {
      state_io::MirrorCopy(s.lapic.emplace(), lapic);
    } else if (!NoInKernelLapic(errno)) {
      return KvmError("KVM_GET_LAPIC");
    }
  }
  const int khz = Ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
  s.tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;

  ASSIGN_OR_RETURN(std::vector<uint32_t> indices, MsrIndexList(kvm_fd));
  std::erase(indices, kMsrIa32Tsc);
  indices.insert(indices.begin(), kMsrIa32Tsc);
  ASSIGN_OR_RETURN(s.msrs, ReadMsrs(vcpu_fd, indices));
  if (s.msrs.empty() || s.msrs.front().index != kMsrIa32Tsc) {
    return absl::InternalError("KVM_GET_MSRS refused MSR_IA32_TSC");
  }
  s.tsc = s.msrs.front().data;
  s.msrs.erase(s.msrs.begin());

  // Last: the GETs above may change what is pending.
  RETURN_IF_ERROR(
      GetInto<kvm_vcpu_events>(vcpu_fd, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", s.events));
  return s;
}

absl::Status RestoreCpuState(int kvm_fd, int vcpu_fd, const CpuState& s) {
  if (!s.xsave.bytes.empty() && s.xsave.bytes.size() < XsaveArea::kLegacySize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("XSAVE image of %d bytes (needs >= 4096)", s.xsave.bytes.size()));
  }
  RETURN_IF_ERROR(RestoreTscKhz(vcpu_fd, s.tsc_khz));
  RETURN_IF_ERROR(SetFrom<kvm_mp_state>(vcpu_fd, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", s.mp_state));
  RETURN_IF_ERROR(SetFrom<kvm_regs>(vcpu_fd, KVM_SET_REGS, "KVM_SET_REGS", s.regs));
  RETURN_IF_ERROR(SetFrom<kvm_sregs>(vcpu_fd, KVM_SET_SREGS, "KVM_SET_SREGS", s.sregs));
  RETURN_IF_ERROR(SetFrom<kvm_fpu>(vcpu_fd, KVM_SET_FPU, "KVM_SET_FPU", s.fpu));
  RETURN_IF_ERROR(RestoreXsave(kvm_fd, vcpu_fd, s.xsave));
  if (s.xcrs) {
    RETURN_IF_ERROR(SetFrom<kvm_xcrs>(vcpu_fd, KVM_SET_XCRS, "KVM_SET_XCRS", *s.xcrs));
  }
  RETURN_IF_ERROR(
      SetFrom<kvm_debugregs>(vcpu_fd, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", s.debugregs));
  if (s.lapic) {
    kvm_lapic_state lapic;
    state_io::MirrorCopy(lapic, *s.lapic);
    if (Ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0) {
      absl::Status error = KvmError("KVM_SET_LAPIC");
      kvm_lapic_state probe;
      if (Ioctl(vcpu_fd, KVM_GET_LAPIC, &probe) < 0 && NoInKernelLapic(errno)) {
        return absl::FailedPreconditionError("KVM_SET_LAPIC: the vCPU has no in-kernel LAPIC");
      }
      return error;
    }
  }
  // IA32_TSC first, IA32_TSC_DEADLINE last (it is relative to the TSC, and needs the LAPIC).
  std::vector<MsrEntry> msrs;
  msrs.reserve(s.msrs.size() + 1);
  msrs.push_back({kMsrIa32Tsc, s.tsc});
  for (const MsrEntry& m : s.msrs) {
    if (m.index != kMsrIa32Tsc && m.index != kMsrIa32TscDeadline) msrs.push_back(m);
  }
  for (const MsrEntry& m : s.msrs) {
    if (m.index == kMsrIa32TscDeadline) msrs.push_back(m);
  }
  RETURN_IF_ERROR(WriteMsrs(vcpu_fd, msrs));
  return RestoreEvents(vcpu_fd, s.events);
}

}  // namespace rehome
