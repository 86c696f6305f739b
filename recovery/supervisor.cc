// recovery/supervisor.cc: Supervisor.
#include "recovery/supervisor.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/death_notice.h"
#include "base/periodic_tick.h"
#include "base/scoped_realtime.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "recovery/exit_forwarding.h"
#include "recovery/proc_stats.h"
#include "vmm/l1/commit_record.h"

namespace rehome {
namespace {

// Journal capacity: device state (oracle chains dominate: ~4.2 KiB per vCPU) plus one committed
// answer per vCPU (at most ~8.5 KiB each), with room to spare.
uint64_t JournalCapacity(int cpus) {
  return (1u << 20) + static_cast<uint64_t>(cpus) * (32u << 10);
}

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.3f ms", absl::ToDoubleMilliseconds(d));
}

}  // namespace

std::string FailoverReport::ToString() const {
  if (promoted_pid < 0 && !standby_was_ready && promote == absl::ZeroDuration()) {
    // Verified execution: a failed replica is fenced; the item that needs a replacement
    // recruits it (the others' results stand meanwhile).
    return absl::StrCat("failover #", number, " (", cause, "): replica L1 pid ", failed_pid,
                        " fenced in ", Ms(fence), "; a replacement joins at the next item");
  }
  return absl::StrCat("failover #", number, " (", cause, "): L1 pid ", failed_pid, " -> pid ",
                      promoted_pid, standby_was_ready ? " (hot standby)" : " (cold start)", " in ",
                      Ms(total), " [fence ", Ms(fence), ", promote ", Ms(promote), "]");
}

Supervisor::Supervisor(SupervisorConfig config, DeviceJournal journal)
    : config_(std::move(config)), journal_(std::move(journal)) {}

absl::StatusOr<std::unique_ptr<Supervisor>> Supervisor::Start(SupervisorConfig config) {
  RETURN_IF_ERROR(config.policy.Validate());
  ASSIGN_OR_RETURN(DeviceJournal journal,
                   DeviceJournal::Create(JournalCapacity(config.launch.cpus)));
  std::unique_ptr<Supervisor> s(new Supervisor(std::move(config), std::move(journal)));
  s->config_.launch.journal_fd = s->journal_.memfd();
  s->config_.launch.heartbeat_ms = static_cast<uint32_t>(s->config_.policy.heartbeat_period_ms);
  s->config_.launch.sandbox = s->config_.policy.l1_sandbox;
  const size_t cpus = static_cast<size_t>(std::max(s->config_.launch.cpus, 0));
  ASSIGN_OR_RETURN(L1Ptr first, s->SpawnReady(/*first=*/true));
  RETURN_IF_ERROR(first->Promote(1, s->config_.start_timeout));
  {
    absl::MutexLock lock(&s->mu_);
    s->posted_.resize(cpus);
    if (s->config_.post_writes) s->posted_ranges_ = ReadPostedRanges(first->channel().header());
    s->active_ = std::move(first);
    s->generation_ = 1;
  }
  s->monitor_ = std::thread([raw = s.get()] { raw->MonitorLoop(); });
  s->standby_keeper_ = std::thread([raw = s.get()] { raw->StandbyLoop(); });
  s->death_watch_ = std::thread([raw = s.get()] { raw->DeathNoticeLoop(); });
  return s;
}

Supervisor::~Supervisor() { Shutdown(); }

void Supervisor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.SignalAll();
    if (death_watched_ != nullptr) WakeDeathNoticeWaiters(death_watched_->death_notice());
  }
  if (monitor_.joinable()) monitor_.join();
  if (standby_keeper_.joinable()) standby_keeper_.join();
  if (death_watch_.joinable()) death_watch_.join();
  std::vector<L1Ptr> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(graveyard_);
    if (active_) all.push_back(active_);
    if (starting_) all.push_back(starting_);
    for (const L1Ptr& s : standbys_) all.push_back(s);
  }
  for (const L1Ptr& l1 : all) l1->Fence();
}

