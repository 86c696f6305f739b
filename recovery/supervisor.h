// recovery/supervisor.h: L0's keeper of the L1 processes of one VM: one active, and hot standbys
// as the recovery policy asks. vCPU threads forward their exits through Execute(); the
// supervisor detects L1 failures (crash: the exit thread's death notice or the pidfd, at once;
// hang: missed heartbeats or an exit deadline; self-reported: the L1's failure note; bad answer:
// a response that fails validation) and fails over: fence the failed L1 (SIGKILL; reaped later,
// off the failover path), promote a standby (which restores the committed journal state), then
// every vCPU whose exit was in flight either takes the answer the journal committed for it or
// retries the exit on the new active. A new standby is started in the background. Too many
// failovers within the policy window stop failover: Execute then fails with FailedPrecondition
// and the guest stays paused with nothing lost.
// Posted writes (docs/exit-channel.md): a write into a range the active L1 accepts as posted is
// published and left pending for its vCPU, which runs on; SettlePosted collects the answer (the
// vCPU's next exit, or the end of the VM). A failover re-posts every pending posted exit on the
// new active before anything else reaches it; one that the failed L1 committed is answered from
// the new active's journal, so each is executed exactly once.
//
// Thread-safety: all public methods are thread-safe. Execute is called concurrently by vCPU
// threads (one in-flight exit per vCPU). The event callback runs on supervisor or vCPU threads
// with no supervisor lock held.
#ifndef REHOME_RECOVERY_SUPERVISOR_H_
#define REHOME_RECOVERY_SUPERVISOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvm-l0/exit_channel.h"
#include "recovery/l1_process.h"
#include "recovery/l1_supervisor.h"
#include "recovery/policy/recovery_policy.h"
#include "recovery/vcpu_threads.h"
#include "state-extract/device_journal.h"
#include "vmm/l1/commit_record.h"

namespace rehome {

class Supervisor final : public L1Supervisor {
 public:
  // Creates the journal, starts the first L1, promotes it and starts the background threads.
  static absl::StatusOr<std::unique_ptr<Supervisor>> Start(SupervisorConfig config);
  ~Supervisor() override;  // Shutdown()
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Forwards `request` (seq, vcpu and payload filled in) to the active L1 and returns its
  // validated answer, failing over as often as needed. FailedPrecondition once the failover
  // limit is reached; Cancelled after Shutdown().
  // With `posted` non-null, a write that the active L1 accepts as posted is posted instead:
  // Execute returns once the request is published, with *posted = true and `response` untouched,
  // and the exit stays pending for its vCPU (a failover re-posts it on the next active, ahead of
  // any retried exit) until SettlePosted collects its answer. `request` must then stay valid
  // and unchanged until that answer is collected. A vCPU settles its pending posted exit before
  // its next Execute (FailedPrecondition otherwise).
  absl::Status Execute(const ExitRequest& request, ExitResponse* response,
                       bool* posted = nullptr) override;
  // Collects the answer to `vcpu`'s pending posted exit into `response` (*settled = true), failing
  // over as often as needed; OK with *settled = false when none is pending. Errors as Execute.
  // With `wait_for_l1` false it does not wait for a new active L1 (a failover in progress, or
  // the guest paused at the failover limit): Unavailable then.
  absl::Status SettlePosted(uint32_t vcpu, ExitResponse* response, bool* settled,
                            bool wait_for_l1 = true) override;

  // Planned switchover: quiesce, retire the active, promote the standby. With `binary`, first
  // replaces the standby with one running that binary (L1 upgrade under a running guest).
  // With `standby_binary`, every standby started after the switchover runs that binary (default:
  // `binary`, or the current standby binary).
  absl::StatusOr<FailoverReport> Switchover(
      std::optional<std::string> binary = std::nullopt,
      std::optional<std::string> standby_binary = std::nullopt);

  // Fault injection: `target` "active" or "standby"; `kind` "kill", "hang", "garbage",
  // "assert", "die-before-commit", "die-after-commit", "fail-answer" (the next exit is answered
  // with a check failure: the VM stops, no failover), and the tests' kinds "try-*" (the L1 tries
  // what its sandbox must stop) and "scribble-*" (the L1 writes hostile values into shared
  // memory L0 reads): vmm/l1/l1_fault_probes.h. InvalidArgument for unknown names,
  // FailedPrecondition when the target does not exist.
  absl::Status InjectFault(std::string_view target, std::string_view kind,
                           uint32_t after_exits = 0) override;

  // Another part of L0 (the network device's pump) found output of the active L1 impossible,
  // e.g. a ring position it published: fails that L1 over with cause "bad answer: <cause>", as
  // for an invalid exit answer. No-op when there is no active L1 or recovery has stopped.
  void ReportActiveFailure(const std::string& cause) override;

