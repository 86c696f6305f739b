// qmp-client/vm_monitor.cc: QEMU-compatible command handler over VmControl. See header.
#include "qmp-client/vm_monitor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "qmp-client/qmp_codec.h"
#include "qmp-client/qmp_server.h"
#include "qmp-client/string_view_compat.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kCommands[] = {
    "qmp_capabilities",
    "query-version",
    "query-name",
    "query-uuid",
    "query-status",
    "query-commands",
    "query-cpus-fast",
    "query-kvm",
    "stop",
    "cont",
    "system_reset",
    "system_powerdown",
    "quit",
    "__org.rehome_query-l1s",
    "__org.rehome_query-failovers",
    "__org.rehome_query-recovery-policy",
    "__org.rehome_query-unsupported-devices",
    "__org.rehome_query-verification",
    "__org.rehome_switchover",
    "__org.rehome_inject-fault",
    "__org.rehome_set-verification",
};

constexpr std::string_view kFaultTargets[] = {"active", "standby", "replica-1", "replica-2"};
constexpr std::string_view kFaultKinds[] = {"kill",
                                            "hang",
                                            "garbage",
                                            "assert",
                                            "die-before-commit",
                                            "die-after-commit",
                                            "wrong-state",
                                            "wrong-read-data",
                                            "block"};
constexpr std::string_view kVerifyModes[] = {"none", "dual", "triple"};

absl::Status Generic(std::string_view desc) { return QmpErrorStatus(kQmpGenericError, desc); }

// One member of a command's argument struct, as QEMU's input visitor checks it.
struct StringParam {
  std::string_view name;
  const std::string_view* allowed_begin;  // enum values, or null for any string
  const std::string_view* allowed_end;
  bool optional = false;  // missing: "" in `values`
};

// Checks `args` against string members (declaration order; mandatory unless marked optional),
// then rejects extra members — the order QEMU's generated marshallers use. Fills `values` in
// member order ("" for a missing optional member).
absl::Status CheckArgs(const Json& args, std::initializer_list<StringParam> params,
                       std::vector<std::string>* values) {
  for (const StringParam& param : params) {
    auto it = args.find(std::string(param.name));
    if (it == args.end()) {
      if (param.optional) {
        values->emplace_back();
        continue;
      }
      return Generic(absl::StrCat("Parameter '", ToAbsl(param.name), "' is missing"));
    }
    if (!it->is_string()) {
      return Generic(
          absl::StrCat("Invalid parameter type for '", ToAbsl(param.name), "', expected: string"));
    }
    std::string value = it->get<std::string>();
    if (param.allowed_begin != nullptr &&
        std::find(param.allowed_begin, param.allowed_end, value) == param.allowed_end) {
      return Generic(
          absl::StrCat("Parameter '", ToAbsl(param.name), "' does not accept value '", value, "'"));
    }
    values->push_back(std::move(value));
  }
  for (auto it = args.begin(); it != args.end(); ++it) {
    const bool known = std::any_of(params.begin(), params.end(),
                                   [&](const StringParam& p) { return p.name == it.key(); });
    if (!known) return Generic(absl::StrCat("Parameter '", it.key(), "' is unexpected"));
  }
  return absl::OkStatus();
}

absl::Status NoArgs(const Json& args) {
  std::vector<std::string> unused;
  return CheckArgs(args, {}, &unused);
}

// A plain VmControl failure becomes GenericError with its message; a QMP-classed one keeps it.
absl::StatusOr<Json> Done(absl::Status status) {
  if (!status.ok()) return status;
  return Json::object();
}

}  // namespace

std::string_view RunStateName(RunState state) {
  switch (state) {
    case RunState::kPrelaunch:
      return "prelaunch";
    case RunState::kRunning:
      return "running";
    case RunState::kPaused:
      return "paused";
    case RunState::kSuspended:
      return "suspended";
    case RunState::kShutdown:
      return "shutdown";
    case RunState::kGuestPanicked:
      return "guest-panicked";
    case RunState::kInternalError:
      return "internal-error";
    case RunState::kDebug:
      return "debug";
    case RunState::kRestoreVm:
      return "restore-vm";
    case RunState::kSaveVm:
      return "save-vm";
  }
  return "internal-error";
}