void Supervisor::Emit(const SupervisorEvent& event) const {
  if (config_.on_event) config_.on_event(event);
}

absl::StatusOr<Supervisor::L1Ptr> Supervisor::SpawnReady(bool first) {
  uint64_t id;
  L1LaunchSpec spec;
  {
    absl::MutexLock lock(&mu_);
    id = next_l1_id_++;
    spec = config_.launch;
    if (!first && !config_.standby_binary.empty()) spec.binary = config_.standby_binary;
  }
  spec.start_cpus = vcpu_threads_.CpusAwayFromVcpus();
  ASSIGN_OR_RETURN(std::unique_ptr<L1Process> spawned, L1Process::Spawn(spec, id));
  L1Ptr l1(std::move(spawned));
  {
    absl::MutexLock lock(&mu_);
    starting_ = l1;
  }
  absl::Status ready = l1->WaitReady(config_.start_timeout);
  {
    absl::MutexLock lock(&mu_);
    if (starting_ == l1) starting_ = nullptr;
  }
  if (!ready.ok()) {
    l1->Fence();
    return ready;
  }
  return l1;
}

namespace {
constexpr absl::Duration kResponseSpin = absl::Microseconds(40);

}  // namespace

absl::Status Supervisor::Execute(const ExitRequest& request, ExitResponse* response, bool* posted) {
  const uint32_t v = request.vcpu;
  if (posted != nullptr) *posted = false;
  // (Without config_.post_writes, posted_ranges_ stays empty: nothing is posted.)
  const bool vcpu_exit = request.kind == ExitRequest::kPio || request.kind == ExitRequest::kMmio;
  if (vcpu_exit) vcpu_threads_.Note(v);  // new L1s start away from the vCPU threads (SpawnReady)
  const bool may_post = posted != nullptr && request.is_write != 0 &&
                        v < static_cast<uint32_t>(config_.launch.cpus) && vcpu_exit;
  for (;;) {
    L1Ptr l1;
    uint64_t generation;
    bool post = false;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ &&
             (limit_reached_ ? config_.pause_on_limit : (active_ == nullptr || quiesce_ > 0))) {
        cv_.Wait(&mu_);
      }
      if (stopping_) return absl::CancelledError("VM is stopping");
      if (limit_reached_) return absl::FailedPreconditionError(stop_reason_);
      if (v < posted_.size() && posted_[v].l1 != nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("vCPU ", v, " has a posted exit that was not settled"));
      }
      l1 = active_;
      generation = generation_;
      post = may_post && InPostedRange(posted_ranges_, request.kind, request.addr,
                                       static_cast<uint64_t>(request.size) * request.count);
      if (post) {
        // Recorded before it is published: a failover from here on re-posts it.
        posted_[v] = PostedExit{l1, &request};
        ++posted_count_;
      } else {
        ++in_flight_;
      }
    }
    ExitChannel& channel = l1->channel();
    PostRequest(channel.slot(v), request);
    if (post) {
      // Nobody waits for a posted write's answer until the vCPU's next exit: the wake-up may
      // skip the fence (WakeL1IfSeenSleeping). If it misses an L1 just going to sleep,
      // SettlePosted wakes it properly before it waits; an active L1 also wakes every 100 ms.
      channel.WakeL1IfSeenSleeping();
      *posted = true;
      return absl::OkStatus();
    }
    channel.WakeL1IfSleeping();
    const std::string cause = AwaitAnswer(*l1, request, response);
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;  // Switchover awaits 0 with a Condition, evaluated on release
    }
    if (cause.empty()) return absl::OkStatus();
    OnActiveFailure(generation, cause, absl::Now());
    // The failed L1 may have committed this exit before dying: then its effects are in the
    // state the new active restored, and the committed answer is the answer. Else retry.
    if (std::optional<ExitResponse> committed = CommittedAnswer(v, request.seq)) {
      CopyResponse(*committed, response);
      if (ValidateResponse(request, *response).ok()) {
        absl::MutexLock lock(&mu_);
        ++from_journal_;
        return absl::OkStatus();
      }
    }
    absl::MutexLock lock(&mu_);
    ++retried_;
  }
}

