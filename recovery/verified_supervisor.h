// recovery/verified_supervisor.h: verified execution (docs/failover.md, "Verified execution").
// Two (dual) or three (triple) replica L1s execute every work item — each vCPU exit, each virtio
// queue notification (L0's notification pump, SplitBackend::StartNotificationPump) and each
// console or network input — from the same agreed state, one item at a time. A replica changes
// nothing outside itself: its answer, its effects (guest RAM, disk, interrupt and console writes,
// captured by vmm/l1/effect_capture.h) and the CRC of the state it committed to its own journal
// come back to L0, which compares them (replica_vote.h) and only then applies one copy of the
// effects (effects_apply.h) and answers the vCPU. Nothing unverified leaves.
//   - Agreement: at least two identical results (dual: both; triple: a majority). A replica whose
//     valid result was outvoted is fenced and replaced (a divergence); the guest never stops.
//   - Dual divergence: a third opinion, a standby restored to the state agreed before the item,
//     executes it too; the majority wins. No majority: recovery stops, the guest stays paused
//     (as at the failover limit) with nothing applied.
//   - A replica that crashes, hangs or answers garbage is fenced and replaced by a standby
//     restored to the agreed state, which executes the item; the survivors' results stand.
//   - The agreed state lives in the replicas' own journals; L0 finds it by the CRC the majority
//     reported, recomputing it itself (DeviceJournal::FindPayload), and writes it into a
//     standby's journal before promoting it.
// Thread-safety: all public methods are thread-safe; items are serialised (one at a time).
#ifndef REHOME_RECOVERY_VERIFIED_SUPERVISOR_H_
#define REHOME_RECOVERY_VERIFIED_SUPERVISOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "kvm-l0/effects_area.h"
#include "recovery/l1_process.h"
#include "recovery/l1_supervisor.h"
#include "recovery/replica_vote.h"
#include "recovery/vcpu_threads.h"
#include "state-extract/device_journal.h"

namespace rehome {

class VerifiedSupervisor final : public L1Supervisor {
 public:
  // `config.policy.verify` is dual or triple; agreed effects go to `sink` (`disk_bytes`: the
  // image's size). `next_seq` hands out exit sequence numbers (follow-up items).
  static absl::StatusOr<std::unique_ptr<VerifiedSupervisor>> Start(
      SupervisorConfig config, VerifiedEffectsSink sink, uint64_t disk_bytes,
      std::function<uint64_t()> next_seq);
  ~VerifiedSupervisor() override;
  VerifiedSupervisor(const VerifiedSupervisor&) = delete;
  VerifiedSupervisor& operator=(const VerifiedSupervisor&) = delete;

  absl::Status Execute(const ExitRequest& request, ExitResponse* response,
                       bool* posted = nullptr) override;
  absl::Status SettlePosted(uint32_t vcpu, ExitResponse* response, bool* settled,
                            bool wait_for_l1 = true) override;
  absl::StatusOr<FailoverReport> Switchover(std::optional<std::string> binary,
                                            std::optional<std::string> standby_binary) override;
  // `target`: "active" (replica 0), "replica-N", "standby"; kinds as Supervisor's.
  absl::Status InjectFault(std::string_view target, std::string_view kind,
                           uint32_t after_exits = 0) override;

  std::vector<L1Info> L1s() const override;
  uint64_t failover_count() const override;
  std::optional<FailoverReport> last_failover() const override;
  bool limit_reached() const override;
  uint64_t exits_retried() const override;
  uint64_t exits_answered_from_journal() const override { return 0; }
  uint64_t exits_posted() const override { return 0; }
  std::optional<CommitRecord> LatestCommit() const override;
  const RecoveryPolicy& policy() const override { return config_.policy; }
  VerificationStatus verification() const override;
  absl::Status SetVerifyMode(VerifyMode mode) override;
  // Whether the guest made buffers available since the last kick item (one that processes every
  // device's queues) read the available indices (at the addresses the agreed state names: a look
  // at guest RAM), or cannot tell (no item yet,
  // a queue the last item did not read). For L0's notification pump: a notification that adds
  // nothing needs no item, and new buffers on a queue the device takes unprompted (a request or
  // transmit queue; not a receive queue) are worth an item before the guest's notification
  // arrives. With an item in flight: waits for it when `wait_for_item`, else false.
  bool QueueWorkAvailable(bool wait_for_item) override;
  uint32_t VcpuCpus() const override { return vcpu_cpus_.load(std::memory_order_relaxed); }
  absl::Status ResumeAfterLimit() override;
  void Shutdown() override;

 private:
  struct Replica {
    std::shared_ptr<L1Process> l1;
    std::shared_ptr<DeviceJournal> journal;  // its own; L0 writes it before promoting it
    std::shared_ptr<EffectsArea> effects;
  };

