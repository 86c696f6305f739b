// recovery/verified_watch.cc: VerifiedSupervisor's watchers (crashes, hangs and livelocks of
// idle replicas and standbys; the standby keeper), fencing and stopping, fault injection and the
// queries.
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/periodic_tick.h"
#include "base/scoped_realtime.h"
#include "base/status_macros.h"
#include "recovery/heartbeat_watch.h"
#include "recovery/l1_fault_names.h"
#include "recovery/livelock_watch.h"
#include "recovery/proc_stats.h"
#include "recovery/verified_supervisor.h"

namespace rehome {

std::string VerifiedSupervisor::ExitCause(const L1Process& l1) {
  const std::string note = l1.reported_failure();
  return note.empty() ? absl::StrCat("crash: L1 pid ", l1.pid(), " exited")
                      : absl::StrCat("self-reported failure: ", note);
}

void VerifiedSupervisor::Emit(const SupervisorEvent& event) const {
  if (config_.on_event) config_.on_event(event);
}

void VerifiedSupervisor::Fence(const Replica& r, const std::string& role, const std::string& cause,
                               absl::Time detected) {
  {
    absl::MutexLock lock(&mu_);
    // Never a member again, even if an item that ran meanwhile kept it (it agreed, then died).
    std::erase_if(members_, [&](const Replica& m) { return m.l1 == r.l1; });
    // The monitor and an item may both see the same failure (or the monitor the death of a
    // replica this fences): count and report it once, under the first cause.
    if (!fenced_ids_.insert(r.l1->id()).second) return;
    if (fenced_ids_.size() > 64) fenced_ids_.erase(fenced_ids_.begin());
    retired_.push_back(Replica{nullptr, r.journal, nullptr});
    if (retired_.size() > kRetiredJournals) retired_.pop_front();
  }
  r.l1->Fence();
  FailoverReport report;
  report.cause = cause;
  report.failed_pid = r.l1->pid();
  report.detected = detected;
  report.fence = absl::Now() - detected;
  report.total = report.fence;
  {
    absl::MutexLock lock(&mu_);
    report.number = ++failovers_;
    last_report_ = report;
    std::erase_if(members_, [&](const Replica& m) { return m.l1 == r.l1; });
  }
  Emit({SupervisorEvent::Kind::kL1Failed, role, cause, r.l1->pid(), std::nullopt, std::nullopt});
  // The replacement is recruited by the item that needs it (it executes that item, or joins at
  // the next): the failover of a replica is complete once it is fenced.
  Emit({SupervisorEvent::Kind::kFailoverCompleted, role, cause, -1, report, std::nullopt});
}

void VerifiedSupervisor::FenceLater(const Replica& r, const std::string& role,
                                    const std::string& cause, absl::Time detected) {
  r.l1->Signal(SIGKILL);
  absl::MutexLock lock(&mu_);
  std::erase_if(members_, [&](const Replica& m) { return m.l1 == r.l1; });
  pending_fences_.push_back(PendingFence{r, role, cause, detected});
}

void VerifiedSupervisor::FinishPendingFences(bool all) {
  std::vector<PendingFence> done;
  {
    absl::MutexLock lock(&mu_);
    auto dead = std::stable_partition(
        pending_fences_.begin(), pending_fences_.end(),
        [all](const PendingFence& f) { return !all && !f.replica.l1->Exited(); });
    done.assign(std::make_move_iterator(dead), std::make_move_iterator(pending_fences_.end()));
    pending_fences_.erase(dead, pending_fences_.end());
  }
  for (const PendingFence& f : done) {
    if (f.cause.empty()) {
      f.replica.l1->Fence();
    } else {
      Fence(f.replica, f.role, f.cause, f.detected);
    }
  }
}

void VerifiedSupervisor::Stop(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_reason_ = reason;
    cv_.SignalAll();
  }
  Emit({SupervisorEvent::Kind::kFailoverFailed, "replica", reason, -1, std::nullopt, std::nullopt});
}

