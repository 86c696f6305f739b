// recovery/nested/nested_supervisor.h: nested mode's L0 (docs/nested.md). It owns L2's RAM (one
// memfd), the commit journal and the L1 VMs: an active L1 whose agent runs L2, and a standby L1
// booted ahead (an L1 boots in tens of seconds on the emulated host). One thread watches the
// active L1: its VM ending (reset after a panic, power-off, triple fault, KVM error), its agent
// reporting death or failure, its heartbeat going stale (hang), L2 finishing. On a failure it
// re-homes L2: pause the L1's vCPUs, extract L2's state (l2_capture.h: live from guest mode,
// with the NPT placement check, or the parked commit), fence the L1 (its vCPUs stop for good),
// hand the state to the standby's agent, which rebuilds L2 over the same RAM and runs it; then
// a fresh standby boots. Faults can be injected into the whole L1: kill (L0 stops it at an
// arbitrary point), panic (the L1 kernel panics), hang (the agent stops), crash (the agent
// exits); those three happen while L2 is parked at a commit; register (a bit flip in the L1
// vCPU's registers while it runs L1 code, l1_register_fault.h) may lead to any of them or to
// nothing (masked: no failure within hang timeout + 2 s).
//
// Thread-safety: Start, Wait, failovers() and Stop from any thread; the watcher thread does
// everything else.
#ifndef REHOME_RECOVERY_NESTED_NESTED_SUPERVISOR_H_
#define REHOME_RECOVERY_NESTED_NESTED_SUPERVISOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "kvm-l0/guest_memory.h"
#include "recovery/nested/l2_capture.h"
#include "recovery/nested/nested_l1.h"
#include "state-extract/device_journal.h"
#include "vmm/exit_dispatcher.h"

namespace rehome {

enum class NestedFault {
  kNone,
  kKill,
  kPanic,
  kHang,
  kCrash,
  kCrashInExit,
  kDieInExit,
  kMixed,
  kRegister
};
// "kill", "panic", "hang", "crash", "crash-in-exit" (the agent exits while it handles one of
// L2's port I/O exits), "die-in-exit" (L0 stops the L1 for good, as a dead one, at a moment
// L2 is inside it: neither in guest mode nor parked), "mixed" (kill, panic, hang, crash,
// crash-in-exit in turn), "register" (a
// bit flip in an L1 vCPU register while the L1 runs its own code); nullopt else.
std::optional<NestedFault> ParseNestedFault(std::string_view name);
const char* NestedFaultName(NestedFault fault);

struct NestedConfig {
  std::string l1_kernel;  // the L1 image (scripts/nested-host/build-l1-image.sh)
  std::string l1_initrd;
  uint64_t l1_memory = 320ull << 20;
  std::string console_dir;  // each L1's console goes to <dir>/l1-<n>.log ("" = discarded)
  std::string l2_kernel;    // the test guest (ELF with a PVH note)
  std::string l2_cmdline;
  uint64_t l2_memory = 64ull << 20;
  UniqueFd serial_output;                          // L2's COM1
  absl::Duration hang_timeout = absl::Seconds(3);  // a heartbeat older than this is a hang
  absl::Duration l1_boot_timeout = absl::Seconds(600);
  absl::Duration takeover_timeout = absl::Seconds(120);
  int max_failovers = 1000;
  NestedFault fault = NestedFault::kNone;
  absl::Duration fault_every = absl::Seconds(1);  // after L2 runs and a standby is ready
  int fault_count = 0;                            // 0: no limit
  uint64_t fault_seed = 0;                    // seeds the register flips' choices (0: the clock)
  bool track_exits = true;  // follow L2's exits to its L1 (docs/nested.md, "Tracking L2's exits")
  std::function<void(std::string_view)> log;  // status lines (may be null)
  absl::Duration progress_every = absl::Seconds(15);  // a progress line this often
  std::string kvm_path = "/dev/kvm";
};

struct NestedFailover {
  int number = 0;
  std::string cause;
  int from_l1 = 0, to_l1 = 0;
  L2Capture::Source source = L2Capture::Source::kParked;
  uint64_t commit = 0;
  size_t state_bytes = 0;
  int capture_attempts = 0;  // pauses until L2 was capturable (kill)
  std::string placement;     // the NPT check's summary (guest mode)
  // detect: fault to detection (injected faults); pause+capture; handoff (fence, transfer,
  // command); takeover (until the standby's agent runs L2); total from detection.
  absl::Duration detect, capture, handoff, takeover, total;
  std::string ToString() const;
};

struct NestedResult {
  ExitOutcome::Action action = ExitOutcome::kFatal;
  int exit_status = 0;
  std::string reason;
  uint64_t verified_reports = 0, violations = 0, exits = 0;
  bool recovery_failed = false;  // L2 was lost or could not be re-homed
  int register_faults = 0;       // register flips injected ...
  int masked_faults = 0;         // ... after which the L1 showed no failure in time
};

class NestedSupervisor final {
 public:
  // Loads L2's kernel into its RAM, starts the active and the standby L1, and the watcher.
  static absl::StatusOr<std::unique_ptr<NestedSupervisor>> Start(NestedConfig config);
  ~NestedSupervisor();
  NestedSupervisor(const NestedSupervisor&) = delete;
  NestedSupervisor& operator=(const NestedSupervisor&) = delete;

