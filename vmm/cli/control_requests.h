// vmm/cli/control_requests.h: how the `rehome run` loop applies the requests the QMP monitor
// queued (MachineControl): stop and cont pause and resume the vCPUs, switchover asks the
// supervisor, and quit and system_reset end the current boot (the caller acts on them). Each
// change is reported with its QMP event. Thread-safety: called by the thread that owns the
// Machine (the run loop), between waits.
#ifndef REHOME_VMM_CLI_CONTROL_REQUESTS_H_
#define REHOME_VMM_CLI_CONTROL_REQUESTS_H_

#include <ostream>

#include "vmm/cli/machine.h"
#include "vmm/cli/machine_control.h"

namespace rehome {

enum class ControlOutcome { kNone, kQuit, kReset };

// Applies queued QMP requests; quit and system_reset end this boot (the caller acts on them).
ControlOutcome HandleControlRequests(Machine& vm, MachineControl& control, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_CONTROL_REQUESTS_H_