std::string_view ShutdownCauseName(ShutdownCause cause) {
  switch (cause) {
    case ShutdownCause::kNone:
      return "none";
    case ShutdownCause::kHostError:
      return "host-error";
    case ShutdownCause::kHostQmpQuit:
      return "host-qmp-quit";
    case ShutdownCause::kHostQmpSystemReset:
      return "host-qmp-system-reset";
    case ShutdownCause::kHostSignal:
      return "host-signal";
    case ShutdownCause::kHostUi:
      return "host-ui";
    case ShutdownCause::kGuestShutdown:
      return "guest-shutdown";
    case ShutdownCause::kGuestReset:
      return "guest-reset";
    case ShutdownCause::kGuestPanic:
      return "guest-panic";
    case ShutdownCause::kSubsystemReset:
      return "subsystem-reset";
  }
  return "none";
}

VmMonitor::VmMonitor(std::shared_ptr<VmControl> control) : control_(std::move(control)) {}

std::vector<std::string> VmMonitor::CommandNames() {
  return std::vector<std::string>(std::begin(kCommands), std::end(kCommands));
}

bool VmMonitor::HasCommand(std::string_view name) const {
  // qmp_capabilities is the session's; listing it here only matters for query-commands.
  return name != "qmp_capabilities" &&
         std::find(std::begin(kCommands), std::end(kCommands), name) != std::end(kCommands);
}

absl::StatusOr<Json> VmMonitor::Execute(std::string_view name, const Json& args) {
  if (name == "__org.rehome_inject-fault") {
    // `after` (optional integer) is checked here; the string members by CheckArgs.
    uint32_t after = 0;
    Json strings = args;
    if (auto it = args.find("after"); it != args.end()) {
      if (!it->is_number_unsigned() || it->get<uint64_t>() > 0xffffff) {
        return Generic("Invalid parameter type for 'after', expected: integer (0..16777215)");
      }
      after = static_cast<uint32_t>(it->get<uint64_t>());
      strings.erase("after");
    }
    std::vector<std::string> values;
    RETURN_IF_ERROR(CheckArgs(strings,
                              {{"target", std::begin(kFaultTargets), std::end(kFaultTargets)},
                               {"kind", std::begin(kFaultKinds), std::end(kFaultKinds)}},
                              &values));
    return Done(control_->InjectFault(values[0], values[1], after));
  }
  if (name == "__org.rehome_switchover") {
    std::vector<std::string> values;
    RETURN_IF_ERROR(CheckArgs(
        args, {{"binary", nullptr, nullptr, true}, {"standby-binary", nullptr, nullptr, true}},
        &values));
    return Done(control_->Switchover({values[0], values[1]}));
  }
  if (name == "__org.rehome_set-verification") {
    std::vector<std::string> values;
    RETURN_IF_ERROR(
        CheckArgs(args, {{"mode", std::begin(kVerifyModes), std::end(kVerifyModes)}}, &values));
    return Done(control_->SetVerification(values[0]));
  }
  if (absl::Status status = NoArgs(args); !status.ok()) return status;
  if (name == "query-version") {
    const QmpVersion version = RehomeQmpVersion();
    return Json{
        {"qemu", {{"micro", version.micro}, {"minor", version.minor}, {"major", version.major}}},
        {"package", version.package}};
  }
  if (name == "query-name") {
    const std::string vm_name = control_->Name();
    if (vm_name.empty()) return Json::object();
    return Json{{"name", vm_name}};
  }
  if (name == "query-uuid") {
    const std::string uuid = control_->Uuid();
    return Json{{"UUID", uuid.empty() ? "00000000-0000-0000-0000-000000000000" : uuid}};
  }
  if (name == "query-status") {
    const RunState state = control_->State();
    return Json{{"status", std::string(RunStateName(state))},
                {"singlestep", false},
                {"running", state == RunState::kRunning}};
  }
  if (name == "query-commands") {
    Json list = Json::array();
    for (std::string_view command : kCommands) list.push_back({{"name", std::string(command)}});
    return list;
  }
  if (name == "query-cpus-fast") {
    const std::vector<int64_t> tids = control_->VcpuThreadIds();
    Json list = Json::array();
    for (int i = 0; i < control_->VcpuCount(); ++i) {
      const int64_t tid = i < static_cast<int>(tids.size()) ? tids[i] : 0;
      list.push_back({{"thread-id", tid},
                      {"props", {{"core-id", i}, {"thread-id", 0}, {"socket-id", 0}}},
                      {"qom-path", absl::StrCat("/machine/unattached/device[", i, "]")},
                      {"cpu-index", i},
                      {"target", "x86_64"}});
    }
    return list;
  }
  if (name == "query-kvm") return Json{{"enabled", true}, {"present", true}};
  if (name == "stop") return Done(control_->Stop());
  if (name == "cont") return Done(control_->Cont());
  if (name == "system_reset") return Done(control_->SystemReset());
  if (name == "system_powerdown") return Done(control_->SystemPowerdown());
  if (name == "quit") {
    std::shared_ptr<VmControl> control = control_;
    QmpServer::RunAfterReply([control] { control->Quit().IgnoreError(); });
    return Json::object();
  }
  if (name == "__org.rehome_query-l1s") return control_->QueryL1s();
  if (name == "__org.rehome_query-failovers") return control_->QueryFailovers();
  if (name == "__org.rehome_query-recovery-policy") return control_->QueryRecoveryPolicy();
  if (name == "__org.rehome_query-unsupported-devices") return control_->QueryUnsupportedDevices();
  if (name == "__org.rehome_query-verification") return control_->QueryVerification();
  return QmpErrorStatus(kQmpCommandNotFound,
                        absl::StrCat("The command ", ToAbsl(name), " has not been found"));
}

