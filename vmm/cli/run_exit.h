// vmm/cli/run_exit.h: the exit codes of `rehome run` (also in RunUsage() and the README), and
// how a setup error or the way the guest stopped becomes one. Thread-safety: pure functions
// (Finish reads the stopped machine's counters).
#ifndef REHOME_VMM_CLI_RUN_EXIT_H_
#define REHOME_VMM_CLI_RUN_EXIT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "vmm/cli/machine.h"

namespace rehome {

inline constexpr int kExitUsage = 64;
inline constexpr int kExitOracleViolation = 65;
inline constexpr int kExitGuestCrash = 66;
inline constexpr int kExitRecoveryStopped = 67;
inline constexpr int kExitKvmUnavailable = 69;
inline constexpr int kExitInternal = 70;

// Where the guest's console goes: a dup of stdout, or the --serial-file (truncated, or appended
// to on a reboot).
absl::StatusOr<UniqueFd> OpenSerialOutput(const std::string& path, bool append = false);

// A setup error's exit code: usage (64) for bad input, 69 when KVM is unusable, else 70.
int ExitCodeForSetupError(const absl::Status& status);

// The exit code for how the guest stopped (the guest's own status when it exited through the
// debug-exit port); prints one summary line on `err` (oracle, failovers, exit stats).
int Finish(const MachineResult& result, const Machine& machine, bool quiet, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_RUN_EXIT_H_
