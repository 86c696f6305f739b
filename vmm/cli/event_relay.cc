// vmm/cli/event_relay.cc: EventRelay.
#include "vmm/cli/event_relay.h"

#include "qmp-client/vm_monitor.h"

namespace rehome {

void EventRelay::Forward(const SupervisorEvent& e) {
  std::shared_ptr<MachineControl> control;
  {
    absl::MutexLock lock(&mu_);
    control = control_;
  }
  if (control == nullptr) return;
  switch (e.kind) {
    case SupervisorEvent::Kind::kL1Failed:
      control->Emit(kEventL1Failed, L1FailedEventData(e.cause, e.pid));
      break;
    case SupervisorEvent::Kind::kFailoverStarted:
      control->Emit(kEventFailoverStarted, FailoverStartedEventData(e.cause, e.pid));
      break;
    case SupervisorEvent::Kind::kFailoverCompleted:
      control->Emit(
          kEventFailoverCompleted,
          FailoverCompletedEventData(e.pid, e.report->total,
                                     {{"fence", e.report->fence}, {"promote", e.report->promote}},
                                     e.report->detected));
      break;
    case SupervisorEvent::Kind::kFailoverFailed:
      control->Emit(kEventFailoverFailed, FailoverFailedEventData(e.role, e.cause));
      break;
    case SupervisorEvent::Kind::kStandbyReady:
      control->Emit(kEventStandbyReady, StandbyReadyEventData(e.pid));
      break;
    case SupervisorEvent::Kind::kDivergence:
      control->Emit(kEventDivergence, DivergenceJson(*e.divergence));
      break;
    case SupervisorEvent::Kind::kDivergenceResolved:
      control->Emit(kEventDivergenceResolved, DivergenceJson(*e.divergence));
      break;
  }
}

}  // namespace rehome
