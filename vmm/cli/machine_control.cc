// vmm/cli/machine_control.cc: MachineControl.
#include "vmm/cli/machine_control.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "recovery/l1_process.h"

namespace rehome {
namespace {

int64_t Micros(absl::Duration d) { return absl::ToInt64Microseconds(d); }

}  // namespace

nlohmann::json FailoverReportJson(const FailoverReport& r) {
  return nlohmann::json{
      {"number", r.number},
      {"cause", r.cause},
      {"failed-pid", r.failed_pid},
      {"promoted-pid", r.promoted_pid},
      {"hot-standby", r.standby_was_ready},
      {"phases", {{"fence-us", Micros(r.fence)}, {"promote-us", Micros(r.promote)}}},
      {"total-us", Micros(r.total)}};
}

nlohmann::json DivergenceJson(const DivergenceReport& d) {
  return nlohmann::json{{"number", d.number},
                        {"seq", d.seq},
                        {"item", d.item},
                        {"replicas", d.replicas},
                        {"outvoted", d.minority},
                        {"what", d.what},
                        {"resolution", d.resolution},
                        {"detected-at-us", absl::ToUnixMicros(d.detected)}};
}

nlohmann::json MachineControl::QueryVerification() const {
  absl::MutexLock lock(&machine_mu_);
  const L1Supervisor* s = machine_ != nullptr ? machine_->supervisor() : nullptr;
  const VerificationStatus v = s != nullptr ? s->verification() : VerificationStatus{};
  return {{"mode", std::string(VerifyModeName(s != nullptr ? v.mode : verify_mode()))},
          {"items", v.items},
          {"divergences", v.divergences},
          {"last", v.last.has_value() ? DivergenceJson(*v.last) : nlohmann::json(nullptr)}};
}

void MachineControl::Attach(Machine* machine) {
  absl::MutexLock lock(&machine_mu_);
  machine_ = machine;
}

std::vector<int64_t> MachineControl::VcpuThreadIds() const {
  absl::MutexLock lock(&machine_mu_);
  if (machine_ == nullptr) return {};
  return machine_->VcpuThreadIds();
}

RunState MachineControl::State() const {
  {
    absl::MutexLock lock(&machine_mu_);
    if (machine_ != nullptr) {
      if (const L1Supervisor* s = machine_->supervisor(); s != nullptr && s->limit_reached()) {
        return RunState::kInternalError;
      }
    }
  }
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Status MachineControl::Post(Request request) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(request);
  return absl::OkStatus();
}

absl::Status MachineControl::SystemReset() {
  // Like QEMU: the reply comes at once; the run loop boots the guest again and emits RESET.
  return Post(Request::kReset);
}

absl::Status MachineControl::SystemPowerdown() {
  // Like QEMU: the request is an ACPI power-button press. The test guest has no ACPI
  // power-button driver, so, as under QEMU, it keeps running.
  Emit(kEventPowerdown);
  return absl::OkStatus();
}

nlohmann::json MachineControl::QueryL1s() const {
  nlohmann::json list = nlohmann::json::array();
  absl::MutexLock lock(&machine_mu_);
  if (machine_ == nullptr) return list;
  if (const L1Supervisor* s = machine_->supervisor(); s != nullptr) {
    for (const L1Info& l1 : s->L1s()) {
      list.push_back({{"role", l1.role},
                      {"pid", l1.pid},
                      {"id", l1.id},
                      {"uptime-ms", absl::ToInt64Milliseconds(l1.uptime)}});
    }
  }
  return list;
}

nlohmann::json MachineControl::QueryFailovers() const {
  absl::MutexLock lock(&machine_mu_);
  const L1Supervisor* s = machine_ != nullptr ? machine_->supervisor() : nullptr;
  if (s == nullptr) return {{"count", 0}, {"last", nullptr}, {"mode", "monolithic"}};
  std::optional<FailoverReport> last = s->last_failover();
  return {{"count", s->failover_count()},
          {"exits-retried", s->exits_retried()},
          {"exits-answered-from-journal", s->exits_answered_from_journal()},
          {"limit-reached", s->limit_reached()},
          {"last", last.has_value() ? FailoverReportJson(*last) : nlohmann::json(nullptr)}};
}

nlohmann::json MachineControl::QueryRecoveryPolicy() const {
  return {{"mode", std::string(RecoveryModeName(policy_.mode))},
          {"split", split_},
          {"standbys", policy_.standbys},
          {"heartbeat-period-ms", policy_.heartbeat_period_ms},
          {"hang-timeout-ms", policy_.hang_timeout_ms},
          {"max-failovers", policy_.max_failovers},
          {"failover-window-s", policy_.failover_window_s},
          {"l1-binary", policy_.l1_binary},
          {"standby-l1-binary", policy_.standby_l1_binary},
          {"l1-sandbox", std::string(L1SandboxLevelName(policy_.l1_sandbox))},
          {"verify", std::string(VerifyModeName(verify_mode()))}};
}

absl::Status MachineControl::Switchover(const SwitchoverArgs& args) {
  for (const std::string& binary : {args.binary, args.standby_binary}) {
    if (!binary.empty()) RETURN_IF_ERROR(CheckL1Binary(binary));
  }
  absl::MutexLock lock(&machine_mu_);
  if (machine_ == nullptr) return absl::FailedPreconditionError("the guest is between boots");
  if (machine_->supervisor() == nullptr) {
    return absl::FailedPreconditionError("switchover needs --mode split");
  }
  {
    absl::MutexLock queue(&mu_);
    switchover_ = args;
  }
  return Post(Request::kSwitchover);
}

SwitchoverArgs MachineControl::TakeSwitchoverArgs() {
  absl::MutexLock lock(&mu_);
  return std::exchange(switchover_, SwitchoverArgs{});
}

absl::Status MachineControl::InjectFault(std::string_view target, std::string_view kind,
                                         uint32_t after) {
  absl::MutexLock lock(&machine_mu_);
  if (machine_ == nullptr) return absl::FailedPreconditionError("the guest is between boots");
  L1Supervisor* s = machine_->supervisor();
  if (s == nullptr) return absl::FailedPreconditionError("fault injection needs --mode split");
  return s->InjectFault(target, kind, after);
}

absl::Status MachineControl::SetVerification(std::string_view mode_name) {
  ASSIGN_OR_RETURN(const VerifyMode mode, ParseVerifyMode(mode_name));
  absl::MutexLock lock(&machine_mu_);
  if (machine_ == nullptr) return absl::FailedPreconditionError("the guest is between boots");
  L1Supervisor* s = machine_->supervisor();
  if (s == nullptr) {
    if (mode == VerifyMode::kNone) return absl::OkStatus();
    return absl::FailedPreconditionError("verified execution needs --mode split");
  }
  RETURN_IF_ERROR(s->SetVerifyMode(mode));
  absl::MutexLock queue(&mu_);
  verify_ = mode;
  return absl::OkStatus();
}

VerifyMode MachineControl::verify_mode() const {
  absl::MutexLock lock(&mu_);
  return verify_;
}

std::vector<MachineControl::Request> MachineControl::TakeRequests() {
  absl::MutexLock lock(&mu_);
  std::vector<Request> out(requests_.begin(), requests_.end());
  requests_.clear();
  return out;
}

void MachineControl::SetState(RunState state) {
  absl::MutexLock lock(&mu_);
  state_ = state;
}

void MachineControl::SetEmitter(
    std::function<void(std::string_view, std::optional<nlohmann::json>)> emit) {
  absl::MutexLock lock(&mu_);
  emit_ = std::move(emit);
}

void MachineControl::Emit(std::string_view name, std::optional<nlohmann::json> data) const {
  std::function<void(std::string_view, std::optional<nlohmann::json>)> emit;
  {
    absl::MutexLock lock(&mu_);
    emit = emit_;
  }
  if (emit) emit(name, std::move(data));
}

}  // namespace rehome