  NestedResult Wait();
  void Stop();
  std::vector<NestedFailover> failovers() const;
  // Seconds each L1 took from its start to its agent being ready.
  std::vector<double> l1_boot_seconds() const;

 private:
  explicit NestedSupervisor(NestedConfig config)
      : config_(std::move(config)),
        flip_rng_(config_.fault_seed != 0 ? config_.fault_seed
                                          : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))) {
  }
  absl::StatusOr<std::unique_ptr<NestedL1>> StartL1();
  void Watch();
  void Log(std::string_view line) const;
  void Finish(NestedResult result);
  void DrainConsole(NestedL1& l1, uint64_t upto);
  // Returns false when the run must end (Finish was called).
  bool CheckActive();
  bool KeepStandby();
  // The active L1 failed before L2 ever ran in it (its boot, its agent): nothing of L2 is lost,
  // so the standby (or a new L1) takes its place, up to kMaxUnbootedReplacements times.
  bool ReplaceUnbootedL1(const std::string& why);
  static constexpr int kMaxUnbootedReplacements = 3;
  int unbooted_replacements_ = 0;
  void MaybeInjectFault();
  // Flips a random register bit of the active L1 at a moment it runs its own code.
  void InjectRegisterFault();
  // Stops the active L1 for good at a moment L2 is inside it (die-in-exit) and fails over
  // without letting it run again.
  void InjectDeathInExit();
  // Arms exit tracking in `l1` before L2 runs there (when its agent found the VMRUN return).
  void ArmExitTracking(NestedL1& l1);
  bool Failover(const std::string& cause, bool l1_alive, absl::Time fault_time);
  void VerifyPlacement();
  void LogProgress();

  NestedConfig config_;
  std::unique_ptr<GuestMemory> l2_ram_;
  std::unique_ptr<DeviceJournal> journal_;
  nested_abi::BootParams boot_;
  std::unique_ptr<NestedL1> active_, standby_;
  int next_l1_id_ = 1;
  bool l2_started_ = false;
  uint64_t last_heartbeat_ = 0;
  absl::Time heartbeat_seen_;
  uint64_t console_done_ = 0;  // L2 console bytes written out
  int faults_injected_ = 0;
  absl::Time last_fault_;
  std::optional<absl::Time> pending_fault_;  // a command fault sent, not yet detected
  std::optional<absl::Time> pending_flip_;   // a register flipped, no failure seen yet
  int register_faults_ = 0, masked_faults_ = 0;
  std::mt19937_64 flip_rng_;  // the register flips' choices (NestedConfig::fault_seed)
  int standby_ready_id_ = 0;  // the standby whose boot time is recorded
  bool verify_pending_ = false;
  absl::Time verify_at_;
  absl::Time progress_at_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::optional<NestedResult> result_ ABSL_GUARDED_BY(mu_);
  std::vector<NestedFailover> failovers_ ABSL_GUARDED_BY(mu_);
  std::vector<double> boot_seconds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_NESTED_SUPERVISOR_H_
