// recovery/nested/l2_capture.cc: CaptureL2 and CheckL2Placement.
#include "recovery/nested/l2_capture.h"

#include <cpuid.h>

#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kvm-l0/cpu_state_io.h"
#include "kvm-l0/nested_state_io.h"
#include "recovery/nested/l1_memory.h"
#include "state-extract/nested/l2_state.h"
#include "state-extract/nested/nested_state.h"
#include "state-extract/nested/npt_walker.h"
#include "state-extract/nested/page_walk.h"
#include "state-extract/state_codec.h"

namespace rehome {
namespace {

// The physical address width the L1 sees (its CPUID comes from this host's).
int MaxPhysAddr() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx) == 0) return 36;
  return static_cast<int>(eax & 0xff);
}

struct GuestModeVcpu {
  int fd = -1;
  nested::NestedState nested;
};

// The first L1 vCPU in guest mode, if any.
absl::StatusOr<std::optional<GuestModeVcpu>> FindGuestMode(NestedL1& l1) {
  for (int fd : l1.machine().VcpuFds()) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> blob, GetNestedState(l1.machine().kvm_fd(), fd));
    ASSIGN_OR_RETURN(nested::NestedState state, nested::ParseNestedState(blob));
    if (state.guest_mode() && state.format == nested::NestedFormat::kSvm && state.vmcb) {
      return GuestModeVcpu{fd, std::move(state)};
    }
  }
  return std::nullopt;
}

absl::StatusOr<nested::PlacementReport> Placement(NestedL1& l1, uint64_t n_cr3,
                                                  uint64_t l2_ram_size) {
  const int maxphyaddr = MaxPhysAddr();
  ASSIGN_OR_RETURN(const uint64_t root, nested::NptRootFromNestedCr3(n_cr3, maxphyaddr));
  L1Memory memory(l1.machine().ram());
  nested::NptFormat format({maxphyaddr, true, true});
  nested::PageWalker walker(format, memory, root);
  ASSIGN_OR_RETURN(const nested::Scan scan, walker.ScanAll());
  return nested::CheckPlacement(scan, {nested_abi::kL2RamGpa, l2_ram_size});
}

}  // namespace

bool ParkedAtLastCommit(uint32_t parked, uint64_t parked_commit, uint64_t last_commit) {
  return parked == 1 && (parked_commit == last_commit || parked_commit + 1 == last_commit);
}

const char* CaptureSourceName(L2Capture::Source source) {
  using Source = L2Capture::Source;
  switch (source) {
    case Source::kGuestMode:
      return "live guest mode";
    case Source::kParked:
      return "parked";
    case Source::kExit:
      return "exit";
    case Source::kAfterExit:
      return "after exit";
  }
  return "?";
}

std::string L2Capture::Describe() const {
  if (source == Source::kParked || source == Source::kAfterExit) {
    return absl::StrFormat("L2 %s at commit %d", source == Source::kParked ? "parked" : "stopped",
                           commit_number);
  }
  if (source == Source::kExit) {
    return absl::StrFormat(
        "L2 at its exit %d to the L1 (devices from commit %d; NPT root 0x%x: %s)", exit_number,
        commit_number, npt_root, placement.has_value() ? placement->Summary() : "not walked");
  }
  return absl::StrFormat("L2 live in guest mode (devices from commit %d; NPT root 0x%x: %s)",
                         commit_number, npt_root,
                         placement.has_value() ? placement->Summary() : "not walked");
}

