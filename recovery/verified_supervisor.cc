// recovery/verified_supervisor.cc: VerifiedSupervisor: start, items, agreement.
#include "recovery/verified_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "recovery/effects_apply.h"
#include "recovery/exit_forwarding.h"

namespace rehome {
namespace {

// How long L0 spins for the replicas' answers before it sleeps (Collect).
constexpr absl::Duration kReplicaAnswerSpin = absl::Microseconds(60);

// Room for the commit record: device state plus one committed answer per slot.
uint64_t JournalCapacity(int cpus) {
  return (1u << 20) + static_cast<uint64_t>(cpus + 1) * (32u << 10);
}

std::string Pids(const std::vector<pid_t>& pids) { return absl::StrJoin(pids, ", "); }

}  // namespace

std::string DivergenceReport::ToString() const {
  return absl::StrCat("divergence #", number, " on item ", seq, " (", item, "): replicas ",
                      Pids(replicas), " differed in ", what, "; ", resolution);
}

VerifiedSupervisor::VerifiedSupervisor(SupervisorConfig config, VerifiedEffectsSink sink,
                                       uint64_t disk_bytes, std::function<uint64_t()> next_seq)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      disk_bytes_(disk_bytes),
      next_seq_(std::move(next_seq)),
      mode_(config_.policy.verify),
      journal_capacity_(JournalCapacity(config_.launch.cpus)) {}

absl::StatusOr<std::unique_ptr<VerifiedSupervisor>> VerifiedSupervisor::Start(
    SupervisorConfig config, VerifiedEffectsSink sink, uint64_t disk_bytes,
    std::function<uint64_t()> next_seq) {
  RETURN_IF_ERROR(config.policy.Validate());
  if (config.policy.verify == VerifyMode::kNone) {
    return absl::InvalidArgumentError("verified execution needs verify=dual or triple");
  }
  config.launch.heartbeat_ms = static_cast<uint32_t>(config.policy.heartbeat_period_ms);
  config.launch.sandbox = config.policy.l1_sandbox;  // replicas are confined as any L1
  // Replicas read the disk image but never write it (their writes are effects L0 applies once
  // agreed): they get a read-only descriptor of it, so that a stray write cannot bypass the vote.
  UniqueFd read_only_disk;
  if (config.launch.disk_fd >= 0) {
    read_only_disk.Reset(
        open(absl::StrCat("/proc/self/fd/", config.launch.disk_fd).c_str(), O_RDONLY | O_CLOEXEC));
    if (!read_only_disk.valid()) return LastErrnoStatus("reopening the disk image read-only");
    config.launch.disk_fd = read_only_disk.get();
  }
  std::unique_ptr<VerifiedSupervisor> s(
      new VerifiedSupervisor(std::move(config), std::move(sink), disk_bytes, std::move(next_seq)));
  s->read_only_disk_ = std::move(read_only_disk);
  for (size_t i = 0; i < s->ReplicasWanted(); ++i) {
    ASSIGN_OR_RETURN(Replica r, s->Spawn(/*first=*/i == 0));
    RETURN_IF_ERROR(s->Enroll(r, std::nullopt, {}));
    absl::MutexLock lock(&s->mu_);
    s->members_.push_back(std::move(r));
  }
  s->monitor_ = std::thread([raw = s.get()] { raw->MonitorLoop(); });
  s->standby_keeper_ = std::thread([raw = s.get()] { raw->StandbyLoop(); });
  return s;
}

VerifiedSupervisor::~VerifiedSupervisor() { Shutdown(); }

absl::StatusOr<VerifiedSupervisor::Replica> VerifiedSupervisor::Spawn(bool first) {
  Replica r;
  ASSIGN_OR_RETURN(DeviceJournal journal, DeviceJournal::Create(journal_capacity_));
  ASSIGN_OR_RETURN(EffectsArea effects, EffectsArea::Create());
  r.journal = std::make_shared<DeviceJournal>(std::move(journal));
  r.effects = std::make_shared<EffectsArea>(std::move(effects));
  L1LaunchSpec spec = config_.launch;
  spec.journal_fd = r.journal->memfd();
  spec.effects_fd = r.effects->memfd();
  // A replica reaches nothing outside itself: no ioeventfd, irqfd or console ring.
  spec.blk_notify_fd = spec.blk_irq_fd = spec.console_notify_fd = spec.console_irq_fd = -1;
  spec.console_ring_fd = spec.console_out_fd = -1;
  // ... nor the network's: it reads received frames from the receive ring (never writing it);
  // L0 sends the frames the replicas agreed on.
  spec.net_tx_ring_fd = spec.net_notify_fd = spec.net_irq_fd = -1;
  spec.net_kick_fd = spec.net_wake_fd = -1;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    if (!first && !config_.standby_binary.empty()) spec.binary = config_.standby_binary;
  }
  spec.start_cpus = vcpu_threads_.CpusAwayFromVcpus();
  ASSIGN_OR_RETURN(std::unique_ptr<L1Process> spawned, L1Process::Spawn(spec, id));
  r.l1 = std::move(spawned);
  absl::Status ready = r.l1->WaitReady(config_.start_timeout);
  // Items and the monitor poll it beside the pidfd: a replica's death is seen before its teardown.
  if (ready.ok()) ready = r.l1->StartDeathBell();
  if (!ready.ok()) {
    r.l1->Fence();
    return ready;
  }
  return r;
}

