// qmp-client/testing/fake_vm_control.h: a test double of the VM behind VmMonitor. It records
// every call, keeps a run state that stop/cont/system_powerdown change, can be told to fail, and
// optionally emits the events QEMU would (through a hook, e.g. QmpServer::EmitEvent).
//
// Thread-safety: all methods are thread-safe (one mutex).
#ifndef REHOME_QMP_CLIENT_TESTING_FAKE_VM_CONTROL_H_
#define REHOME_QMP_CLIENT_TESTING_FAKE_VM_CONTROL_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "qmp-client/vm_monitor.h"

namespace rehome::testing {

class FakeVmControl final : public VmControl {
 public:
  using EmitFn = std::function<void(std::string_view, std::optional<nlohmann::json>)>;

  FakeVmControl() = default;
  FakeVmControl(const FakeVmControl&) = delete;
  FakeVmControl& operator=(const FakeVmControl&) = delete;

  std::string Name() const override {
    return Locked([&] { return name_; });
  }
  std::string Uuid() const override {
    return Locked([&] { return uuid_; });
  }
  RunState State() const override {
    return Locked([&] { return state_; });
  }
  int VcpuCount() const override { return 2; }
  std::vector<int64_t> VcpuThreadIds() const override { return {4242, 4243}; }
  absl::Status Stop() override {
    return Act("stop", RunState::kPaused, std::string(kEventStop), std::nullopt);
  }
  absl::Status Cont() override {
    return Act("cont", RunState::kRunning, std::string(kEventResume), std::nullopt);
  }
  absl::Status SystemReset() override {
    return Act("system_reset", std::nullopt, std::string(kEventReset),
               ResetEventData(ShutdownCause::kHostQmpSystemReset));
  }
  absl::Status SystemPowerdown() override {
    return Act("system_powerdown", std::nullopt, std::string(kEventPowerdown), std::nullopt);
  }
  absl::Status Quit() override {
    return Act("quit", RunState::kShutdown, std::string(kEventShutdown),
               ShutdownEventData(ShutdownCause::kHostQmpQuit));
  }
  nlohmann::json QueryL1s() const override {
    return nlohmann::json::array({{{"role", "active"}, {"pid", 100}, {"uptime-ms", 5}},
                                  {{"role", "standby"}, {"pid", 101}, {"uptime-ms", 3}}});
  }
  nlohmann::json QueryFailovers() const override { return {{"count", 0}, {"last", nullptr}}; }
  nlohmann::json QueryVerification() const override {
    return {{"mode", "none"}, {"items", 0}, {"divergences", 0}, {"last", nullptr}};
  }
  nlohmann::json QueryRecoveryPolicy() const override {
    return {{"standby", true}, {"max-failovers", 3}};
  }
  absl::Status Switchover(const SwitchoverArgs& args) override {
    std::string call = "switchover";
    if (!args.binary.empty()) call += " binary=" + args.binary;
    if (!args.standby_binary.empty()) call += " standby-binary=" + args.standby_binary;
    return Act(call, std::nullopt, "", std::nullopt);
  }
  absl::Status InjectFault(std::string_view target, std::string_view kind,
                           uint32_t after = 0) override {
    return Act("inject-fault " + std::string(target) + " " + std::string(kind) +
                   (after != 0 ? " after " + std::to_string(after) : ""),
               std::nullopt, "", std::nullopt);
  }

  // ---- test controls ----
  void set_name(std::string name) {
    Locked([&] { name_ = std::move(name); });
  }
  void set_uuid(std::string uuid) {
    Locked([&] { uuid_ = std::move(uuid); });
  }
  void set_state(RunState state) {
    Locked([&] { state_ = state; });
  }
  // Every later action fails with `status` (OK to succeed again).
  void set_failure(absl::Status status) {
    Locked([&] { failure_ = std::move(status); });
  }
  void set_emit(EmitFn emit) {
    Locked([&] { emit_ = std::move(emit); });
  }
  std::vector<std::string> calls() const {
    return Locked([&] { return calls_; });
  }

 private:
  template <typename F>
  auto Locked(F f) const -> decltype(f()) {
    absl::MutexLock lock(&mu_);
    return f();
  }

  absl::Status Act(std::string call, std::optional<RunState> next, std::string event,
                   std::optional<nlohmann::json> data) {
    EmitFn emit;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(std::move(call));
      if (!failure_.ok()) return failure_;
      if (next) state_ = *next;
      emit = emit_;
    }
    if (emit && !event.empty()) emit(event, std::move(data));
    return absl::OkStatus();
  }

  mutable absl::Mutex mu_;
  std::string name_ ABSL_GUARDED_BY(mu_);
  std::string uuid_ ABSL_GUARDED_BY(mu_);
  RunState state_ ABSL_GUARDED_BY(mu_) = RunState::kRunning;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  EmitFn emit_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome::testing

#endif  // REHOME_QMP_CLIENT_TESTING_FAKE_VM_CONTROL_H_
