// vmm/cli/control_requests.cc: HandleControlRequests.
#include "vmm/cli/control_requests.h"

#include <optional>
#include <string>

#include "qmp-client/vm_monitor.h"
#include "recovery/l1_supervisor.h"

namespace rehome {

ControlOutcome HandleControlRequests(Machine& vm, MachineControl& control, std::ostream& err) {
  for (MachineControl::Request request : control.TakeRequests()) {
    switch (request) {
      case MachineControl::Request::kStop:
        if (absl::Status paused = vm.Pause(absl::Seconds(5)); paused.ok()) {
          control.SetState(RunState::kPaused);
          control.Emit(kEventStop);
        } else {
          err << "rehome: stop failed: " << paused.message() << "\n";
        }
        break;
      case MachineControl::Request::kCont:
        if (L1Supervisor* s = vm.supervisor(); s != nullptr && s->limit_reached()) {
          if (!s->ResumeAfterLimit().ok()) break;
        }
        if (vm.Resume().ok()) {
          control.SetState(RunState::kRunning);
          control.Emit(kEventResume);
        }
        break;
      case MachineControl::Request::kQuit:
        control.SetState(RunState::kShutdown);
        control.Emit(kEventShutdown, ShutdownEventData(ShutdownCause::kHostQmpQuit));
        err << "rehome: quit requested over QMP\n";
        return ControlOutcome::kQuit;
      case MachineControl::Request::kReset:
        return ControlOutcome::kReset;
      case MachineControl::Request::kSwitchover:
        if (vm.supervisor() != nullptr) {
          const SwitchoverArgs args = control.TakeSwitchoverArgs();
          auto given = [](const std::string& s) {
            return s.empty() ? std::nullopt : std::optional<std::string>(s);
          };
          absl::StatusOr<FailoverReport> report =
              vm.supervisor()->Switchover(given(args.binary), given(args.standby_binary));
          if (report.ok()) {
            err << "rehome: " << report->ToString() << "\n";
          } else {
            err << "rehome: switchover failed: " << report.status().message() << "\n";
            control.Emit(
                kEventFailoverFailed,
                FailoverFailedEventData("switchover", std::string(report.status().message())));
          }
        }
        break;
    }
  }
  return ControlOutcome::kNone;
}

}  // namespace rehome
