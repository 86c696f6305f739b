// recovery/supervisor_watch.cc: the Supervisor's watchers: the monitor thread (crashes through
// pidfds, hangs through heartbeats, livelocks and blocked exit threads, for the active L1 and
// every standby; it also reaps fenced L1s), the death-notice thread (the active L1's crash,
// before its teardown), the exit-deadline hang test (recovery/exit_forwarding.h) and the
// standby keeper thread.
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/death_notice.h"
#include "base/periodic_tick.h"
#include "base/scoped_realtime.h"
#include "recovery/blocked_watch.h"
#include "recovery/heartbeat_watch.h"
#include "recovery/livelock_watch.h"
#include "recovery/proc_stats.h"
#include "recovery/supervisor.h"

namespace rehome {
namespace {

// A busy exit thread without progress for this many hang timeouts is livelocked (LivelockWatch).
constexpr int kLivelockPeriods = 4;
// An exit thread asleep outside its wait for work, without progress, for this many hang
// timeouts is blocked (BlockedWatch): long enough for a slow disk flush.
constexpr int kBlockedPeriods = 20;

// Past a heartbeat deadline when the monitor wakes for it: ppoll may return a little early.
constexpr absl::Duration kHeartbeatDeadlineSlack = absl::Microseconds(200);

// The death-notice thread looks again this often when nothing woke it (an L1 that never
// claimed its notice, a new active, shutdown racing its wake-up).
constexpr absl::Duration kDeathNoticeRecheck = absl::Milliseconds(100);

bool IsStopped(pid_t pid) {
  const std::optional<char> state = ProcessState(pid);
  return !state.has_value() || *state == 'T' || *state == 't' || *state == 'Z' || *state == 'X';
}

}  // namespace

void Supervisor::MonitorLoop() {
  // Real-time for its whole life (it mostly sleeps in poll): a crash it detects must be fenced
  // at once, not after the CPU-bound vCPU threads' time slices (CFS gave the fence a 1-4 ms
  // p99 tail on 2 busy cores).
  const ScopedRealtime realtime;
  std::map<uint64_t, HeartbeatWatch> beats;   // by L1 id
  absl::Time checked = absl::InfinitePast();  // when the last round of checks ran
  std::map<uint64_t, LivelockWatch> busy;     // by L1 id
  std::map<uint64_t, BlockedWatch> blocked;   // by L1 id
  const absl::Duration period = absl::Milliseconds(config_.policy.heartbeat_period_ms);
  const absl::Duration hang = absl::Milliseconds(config_.policy.hang_timeout_ms);
  for (;;) {
    L1Ptr active;
    uint64_t generation;
    std::vector<L1Ptr> standbys;
    std::vector<L1Ptr> graves;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      active = active_;
      generation = generation_;
      standbys.assign(standbys_.begin(), standbys_.end());
      graves = graveyard_;
    }
    std::vector<pollfd> fds;
    if (active) fds.push_back({active->pidfd(), POLLIN, 0});
    for (const L1Ptr& s : standbys) fds.push_back({s->pidfd(), POLLIN, 0});
    for (const L1Ptr& g : graves) fds.push_back({g->pidfd(), POLLIN, 0});
    // A crash wakes this poll at once; otherwise it doubles as the heartbeat tick.
    // On the shared grid of periodic wake-ups (base/periodic_tick.h): with the L1s' heartbeats;
    // or sooner, when an L1's heartbeat will have been silent for the hang timeout.
    const absl::Time before = absl::Now();
    absl::Time due = absl::InfiniteFuture();
    // The two thresholds of `check` below, from the first one the last round has not passed
    // (one that passed since is due at once).
    auto next_due = [&](const L1Ptr& l1) {
      due = std::min(
          due, beats[l1->id()].NextDeadline(checked, {hang, 20 * hang}) + kHeartbeatDeadlineSlack);
    };
    if (active) next_due(active);
    for (const L1Ptr& s : standbys) next_due(s);
    const timespec tick =
        NoLaterThan(TimeToNextTick(absl::ToInt64Nanoseconds(period)), due, before);
    ppoll(fds.data(), fds.size(), &tick, nullptr);
    const absl::Time now = absl::Now();
    const int64_t now_mono_ns = MonotonicNowNs();
    checked = now;
    // Where the vCPU threads run, for the active L1's decisions to spin (a hint it reads
    // relaxed; ExitChannelHeader::vcpu_cpus).
    const uint32_t vcpu_cpus = vcpu_threads_.CpuMask();
    vcpu_cpus_.store(vcpu_cpus, std::memory_order_relaxed);  // for L0's service threads too
    if (active) {
      std::atomic<uint32_t>& hint = active->channel().header().vcpu_cpus;
      if (hint.load(std::memory_order_relaxed) != vcpu_cpus) {
        hint.store(vcpu_cpus, std::memory_order_relaxed);
      }
    }
    // Fenced L1s whose teardown finished are collected (and their mappings closed) here.
    std::vector<L1Ptr> collected;
    for (const L1Ptr& g : graves) {
      if (g->Reap(/*block=*/false)) collected.push_back(g);
    }
    if (!collected.empty()) {
      absl::MutexLock lock(&mu_);
      std::erase_if(graveyard_, [&](const L1Ptr& g) {
        return std::find(collected.begin(), collected.end(), g) != collected.end();
      });
    }
    auto check = [&](const L1Ptr& l1) -> std::string {
      if (l1->Exited()) return l1->CrashCause();
      HeartbeatWatch& beat = beats[l1->id()];
      beat.Sample(now, now_mono_ns, l1->heartbeat(), l1->heartbeat_ns());
      if (const absl::Duration silent = beat.Silence(now);
          silent >= hang && (IsStopped(l1->pid()) || silent > 20 * hang)) {
        // The heartbeat thread only sleeps and counts: when it misses beats, either the whole
        // process is stopped (hung: fail over now), or the host does not schedule it (starved:
        // allow 20 periods). A stuck exit thread is caught by the exit deadline instead.
        return absl::StrCat("hang: no heartbeat from L1 pid ", l1->pid(), " for ",
                            absl::ToInt64Milliseconds(silent), " ms");
      }
      // Beating, but its exit thread spinning without committing or announcing progress (e.g.
      // stuck in a device notification, where no exit deadline runs): a livelock.
      const std::optional<uint64_t> runtime = MainThreadRuntimeNs(l1->pid());
      if (!runtime.has_value()) return "";
      const uint64_t marker = l1->work_progress() + (l1 == active ? journal_.commits() : 0);
      auto [it, added] = busy.try_emplace(l1->id(), kLivelockPeriods * hang);
      if (std::optional<absl::Duration> stuck = it->second.Sample(now, *runtime, marker)) {
        return absl::StrCat("hang: L1 pid ", l1->pid(), " busy for ",
                            absl::ToInt64Milliseconds(*stuck),
                            " ms without committing or progress (livelock)");
      }
      // Asleep in a system call outside its wait for work (no exit deadline runs when no vCPU
      // waits, and the heartbeat thread beats on): blocked.
      const std::optional<char> state = ProcessState(l1->pid());
      if (!state.has_value()) return "";
      const bool waiting =
          l1->channel().header().l1_sleeping.load(std::memory_order_relaxed) != kL1Awake;
      auto [b, b_added] = blocked.try_emplace(l1->id(), kBlockedPeriods * hang);
      if (std::optional<absl::Duration> stuck =
              b->second.Sample(now, waiting, *state, *runtime, marker)) {
        return absl::StrCat("hang: L1 pid ", l1->pid(), " exit thread blocked for ",
                            absl::ToInt64Milliseconds(*stuck), " ms (state ",
                            std::string(1, *state),
                            ") outside its wait for work, without CPU time or progress");
      }
      return "";
    };
    if (active) {
      if (std::string cause = check(active); !cause.empty()) {
        OnActiveFailure(generation, cause, now);
      }
    }
    for (const L1Ptr& s : standbys) {
      std::string cause = check(s);
      if (cause.empty()) continue;
      {
        absl::MutexLock lock(&mu_);
        for (auto it = standbys_.begin(); it != standbys_.end(); ++it) {
          if (*it == s) {
            standbys_.erase(it);
            break;
          }
        }
        cv_.SignalAll();
      }
      s->Fence();
      Emit({SupervisorEvent::Kind::kL1Failed, "standby", cause, s->pid(), std::nullopt});
      Bury(s);
    }
    // Forget L1s that are gone.
    auto live = [&](uint64_t id) {
      bool found = active && active->id() == id;
      for (const L1Ptr& s : standbys) found = found || s->id() == id;
      return found;
    };
    for (auto it = beats.begin(); it != beats.end();) {
      it = live(it->first) ? std::next(it) : beats.erase(it);
    }
    for (auto it = busy.begin(); it != busy.end();) {
      it = live(it->first) ? std::next(it) : busy.erase(it);
    }
    for (auto it = blocked.begin(); it != blocked.end();) {
      it = live(it->first) ? std::next(it) : blocked.erase(it);
    }
  }
}

