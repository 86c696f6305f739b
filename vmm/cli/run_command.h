// vmm/cli/run_command.h: `rehome run`: boot a guest on KVM, optionally move it into a fresh VM
// at an interval, and exit with the guest's exit status. Exit codes (also in RunUsage()):
// the guest's status when it exits through the debug-exit port with every report verified;
// 64 usage or configuration error; 65 counter oracle violation; 66 guest crash; 67 L1
// recovery stopped (failover limit, recovery none); 69 KVM not
// usable on this host; 70 internal error.
// Thread-safety: call from one thread (it owns the machine it starts).
#ifndef REHOME_VMM_CLI_RUN_COMMAND_H_
#define REHOME_VMM_CLI_RUN_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "vmm/cli/run_exit.h"  // the exit codes
#include "vmm/cli/run_options.h"

namespace rehome {

// --mode nested is run by recovery/nested/nested_run.h, which depends on this library; main()
// registers it. It gets the parsed options and the guest's command line and returns the exit
// status.
using NestedRunner = int (*)(const RunOptions& options, const std::string& cmdline,
                             std::ostream& err);
void SetNestedRunner(NestedRunner runner);

// `args` are the words after `rehome run`. Status lines and errors go to `err`; the guest's
// console goes to stdout or --serial-file.
int RunCommand(const std::vector<std::string>& args, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_RUN_COMMAND_H_