absl::Status Supervisor::SettlePosted(uint32_t v, ExitResponse* response, bool* settled,
                                      bool wait_for_l1) {
  *settled = false;
  if (v >= static_cast<uint32_t>(config_.launch.cpus)) return absl::OkStatus();
  for (;;) {
    L1Ptr l1;
    uint64_t generation;
    const ExitRequest* request = nullptr;
    {
      absl::MutexLock lock(&mu_);
      PostedExit& posted = posted_[v];  // posted_ is never resized after Start
      if (posted.l1 == nullptr) return absl::OkStatus();
      request = posted.request;  // not written while pending
      // The usual case: the answer arrived long ago, from the L1 that is still active.
      if (posted.l1 == active_ && !stopping_ && !limit_reached_) {
        const ExitSlot& slot = active_->channel().slot(v);
        if (slot.response_seq.load(std::memory_order_acquire) == request->seq) {
          CopyResponse(slot.response, response);
          if (ValidateResponse(*request, *response).ok()) {
            posted = PostedExit{};
            *settled = true;
            return absl::OkStatus();
          }
        }
      }
      // While a failover is under way, the exit waits for the next active, which gets it
      // re-posted (RepostPendingLocked); at the failover limit, as an exit does (pause_on_limit).
      const auto must_wait = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !stopping_ && posted.l1 != nullptr &&
               (limit_reached_ ? config_.pause_on_limit : posted.l1 != active_);
      };
      if (must_wait()) {
        if (!wait_for_l1) return absl::UnavailableError("no active L1 to answer a posted write");
        do {
          cv_.Wait(&mu_);
        } while (must_wait());
      }
      if (posted.l1 == nullptr) return absl::OkStatus();
      if (stopping_) return absl::CancelledError("VM is stopping");
      if (limit_reached_) return absl::FailedPreconditionError(stop_reason_);
      l1 = posted_[v].l1;
      generation = generation_;
      ++in_flight_;
    }
    l1->channel().WakeL1IfSleeping();  // its wake-up at posting may have been missed
    const std::string cause = AwaitAnswer(*l1, *request, response);
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;  // Switchover awaits 0 with a Condition, evaluated on release
      if (cause.empty()) {
        // Unless a failover re-posted it meanwhile (then the next active answers it again,
        // from its journal, and that answer is the one taken).
        if (posted_[v].l1 == l1) {
          posted_[v] = PostedExit{};
          *settled = true;
          return absl::OkStatus();
        }
        continue;
      }
    }
    OnActiveFailure(generation, cause, absl::Now());
  }
}

void Supervisor::RepostPendingLocked(const L1Ptr& next) {
  std::vector<std::pair<uint64_t, uint32_t>> pending;  // (seq, vcpu)
  for (uint32_t v = 0; v < posted_.size(); ++v) {
    if (posted_[v].l1 != nullptr) pending.emplace_back(posted_[v].request->seq, v);
  }
  if (pending.empty()) return;
  std::sort(pending.begin(), pending.end());
  for (const auto& [seq, v] : pending) {
    PostRequest(next->channel().slot(v), *posted_[v].request);
    posted_[v].l1 = next;
    ++retried_;
  }
  next->channel().WakeL1IfSleeping();
}

