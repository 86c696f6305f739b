// recovery/l1_supervisor.h: what L0 asks of the keeper of a VM's L1 processes, whichever form it
// takes: Supervisor (one active L1 and hot standbys) or VerifiedSupervisor (two or three
// replicas that execute every exit and compare their results before anything leaves; verified
// execution, docs/failover.md). vCPU threads forward their exits through Execute(); operators
// and tests use the rest. Also the types both share (reports, events, configuration).
// Thread-safety: every method of an implementation is thread-safe.
#ifndef REHOME_RECOVERY_L1_SUPERVISOR_H_
#define REHOME_RECOVERY_L1_SUPERVISOR_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvm-l0/exit_channel.h"
#include "recovery/l1_process.h"
#include "recovery/policy/recovery_policy.h"
#include "vmm/guest_memory_view.h"
#include "vmm/l1/commit_record.h"

namespace rehome {

struct FailoverReport {
  uint64_t number = 0;  // 1 for the first failover of this VM
  std::string cause;    // "crash: ...", "hang: ...", "bad answer: ...", "switchover", ...
  pid_t failed_pid = -1;
  pid_t promoted_pid = -1;
  bool standby_was_ready = false;  // false: a new L1 had to be started while the guest waited
  absl::Duration fence;            // detection -> failed L1 reaped
  absl::Duration promote;          // reaped -> new active acknowledged (state restored)
  absl::Duration total;            // detection -> guest may run on the new active
  absl::Time detected;             // when the failure was detected (switchover: when it began)
  std::string ToString() const;
};

// Verified execution: one divergence between replicas and how it was resolved.
struct DivergenceReport {
  uint64_t number = 0;          // 1 for the first divergence of this VM
  uint64_t seq = 0;             // the work item (exit or host input) whose results differed
  std::string item;             // "vCPU 0 MMIO write 0xd0000050 (4 bytes)", ...
  std::vector<pid_t> replicas;  // the replicas that executed it
  std::vector<pid_t> minority;  // those outvoted (fenced); empty when there was no majority
  std::string what;             // what differed: "answer", "effects", "state", with details
  std::string resolution;       // "majority of 2 (third opinion)", "no majority: guest paused"
  absl::Time detected;
  std::string ToString() const;
};

struct SupervisorEvent {
  enum class Kind {
    kL1Failed,
    kFailoverStarted,
    kFailoverCompleted,
    kFailoverFailed,
    kStandbyReady,
    kDivergence,          // replicas disagreed (divergence set: seq, item, what)
    kDivergenceResolved,  // ... and how (divergence set: minority, resolution)
  };
  Kind kind = Kind::kL1Failed;
  std::string role;   // "active" / "standby" / "replica" (kL1Failed)
  std::string cause;  // kL1Failed, kFailoverStarted, kFailoverFailed
  pid_t pid = -1;
  std::optional<FailoverReport> report;        // kFailoverCompleted
  std::optional<DivergenceReport> divergence;  // kDivergence, kDivergenceResolved
};

struct L1Info {
  std::string role;  // "active", "standby", "starting"
  pid_t pid = -1;
  uint64_t id = 0;
  absl::Duration uptime;
};

struct SupervisorConfig {
  L1LaunchSpec launch;  // journal_fd is filled in by the supervisor
  // Design diversity: the binary of every L1 started after the first (standbys, cold-start
  // replacements); empty: launch.binary. The first L1 (the initial active) runs launch.binary.
  std::string standby_binary;
  RecoveryPolicy policy;  // standbys, heartbeat period, hang timeout, failover limit
  absl::Duration start_timeout = absl::Seconds(10);  // an L1 must be ready within this
  std::function<void(const SupervisorEvent&)> on_event;
  // Whether writes the active L1 accepts as posted (ranges it publishes in its channel header)
  // are posted: the vCPU runs on while the L1 handles the write (Execute, SettlePosted).
  bool post_writes = true;
  // Called before an L1 is promoted (failover, switchover), with no L1 writing shared memory:
  // L0 repairs what the previous active may have scribbled on (the console ring's positions).
  std::function<void()> before_promote;
  // When recovery stops (failover limit, policy none): false = Execute fails at once (the VM
  // stops); true = Execute waits, the guest stays paused with nothing lost, until an operator
  // calls ResumeAfterLimit (QMP `cont`) or Shutdown.
  bool pause_on_limit = false;
};

// Verified execution only: where L0 applies the effects the replicas agreed on (guest RAM, the
// disk image, interrupt lines, the console client).
struct VerifiedEffectsSink {
  const GuestMemoryView* ram = nullptr;
  int disk_fd = -1;  // the image L0 writes and flushes; not owned (-1: no disk)
  std::function<bool(uint32_t line)> raise_irq;  // an edge on a virtio line; false: no such line
  std::function<void(std::string_view)> console_output;
  // virtio-net (all null without one): sends transmitted frame `pos` (false: refused, not the
  // next position), frees the receive slots before `pos` (false: refused), and the receive
  // ring's produced position (stamped on every item: ExitRequest::net_rx_limit).
  std::function<bool(uint64_t pos, std::span<const uint8_t> frame)> net_tx;
  std::function<bool(uint64_t pos)> net_rx_done;
  std::function<uint64_t()> net_rx_produced;
};

// Verified execution, as QMP reports it.
struct VerificationStatus {
  VerifyMode mode = VerifyMode::kNone;
  uint64_t items = 0;        // work items executed and compared
  uint64_t divergences = 0;  // items whose results differed
  std::optional<DivergenceReport> last;
};

class L1Supervisor {
 public:
  virtual ~L1Supervisor() = default;

