// recovery/supervisor_control.cc: the Supervisor's operator-facing side: planned switchover,
// fault injection, resuming after the failover limit, and the queries (L1s, counters).
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "recovery/l1_fault_names.h"
#include "recovery/supervisor.h"

namespace rehome {

void Supervisor::ReplaceStandbys() {
  std::deque<L1Ptr> old;
  {
    absl::MutexLock lock(&mu_);
    old.swap(standbys_);
    cv_.SignalAll();
  }
  for (const L1Ptr& l1 : old) l1->Fence();
}

absl::StatusOr<FailoverReport> Supervisor::Switchover(std::optional<std::string> binary,
                                                      std::optional<std::string> standby_binary) {
  if (binary.has_value()) {
    // Replace every standby with one running the new binary, then switch to it.
    {
      absl::MutexLock lock(&mu_);
      config_.standby_binary = *binary;
    }
    ReplaceStandbys();
  }
  absl::MutexLock failover(&failover_mu_);
  const absl::Time start = absl::Now();
  L1Ptr retiring, next;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !standbys_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), config_.start_timeout) || stopping_) {
      return absl::FailedPreconditionError("switchover: no standby L1 is ready");
    }
    if (active_ == nullptr || limit_reached_) {
      return absl::FailedPreconditionError("switchover: no active L1");
    }
    ++quiesce_;  // new exits wait; exits in flight finish on the old active
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&drained), config_.start_timeout)) {
      --quiesce_;
      cv_.SignalAll();
      return absl::DeadlineExceededError("switchover: exits in flight did not finish");
    }
    retiring = std::move(active_);
    next = std::move(standbys_.front());
    standbys_.pop_front();
    generation = generation_;
  }
  FailoverReport report;
  report.cause = binary.has_value() ? absl::StrCat("switchover to ", *binary) : "switchover";
  report.failed_pid = retiring->pid();
  retiring->channel().header().quit_request.store(1, std::memory_order_release);
  retiring->channel().SignalRequest();
  retiring->Fence();
  report.detected = start;
  report.fence = absl::Now() - start;
  absl::Status promoted = PromoteLocked(std::move(next), generation + 1, &report);
  report.total = absl::Now() - start;
  absl::MutexLock lock(&mu_);
  --quiesce_;
  if (!promoted.ok()) {
    limit_reached_ = true;
    stop_reason_ = absl::StrCat("switchover failed: ", promoted.message());
  } else {
    report.number = ++failovers_;
    last_report_ = report;
  }
  cv_.SignalAll();
  const std::string cause = report.cause;
  mu_.Unlock();  // events go out without the lock (listeners may query us)
  Emit({SupervisorEvent::Kind::kFailoverStarted, "active", cause, report.failed_pid, std::nullopt});
  if (!promoted.ok()) {
    Emit({SupervisorEvent::Kind::kFailoverFailed, "active", std::string(promoted.message()), -1,
          std::nullopt});
  } else {
    Emit({SupervisorEvent::Kind::kFailoverCompleted, "active", cause, report.promoted_pid, report});
  }
  if (promoted.ok() && standby_binary.has_value()) {
    // The new active runs `binary`; the standbys that follow it run `standby_binary`.
    {
      absl::MutexLock relock(&mu_);
      config_.standby_binary = *standby_binary;
    }
    ReplaceStandbys();
  }
  mu_.Lock();  // re-taken for the MutexLock's destructor
  if (!promoted.ok()) return promoted;
  return report;
}

absl::Status Supervisor::InjectFault(std::string_view target, std::string_view kind,
                                     uint32_t after_exits) {
  L1Ptr l1;
  {
    absl::MutexLock lock(&mu_);
    if (target == "active") {
      l1 = active_;
    } else if (target == "standby") {
      if (!standbys_.empty()) l1 = standbys_.front();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown fault target '", std::string(target), "' (active, standby)"));
    }
  }
  // The test-only kinds (sandbox probes, adversarial L1s: vmm/l1/l1_fault_probes.h) are named
  // here only: QMP's __org.rehome_inject-fault accepts the public kinds alone.
  ASSIGN_OR_RETURN(const std::optional<L1Fault> fault, L1FaultNamed(kind));
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

absl::Status Supervisor::ResumeAfterLimit() {
  absl::MutexLock failover(&failover_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!limit_reached_) return absl::OkStatus();
    if (active_ != nullptr) {
      limit_reached_ = false;
      cv_.SignalAll();
      return absl::OkStatus();
    }
  }
  FailoverReport report;
  report.cause = "resume after failover limit";
  uint64_t generation;
  L1Ptr next;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_;
    if (!standbys_.empty()) {
      next = std::move(standbys_.front());
      standbys_.pop_front();
    }
  }
  RETURN_IF_ERROR(PromoteLocked(std::move(next), generation + 1, &report));
  absl::MutexLock lock(&mu_);
  window_.clear();
  limit_reached_ = false;
  stop_reason_.clear();
  cv_.SignalAll();
  return absl::OkStatus();
}

std::vector<L1Info> Supervisor::L1s() const {
  absl::MutexLock lock(&mu_);
  std::vector<L1Info> out;
  const absl::Time now = absl::Now();
  if (active_) out.push_back({"active", active_->pid(), active_->id(), now - active_->started()});
  for (const L1Ptr& s : standbys_)
    out.push_back({"standby", s->pid(), s->id(), now - s->started()});
  if (starting_) {
    out.push_back({"starting", starting_->pid(), starting_->id(), now - starting_->started()});
  }
  return out;
}

uint64_t Supervisor::failover_count() const {
  absl::MutexLock lock(&mu_);
  return failovers_;
}

std::optional<FailoverReport> Supervisor::last_failover() const {
  absl::MutexLock lock(&mu_);
  return last_report_;
}

bool Supervisor::limit_reached() const {
  absl::MutexLock lock(&mu_);
  return limit_reached_;
}

uint64_t Supervisor::exits_retried() const {
  absl::MutexLock lock(&mu_);
  return retried_;
}

uint64_t Supervisor::exits_posted() const {
  absl::MutexLock lock(&mu_);
  return posted_count_;
}

uint64_t Supervisor::exits_answered_from_journal() const {
  absl::MutexLock lock(&mu_);
  return from_journal_;
}

}  // namespace rehome
