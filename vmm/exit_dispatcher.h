// vmm/exit_dispatcher.h: turns one vCPU exit into device effects and an outcome for the vCPU
// loop. DispatchExit is a free function with no state of its own: port I/O and MMIO go to the
// Bus (a rep access of `count` units is `count` accesses of `size` bytes at the same address);
// device requests (debug-exit, reset) are read from the shared VmRequests after the exit is
// handled, so every vCPU that exits after a request sees the same outcome.
// Thread-safety: callable concurrently from several vCPU threads (Bus and VmRequests are).
#ifndef REHOME_VMM_EXIT_DISPATCHER_H_
#define REHOME_VMM_EXIT_DISPATCHER_H_

#include <string>
#include <string_view>

#include "kvm-l0/kvm_exit.h"
#include "vmm/bus.h"
#include "vmm/vm_requests.h"

namespace rehome {

struct ExitOutcome {
  enum Action {
    kContinue,
    kGuestExit,
    kReset,
    kShutdown,
    kGuestCrash,
    kFatal,
    kCheckFailed,  // a workload oracle rejected what the guest reported (set by DeviceModel)
  };
  Action action = kContinue;
  int exit_status = 0;  // the guest's exit status; meaningful for kGuestExit only
  std::string reason;   // one line for logs; empty for a plain kContinue
};

// Handles `exit` (an IN/read fills exit's data buffer in place). A malformed I/O exit (bad
// size, count or buffer length) is kFatal; triple fault is kGuestCrash "triple fault";
// SystemEvent shutdown/reset/crash map to kShutdown/kReset/kGuestCrash and other types to kFatal;
// internal error, failed entry and unknown exits are kFatal with their details; HLT and
// interrupted runs are kContinue. A kContinue outcome becomes kGuestExit / kReset / kShutdown
// when `requests` has a pending request.
ExitOutcome DispatchExit(KvmExit& exit, Bus& bus, const VmRequests& requests);

std::string_view ActionName(ExitOutcome::Action action);

}  // namespace rehome

#endif  // REHOME_VMM_EXIT_DISPATCHER_H_