  // Forwards `request` (seq, vcpu and payload filled in) and returns the validated answer,
  // recovering from L1 failures as often as the policy allows. FailedPrecondition once recovery
  // stopped; Cancelled after Shutdown(). With `posted` (Supervisor only): a write the active L1
  // accepts as posted returns at once with *posted = true (see Supervisor::Execute).
  virtual absl::Status Execute(const ExitRequest& request, ExitResponse* response,
                               bool* posted = nullptr) = 0;
  // Collects `vcpu`'s pending posted exit (OK with *settled = false when none is pending).
  virtual absl::Status SettlePosted(uint32_t vcpu, ExitResponse* response, bool* settled,
                                    bool wait_for_l1 = true) = 0;
  // Planned switchover (see Supervisor::Switchover); Unimplemented where it does not apply.
  virtual absl::StatusOr<FailoverReport> Switchover(
      std::optional<std::string> binary = std::nullopt,
      std::optional<std::string> standby_binary = std::nullopt) = 0;
  // Fault injection: `target` "active", "standby" (or "replica-N" in verified execution),
  // `kind` as Supervisor::InjectFault, applying after `after_exits` exits of the target.
  virtual absl::Status InjectFault(std::string_view target, std::string_view kind,
                                   uint32_t after_exits = 0) = 0;

  virtual std::vector<L1Info> L1s() const = 0;
  virtual uint64_t failover_count() const = 0;
  virtual std::optional<FailoverReport> last_failover() const = 0;
  virtual bool limit_reached() const = 0;
  virtual uint64_t exits_retried() const = 0;
  virtual uint64_t exits_answered_from_journal() const = 0;
  virtual uint64_t exits_posted() const = 0;
  // The last agreed (committed) record; nullopt when there is none yet.
  virtual std::optional<CommitRecord> LatestCommit() const = 0;
  virtual const RecoveryPolicy& policy() const = 0;
  // Bit c: a vCPU thread runs or last ran on CPU c (0..31), as of the monitor's last round; 0
  // when unknown. For L0's own service threads (base/cpu_avoidance.h).
  virtual uint32_t VcpuCpus() const { return 0; }
  // Verified execution: see VerifiedSupervisor::QueueWorkAvailable. Elsewhere true.
  virtual bool QueueWorkAvailable(bool wait_for_item) { return true; }
  virtual VerificationStatus verification() const { return {}; }
  // Changes verified execution on the running VM (QMP). Between dual and triple only: the
  // replica count follows from the next work item on (a recruit joins at the agreed state; an
  // extra member is fenced once it has agreed). Without verified execution the active L1 serves
  // the devices through ioeventfds and irqfds, so none <-> dual/triple needs a restart:
  // FailedPrecondition.
  virtual absl::Status SetVerifyMode(VerifyMode mode) {
    if (mode == VerifyMode::kNone) return absl::OkStatus();  // nothing to change
    return absl::FailedPreconditionError(
        "verified execution cannot start on a running VM (without it the active L1 serves the "
        "devices through ioeventfds); restart with --verify dual or triple");
  }

  // Another part of L0 (the network pump) found output of the active L1 impossible (a ring
  // position it published): fails that L1 over as for a bad answer. Supervisor only; no-op for
  // verified execution, whose replicas publish nothing.
  virtual void ReportActiveFailure(const std::string& /*cause*/) {}

  // Lets the guest continue after recovery stopped (an operator's `cont`).
  virtual absl::Status ResumeAfterLimit() = 0;
  // Wakes blocked Execute calls (Cancelled) and fences every L1. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_L1_SUPERVISOR_H_