// ---- events ----

Json ShutdownEventData(ShutdownCause reason) {
  // QEMU: shutdown_caused_by_guest() is cause >= SHUTDOWN_CAUSE_GUEST_SHUTDOWN.
  const bool guest = reason >= ShutdownCause::kGuestShutdown;
  return Json{{"guest", guest}, {"reason", std::string(ShutdownCauseName(reason))}};
}

Json ResetEventData(ShutdownCause reason) { return ShutdownEventData(reason); }

Json GuestPanickedEventData(GuestPanicAction action) {
  switch (action) {
    case GuestPanicAction::kPause:
      return Json{{"action", "pause"}};
    case GuestPanicAction::kPoweroff:
      return Json{{"action", "poweroff"}};
    case GuestPanicAction::kRun:
      return Json{{"action", "run"}};
  }
  return Json{{"action", "pause"}};
}

Json L1FailedEventData(std::string_view cause, int64_t pid) {
  return Json{{"cause", std::string(cause)}, {"pid", pid}};
}

Json FailoverStartedEventData(std::string_view cause, int64_t failed_pid) {
  return Json{{"cause", std::string(cause)}, {"failed-pid", failed_pid}};
}

Json FailoverCompletedEventData(int64_t new_pid, absl::Duration downtime,
                                const std::vector<FailoverPhase>& phases, absl::Time detected) {
  Json phase_map = Json::object();
  for (const FailoverPhase& phase : phases) {
    phase_map[phase.name] = absl::ToInt64Microseconds(phase.duration);
  }
  Json data{{"pid", new_pid},
            {"downtime-us", absl::ToInt64Microseconds(downtime)},
            {"phases", std::move(phase_map)}};
  if (detected != absl::InfinitePast()) data["detected-at-us"] = absl::ToUnixMicros(detected);
  return data;
}

Json FailoverFailedEventData(std::string_view cause, std::string_view error) {
  return Json{{"cause", std::string(cause)}, {"error", std::string(error)}};
}

Json StandbyReadyEventData(int64_t pid) { return Json{{"pid", pid}}; }

}  // namespace rehome