absl::Status VerifiedSupervisor::Enroll(Replica& r, std::optional<uint32_t> agreed_crc,
                                        const std::vector<Replica>& sources) {
  if (agreed_crc.has_value()) {
    std::optional<std::string> found;
    for (const Replica& source : sources) {
      found = source.journal->FindPayload(*agreed_crc);
      if (found.has_value()) break;
    }
    if (!found.has_value()) {
      return absl::DataLossError(
          absl::StrFormat("the agreed state (crc 0x%08x) is in no replica's journal", *agreed_crc));
    }
    const std::string payload = std::move(*found);
    RETURN_IF_ERROR(r.journal->Commit(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(payload.data()), payload.size())));
  }
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = ++generation_;
  }
  return r.l1->Promote(generation, config_.start_timeout);
}

absl::StatusOr<VerifiedSupervisor::Replica> VerifiedSupervisor::Recruit(
    const std::vector<Replica>& given) {
  // The agreed state may be only in the journals of replicas fenced since: they stay readable
  // (L0 owns the memfds), and FindPayload checks what it finds against the agreed CRC.
  std::vector<Replica> sources = given;
  {
    absl::MutexLock lock(&mu_);
    sources.insert(sources.end(), retired_.begin(), retired_.end());
  }
  absl::Status last = absl::UnavailableError("no replica could be started");
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::optional<Replica> r;
    std::optional<uint32_t> agreed;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("shutting down");
      agreed = agreed_crc_;
      if (!standbys_.empty()) {
        r = std::move(standbys_.front());
        standbys_.pop_front();
        cv_.SignalAll();  // the keeper starts another
      }
    }
    if (!r.has_value()) {
      absl::StatusOr<Replica> fresh = Spawn(/*first=*/false);
      if (!fresh.ok()) {
        last = fresh.status();
        continue;
      }
      r = std::move(*fresh);
    }
    last = Enroll(*r, agreed, sources);
    if (last.ok()) return std::move(*r);
    r->l1->Fence();
  }
  return last;
}

void VerifiedSupervisor::PostTo(const Replica& r, const ExitRequest& request) {
  ExitChannel& channel = r.l1->channel();
  // Collect says that L0 sleeps (and the replica then signals its answer) only once it stops
  // spinning for the answers.
  PostRequest(channel.slot(request.vcpu), request);
  channel.WakeL1IfSleeping();
}

