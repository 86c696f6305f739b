// qmp-client/vm_monitor.h: QEMU-compatible QMP commands and events over an abstract VM.
//
// Contract: VmMonitor is the CommandHandler that QmpServer runs for `rehome run --qmp`. It
// implements QEMU 7.2's standard commands with QEMU's exact reply shapes (query-version,
// query-name, query-uuid, query-status, query-commands, query-cpus-fast, query-kvm, stop, cont,
// system_reset, system_powerdown, quit) and rehome's `__org.rehome_` extensions, checking
// arguments with QEMU's wording ("Parameter 'x' is missing", "Invalid parameter type for 'x',
// expected: string", "Parameter 'x' does not accept value 'y'", "Parameter 'x' is unexpected").
// Failures reported by the VmControl become GenericError with the status message as desc.
// 'quit' replies {} first and calls VmControl::Quit() once the reply has been written (via
// QmpServer::RunAfterReply). The event helpers below build the data of the events the owner
// emits through QmpServer::EmitEvent (the monitor itself emits none).
//
// Thread-safety: VmMonitor is stateless apart from its VmControl and may be called from any
// thread; VmControl implementations must be thread-safe and must not block (they run on the
// QMP server's io thread): Stop/Cont/SystemReset/SystemPowerdown/Quit/Switchover/InjectFault
// request the change and return; progress is reported with events.
#ifndef REHOME_QMP_CLIENT_VM_MONITOR_H_
#define REHOME_QMP_CLIENT_VM_MONITOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "qmp-client/qmp_session.h"

namespace rehome {

// The subset of QEMU's RunState that rehome uses.
enum class RunState {
  kPrelaunch,
  kRunning,
  kPaused,
  kSuspended,
  kShutdown,
  kGuestPanicked,
  kInternalError,
  kDebug,
  kRestoreVm,
  kSaveVm,
};
// QEMU's wire name ("prelaunch", "running", "paused", "guest-panicked", ...).
std::string_view RunStateName(RunState state);

// What the monitor needs from the VM. All methods thread-safe and non-blocking (see above).
// __org.rehome_switchover's optional arguments (design diversity): the L1 binary the standby
// that takes over runs (`binary`), and the one every later standby runs (`standby-binary`;
// default: `binary`).
struct SwitchoverArgs {
  std::string binary;
  std::string standby_binary;
};

class VmControl {
 public:
  virtual ~VmControl() = default;
  virtual std::string Name() const = 0;  // "" = none
  virtual std::string Uuid() const = 0;  // "" = none (reported as the nil UUID)
  virtual RunState State() const = 0;
  virtual int VcpuCount() const = 0;
  virtual std::vector<int64_t> VcpuThreadIds() const = 0;  // host TIDs, by vCPU index
  virtual absl::Status Stop() = 0;
  virtual absl::Status Cont() = 0;
  virtual absl::Status SystemReset() = 0;
  virtual absl::Status SystemPowerdown() = 0;
  virtual absl::Status Quit() = 0;  // called after the reply has been sent
  // rehome extensions; the JSON is returned to the client as is.
  virtual nlohmann::json QueryL1s() const = 0;             // [{"role","pid","uptime-ms"}...]
  virtual nlohmann::json QueryFailovers() const = 0;       // {"count":N,"last":{...}|null}
  virtual nlohmann::json QueryRecoveryPolicy() const = 0;  // an object
  // Devices the VM definition asks for that rehome does not emulate (the guest does not see
  // them): [{"element": "graphics", "type": "vnc"}, {"element": "memballoon", "model":
  // "virtio"}, ...] ("type"/"model" as the element has it); [] when none.
  virtual nlohmann::json QueryUnsupportedDevices() const { return nlohmann::json::array(); }
  // {"mode": "none"|"dual"|"triple", "items": N, "divergences": N, "last": {...}|null}
  virtual nlohmann::json QueryVerification() const = 0;
  // Starts a planned switchover; empty binaries keep the L1 binaries as they are.
  virtual absl::Status Switchover(const SwitchoverArgs& args) = 0;
  // `target` is "active" or "standby", `kind` "kill" or "hang" (already validated).
  // `after`: the fault applies after that many exits of the target (the wrong-* kinds).
  virtual absl::Status InjectFault(std::string_view target, std::string_view kind,
                                   uint32_t after = 0) = 0;
  // Changes verified execution on the running VM: `mode` "none", "dual" or "triple" (already
  // validated). Refused (FailedPrecondition) where the VM cannot change it live.
  virtual absl::Status SetVerification(std::string_view /*mode*/) {
    return absl::UnimplementedError("this VM cannot change its verification mode");
  }
};

class VmMonitor final : public CommandHandler {
 public:
  explicit VmMonitor(std::shared_ptr<VmControl> control);
  VmMonitor(const VmMonitor&) = delete;
  VmMonitor& operator=(const VmMonitor&) = delete;

