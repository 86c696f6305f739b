// recovery/nested/l2_capture.h: L0 extracts L2's state from a paused L1 (docs/nested.md,
// "Re-homing L2"). For each L1 vCPU L0 reads KVM_GET_NESTED_STATE:
//  - In guest mode, the vCPU's ordinary state is L2's: L0 captures it and assembles L2's VM
//    state with the agent's last commit (state-extract/nested/l2_state.h). From the VMCB's
//    N_CR3 L0 walks L2's nested page tables in L1 memory and checks that every L2 page lies in
//    the shared L2 RAM range and no table page does (state-extract/nested/shared_range.h).
//  - Otherwise L2 is exact only if the agent parked it (the control page says so): L2 has not
//    run since the parked commit, so the journal's last commit is L2's state — the parked one,
//    or the one after it, which an agent parked at an exit's pre-handling commit writes after
//    handling the exit (vmm/nested/l2_runner.h).
//  - Otherwise, with exit tracking (NestedL1::LastExit), L2 is inside the L1 hypervisor, and
//    exact: at its latest exit, if the journal has no commit after it (L0 assembles L2 from the
//    L1 vCPU and the VMCB at that exit, state-extract/nested/l2_state.h, and walks its NPT as
//    in guest mode); or at the journal's last commit, if that commit came after the latest
//    exit (the agent committed and L2 has not run since).
// Anything else (no tracking, no exit seen yet in this L1, a refused exit) is Unavailable:
// L0 then lets a live L1 run a moment and tries again, or gives up on a dead one.
// Thread-safety: called by the controller thread with the L1's vCPUs paused or stopped.
#ifndef REHOME_RECOVERY_NESTED_L2_CAPTURE_H_
#define REHOME_RECOVERY_NESTED_L2_CAPTURE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "recovery/nested/nested_l1.h"
#include "state-extract/cpu_state.h"
#include "state-extract/device_journal.h"
#include "state-extract/nested/shared_range.h"
#include "vmm/nested/nested_commit.h"

namespace rehome {

struct L2Capture {
  enum class Source { kGuestMode, kParked, kExit, kAfterExit };
  Source source = Source::kParked;
  VmState l2;                  // what the standby restores
  NestedCommit committed;      // the journal's last commit (devices, console, counters)
  uint64_t commit_number = 0;  // its number
  uint64_t npt_root = 0;       // guest mode or an exit: from the VMCB's N_CR3
  uint64_t exit_number = 0;    // kExit: which exit of the L1
  std::optional<nested::PlacementReport> placement;  // guest mode: the NPT scan's verdict
  std::string Describe() const;                      // one line
};

// "live guest mode", "parked", "exit", "after exit".
const char* CaptureSourceName(L2Capture::Source source);

// `l2_ram_size`: the shared range's size (at nested_abi::kL2RamGpa). Errors: Unavailable as
// above; FailedPrecondition when L2's pages are not where they must be (placement rejected);
// DataLoss for an unreadable journal; Internal for KVM errors.
absl::StatusOr<L2Capture> CaptureL2(NestedL1& l1, const DeviceJournal& journal,
                                    uint64_t l2_ram_size);

// Whether the control page's `parked` and `parked_commit` make the journal's commit number
// `last_commit` L2's exact state (above).
bool ParkedAtLastCommit(uint32_t parked, uint64_t parked_commit, uint64_t last_commit);

// Whether a vCPU of the paused L1 is in guest mode (runs L2).
absl::StatusOr<bool> L2InGuestMode(NestedL1& l1);

// The NPT check alone on an L1 in guest mode (a post-failover verification); nullopt when no
// vCPU of the paused L1 is in guest mode.
absl::StatusOr<std::optional<nested::PlacementReport>> CheckL2Placement(NestedL1& l1,
                                                                        uint64_t l2_ram_size);

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_L2_CAPTURE_H_