void VerifiedSupervisor::Collect(const std::vector<Replica>& replicas,
                                 const std::vector<size_t>& which, const ExitRequest& request,
                                 std::vector<ReplicaResult>* results) {
  struct Pending {
    size_t index;
    absl::Time deadline;
    HangWatch watch;
  };
  const int hang_ms = config_.policy.hang_timeout_ms;
  const uint32_t v = request.vcpu;
  // Another replica's effects of this item that passed CopyOut's checks, if any.
  const auto checked_effects = [&](size_t except) -> const Effects* {
    for (size_t i = 0; i < results->size(); ++i) {
      if (i != except && (*results)[i].ok) return &(*results)[i].effects;
    }
    return nullptr;
  };
  std::vector<Pending> pending;
  for (size_t i : which) pending.push_back({i, absl::Now() + absl::Milliseconds(hang_ms), {}});
  // As Supervisor::AwaitAnswer: the replicas answer most items within tens of microseconds (one
  // that spins for the next item takes it at once, a sleeping one is woken real-time and
  // preempts this thread): spin that long on the answers before paying for a sleep and a wake-up
  // per replica. Only when every replica can have a CPU (more replicas than CPUs take turns, and
  // this thread would take a turn from them: triple on 2 CPUs measured no better, dual 5% faster
  // per port exit) and one runs on another CPU than this thread. Then say that this thread
  // sleeps (each replica signals its answer from then on; the loop re-checks first).
  const auto settled = [&](size_t i) {
    return replicas[i].l1->channel().slot(v).response_seq.load(std::memory_order_acquire) ==
               request.seq ||
           replicas[i].l1->Exited();
  };
  const uint32_t here = static_cast<uint32_t>(sched_getcpu() + 1);
  const bool elsewhere = std::any_of(which.begin(), which.end(), [&](size_t i) {
    return replicas[i].l1->channel().header().l1_cpu.load(std::memory_order_relaxed) != here;
  });
  static const size_t cpus = std::max(1u, std::thread::hardware_concurrency());
  if (which.size() <= cpus && elsewhere) {
    SpinUntil([&] { return std::all_of(which.begin(), which.end(), settled); }, kReplicaAnswerSpin);
  }
  for (size_t i : which) {
    if (!settled(i)) replicas[i].l1->channel().SetL0Sleeping(v, true);
  }
  while (!pending.empty()) {
    const absl::Time now = absl::Now();
    for (auto it = pending.begin(); it != pending.end();) {
      const Replica& r = replicas[it->index];
      ReplicaResult& result = (*results)[it->index];
      ExitSlot& slot = r.l1->channel().slot(v);
      bool decided = true;
      if (slot.response_seq.load(std::memory_order_acquire) == request.seq) {
        result.response = std::make_unique_for_overwrite<ExitResponse>();
        CopyResponse(slot.response, result.response.get());
        absl::StatusOr<Effects> effects;
        if (absl::Status valid = ValidateResponse(request, *result.response); !valid.ok()) {
          result.failure = absl::StrCat("bad answer: ", valid.message());
        } else if (effects = r.effects->CopyOut(request.seq, checked_effects(it->index));
                   !effects.ok()) {
          result.failure = absl::StrCat("bad effects: ", effects.status().message());
        } else {
          result.effects = std::move(*effects);
          result.ok = true;
        }
      } else if (r.l1->Exited()) {
        result.failure = ExitCause(*r.l1);
      } else if (now >= it->deadline) {
        std::string why;
        if (LooksHung(*r.l1, hang_ms, &it->watch, &why)) {
          result.failure = absl::StrCat("hang: no answer to exit ", request.seq, " within ",
                                        hang_ms * (it->watch.extensions + 1), " ms (", why, ")");
        } else {
          it->deadline = now + absl::Milliseconds(hang_ms);  // starved, not hung: wait longer
          decided = false;
        }
      } else {
        decided = false;
      }
      if (!decided) {
        ++it;
        continue;
      }
      r.l1->channel().SetL0Sleeping(v, false);
      it = pending.erase(it);
    }
    if (pending.empty()) break;
    std::vector<pollfd> fds;
    absl::Time wake = absl::InfiniteFuture();
    for (const Pending& p : pending) {
      const Replica& r = replicas[p.index];
      fds.push_back({r.l1->channel().response_eventfd(v), POLLIN, 0});
      fds.push_back({r.l1->pidfd(), POLLIN, 0});
      fds.push_back({r.l1->death_fd(), POLLIN, 0});
      wake = std::min(wake, p.deadline);
    }
    const int64_t ms =
        std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - absl::Now()) + 1, 1, 1000);
    poll(fds.data(), fds.size(), static_cast<int>(ms));  // EINTR (vCPU kick) just loops
    for (size_t i = 0; i < fds.size(); i += 3) {
      if (fds[i].revents != 0) ExitChannel::Drain(fds[i].fd);
    }
  }
}

std::string VerifiedSupervisor::Describe(const ExitRequest& r) {
  switch (r.kind) {
    case ExitRequest::kConsoleInput:
      return absl::StrCat("console input, ", r.data_len, " bytes");
    case ExitRequest::kDeviceKick:
      return r.addr == 0 ? "device queues (new buffers, or work the last item left)"
                         : absl::StrFormat("queue notification at 0x%x", r.addr);
    case ExitRequest::kNetInput:
      return absl::StrCat("network frames received (up to ", r.net_rx_limit, ")");
    default:
      return absl::StrFormat("vCPU %d %s %s 0x%x (%d bytes)", r.vcpu,
                             r.kind == ExitRequest::kPio ? "port" : "MMIO",
                             r.is_write ? "write" : "read", r.addr, r.size * r.count);
  }
}

