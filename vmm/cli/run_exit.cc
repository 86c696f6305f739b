// vmm/cli/run_exit.cc: how `rehome run` turns setup errors and the guest's end into exit codes.
#include "vmm/cli/run_exit.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "recovery/supervisor.h"

namespace rehome {

absl::StatusOr<UniqueFd> OpenSerialOutput(const std::string& path, bool append) {
  if (path.empty()) {
    UniqueFd out(fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!out.valid()) return LastErrnoStatus("dup stdout");
    return out;
  }
  UniqueFd out(
      open(path.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0644));
  if (!out.valid()) return LastErrnoStatus(absl::StrCat("--serial-file ", path));
  return out;
}

int ExitCodeForSetupError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
      return kExitKvmUnavailable;
    default:
      return kExitInternal;
  }
}

int Finish(const MachineResult& result, const Machine& machine, bool quiet, std::ostream& err) {
  const WorkloadProgress progress = machine.Progress();
  if (const ExitStats stats = machine.exit_stats(); stats.exits != 0) {
    const L1Supervisor* supervisor = machine.supervisor();
    err << absl::StrFormat("rehome: exit stats: %d exits, %.3f us handling per exit, %d posted\n",
                           stats.exits, absl::ToDoubleMicroseconds(stats.handling) / stats.exits,
                           supervisor != nullptr ? supervisor->exits_posted() : 0);
  }
  std::string oracle_note;
  if (progress.has_oracle) {
    oracle_note = progress.summary.empty() ? absl::StrCat("; oracle: ", progress.verified_reports,
                                                          " reports verified, no violations")
                                           : absl::StrCat("; oracle: ", progress.summary);
  }
  if (const NetTap* tap = machine.net_tap(); tap != nullptr) {
    const NetTap::Stats s = tap->stats();
    oracle_note += absl::StrCat("; net: ", s.rx_frames, " frames in, ", s.tx_frames, " out");
    if (s.rx_oversize + s.tx_errors + s.tx_malformed + s.ring_errors != 0) {
      oracle_note += absl::StrCat(" (", s.rx_oversize, " oversize dropped, ", s.tx_errors,
                                  " tap write errors, ", s.tx_malformed, " bad slots, ",
                                  s.ring_errors, " bad ring positions)");
    }
  }
  if (const L1Supervisor* supervisor = machine.supervisor(); supervisor != nullptr) {
    oracle_note +=
        absl::StrCat("; failovers: ", supervisor->failover_count(), " (",
                     supervisor->exits_retried(), " exits retried, ",
                     supervisor->exits_answered_from_journal(), " answered from the journal)");
    if (supervisor->limit_reached()) {
      err << "rehome: L1 recovery stopped, guest stopped: " << result.reason << "\n";
      return kExitRecoveryStopped;
    }
  }
  switch (result.kind) {
    case MachineResult::Kind::kGuestExit:
      if (!quiet) {
        err << "rehome: guest exited with status " << result.exit_status << oracle_note;
        if (progress.pio_bench_writes != 0) {
          err << "; pio-bench writes: " << progress.pio_bench_writes;
        }
        err << "\n";
      }
      return result.exit_status;
    case MachineResult::Kind::kShutdown:
      if (!quiet) err << "rehome: guest powered off (" << result.reason << ")\n";
      return 0;
    case MachineResult::Kind::kReset:
      if (!quiet) err << "rehome: guest reset (" << result.reason << "); on_reboot=destroy\n";
      return 0;
    case MachineResult::Kind::kGuestCrash:
      err << "rehome: guest crashed: " << result.reason << "\n";
      return kExitGuestCrash;
    case MachineResult::Kind::kOracleViolation:
      err << "rehome: counter oracle violation: " << result.reason << "\n";
      return kExitOracleViolation;
    case MachineResult::Kind::kFatal:
    case MachineResult::Kind::kStopped:
      break;
  }
  err << "rehome: VM failed: " << result.reason << "\n";
  return kExitInternal;
}

}  // namespace rehome