void Supervisor::Bury(L1Ptr l1) {
  if (l1 == nullptr || l1->Reap(/*block=*/false)) return;  // gone already: dropped here
  absl::MutexLock lock(&mu_);
  graveyard_.push_back(std::move(l1));
}

void Supervisor::DeathNoticeLoop() {
  // Real-time, as the monitor: it fences the crashed active L1 and promotes the standby.
  const ScopedRealtime realtime;
  for (;;) {
    L1Ptr active;
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        death_watched_ = nullptr;
        return;
      }
      active = active_;
      generation = generation_;
      death_watched_ = active;
      if (active == nullptr) {
        cv_.WaitWithTimeout(&mu_, kDeathNoticeRecheck);  // a failover in progress, or stopped
        continue;
      }
    }
    if (!AwaitDeathNotice(active->death_notice(), kDeathNoticeRecheck)) continue;
    // Also for the L1's retirement in a switchover (no longer active: a no-op below).
    WakeDeathNoticeWaiters(active->death_notice());  // the kernel woke only this thread
    OnActiveFailure(generation, active->CrashCause(), absl::Now());
  }
}

void Supervisor::StandbyLoop() {
  const int wanted = config_.policy.mode == RecoveryMode::kFailover ? config_.policy.standbys : 0;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto needed = [this, wanted]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!limit_reached_ && static_cast<int>(standbys_.size()) < wanted);
      };
      // A CondVar, not mu_.Await: a thread awaiting a Condition on mu_ makes every release of
      // mu_ evaluate it, and vCPU threads take mu_ on every exit.
      while (!needed()) cv_.Wait(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<L1Ptr> l1 = SpawnReady();
    if (!l1.ok()) {
      Emit({SupervisorEvent::Kind::kL1Failed, "standby", std::string(l1.status().message()), -1,
            std::nullopt});
      absl::MutexLock lock(&mu_);
      // Back off before trying again (a broken binary must not make us spin).
      const absl::Time until = absl::Now() + absl::Milliseconds(200);
      while (!stopping_ && !cv_.WaitWithDeadline(&mu_, until)) {
      }
      continue;
    }
    const pid_t pid = (*l1)->pid();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        (*l1)->Fence();
        return;
      }
      standbys_.push_back(std::move(*l1));
      cv_.SignalAll();
    }
    Emit({SupervisorEvent::Kind::kStandbyReady, "standby", "", pid, std::nullopt});
  }
}

}  // namespace rehome