  bool HasCommand(std::string_view name) const override;
  absl::StatusOr<nlohmann::json> Execute(std::string_view name,
                                         const nlohmann::json& args) override;

  // Every command the monitor answers, including qmp_capabilities (as query-commands lists it).
  static std::vector<std::string> CommandNames();

 private:
  std::shared_ptr<VmControl> control_;
};

// ---- Events: names and data builders ----
inline constexpr std::string_view kEventStop = "STOP";            // no data
inline constexpr std::string_view kEventResume = "RESUME";        // no data
inline constexpr std::string_view kEventPowerdown = "POWERDOWN";  // no data
inline constexpr std::string_view kEventReset = "RESET";
inline constexpr std::string_view kEventShutdown = "SHUTDOWN";
inline constexpr std::string_view kEventGuestPanicked = "GUEST_PANICKED";
inline constexpr std::string_view kEventL1Failed = "__org.rehome_L1_FAILED";
inline constexpr std::string_view kEventFailoverStarted = "__org.rehome_FAILOVER_STARTED";
inline constexpr std::string_view kEventFailoverCompleted = "__org.rehome_FAILOVER_COMPLETED";
inline constexpr std::string_view kEventFailoverFailed = "__org.rehome_FAILOVER_FAILED";
inline constexpr std::string_view kEventStandbyReady = "__org.rehome_STANDBY_READY";
// Verified execution: replicas disagreed on an item, and how that was resolved (data: the
// divergence report, DivergenceJson in vmm/cli/machine_control.h).
inline constexpr std::string_view kEventDivergence = "__org.rehome_DIVERGENCE";
inline constexpr std::string_view kEventDivergenceResolved = "__org.rehome_DIVERGENCE_RESOLVED";

// QEMU's ShutdownCause.
enum class ShutdownCause {
  kNone,
  kHostError,
  kHostQmpQuit,
  kHostQmpSystemReset,
  kHostSignal,
  kHostUi,
  kGuestShutdown,
  kGuestReset,
  kGuestPanic,
  kSubsystemReset,
};
std::string_view ShutdownCauseName(ShutdownCause cause);  // "host-qmp-quit", ...

// QEMU's GuestPanicAction.
enum class GuestPanicAction { kPause, kPoweroff, kRun };

// SHUTDOWN / RESET: {"guest": bool, "reason": ShutdownCause}. `guest` is whether the guest
// asked for it (QEMU: true for guest-* causes).
nlohmann::json ShutdownEventData(ShutdownCause reason);
nlohmann::json ResetEventData(ShutdownCause reason);
// GUEST_PANICKED: {"action": "pause"|"poweroff"|"run"}.
nlohmann::json GuestPanickedEventData(GuestPanicAction action);
// __org.rehome_L1_FAILED: {"cause": "exit"|"killed"|"hang"|..., "pid": N}.
nlohmann::json L1FailedEventData(std::string_view cause, int64_t pid);
// __org.rehome_FAILOVER_STARTED: {"cause": ..., "failed-pid": N}.
nlohmann::json FailoverStartedEventData(std::string_view cause, int64_t failed_pid);
// __org.rehome_FAILOVER_COMPLETED: {"pid": new active L1, "downtime-us": N,
// "phases": {"<phase>": microseconds, ...}}.
struct FailoverPhase {
  std::string name;
  absl::Duration duration;
};
// `detected`, when given, becomes "detected-at-us": when the failure was detected (wall clock,
// microseconds since the epoch, as QMP timestamps), for tools that time detection themselves.
nlohmann::json FailoverCompletedEventData(int64_t new_pid, absl::Duration downtime,
                                          const std::vector<FailoverPhase>& phases,
                                          absl::Time detected = absl::InfinitePast());
// __org.rehome_FAILOVER_FAILED: {"cause": ..., "error": desc}.
nlohmann::json FailoverFailedEventData(std::string_view cause, std::string_view error);
// __org.rehome_STANDBY_READY: {"pid": N}.
nlohmann::json StandbyReadyEventData(int64_t pid);

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_VM_MONITOR_H_
