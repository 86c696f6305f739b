// vmm/cli/machine_control.h: the QMP monitor's view of the VM (VmControl). It outlives each
// boot of the guest: `rehome run` attaches the current Machine while it exists (a reboot builds
// a new one) and detaches it before destroying it. Queries answer at once from thread-safe state;
// commands that change the VM (stop, cont, quit, system_reset, switchover) are queued for the
// `rehome run` loop, which owns the Machine and applies them between waits, then reports the
// result with the matching QMP event. Fault injection and a change of verification mode go
// straight to the supervisor (they only send a signal or set a flag). Thread-safety: every
// method is thread-safe; a query never runs concurrently with Attach() swapping the machine out.
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

  // `unsupported_devices`: what QueryUnsupportedDevices() answers (a JSON array).
  MachineControl(int cpus, bool split, std::string name, std::string uuid, RecoveryPolicy policy,
                 nlohmann::json unsupported_devices = nlohmann::json::array())
      : cpus_(cpus),
        split_(split),
        name_(std::move(name)),
        uuid_(std::move(uuid)),
        policy_(policy),
        unsupported_devices_(std::move(unsupported_devices)),
        verify_(policy.verify) {}
  // Sets the machine queries and commands act on (nullptr between boots). The caller keeps it
  // alive until it attaches another one or nullptr.
  void Attach(Machine* machine);

  std::string Name() const override { return name_; }
  std::string Uuid() const override { return uuid_; }
  RunState State() const override;
  int VcpuCount() const override { return cpus_; }
  std::vector<int64_t> VcpuThreadIds() const override;
  absl::Status Stop() override { return Post(Request::kStop); }
  absl::Status Cont() override { return Post(Request::kCont); }
  absl::Status SystemReset() override;
  absl::Status SystemPowerdown() override;
  absl::Status Quit() override { return Post(Request::kQuit); }
  nlohmann::json QueryL1s() const override;
  nlohmann::json QueryFailovers() const override;
  nlohmann::json QueryVerification() const override;
  nlohmann::json QueryRecoveryPolicy() const override;
  nlohmann::json QueryUnsupportedDevices() const override { return unsupported_devices_; }
  absl::Status Switchover(const SwitchoverArgs& args) override;
  absl::Status InjectFault(std::string_view target, std::string_view kind,
                           uint32_t after = 0) override;
  absl::Status SetVerification(std::string_view mode) override;
  // The verification mode now: the policy's, or what SetVerification set last (it lasts across
  // reboots: `rehome run` builds each boot's machine with it).
  VerifyMode verify_mode() const;

  // The run loop's side.
  std::vector<Request> TakeRequests();
  // The arguments of the last queued switchover (its kSwitchover request).
  SwitchoverArgs TakeSwitchoverArgs();
  void SetState(RunState state);
  // Emits QMP events (set once the server exists).
  void SetEmitter(std::function<void(std::string_view, std::optional<nlohmann::json>)> emit);
  void Emit(std::string_view name, std::optional<nlohmann::json> data = std::nullopt) const;

 private:
  absl::Status Post(Request request);

  const int cpus_;
  const bool split_;
  const std::string name_;
  const std::string uuid_;
  const RecoveryPolicy policy_;
  const nlohmann::json unsupported_devices_;
  // Held while a query or command uses the machine, and by Attach(): the machine cannot go away
  // under a QMP handler. Never taken while holding mu_.
  mutable absl::Mutex machine_mu_;
  Machine* machine_ ABSL_GUARDED_BY(machine_mu_) = nullptr;
  mutable absl::Mutex mu_;
  std::deque<Request> requests_ ABSL_GUARDED_BY(mu_);
  SwitchoverArgs switchover_ ABSL_GUARDED_BY(mu_);
  RunState state_ ABSL_GUARDED_BY(mu_) = RunState::kRunning;
  VerifyMode verify_ ABSL_GUARDED_BY(mu_);
  std::function<void(std::string_view, std::optional<nlohmann::json>)> emit_ ABSL_GUARDED_BY(mu_);
};

// JSON of a failover report for QMP (query and FAILOVER_COMPLETED phases).
nlohmann::json FailoverReportJson(const FailoverReport& report);
// JSON of a divergence report (query-verification, DIVERGENCE events).
nlohmann::json DivergenceJson(const DivergenceReport& report);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_MACHINE_CONTROL_H_
