// recovery/l1_fault_names.h: the fault kinds L0's supervisors (Supervisor and VerifiedSupervisor)
// accept in InjectFault, by name: the public ones ("garbage", "assert", "die-before-commit", ...)
// and the tests' sandbox probes ("try-*") and adversarial kinds ("scribble-*",
// vmm/l1/l1_fault_probes.h), which QMP never passes on. "kill" and "hang" are signals L0 sends,
// not L1 faults. Thread-safety: stateless.
#ifndef REHOME_RECOVERY_L1_FAULT_NAMES_H_
#define REHOME_RECOVERY_L1_FAULT_NAMES_H_

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "kvm-l0/exit_channel.h"

namespace rehome {

// The L1Fault named `kind`; nullopt for "kill" and "hang"; InvalidArgument (listing the names)
// for anything else.
absl::StatusOr<std::optional<L1Fault>> L1FaultNamed(std::string_view kind);

}  // namespace rehome

#endif  // REHOME_RECOVERY_L1_FAULT_NAMES_H_