void VerifiedSupervisor::MonitorLoop() {
  const ScopedRealtime realtime;  // a crash must be fenced at once, not after vCPU time slices
  struct Watch {
    HeartbeatWatch beat;
    LivelockWatch busy;
  };
  std::map<uint64_t, Watch> watches;          // by L1 id
  absl::Time checked = absl::InfinitePast();  // when the last round of checks ran
  const absl::Duration hang = absl::Milliseconds(config_.policy.hang_timeout_ms);
  const absl::Duration period = absl::Milliseconds(config_.policy.heartbeat_period_ms);
  for (;;) {
    std::vector<Replica> members;
    std::vector<Replica> standbys;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      // A fenced replica's pidfd stays readable: polling it would spin this real-time thread.
      for (const Replica& r : members_) {
        if (fenced_ids_.count(r.l1->id()) == 0) members.push_back(r);
      }
      standbys.assign(standbys_.begin(), standbys_.end());
    }
    std::vector<pollfd> fds;
    auto watch_death = [&fds](L1Process& l1) {
      fds.push_back({l1.pidfd(), POLLIN, 0});
      fds.push_back({l1.death_fd(), POLLIN, 0});  // before the teardown
    };
    for (const Replica& r : members) watch_death(*r.l1);
    for (const Replica& r : standbys) watch_death(*r.l1);
    {
      absl::MutexLock lock(&mu_);
      for (const PendingFence& f : pending_fences_) watch_death(*f.replica.l1);
    }
    // On the grid of the L1s' heartbeats, or when a heartbeat will have been silent too long.
    const absl::Time before = absl::Now();
    absl::Time due = absl::InfiniteFuture();
    for (const auto& [id, w] : watches) {
      // (A little past it: ppoll may return early.)
      // (From the first threshold the last round has not passed; a little past it: ppoll may
      // return early.)
      due =
          std::min(due, w.beat.NextDeadline(checked, {hang, 20 * hang}) + absl::Microseconds(200));
    }
    const timespec tick =
        NoLaterThan(TimeToNextTick(absl::ToInt64Nanoseconds(period)), due, before);
    ppoll(fds.data(), fds.size(), &tick, nullptr);
    FinishPendingFences(/*all=*/false);
    const absl::Time now = absl::Now();
    const int64_t now_mono_ns = MonotonicNowNs();
    checked = now;
    // Where the vCPU threads run (ExitChannelHeader::vcpu_cpus): a replica that served an item
    // no vCPU waits for (a queue notification L0 took on an ioeventfd, console or network input)
    // keeps off those CPUs, where the guest runs on meanwhile.
    const uint32_t vcpu_cpus = vcpu_threads_.CpuMask();
    vcpu_cpus_.store(vcpu_cpus, std::memory_order_relaxed);  // for L0's notification pump too
    for (const Replica& r : members) {
      std::atomic<uint32_t>& hint = r.l1->channel().header().vcpu_cpus;
      if (hint.load(std::memory_order_relaxed) != vcpu_cpus) {
        hint.store(vcpu_cpus, std::memory_order_relaxed);
      }
    }
    auto check = [&](const Replica& r) -> std::string {
      if (r.l1->Exited()) {
        return ExitCause(*r.l1);
      }
      auto [it, added] =
          watches.try_emplace(r.l1->id(), Watch{HeartbeatWatch(), LivelockWatch(4 * hang)});
      Watch& w = it->second;
      w.beat.Sample(now, now_mono_ns, r.l1->heartbeat(), r.l1->heartbeat_ns());
      if (const absl::Duration silent = w.beat.Silence(now); silent >= hang) {
        const std::optional<char> state = ProcessState(r.l1->pid());
        const bool stopped =
            !state.has_value() || *state == 'T' || *state == 't' || *state == 'Z' || *state == 'X';
        if (stopped || silent > 20 * hang) {
          return absl::StrCat("hang: no heartbeat from L1 pid ", r.l1->pid(), " for ",
                              absl::ToInt64Milliseconds(silent), " ms");
        }
      }
      if (const std::optional<uint64_t> runtime = MainThreadRuntimeNs(r.l1->pid())) {
        const uint64_t marker = r.l1->work_progress() + r.journal->commits();
        if (std::optional<absl::Duration> stuck = w.busy.Sample(now, *runtime, marker)) {
          return absl::StrCat("hang: L1 pid ", r.l1->pid(), " busy for ",
                              absl::ToInt64Milliseconds(*stuck),
                              " ms without committing or progress (livelock)");
        }
      }
      return "";
    };
    for (const Replica& r : members) {
      // An item in flight detects its replicas' failures itself; this catches idle ones.
      if (std::string cause = check(r); !cause.empty()) Fence(r, "replica", cause, now);
    }
    for (const Replica& r : standbys) {
      std::string cause = check(r);
      if (cause.empty()) continue;
      {
        absl::MutexLock lock(&mu_);
        std::erase_if(standbys_, [&](const Replica& s) { return s.l1 == r.l1; });
        cv_.SignalAll();
      }
      r.l1->Fence();
      Emit({SupervisorEvent::Kind::kL1Failed, "standby", cause, r.l1->pid(), std::nullopt,
            std::nullopt});
    }
    for (auto it = watches.begin(); it != watches.end();) {
      bool live = false;
      for (const Replica& r : members) live = live || r.l1->id() == it->first;
      for (const Replica& r : standbys) live = live || r.l1->id() == it->first;
      it = live ? std::next(it) : watches.erase(it);
    }
  }
}

void VerifiedSupervisor::StandbyLoop() {
  const size_t wanted = static_cast<size_t>(config_.policy.standbys);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && (stopped_ || standbys_.size() >= wanted)) cv_.Wait(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<Replica> r = Spawn(/*first=*/false);
    if (!r.ok()) {
      Emit({SupervisorEvent::Kind::kL1Failed, "standby", std::string(r.status().message()), -1,
            std::nullopt, std::nullopt});
      absl::MutexLock lock(&mu_);
      const absl::Time until = absl::Now() + absl::Milliseconds(200);
      while (!stopping_ && !cv_.WaitWithDeadline(&mu_, until)) {
      }
      continue;
    }
    const pid_t pid = r->l1->pid();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        r->l1->Fence();
        return;
      }
      standbys_.push_back(std::move(*r));
      cv_.SignalAll();
    }
    Emit({SupervisorEvent::Kind::kStandbyReady, "standby", "", pid, std::nullopt, std::nullopt});
  }
}

