// vmm/exit_backend.h: where a Machine's device exits go. The monolithic backend runs the device
// model in the L0 process; the split backend (recovery/split_backend.h) forwards each exit to
// the active L1 process and survives its failure. Exits that need no device (HLT, interrupted
// runs, triple faults, KVM errors) are classified the same way by both.
// Thread-safety: Handle is called concurrently from vCPU threads; Progress from any thread.
#ifndef REHOME_VMM_EXIT_BACKEND_H_
#define REHOME_VMM_EXIT_BACKEND_H_

#include <cstdint>
#include <string>

#include "kvm-l0/kvm_exit.h"
#include "vmm/exit_dispatcher.h"

namespace rehome {

// What the workload oracle has seen so far (for status lines and tests).
struct WorkloadProgress {
  bool has_oracle = false;
  uint64_t verified_reports = 0;
  uint64_t violations = 0;
  uint64_t pio_bench_writes = 0;
  uint64_t exits_handled = 0;
  std::string summary;  // one line; may be empty
};

class ExitBackend {
 public:
  virtual ~ExitBackend() = default;
  virtual ExitOutcome Handle(int vcpu, KvmExit& exit) = 0;
  virtual WorkloadProgress Progress() const = 0;
  // Unblocks vCPU threads waiting inside Handle (the VM is stopping).
  virtual void Shutdown() {}
  // After every vCPU thread has stopped: completes the work of exits that Handle let the guest
  // run past (split mode's posted writes), so that Progress() includes them. Their late
  // outcomes other than console output are dropped: the VM has stopped already.
  virtual void SettleAfterStop() {}
};

}  // namespace rehome

#endif  // REHOME_VMM_EXIT_BACKEND_H_