std::string Supervisor::AwaitAnswer(L1Process& l1, const ExitRequest& request,
                                    ExitResponse* response) {
  const uint32_t v = request.vcpu;
  const absl::Duration deadline = absl::Milliseconds(config_.policy.hang_timeout_ms);
  ExitChannel& channel = l1.channel();
  ExitSlot& slot = channel.slot(v);
  // The active L1 (SCHED_FIFO, usually on another core) answers most exits within a few
  // microseconds: spin that long on the response before paying for a sleep and a wake-up.
  // Not when the L1 last ran on this thread's CPU: spinning would only delay it. Only then
  // say that this thread may sleep (the L1 signals the response eventfd only then); the loop
  // below re-checks the response after saying so.
  const auto answered = [&] {
    return slot.response_seq.load(std::memory_order_acquire) == request.seq;
  };
  // (A posted write's answer is there long before it is settled: look first.)
  const bool answered_while_spinning =
      answered() || (channel.header().l1_cpu.load(std::memory_order_relaxed) !=
                         static_cast<uint32_t>(sched_getcpu() + 1) &&
                     SpinUntil(answered, kResponseSpin));
  if (!answered_while_spinning) channel.SetL0Sleeping(v, true);
  absl::Cleanup awake = [&] {
    if (!answered_while_spinning) channel.SetL0Sleeping(v, false);
  };
  absl::Time give_up = absl::Now() + deadline;
  HangWatch watch;
  for (;;) {
    if (answered()) {
      CopyResponse(slot.response, response);
      absl::Status valid = ValidateResponse(request, *response);
      if (valid.ok()) return "";
      return absl::StrCat("bad answer: ", valid.message());
    }
    if (l1.Exited()) return l1.CrashCause();
    absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) {
      std::string why;
      if (!LooksHung(l1, config_.policy.hang_timeout_ms, &watch, &why)) {
        give_up = absl::Now() + deadline;  // starved by the host, not hung: wait another period
        continue;
      }
      return absl::StrCat("hang: no answer to exit ", request.seq, " within ",
                          config_.policy.hang_timeout_ms * (watch.extensions + 1), " ms (", why,
                          ")");
    }
    pollfd fds[2] = {{channel.response_eventfd(v), POLLIN, 0}, {l1.pidfd(), POLLIN, 0}};
    const int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    poll(fds, 2, ms);  // EINTR (vCPU kick signal) just loops
    if (fds[0].revents != 0) ExitChannel::Drain(channel.response_eventfd(v));
  }
}

std::optional<CommitRecord> Supervisor::LatestCommit() const {
  // The active L1 may be committing concurrently: a torn read fails its checksum; read again.
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<std::string> payload = journal_.ReadCommitted();
    if (absl::IsNotFound(payload.status())) return std::nullopt;
    if (!payload.ok()) continue;
    absl::StatusOr<CommitRecord> record = DecodeCommitRecord(*payload);
    if (record.ok()) return std::move(*record);
  }
  return std::nullopt;
}

std::optional<ExitResponse> Supervisor::CommittedAnswer(uint32_t vcpu, uint64_t seq) const {
  std::optional<CommitRecord> record = LatestCommit();
  if (!record.has_value() || vcpu >= record->last_answer.size() ||
      record->last_answer[vcpu].seq != seq) {
    return std::nullopt;
  }
  auto response = std::make_unique<ExitResponse>();
  record->last_answer[vcpu].ToResponse(response.get());
  return *response;
}