absl::Status VerifiedSupervisor::SettlePosted(uint32_t, ExitResponse*, bool* settled, bool) {
  *settled = false;  // nothing is ever posted here
  return absl::OkStatus();
}

absl::StatusOr<FailoverReport> VerifiedSupervisor::Switchover(std::optional<std::string>,
                                                              std::optional<std::string>) {
  return absl::UnimplementedError(
      "planned switchover is not available with verified execution (every replica is active)");
}

absl::Status VerifiedSupervisor::InjectFault(std::string_view target, std::string_view kind,
                                             uint32_t after_exits) {
  ASSIGN_OR_RETURN(const std::optional<L1Fault> fault, L1FaultNamed(kind));
  std::shared_ptr<L1Process> l1;
  {
    absl::MutexLock lock(&mu_);
    size_t index = 0;
    if (target == "active") {
      index = 0;
    } else if (target.rfind("replica-", 0) == 0 &&
               absl::SimpleAtoi(absl::string_view(target.data() + 8, target.size() - 8), &index)) {
    } else if (target == "standby") {
      if (!standbys_.empty()) l1 = standbys_.front().l1;
      index = SIZE_MAX;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown fault target '", std::string(target),
                                                     "' (active, replica-N, standby)"));
    }
    if (index != SIZE_MAX && index < members_.size()) l1 = members_[index].l1;
  }
  if (l1 == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", std::string(target), " L1 to inject into"));
  }
  if (kind == "kill") {
    l1->Signal(SIGKILL);
  } else if (kind == "hang") {
    l1->Signal(SIGSTOP);
  } else {
    l1->RequestFault(*fault, after_exits);
  }
  return absl::OkStatus();
}

std::vector<L1Info> VerifiedSupervisor::L1s() const {
  absl::MutexLock lock(&mu_);
  std::vector<L1Info> out;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < members_.size(); ++i) {
    const L1Process& l1 = *members_[i].l1;
    out.push_back({i == 0 ? "active" : "replica", l1.pid(), l1.id(), now - l1.started()});
  }
  for (const Replica& r : standbys_) {
    out.push_back({"standby", r.l1->pid(), r.l1->id(), now - r.l1->started()});
  }
  return out;
}

uint64_t VerifiedSupervisor::failover_count() const {
  absl::MutexLock lock(&mu_);
  return failovers_;
}

std::optional<FailoverReport> VerifiedSupervisor::last_failover() const {
  absl::MutexLock lock(&mu_);
  return last_report_;
}

bool VerifiedSupervisor::limit_reached() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

uint64_t VerifiedSupervisor::exits_retried() const {
  absl::MutexLock lock(&mu_);
  return retried_;
}

VerificationStatus VerifiedSupervisor::verification() const {
  absl::MutexLock lock(&mu_);
  return {mode_.load(), items_, divergences_, last_divergence_};
}

absl::Status VerifiedSupervisor::SetVerifyMode(VerifyMode mode) {
  if (mode == VerifyMode::kNone) {
    return absl::FailedPreconditionError(
        "verify none cannot take over a running verified VM (its replicas hold no ioeventfds or "
        "irqfds to serve the devices with); restart with --verify none");
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::CancelledError("shutting down");
  // Applied from the next item on (Execute recruits up to the count; RunItem keeps at most it).
  mode_.store(mode);
  return absl::OkStatus();
}

std::optional<CommitRecord> VerifiedSupervisor::LatestCommit() const {
  std::shared_ptr<DeviceJournal> journal;
  std::optional<uint32_t> agreed;
  {
    absl::MutexLock lock(&mu_);
    if (members_.empty() || !agreed_crc_.has_value()) return std::nullopt;
    journal = members_.front().journal;
    agreed = agreed_crc_;
  }
  // The agreed record (not a candidate an item in flight has committed).
  std::optional<std::string> payload = journal->FindPayload(*agreed);
  if (!payload.has_value()) return std::nullopt;
  absl::StatusOr<CommitRecord> record = DecodeCommitRecord(*payload);
  if (!record.ok()) return std::nullopt;
  return std::move(*record);
}

absl::Status VerifiedSupervisor::ResumeAfterLimit() {
  absl::MutexLock lock(&mu_);
  stopped_ = false;
  stop_reason_.clear();
  cv_.SignalAll();  // the next item recruits the replicas it lacks
  return absl::OkStatus();
}

void VerifiedSupervisor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.SignalAll();
  }
  if (monitor_.joinable()) monitor_.join();
  if (standby_keeper_.joinable()) standby_keeper_.join();
  FinishPendingFences(/*all=*/true);
  std::vector<Replica> all;
  {
    absl::MutexLock lock(&mu_);
    all = members_;
    all.insert(all.end(), standbys_.begin(), standbys_.end());
  }
  for (const Replica& r : all) r.l1->Fence();
}

}  // namespace rehome