absl::StatusOr<L2Capture> CaptureL2(NestedL1& l1, const DeviceJournal& journal,
                                    uint64_t l2_ram_size) {
  L2Capture capture;
  ASSIGN_OR_RETURN(const std::string payload, journal.ReadCommitted());
  capture.commit_number = journal.commits();
  ASSIGN_OR_RETURN(capture.committed, DecodeNestedCommit(payload));
  ASSIGN_OR_RETURN(VmState committed_l2, DecodeVmState(capture.committed.l2_state));

  ASSIGN_OR_RETURN(std::optional<GuestModeVcpu> live, FindGuestMode(l1));
  if (live.has_value()) {
    capture.source = L2Capture::Source::kGuestMode;
    capture.npt_root = live->nested.vmcb->control.nested_cr3;
    ASSIGN_OR_RETURN(capture.placement, Placement(l1, capture.npt_root, l2_ram_size));
    if (!capture.placement->ok) {
      return absl::FailedPreconditionError(
          absl::StrCat("L2's memory is not in the shared range: ", capture.placement->Summary()));
    }
    ASSIGN_OR_RETURN(const CpuState vcpu, CaptureCpuState(l1.machine().kvm_fd(), live->fd));
    ASSIGN_OR_RETURN(capture.l2, nested::AssembleL2FromGuestMode(vcpu, committed_l2));
    return capture;
  }
  const nested_abi::ControlPage* page = l1.control();
  if (ParkedAtLastCommit(page->parked.load(std::memory_order_acquire),
                         page->parked_commit.load(std::memory_order_acquire),
                         capture.commit_number)) {
    capture.source = L2Capture::Source::kParked;
    capture.l2 = std::move(committed_l2);
    return capture;
  }
  if (!l1.exit_tracking()) {
    return absl::UnavailableError(absl::StrFormat(
        "L2 is neither in guest mode nor parked at the last commit %d (parked=%d at %d)",
        capture.commit_number, page->parked.load(), page->parked_commit.load()));
  }
  const std::optional<L2ExitSnapshot> exit = l1.LastExit();
  if (!exit.has_value()) {
    return absl::UnavailableError(absl::StrFormat(
        "L2 is inside the L1 with no exit of it captured (%d exits seen, %d capture errors)",
        l1.exits_tracked(), l1.exit_capture_errors()));
  }
  if (exit->commits < capture.commit_number) {  // committed after the exit; not run since
    capture.source = L2Capture::Source::kAfterExit;
    capture.l2 = std::move(committed_l2);
    return capture;
  }
  if (exit->commits > capture.commit_number) {
    return absl::DataLossError(
        absl::StrFormat("the journal went back: exit %d saw %d commits, it has %d", exit->number,
                        exit->commits, capture.commit_number));
  }
  capture.source = L2Capture::Source::kExit;
  capture.exit_number = exit->number;
  capture.npt_root = exit->vmcb.control.nested_cr3;
  absl::StatusOr<VmState> l2 = nested::AssembleL2FromExit(exit->l1, exit->vmcb, committed_l2);
  if (!l2.ok()) {
    return absl::UnavailableError(
        absl::StrCat("L2's exit ", exit->number, ": ", l2.status().message()));
  }
  ASSIGN_OR_RETURN(capture.placement, Placement(l1, capture.npt_root, l2_ram_size));
  if (!capture.placement->ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("L2's memory is not in the shared range: ", capture.placement->Summary()));
  }
  capture.l2 = std::move(*l2);
  return capture;
}

absl::StatusOr<bool> L2InGuestMode(NestedL1& l1) {
  ASSIGN_OR_RETURN(std::optional<GuestModeVcpu> live, FindGuestMode(l1));
  return live.has_value();
}

absl::StatusOr<std::optional<nested::PlacementReport>> CheckL2Placement(NestedL1& l1,
                                                                        uint64_t l2_ram_size) {
  ASSIGN_OR_RETURN(std::optional<GuestModeVcpu> live, FindGuestMode(l1));
  if (!live.has_value()) return std::optional<nested::PlacementReport>();
  ASSIGN_OR_RETURN(nested::PlacementReport report,
                   Placement(l1, live->nested.vmcb->control.nested_cr3, l2_ram_size));
  return std::optional<nested::PlacementReport>(std::move(report));
}

}  // namespace rehome