DivergenceReport VerifiedSupervisor::NewDivergence(const ExitRequest& request, const Vote& vote,
                                                   const std::vector<Replica>& voters,
                                                   const std::vector<ReplicaResult>& results) {
  DivergenceReport d;
  d.seq = request.seq;
  d.item = Describe(request);
  d.what = vote.difference;
  d.detected = absl::Now();
  for (size_t i = 0; i < voters.size(); ++i) {
    if (results[i].ok) d.replicas.push_back(voters[i].l1->pid());
  }
  return d;
}

void VerifiedSupervisor::StampAvailSnapshot(ExitRequest* request) const {
  request->avail_snapshot_count = 0;
  if (sink_.ram == nullptr) return;
  for (const AvailWatch& w : avail_watch_) {
    const uint64_t gpa = w.gpa;
    // Aligned (the ring is 2-aligned): one atomic read of a word the guest's vCPUs may move.
    uint8_t* p = gpa % 2 == 0 ? sink_.ram->HostAddress(gpa, sizeof(uint16_t)) : nullptr;
    if (p == nullptr) continue;
    AvailIndexSnapshot& s = request->avail_snapshot[request->avail_snapshot_count++];
    s.gpa = gpa;
    s.index =
        std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).load(std::memory_order_acquire);
  }
}

bool VerifiedSupervisor::QueueWorkAvailable(bool wait_for_item) {
  if (wait_for_item) {
    item_mu_.Lock();
  } else if (!item_mu_.TryLock()) {
    return false;
  }
  // After a notification anything L0 cannot compare counts as new work, so that none is dropped;
  // watching without one, only an index that moved does (a guest whose queues L0 cannot read
  // must not make the pump post items without end).
  bool available = wait_for_item && (avail_watch_.empty() || sink_.ram == nullptr);
  for (size_t i = 0; i < avail_watch_.size() && !available && sink_.ram != nullptr; ++i) {
    // A receive queue's new buffers wait for host input; its notification is what counts.
    if (!wait_for_item && !avail_watch_[i].unprompted) continue;
    const uint64_t gpa = avail_watch_[i].gpa;
    uint8_t* p = gpa % 2 == 0 ? sink_.ram->HostAddress(gpa, sizeof(uint16_t)) : nullptr;
    if (p == nullptr) {  // StampAvailSnapshot skips it too: the replicas read it live
      available = wait_for_item;
      continue;
    }
    // Not in the last item's snapshot: made ready by that item (the next one stamps it).
    const auto last = std::find_if(last_snapshot_.begin(), last_snapshot_.end(),
                                   [gpa](const AvailIndexSnapshot& s) { return s.gpa == gpa; });
    available =
        last == last_snapshot_.end() || std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p))
                                                .load(std::memory_order_acquire) != last->index;
  }
  item_mu_.Unlock();
  return available;
}

