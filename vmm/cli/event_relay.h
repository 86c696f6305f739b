// vmm/cli/event_relay.h: forwards the supervisor's events (L1 failed, failover started /
// completed / failed, standby ready) to the QMP monitor of the boot they belong to, as QMP
// events. Attach/Detach follow the boots of `rehome run` (a reset builds a new machine).
// Thread-safety: all methods are thread-safe; Forward runs on supervisor and vCPU threads.
#ifndef REHOME_VMM_CLI_EVENT_RELAY_H_
#define REHOME_VMM_CLI_EVENT_RELAY_H_

#include <memory>

#include "absl/synchronization/mutex.h"
#include "recovery/supervisor.h"
#include "vmm/cli/machine_control.h"

namespace rehome {

class EventRelay final {
 public:
  void Attach(std::shared_ptr<MachineControl> control) {
    absl::MutexLock lock(&mu_);
    control_ = std::move(control);
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    control_ = nullptr;
  }
  // Emits `e` as a QMP event on the attached monitor (dropped when none is attached).
  void Forward(const SupervisorEvent& e);

 private:
  absl::Mutex mu_;
  std::shared_ptr<MachineControl> control_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_EVENT_RELAY_H_