  VerifiedSupervisor(SupervisorConfig config, VerifiedEffectsSink sink, uint64_t disk_bytes,
                     std::function<uint64_t()> next_seq);
  absl::StatusOr<Replica> Spawn(bool first);
  // Makes a ready (standby) replica a member at the agreed state: writes the agreed record into
  // its journal and promotes it. `agreed_crc` as agreed_ (nullopt: nothing agreed yet).
  absl::Status Enroll(Replica& r, std::optional<uint32_t> agreed_crc,
                      const std::vector<Replica>& sources);
  // A standby (or a new replica) enrolled at the agreed state. Holds item_mu_.
  absl::StatusOr<Replica> Recruit(const std::vector<Replica>& sources);
  // Posts `request` to `r` and waits for its result (with crash and hang detection).
  void PostTo(const Replica& r, const ExitRequest& request);
  void Collect(const std::vector<Replica>& replicas, const std::vector<size_t>& which,
               const ExitRequest& request, std::vector<ReplicaResult>* results);
  // One item to agreement: fills `response`; FailedPrecondition when recovery had to stop.
  // Every replica executes `item` with the same available-index snapshot (StampAvailSnapshot).
  absl::Status RunItem(const ExitRequest& item, ExitResponse* response, uint32_t* flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(item_mu_);
  // Reads the guest's available indices at the agreed addresses (avail_watch_) into `request`.
  void StampAvailSnapshot(ExitRequest* request) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(item_mu_);
  void Fence(const Replica& r, const std::string& role, const std::string& cause,
             absl::Time detected);
  // Kills `r` now and leaves the rest of Fence (reaping it, the report and events) to the
  // monitor thread once it has died: a live replica takes milliseconds to die under load, which
  // the vCPU waiting for the item's answer must not wait for. Nothing it does after the kill
  // reaches the guest (L0 applies agreed effects only).
  void FenceLater(const Replica& r, const std::string& role, const std::string& cause,
                  absl::Time detected);
  struct PendingFence {
    Replica replica;
    std::string role;
    std::string cause;  // empty: an extra agreeing opinion, fenced without a report
    absl::Time detected;
  };
  // The monitor's share of FenceLater: fences the pending replicas that have died (all of them,
  // waiting, when `all`).
  void FinishPendingFences(bool all);
  void Stop(const std::string& reason);
  void MonitorLoop();
  void StandbyLoop();
  void Emit(const SupervisorEvent& event) const;
  static std::string Describe(const ExitRequest& request);
  // Why an exited L1 failed: its own report (self-reported failure) or a crash.
  static std::string ExitCause(const L1Process& l1);
  // The report of a divergence on `request`, detected now (replicas: those with valid results).
  static DivergenceReport NewDivergence(const ExitRequest& request, const Vote& vote,
                                        const std::vector<Replica>& voters,
                                        const std::vector<ReplicaResult>& results);

  SupervisorConfig config_;
  const VerifiedEffectsSink sink_;
  const uint64_t disk_bytes_;
  const std::function<uint64_t()> next_seq_;
  // dual or triple: SetVerifyMode changes it while items run; an item reads the member count it
  // makes once (RunItem), the next item follows a change.
  std::atomic<VerifyMode> mode_;
  size_t ReplicasWanted() const { return static_cast<size_t>(ReplicaCount(mode_.load())); }
  const uint64_t journal_capacity_;
  UniqueFd read_only_disk_;  // the replicas' descriptor of the disk image (launch.disk_fd)

  absl::Mutex item_mu_;  // one item at a time; before mu_
  // Where the ready virtqueues' available indices live, as the last agreed effects said
  // (EffectType::kAvailWatch; at most kMaxAvailSnapshot).
  struct AvailWatch {
    uint64_t gpa;
    bool unprompted;  // the device takes this queue's buffers unprompted (the pump watches it)
  };
  std::vector<AvailWatch> avail_watch_ ABSL_GUARDED_BY(item_mu_);
  // The indices the last kick item (ExitRequest::kDeviceKick: every device's queues) read.
  std::vector<AvailIndexSnapshot> last_snapshot_ ABSL_GUARDED_BY(item_mu_);
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<Replica> members_ ABSL_GUARDED_BY(mu_);        // in sync at the agreed state
  std::deque<Replica> standbys_ ABSL_GUARDED_BY(mu_);        // ready, not yet promoted
  std::optional<uint32_t> agreed_crc_ ABSL_GUARDED_BY(mu_);  // nullopt: nothing agreed yet
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  VcpuThreads vcpu_threads_;
  std::atomic<uint32_t> vcpu_cpus_{0};  // vcpu_threads_.CpuMask() at the monitor's last round
  std::set<uint64_t> fenced_ids_ ABSL_GUARDED_BY(mu_);  // L1s already reported failed (recent)
  // The journals of recently fenced replicas (l1 and effects null): sources of the agreed state
  // when every member failed at once.
  static constexpr size_t kRetiredJournals = 8;
  std::deque<Replica> retired_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingFence> pending_fences_ ABSL_GUARDED_BY(mu_);  // killed, not yet reaped
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool first_spawned_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // recovery stopped (the guest stays paused)
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  uint64_t failovers_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<FailoverReport> last_report_ ABSL_GUARDED_BY(mu_);
  uint64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t items_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t divergences_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<DivergenceReport> last_divergence_ ABSL_GUARDED_BY(mu_);

  std::thread monitor_;
  std::thread standby_keeper_;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_VERIFIED_SUPERVISOR_H_
