// vmm/cli/machine_control.h: the QMP monitor's view of a running Machine (VmControl). Queries
// answer at once from thread-safe state; commands that change the VM (stop, cont, quit,
// system_reset, switchover) are queued for the `rehome run` loop, which owns the Machine and
// applies them between waits, then reports the result with the matching QMP event. Fault
// injection goes straight to the supervisor (it only sends a signal or sets a flag).
// Thread-safety: every method is thread-safe.
#ifndef REHOME_VMM_CLI_MACHINE_CONTROL_H_
#define REHOME_VMM_CLI_MACHINE_CONTROL_H_

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "qmp-client/vm_monitor.h"
#include "recovery/policy/recovery_policy.h"
#include "vmm/cli/machine.h"

namespace rehome {

class MachineControl final : public VmControl {
 public:
  enum class Request { kStop, kCont, kQuit, kReset, kSwitchover };

  MachineControl(Machine* machine, std::string name, std::string uuid, RecoveryPolicy policy)
      : machine_(machine), name_(std::move(name)), uuid_(std::move(uuid)), policy_(policy) {}

  std::string Name() const override { return name_; }
  std::string Uuid() const override { return uuid_; }
  RunState State() const override;
  int VcpuCount() const override { return machine_->cpus(); }
  std::vector<int64_t> VcpuThreadIds() const override { return machine_->VcpuThreadIds(); }
  absl::Status Stop() override { return Post(Request::kStop); }
  absl::Status Cont() override { return Post(Request::kCont); }
  absl::Status SystemReset() override;
  absl::Status SystemPowerdown() override;
  absl::Status Quit() override { return Post(Request::kQuit); }
  nlohmann::json QueryL1s() const override;
  nlohmann::json QueryFailovers() const override;
  nlohmann::json QueryRecoveryPolicy() const override;
  absl::Status Switchover() override;
  absl::Status InjectFault(std::string_view target, std::string_view kind) override;

  // The run loop's side.
  std::vector<Request> TakeRequests();
  void SetState(RunState state);
  // Emits QMP events (set once the server exists).
  void SetEmitter(std::function<void(std::string_view, std::optional<nlohmann::json>)> emit);
  void Emit(std::string_view name, std::optional<nlohmann::json> data = std::nullopt) const;

 private:
  absl::Status Post(Request request);

  Machine* const machine_;
  const std::string name_;
  const std::string uuid_;
  const RecoveryPolicy policy_;
  mutable absl::Mutex mu_;
  std::deque<Request> requests_ ABSL_GUARDED_BY(mu_);
  RunState state_ ABSL_GUARDED_BY(mu_) = RunState::kRunning;
  std::function<void(std::string_view, std::optional<nlohmann::json>)> emit_ ABSL_GUARDED_BY(mu_);
};

// JSON of a failover report for QMP (query and FAILOVER_COMPLETED phases).
nlohmann::json FailoverReportJson(const FailoverReport& report);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_MACHINE_CONTROL_H_