  std::vector<L1Info> L1s() const override;
  uint64_t failover_count() const override;
  std::optional<FailoverReport> last_failover() const override;
  bool limit_reached() const override;
  uint64_t exits_retried() const override;
  uint64_t exits_answered_from_journal() const override;
  uint64_t exits_posted() const override;
  const DeviceJournal& journal() const { return journal_; }
  // The last commit in the journal, read again while a concurrent commit tears the read (up to
  // 100 times); nullopt when nothing is committed yet or every read was torn.
  std::optional<CommitRecord> LatestCommit() const override;
  const RecoveryPolicy& policy() const override { return config_.policy; }
  uint32_t VcpuCpus() const override { return vcpu_cpus_.load(std::memory_order_relaxed); }

  // Lets the guest continue after the failover limit stopped it (an operator's `cont`):
  // clears the window and starts a new active.
  absl::Status ResumeAfterLimit() override;
  // Wakes blocked Execute calls (Cancelled) and fences every L1. Idempotent.
  void Shutdown() override;

 private:
  Supervisor(SupervisorConfig config, DeviceJournal journal);
  using L1Ptr = std::shared_ptr<L1Process>;

  // Starts an L1 and waits until it is ready: the first one runs launch.binary, later ones the
  // standby binary.
  absl::StatusOr<L1Ptr> SpawnReady(bool first = false);
  // Fences every ready standby (the keeper starts new ones with the current standby binary).
  void ReplaceStandbys();
  // Replaces the failed active `generation`; no-op when that generation is already replaced.
  void OnActiveFailure(uint64_t generation, const std::string& cause, absl::Time detected);
  // Promotes `next` (or a fresh L1) to `generation`; fills `report`. Holds failover_mu_.
  absl::Status PromoteLocked(L1Ptr next, uint64_t generation, FailoverReport* report)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(failover_mu_);
  std::optional<ExitResponse> CommittedAnswer(uint32_t vcpu, uint64_t seq) const;
  // Waits for `l1`'s answer to `request` (just published in its slot), with the exit deadline
  // and crash detection. "" when a valid answer is in *response, else the failure's cause.
  std::string AwaitAnswer(L1Process& l1, const ExitRequest& request, ExitResponse* response);
  // Publishes every pending posted exit on `next` (the new active, before anything else reaches
  // it), in exit order. Answers that the failed L1 committed come back from `next`'s journal.
  void RepostPendingLocked(const L1Ptr& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MonitorLoop();
  void StandbyLoop();
  // Waits on the active L1's death notice (base/death_notice.h): the kernel marks it as the
  // L1's exit thread dies, before it tears the process down (milliseconds before the pidfd
  // says so), and this thread fails over at once.
  void DeathNoticeLoop();
  // Keeps a fenced L1 until the monitor reaps it: its teardown may take milliseconds, which the
  // thread that fenced it (a vCPU's, on its way to retry an exit) must not wait for.
  void Bury(L1Ptr l1);
  void Emit(const SupervisorEvent& event) const;

  SupervisorConfig config_;
  DeviceJournal journal_;
  VcpuThreads vcpu_threads_;
  std::atomic<uint32_t> vcpu_cpus_{0};  // vcpu_threads_.CpuMask() at the monitor's last round

  absl::Mutex failover_mu_;  // serialises failover, switchover and fault injection; before mu_
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  L1Ptr active_ ABSL_GUARDED_BY(mu_);
  std::deque<L1Ptr> standbys_ ABSL_GUARDED_BY(mu_);  // ready, oldest first
  L1Ptr starting_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_l1_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t failovers_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<FailoverReport> last_report_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Time> window_ ABSL_GUARDED_BY(mu_);
  bool limit_reached_ ABSL_GUARDED_BY(mu_) = false;
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);  // why failover stopped (limit, policy none)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int quiesce_ ABSL_GUARDED_BY(mu_) = 0;    // >0: new exits wait (switchover)
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // exits posted to the active, not yet resolved
  uint64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t from_journal_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t posted_count_ ABSL_GUARDED_BY(mu_) = 0;
  // Posted writes, one per vCPU at most (sized at Start), pending while `l1` is set.
  struct PostedExit {
    L1Ptr l1;                              // where it was (last) posted
    const ExitRequest* request = nullptr;  // the caller's; Execute's contract keeps it unchanged
  };
  std::vector<PostedExit> posted_ ABSL_GUARDED_BY(mu_);
  std::vector<PostedRange> posted_ranges_ ABSL_GUARDED_BY(mu_);  // the active L1's, validated
  std::vector<L1Ptr> graveyard_ ABSL_GUARDED_BY(mu_);            // fenced, not reaped yet (Bury)
  L1Ptr death_watched_ ABSL_GUARDED_BY(mu_);  // whose notice DeathNoticeLoop waits on

  std::thread monitor_;
  std::thread standby_keeper_;
  std::thread death_watch_;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_SUPERVISOR_H_
