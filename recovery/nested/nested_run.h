// recovery/nested/nested_run.h: `rehome run --mode nested` (docs/nested.md): builds a
// NestedSupervisor from the run options, relays its status lines, waits for L2 to end and maps
// the end to rehome run's exit codes (the guest's status; 65 oracle violation; 66 guest crash;
// 67 L2 could not be re-homed or the failover limit was reached; 64/69/70 setup errors).
// main() registers it with SetNestedRunner. Thread-safety: one call at a time.
#ifndef REHOME_RECOVERY_NESTED_NESTED_RUN_H_
#define REHOME_RECOVERY_NESTED_NESTED_RUN_H_

#include <ostream>
#include <string>

#include "vmm/cli/run_options.h"

namespace rehome {

int NestedRun(const RunOptions& options, const std::string& cmdline, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_NESTED_RUN_H_
