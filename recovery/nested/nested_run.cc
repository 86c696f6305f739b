// recovery/nested/nested_run.cc: NestedRun.
#include "recovery/nested/nested_run.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "recovery/nested/nested_supervisor.h"
#include "vmm/cli/run_exit.h"

namespace rehome {
namespace {

int ExitCodeFor(const NestedResult& r) {
  if (r.recovery_failed) return kExitRecoveryStopped;
  switch (r.action) {
    case ExitOutcome::kGuestExit:
      return r.exit_status;
    case ExitOutcome::kCheckFailed:
      return kExitOracleViolation;
    case ExitOutcome::kGuestCrash:
      return kExitGuestCrash;
    case ExitOutcome::kShutdown:
    case ExitOutcome::kReset:
      return 0;
    default:
      return kExitInternal;
  }
}

std::string FailoverSummary(const std::vector<NestedFailover>& failovers) {
  if (failovers.empty()) return "no failovers";
  std::vector<double> ms;
  int live = 0, parked = 0, exit = 0;
  for (const NestedFailover& f : failovers) {
    ms.push_back(absl::ToDoubleMilliseconds(f.total));
    if (f.source == L2Capture::Source::kGuestMode) ++live;
    if (f.source == L2Capture::Source::kParked) ++parked;
    if (f.source == L2Capture::Source::kExit) ++exit;
  }
  std::sort(ms.begin(), ms.end());
  const int after_exit = static_cast<int>(failovers.size()) - live - parked - exit;
  return absl::StrFormat(
      "%d failovers (%d from live guest mode, %d parked, %d at an exit, %d after an exit), "
      "median %.1f ms, max %.1f ms",
      failovers.size(), live, parked, exit, after_exit, ms[ms.size() / 2], ms.back());
}

}  // namespace

int NestedRun(const RunOptions& options, const std::string& cmdline, std::ostream& err) {
  if (options.cpus != 1) {
    err << "rehome run: --cpus: nested mode runs L2 with 1 vCPU, got " << options.cpus << "\n";
    return kExitUsage;
  }
  absl::StatusOr<UniqueFd> serial = OpenSerialOutput(options.serial_file);
  if (!serial.ok()) {
    err << "rehome run: " << serial.status().message() << "\n";
    return kExitUsage;
  }
  const NestedOptions& n = options.nested_options;
  NestedConfig config;
  config.l1_kernel = n.l1_kernel;
  config.l1_initrd = n.l1_initrd;
  config.l1_memory = n.l1_memory_mib << 20;
  config.console_dir = n.l1_console_dir;
  config.l2_kernel = options.kernel;
  config.l2_cmdline = cmdline;
  config.l2_memory = options.memory_mib << 20;
  config.serial_output = std::move(*serial);
  config.hang_timeout = absl::Milliseconds(n.hang_timeout_ms);
  config.max_failovers = options.policy.max_failovers;
  if (!n.fault.empty()) {
    const std::optional<NestedFault> fault = ParseNestedFault(n.fault);
    if (!fault.has_value()) {  // the option parser admits only known names
      err << "rehome: --nested-fault: unknown fault '" << n.fault << "'\n";
      return kExitUsage;
    }
    config.fault = *fault;
  }
  config.fault_every = absl::Milliseconds(n.fault_every_ms);
  config.fault_count = static_cast<int>(n.faults);
  config.fault_seed = n.fault_seed;
  config.track_exits = n.exit_tracking;
  if (const char* kvm_path = std::getenv("REHOME_KVM_PATH"); kvm_path != nullptr) {
    config.kvm_path = kvm_path;
  }
  auto err_mu = std::make_shared<absl::Mutex>();
  if (!options.quiet) {
    config.log = [&err, err_mu](std::string_view line) {
      absl::MutexLock lock(err_mu.get());
      err << "rehome: " << line << "\n";
      err.flush();
    };
  }
  absl::StatusOr<std::unique_ptr<NestedSupervisor>> supervisor =
      NestedSupervisor::Start(std::move(config));
  if (!supervisor.ok()) {
    err << "rehome run: " << supervisor.status().message() << "\n";
    return ExitCodeForSetupError(supervisor.status());
  }
  const NestedResult result = (*supervisor)->Wait();
  const std::vector<NestedFailover> failovers = (*supervisor)->failovers();
  std::vector<double> boots = (*supervisor)->l1_boot_seconds();
  (*supervisor)->Stop();
  {
    absl::MutexLock lock(err_mu.get());
    std::sort(boots.begin(), boots.end());
    err << absl::StrFormat(
        "rehome: nested: %s (%s); oracle: %d reports verified, %d violations; %d exits; %s; "
        "L1 boot to ready median %.1f s over %d L1s%s\n",
        result.reason, result.recovery_failed ? "recovery failed" : "L2 ended",
        result.verified_reports, result.violations, result.exits, FailoverSummary(failovers),
        boots.empty() ? 0.0 : boots[boots.size() / 2], boots.size(),
        result.register_faults == 0
            ? ""
            : absl::StrFormat("; %d register faults, %d masked", result.register_faults,
                              result.masked_faults));
  }
  return ExitCodeFor(result);
}

}  // namespace rehome