void Supervisor::OnActiveFailure(uint64_t generation, const std::string& cause,
                                 absl::Time detected) {
  const ScopedRealtime realtime;
  absl::MutexLock failover(&failover_mu_);
  L1Ptr failed;
  L1Ptr next;
  uint64_t number;
  {
    absl::MutexLock lock(&mu_);
    if (generation != generation_ || active_ == nullptr || stopping_) return;
    failed = std::move(active_);
    number = failovers_ + 1;
  }
  // Events are emitted after the guest can run again: listeners must not delay recovery.
  // Whatever way this ends: vCPU threads still waiting for the failed L1's answers look again
  // (they find it dead and retry on the new active), and the monitor reaps it.
  auto wake_waiters = [&failed] {
    for (uint32_t v = 0; v < failed->channel().slot_count(); ++v) {
      failed->channel().SignalResponse(v);
    }
  };
  absl::Cleanup release_failed = [this, &failed, &wake_waiters] {
    wake_waiters();
    Bury(std::move(failed));
  };
  FailoverReport report;
  report.number = number;
  report.cause = cause;
  report.failed_pid = failed->pid();
  failed->Fence();  // first of all: the failed L1 must not write anything any more
  const absl::Time fenced = absl::Now();
  report.detected = detected;
  report.fence = fenced - detected;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    while (!window_.empty() &&
           now - window_.front() > absl::Seconds(config_.policy.failover_window_s)) {
      window_.pop_front();
    }
    std::string stop;
    if (config_.policy.mode == RecoveryMode::kNone) {
      stop = "the active L1 failed and the recovery policy is mode=none";
    } else if (static_cast<int>(window_.size()) >= config_.policy.max_failovers) {
      stop = absl::StrCat("failover limit reached: ", window_.size(), " failovers within ",
                          config_.policy.failover_window_s, " s; the guest is stopped");
    }
    if (!stop.empty()) {
      limit_reached_ = true;
      stop_reason_ = stop;
      cv_.SignalAll();
    }
    if (stop.empty()) window_.push_back(now);
    if (stop.empty() && !standbys_.empty()) {
      next = std::move(standbys_.front());
      standbys_.pop_front();
    }
  }
  if (limit_reached()) {
    Emit({SupervisorEvent::Kind::kL1Failed, "active", cause, failed->pid(), std::nullopt});
    std::string stop;
    {
      absl::MutexLock lock(&mu_);
      stop = stop_reason_;
    }
    Emit({SupervisorEvent::Kind::kFailoverFailed, "active", stop, failed->pid(), std::nullopt});
    return;
  }
  absl::Status promoted = PromoteLocked(std::move(next), generation + 1, &report);
  report.total = absl::Now() - detected;
  wake_waiters();  // now, not after the events below
  std::string failed_reason;
  {
    absl::MutexLock lock(&mu_);
    if (!promoted.ok()) {
      limit_reached_ = true;
      stop_reason_ = absl::StrCat("failover failed: ", promoted.message());
      failed_reason = stop_reason_;
    } else {
      failovers_ = number;
      last_report_ = report;
    }
    cv_.SignalAll();
  }
  Emit({SupervisorEvent::Kind::kL1Failed, "active", cause, failed->pid(), std::nullopt});
  Emit({SupervisorEvent::Kind::kFailoverStarted, "active", cause, failed->pid(), std::nullopt});
  if (!promoted.ok()) {
    Emit({SupervisorEvent::Kind::kFailoverFailed, "active", failed_reason, -1, std::nullopt});
    return;
  }
  Emit({SupervisorEvent::Kind::kFailoverCompleted, "active", cause, report.promoted_pid, report});
}

absl::Status Supervisor::PromoteLocked(L1Ptr next, uint64_t generation, FailoverReport* report) {
  const absl::Time start = absl::Now();
  report->standby_was_ready = next != nullptr;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (next == nullptr) {
      absl::StatusOr<L1Ptr> fresh = SpawnReady();
      if (!fresh.ok()) continue;
      next = std::move(*fresh);
    }
    if (config_.before_promote) config_.before_promote();
    absl::Status status = next->Promote(generation, config_.start_timeout);
    if (status.ok()) {
      report->promoted_pid = next->pid();
      report->promote = absl::Now() - start;
      absl::MutexLock lock(&mu_);
      posted_ranges_ = config_.post_writes ? ReadPostedRanges(next->channel().header())
                                           : std::vector<PostedRange>{};
      RepostPendingLocked(next);  // ahead of every exit that waits for the new active
      active_ = std::move(next);
      generation_ = generation;
      return absl::OkStatus();
    }
    Emit({SupervisorEvent::Kind::kL1Failed, "standby", std::string(status.message()), next->pid(),
          std::nullopt});
    next->Fence();
    next = nullptr;
  }
  return absl::UnavailableError("no L1 could take over after 3 attempts");
}

}  // namespace rehome