absl::Status VerifiedSupervisor::RunItem(const ExitRequest& item, ExitResponse* response,
                                         uint32_t* flags) {
  // The snapshot is taken once: a recruit that executes the item later gets the same one.
  auto stamped = std::make_unique_for_overwrite<ExitRequest>();
  std::memcpy(stamped.get(), &item,
              offsetof(ExitRequest, data) + std::min(item.data_len, kExitDataMax));
  StampAvailSnapshot(stamped.get());
  // Only an item that processes every device's queues (a kick) has taken everything up to its
  // snapshot; console or network input and a vCPU's exit process one device, or none.
  if (stamped->kind == ExitRequest::kDeviceKick) {
    last_snapshot_.assign(stamped->avail_snapshot,
                          stamped->avail_snapshot + stamped->avail_snapshot_count);
  }
  const ExitRequest& request = *stamped;
  const size_t replicas_wanted = ReplicasWanted();  // one count for the whole item
  std::vector<Replica> voters;
  {
    absl::MutexLock lock(&mu_);
    voters = members_;
  }
  std::vector<ReplicaResult> results(voters.size());
  std::vector<size_t> all;
  for (size_t i = 0; i < voters.size(); ++i) {
    PostTo(voters[i], request);
    all.push_back(i);
  }
  Collect(voters, all, request, &results);
  std::vector<bool> fenced(voters.size(), false);
  std::optional<DivergenceReport> divergence;
  const size_t quorum = 2;
  Vote vote;
  for (size_t round = 0;; ++round) {
    std::vector<const ReplicaResult*> ptrs;
    for (const ReplicaResult& r : results) ptrs.push_back(&r);
    vote = Decide(ptrs, quorum, replicas_wanted + 1);
    if (vote.kind == Vote::Kind::kAgreed) {
      // Agreed at once over a dissenting valid result (triple): a divergence all the same.
      if (!vote.minority.empty() && !divergence.has_value()) {
        divergence = NewDivergence(request, vote, voters, results);
        Emit({SupervisorEvent::Kind::kDivergence, "replica", vote.difference, -1, std::nullopt,
              divergence});
      }
      break;
    }
    if (round > 2 * replicas_wanted + 2) {
      Stop(absl::StrCat("no agreed result for ", Describe(request), " after ", round,
                        " rounds; the guest is stopped"));
      return absl::FailedPreconditionError("recovery stopped");
    }
    // Replace replicas that failed this item; their replacements execute it from the agreed
    // state before it. The others' results stand.
    std::vector<size_t> added;
    for (size_t i = 0; i < fenced.size(); ++i) {
      if (results[i].ok || fenced[i]) continue;
      fenced[i] = true;
      Fence(voters[i], "replica", results[i].failure, absl::Now());
    }
    size_t failed = 0;
    for (size_t i = 0; i < results.size(); ++i) failed += results[i].ok ? 0 : 1;
    size_t valid = results.size() - failed;
    // What is missing: replacements up to the wanted number of valid results, or, when the
    // valid ones disagree, one more opinion.
    size_t wanted = valid >= replicas_wanted ? 1 : replicas_wanted - valid;
    if (vote.kind == Vote::Kind::kNoMajority) {
      const std::string reason = absl::StrCat("no majority on ", Describe(request), ": ",
                                              vote.difference, "; the guest is stopped");
      if (divergence.has_value()) {
        divergence->resolution = "no majority: guest paused with nothing applied";
        Emit({SupervisorEvent::Kind::kDivergenceResolved, "replica", reason, -1, std::nullopt,
              divergence});
      }
      Stop(reason);
      return absl::FailedPreconditionError("recovery stopped");
    }
    if (valid >= 2 && !vote.difference.empty() && !divergence.has_value()) {
      divergence = NewDivergence(request, vote, voters, results);
      Emit({SupervisorEvent::Kind::kDivergence, "replica", vote.difference, -1, std::nullopt,
            divergence});
    }
    std::vector<Replica> sources = voters;
    for (size_t n = 0; n < wanted; ++n) {
      absl::StatusOr<Replica> recruit = Recruit(sources);
      if (!recruit.ok()) {
        Stop(absl::StrCat("no replica could take over: ", recruit.status().message()));
        return absl::FailedPreconditionError("recovery stopped");
      }
      voters.push_back(std::move(*recruit));
      results.emplace_back();
      fenced.push_back(false);
      PostTo(voters.back(), request);
      added.push_back(voters.size() - 1);
    }
    {
      absl::MutexLock lock(&mu_);
      retried_ += added.size();
    }
    Collect(voters, added, request, &results);
  }
  // Agreed: apply one copy of the effects, answer, and keep the majority as the members.
  const ReplicaResult& winner = results[vote.majority.front()];
  const ApplyResult applied = ApplyEffects(winner.effects, sink_, disk_bytes_);
  if (applied.refused != 0) {
    std::fprintf(stderr, "rehome: %llu agreed effects of item %llu refused: %s\n",
                 static_cast<unsigned long long>(applied.refused),
                 static_cast<unsigned long long>(request.seq), applied.first_refusal.c_str());
  }
  CopyResponse(*winner.response, response);
  *flags = winner.effects.flags;
  std::set<size_t> keep(vote.majority.begin(),
                        vote.majority.begin() + std::min(vote.majority.size(), replicas_wanted));
  std::vector<Replica> members;
  std::vector<pid_t> outvoted;
  for (size_t i = 0; i < voters.size(); ++i) {
    if (keep.count(i) != 0) {
      members.push_back(voters[i]);
    } else if (!fenced[i] && !results[i].ok) {
      // Failed (crash, hang, bad answer) while the others agreed at once: a replica failure.
      FenceLater(voters[i], "replica", results[i].failure, absl::Now());
    } else if (!fenced[i]) {
      const bool minority =
          std::find(vote.minority.begin(), vote.minority.end(), i) != vote.minority.end();
      if (minority) {
        outvoted.push_back(voters[i].l1->pid());
        FenceLater(voters[i], "replica",
                   absl::StrCat("divergence: outvoted on item ", request.seq, " (",
                                divergence.has_value() ? divergence->what : vote.difference, ")"),
                   absl::Now());
      } else {
        // An extra opinion that agreed: more members than wanted.
        FenceLater(voters[i], "replica", "", absl::Now());
      }
    }
  }
  avail_watch_.clear();
  for (const Effect& e : winner.effects.entries) {
    if (e.type == EffectType::kAvailWatch && avail_watch_.size() < kMaxAvailSnapshot) {
      avail_watch_.push_back({e.addr, e.data.empty() || e.data[0] != 0});
    }
  }
  {
    absl::MutexLock lock(&mu_);
    // A replica that agreed and was fenced since (it died after answering) stays out.
    std::erase_if(members, [&](const Replica& m) { return fenced_ids_.count(m.l1->id()) != 0; });
    members_ = std::move(members);
    agreed_crc_ = winner.effects.state_crc;
    ++items_;
    if (divergence.has_value()) {
      divergence->number = ++divergences_;
      divergence->minority = outvoted;
      divergence->resolution = absl::StrCat(
          "majority of ", vote.majority.size(), " of ", vote.majority.size() + vote.minority.size(),
          " replicas; outvoted pid(s) ", Pids(outvoted), " fenced and replaced");
      last_divergence_ = divergence;
    }
  }
  if (divergence.has_value()) {
    Emit({SupervisorEvent::Kind::kDivergenceResolved, "replica", divergence->resolution, -1,
          std::nullopt, divergence});
  }
  return absl::OkStatus();
}

absl::Status VerifiedSupervisor::Execute(const ExitRequest& request, ExitResponse* response,
                                         bool* posted) {
  if (posted != nullptr) *posted = false;  // no posted writes: every effect waits for agreement
  if (request.kind == ExitRequest::kPio || request.kind == ExitRequest::kMmio) {
    vcpu_threads_.Note(request.vcpu);  // new replicas start away from the vCPU threads (Spawn)
  }
  absl::MutexLock item(&item_mu_);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("shutting down");
      if (stopped_) {
        if (!config_.pause_on_limit) return absl::FailedPreconditionError(stop_reason_);
        while (stopped_ && !stopping_) cv_.Wait(&mu_);  // paused until ResumeAfterLimit
        continue;
      }
    }
    // Members the monitor fenced since the last item, or outvoted ones: recruit replacements.
    bool full = false;
    absl::Status recruited = absl::OkStatus();
    // Recruits keep coming as long as they can be started (a fast series of failures makes the
    // guest wait); three failed recruits in a row stop recovery.
    for (int failed = 0; failed < 3 && !full;) {
      std::vector<Replica> dead;
      {
        absl::MutexLock lock(&mu_);
        for (const Replica& r : members_) {
          if (r.l1->Exited()) dead.push_back(r);
        }
      }
      // A member that died since the last item and that the monitor has not fenced yet (it
      // may not have run): fenced and counted here, once (Fence ignores a second report).
      for (const Replica& r : dead) Fence(r, "replica", ExitCause(*r.l1), absl::Now());
      std::vector<Replica> sources;
      {
        absl::MutexLock lock(&mu_);
        full = members_.size() >= ReplicasWanted();
        sources = members_;
      }
      if (full) break;
      absl::StatusOr<Replica> recruit = Recruit(sources);
      if (recruit.ok()) {
        failed = 0;
        absl::MutexLock lock(&mu_);
        members_.push_back(std::move(*recruit));
      } else {
        ++failed;
        recruited = recruit.status();
      }
    }
    if (!full) {
      Stop(absl::StrCat("no replica could be started: ", recruited.message()));
      continue;
    }
    uint32_t flags = 0;
    if (!RunItem(request, response, &flags).ok()) continue;  // stopped: paused or failing
    // A device left queued work for later items (its effects budget): continue it now.
    for (int more = 0; (flags & kEffectsMore) != 0 && more < 100000; ++more) {
      auto kick = std::make_unique<ExitRequest>();
      kick->seq = next_seq_();
      kick->vcpu = request.vcpu;
      kick->kind = ExitRequest::kDeviceKick;
      kick->is_write = 1;
      kick->size = 1;
      kick->host_cpu = ~0u;
      if (sink_.net_rx_produced)
        kick->net_rx_limit = static_cast<uint32_t>(sink_.net_rx_produced());
      auto ignored = std::make_unique_for_overwrite<ExitResponse>();
      if (!RunItem(*kick, ignored.get(), &flags).ok()) break;
    }
    return absl::OkStatus();
  }
}

}  // namespace rehome
