// recovery/nested/nested_supervisor.cc: NestedSupervisor.
#include "recovery/nested/nested_supervisor.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "recovery/nested/l1_register_fault.h"
#include "state-extract/state_codec.h"
#include "vmm/loader/elf_pvh_loader.h"
#include "vmm/nested/agent_regions.h"

namespace rehome {
namespace {

using nested_abi::AgentState;
using nested_abi::Command;

constexpr absl::Duration kPoll = absl::Milliseconds(2);
constexpr int kMaxCaptureAttempts = 500;

class RamView final : public GuestMemoryView {
 public:
  explicit RamView(const GuestMemory& ram) : ram_(ram) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }

 private:
  const GuestMemory& ram_;
};

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(d));
}

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

std::optional<NestedFault> ParseNestedFault(std::string_view name) {
  for (NestedFault f : {NestedFault::kKill, NestedFault::kPanic, NestedFault::kHang,
                        NestedFault::kCrash, NestedFault::kCrashInExit, NestedFault::kDieInExit,
                        NestedFault::kMixed, NestedFault::kRegister}) {
    if (name == NestedFaultName(f)) return f;
  }
  return std::nullopt;
}

const char* NestedFaultName(NestedFault fault) {
  switch (fault) {
    case NestedFault::kNone:
      return "none";
    case NestedFault::kKill:
      return "kill";
    case NestedFault::kPanic:
      return "panic";
    case NestedFault::kHang:
      return "hang";
    case NestedFault::kCrash:
      return "crash";
    case NestedFault::kCrashInExit:
      return "crash-in-exit";
    case NestedFault::kDieInExit:
      return "die-in-exit";
    case NestedFault::kMixed:
      return "mixed";
    case NestedFault::kRegister:
      return "register";
  }
  return "none";
}

std::string NestedFailover::ToString() const {
  return absl::StrFormat(
      "failover #%d (%s): L1 #%d -> L1 #%d in %s (detect %s, pause+capture %s [%s, commit %d, "
      "%d attempt(s)], handoff %s, takeover %s; state %d bytes)%s",
      number, cause, from_l1, to_l1, Ms(total), Ms(detect), Ms(capture), CaptureSourceName(source),
      commit, capture_attempts, Ms(handoff), Ms(takeover), state_bytes,
      placement.empty() ? "" : absl::StrCat("; NPT: ", placement));
}

absl::StatusOr<std::unique_ptr<NestedSupervisor>> NestedSupervisor::Start(NestedConfig config) {
  if (config.l2_memory > nested_abi::kMaxL2Ram) {
    return absl::InvalidArgumentError("--memory: nested mode runs L2 with at most 3072 MiB");
  }
  std::unique_ptr<NestedSupervisor> s(new NestedSupervisor(std::move(config)));
  ASSIGN_OR_RETURN(GuestMemory ram, GuestMemory::Create(s->config_.l2_memory));
  s->l2_ram_ = std::make_unique<GuestMemory>(std::move(ram));
  RamView view(*s->l2_ram_);
  const std::vector<MemoryMapEntry> map = DefaultMemoryMap(s->config_.l2_memory);
  ASSIGN_OR_RETURN(const LoadedKernel kernel,
                   LoadPvhKernelFromFile(s->config_.l2_kernel, view, s->config_.l2_memory,
                                         s->config_.l2_cmdline, map));
  s->boot_.l2_ram_size = s->config_.l2_memory;
  s->boot_.entry32 = kernel.entry32;
  s->boot_.start_info = kernel.start_info_gpa;
  s->boot_.cpus = 1;
  if (s->config_.l2_cmdline.size() > sizeof(s->boot_.cmdline)) {
    return absl::InvalidArgumentError("--cmdline: too long for nested mode");
  }
  s->boot_.cmdline_len = static_cast<uint32_t>(s->config_.l2_cmdline.size());
  std::memcpy(s->boot_.cmdline, s->config_.l2_cmdline.data(), s->config_.l2_cmdline.size());
  ASSIGN_OR_RETURN(
      DeviceJournal journal,
      DeviceJournal::Create(DeviceJournal::CapacityFor(nested_abi::kJournalRegionSize)));
  s->journal_ = std::make_unique<DeviceJournal>(std::move(journal));
  ASSIGN_OR_RETURN(s->active_, s->StartL1());
  ASSIGN_OR_RETURN(s->standby_, s->StartL1());
  s->heartbeat_seen_ = absl::Now();
  s->thread_ = std::thread([raw = s.get()] { raw->Watch(); });
  return s;
}

NestedSupervisor::~NestedSupervisor() { Stop(); }

void NestedSupervisor::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  Finish({ExitOutcome::kFatal, 0, "stopped", 0, 0, 0, false});
}

absl::StatusOr<std::unique_ptr<NestedL1>> NestedSupervisor::StartL1() {
  NestedL1Config c;
  c.id = next_l1_id_++;
  c.kernel = config_.l1_kernel;
  c.initrd = config_.l1_initrd;
  c.memory_bytes = config_.l1_memory;
  if (!config_.console_dir.empty()) {
    c.console_log = absl::StrCat(config_.console_dir, "/l1-", c.id, ".log");
  }
  c.journal_fd = journal_->memfd();
  c.l2_ram_fd = l2_ram_->regions()[0].fd;
  c.l2_ram_size = config_.l2_memory;
  c.boot = boot_;
  c.kvm_path = config_.kvm_path;
  DeviceJournal* journal = journal_.get();
  c.journal_commits = [journal] { return journal->commits(); };
  Log(absl::StrCat("starting L1 #", c.id));
  return NestedL1::Start(std::move(c));
}

NestedResult NestedSupervisor::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::optional<NestedResult>* r) { return r->has_value(); }, &result_));
  return *result_;
}

std::vector<NestedFailover> NestedSupervisor::failovers() const {
  absl::MutexLock lock(&mu_);
  return failovers_;
}

std::vector<double> NestedSupervisor::l1_boot_seconds() const {
  absl::MutexLock lock(&mu_);
  return boot_seconds_;
}

void NestedSupervisor::Log(std::string_view line) const {
  if (config_.log) config_.log(line);
}

void NestedSupervisor::Finish(NestedResult result) {
  result.register_faults = register_faults_;
  result.masked_faults = masked_faults_;
  absl::MutexLock lock(&mu_);
  if (!result_.has_value()) result_ = std::move(result);
}

void NestedSupervisor::DrainConsole(NestedL1& l1, uint64_t upto) {
  if (upto <= console_done_) return;
  const std::string bytes = ReadConsoleRing(l1.console_ring(), console_done_, upto);
  if (config_.serial_output.valid()) WriteAll(config_.serial_output.get(), bytes);
  console_done_ = upto;
}

void NestedSupervisor::Watch() {
  while (!stop_.load()) {
    if (!CheckActive() || !KeepStandby()) return;
    MaybeInjectFault();
    VerifyPlacement();
    LogProgress();
    absl::SleepFor(kPoll);
  }
}

bool NestedSupervisor::CheckActive() {
  NestedL1& a = *active_;
  const AgentState state = a.agent_state();
  if (!l2_started_) {
    if (std::optional<MachineResult> ended = a.Ended(); ended.has_value()) {
      return ReplaceUnbootedL1(absl::StrCat("stopped while booting: ", ended->reason));
    }
    if (state == AgentState::kReady) {
      ArmExitTracking(a);
      a.Send(Command::kBoot);
      l2_started_ = true;
      heartbeat_seen_ = absl::Now();
      {
        absl::MutexLock lock(&mu_);
        boot_seconds_.push_back(absl::ToDoubleSeconds(absl::Now() - a.started()));
      }
      Log(absl::StrFormat("L1 #%d ready in %.1f s; booting L2 in it", a.id(),
                          absl::ToDoubleSeconds(absl::Now() - a.started())));
    } else if (state == AgentState::kFailed || state == AgentState::kDied ||
               absl::Now() - a.started() > config_.l1_boot_timeout) {
      return ReplaceUnbootedL1(
          absl::StrCat("did not become ready: ", a.control()->message));
    }
    return true;
  }
  DrainConsole(a, a.control()->console_published.load(std::memory_order_acquire));
  if (state == AgentState::kFinished) {
    NestedResult result;
    result.action = static_cast<ExitOutcome::Action>(a.control()->result.action);
    result.exit_status = a.control()->result.exit_status;
    result.reason = a.control()->message;
    if (absl::StatusOr<std::string> payload = journal_->ReadCommitted(); payload.ok()) {
      if (absl::StatusOr<NestedCommit> c = DecodeNestedCommit(*payload); c.ok()) {
        result.verified_reports = c->verified_reports;
        result.violations = c->oracle_violations;
        result.exits = c->exits;
        DrainConsole(a, c->console_bytes);
      }
    }
    Finish(std::move(result));
    return false;
  }
  std::string cause;
  if (std::optional<MachineResult> ended = a.Ended(); ended.has_value()) {
    // An L1 kernel panic: at once through pvpanic (the L1's driver), else seen when it resets.
    const bool pvpanic = ended->reason.find("pvpanic") != std::string::npos;
    const bool panic = pvpanic || a.ConsoleTail(8192).find("Kernel panic") != std::string::npos;
    cause = absl::StrCat("L1 VM ended",
                         pvpanic ? " by a kernel panic" : (panic ? " after a kernel panic" : ""),
                         ": ", ended->reason);
  } else if (state == AgentState::kDied) {
    cause = absl::StrCat("agent died: ", a.control()->message);
  } else if (state == AgentState::kFailed) {
    cause = absl::StrCat("agent failed: ", a.control()->message);
  } else if (const uint64_t hb = a.heartbeat(); hb != last_heartbeat_) {
    last_heartbeat_ = hb;
    heartbeat_seen_ = absl::Now();
  } else if (absl::Now() - heartbeat_seen_ > config_.hang_timeout) {
    cause = absl::StrCat("hang: no heartbeat for ", Ms(absl::Now() - heartbeat_seen_));
  }
  if (cause.empty()) return true;
  // An L1 whose VM still runs (a hung, dead or failed agent) may be in the middle of an L2
  // exit when paused: let it run on between capture attempts, as for a kill. (A heartbeat can
  // also stall when the host starves the L1 of CPU; the L1 then holds L2 in guest mode.)
  return Failover(cause, /*l1_alive=*/!a.Ended().has_value(), absl::Now());
}

bool NestedSupervisor::ReplaceUnbootedL1(const std::string& why) {
  const int failed = active_->id();
  if (unbooted_replacements_ >= kMaxUnbootedReplacements) {
    Finish({ExitOutcome::kFatal, 0,
            absl::StrCat("L1 #", failed, " ", why, " (", unbooted_replacements_,
                         " L1s replaced before L2 ran: giving up)"),
            0, 0, 0, true});
    return false;
  }
  ++unbooted_replacements_;
  active_->Kill();
  std::unique_ptr<NestedL1> next = std::move(standby_);
  if (next == nullptr) {
    absl::StatusOr<std::unique_ptr<NestedL1>> started = StartL1();
    if (!started.ok()) {
      Finish({ExitOutcome::kFatal, 0,
              absl::StrCat("L1 #", failed, " ", why, "; cannot start another: ",
                           started.status().message()),
              0, 0, 0, true});
      return false;
    }
    next = std::move(*started);
  }
  Log(absl::StrCat("L1 #", failed, " ", why, "; L2 never ran there: L1 #", next->id(),
                   " takes its place"));
  active_ = std::move(next);  // KeepStandby starts the next standby
  return true;
}

bool NestedSupervisor::KeepStandby() {
  if (standby_ != nullptr) {
    const AgentState state = standby_->agent_state();
    if (state == AgentState::kReady && standby_ready_id_ != standby_->id()) {
      standby_ready_id_ = standby_->id();
      const double seconds = absl::ToDoubleSeconds(absl::Now() - standby_->started());
      Log(absl::StrFormat("standby L1 #%d ready in %.1f s", standby_->id(), seconds));
      absl::MutexLock lock(&mu_);
      boot_seconds_.push_back(seconds);
    }
    if (standby_->Ended().has_value() || state == AgentState::kFailed ||
        state == AgentState::kDied ||
        (state != AgentState::kReady &&
         absl::Now() - standby_->started() > config_.l1_boot_timeout)) {
      Log(absl::StrCat("standby L1 #", standby_->id(), " failed (", standby_->control()->message,
                       "); starting another"));
      standby_.reset();
    }
  }
  if (standby_ == nullptr) {
    absl::StatusOr<std::unique_ptr<NestedL1>> l1 = StartL1();
    if (!l1.ok()) {
      Finish({ExitOutcome::kFatal, 0,
              absl::StrCat("cannot start a standby L1: ", l1.status().message()), 0, 0, 0, true});
      return false;
    }
    standby_ = std::move(*l1);
  }
  return true;
}

void NestedSupervisor::MaybeInjectFault() {
  if (pending_flip_.has_value() &&
      absl::Now() - *pending_flip_ > config_.hang_timeout + absl::Seconds(2)) {
    ++masked_faults_;
    Log(absl::StrCat("register fault #", register_faults_, " masked: L1 #", active_->id(),
                     " shows no failure"));
    pending_flip_.reset();
  }
  if (config_.fault == NestedFault::kNone || !l2_started_ || pending_fault_.has_value() ||
      pending_flip_.has_value()) {
    return;
  }
  if (config_.fault_count > 0 && faults_injected_ >= config_.fault_count) return;
  if (active_->agent_state() != AgentState::kRunning) return;
  // L2 is re-homed from a commit (parked) or from guest mode plus the last commit's devices:
  // before its first commit there is nothing to re-home it from.
  if (journal_->commits() == 0) return;
  if (standby_ == nullptr || standby_->agent_state() != AgentState::kReady) return;
  if (absl::Now() - last_fault_ < config_.fault_every) return;
  NestedFault fault = config_.fault;
  if (fault == NestedFault::kMixed) {
    static constexpr NestedFault kCycle[] = {NestedFault::kKill, NestedFault::kPanic,
                                             NestedFault::kHang, NestedFault::kCrash,
                                             NestedFault::kCrashInExit};
    fault = kCycle[faults_injected_ % std::size(kCycle)];
  }
  ++faults_injected_;
  last_fault_ = absl::Now();
  if (fault == NestedFault::kRegister) return InjectRegisterFault();
  if (fault == NestedFault::kDieInExit) return InjectDeathInExit();
  Log(absl::StrCat("injecting ", NestedFaultName(fault), " into L1 #", active_->id()));
  switch (fault) {
    case NestedFault::kKill:
      (void)Failover("kill (injected)", /*l1_alive=*/true, absl::Now());
      return;
    case NestedFault::kPanic:
      active_->Send(Command::kPanic);
      break;
    case NestedFault::kHang:
      active_->Send(Command::kHang);
      break;
    case NestedFault::kCrash:
      active_->Send(Command::kCrash);
      break;
    case NestedFault::kCrashInExit:
      active_->Send(Command::kCrashInExit);
      break;
    default:
      return;
  }
  pending_fault_ = absl::Now();
}

void NestedSupervisor::InjectRegisterFault() {
  std::mt19937_64& rng = flip_rng_;
  NestedL1& a = *active_;
  for (int attempt = 0; attempt < kMaxCaptureAttempts; ++attempt) {
    if (!a.machine().Pause(absl::Seconds(5)).ok()) return;
    const RegisterFlip flip{static_cast<int>(rng() % kFlippableRegisters),
                            static_cast<int>(rng() % 64)};
    absl::StatusOr<std::string> done = FlipL1Register(a, flip);
    (void)a.machine().Resume();
    if (done.ok()) {
      ++register_faults_;
      pending_flip_ = absl::Now();
      Log(absl::StrCat("register fault #", register_faults_, ": ", *done));
      return;
    }
    if (!absl::IsUnavailable(done.status())) {
      Log(absl::StrCat("register fault not injected: ", done.status().message()));
      return;
    }
    absl::SleepFor(absl::Microseconds(200 + rng() % 1800));  // L2 runs: catch L1 code later
  }
}

void NestedSupervisor::InjectDeathInExit() {
  std::mt19937_64& rng = flip_rng_;
  NestedL1& a = *active_;
  for (int attempt = 0; attempt < kMaxCaptureAttempts; ++attempt) {
    if (!a.machine().Pause(absl::Seconds(5)).ok()) return;
    absl::StatusOr<bool> guest_mode = L2InGuestMode(a);
    const nested_abi::ControlPage* page = a.control();
    const bool parked =
        ParkedAtLastCommit(page->parked.load(), page->parked_commit.load(), journal_->commits());
    if (guest_mode.ok() && !*guest_mode && !parked) {
      Log(absl::StrCat("injecting die-in-exit into L1 #", a.id(), " (attempt ", attempt + 1, ", ",
                       a.exits_tracked(), " exits tracked)"));
      pending_fault_ = absl::Now();
      // Dead where it stands: paused now, captured once (no retry), then fenced.
      (void)Failover("died inside an L2 exit (injected)", /*l1_alive=*/false, absl::Now());
      return;
    }
    (void)a.machine().Resume();
    absl::SleepFor(absl::Microseconds(200 + rng() % 1800));  // L2 in guest mode or parked
  }
  Log("die-in-exit not injected: L2 was never inside the L1 when paused");
}

void NestedSupervisor::ArmExitTracking(NestedL1& l1) {
  const uint64_t rip = l1.control()->vmrun_return_rip.load(std::memory_order_acquire);
  if (!config_.track_exits || rip == 0 || l1.exit_tracking()) return;
  absl::Status armed = l1.machine().Pause(absl::Seconds(5));
  if (armed.ok()) armed = l1.ArmExitTracking(rip);
  (void)l1.machine().Resume();
  Log(armed.ok() ? absl::StrFormat("L1 #%d: following L2's exits at 0x%x", l1.id(), rip)
                 : absl::StrCat("L1 #", l1.id(), ": L2's exits not followed: ", armed.message()));
}

bool NestedSupervisor::Failover(const std::string& cause, bool l1_alive, absl::Time detected) {
  NestedFailover f;
  f.number = static_cast<int>(failovers().size()) + 1;
  f.cause = pending_flip_.has_value()
                ? absl::StrCat(cause, " after register fault #", register_faults_)
                : cause;
  f.from_l1 = active_->id();
  if (pending_fault_.has_value()) f.detect = detected - *pending_fault_;
  if (pending_flip_.has_value()) f.detect = detected - *pending_flip_;
  pending_fault_.reset();
  pending_flip_.reset();
  Log(absl::StrCat("L1 #", f.from_l1, " failed: ", cause));
  if (f.number > config_.max_failovers) {
    Finish(
        {ExitOutcome::kFatal, 0,
         absl::StrCat("failover limit (", config_.max_failovers, ") reached; last cause: ", cause),
         0, 0, 0, true});
    return false;
  }
  NestedL1& old = *active_;
  // Stop the failed L1 where it is: a live one (a kill) is paused until L2 is capturable.
  const bool ended = old.Ended().has_value();
  auto pause = [&]() { return ended ? absl::OkStatus() : old.machine().Pause(absl::Seconds(5)); };
  absl::StatusOr<L2Capture> capture = absl::UnavailableError("not captured");
  std::mt19937 rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  for (f.capture_attempts = 1;; ++f.capture_attempts) {
    if (absl::Status paused = pause(); !paused.ok()) {
      capture = paused;
      break;
    }
    capture = CaptureL2(old, *journal_, config_.l2_memory);
    if (capture.ok() || !absl::IsUnavailable(capture.status()) || !l1_alive ||
        f.capture_attempts >= kMaxCaptureAttempts) {
      break;
    }
    (void)old.machine().Resume();  // L2 is mid-exit inside the L1: let it get out
    absl::SleepFor(absl::Microseconds(200 + rng() % 1800));
  }
  const absl::Time captured = absl::Now();
  f.capture = captured - detected;
  old.Kill();  // fenced: its vCPUs never run again
  if (!capture.ok()) {
    Finish(
        {ExitOutcome::kFatal, 0,
         absl::StrCat("cannot re-home L2 from L1 #", f.from_l1, ": ", capture.status().message()),
         0, 0, 0, true});
    return false;
  }
  f.source = capture->source;
  f.commit = capture->commit_number;
  if (capture->placement.has_value()) f.placement = capture->placement->Summary();
  DrainConsole(old, capture->committed.console_bytes);
  // The standby must be ready (an L1 boots in tens of seconds on the emulated host).
  while (standby_ == nullptr || standby_->agent_state() != AgentState::kReady) {
    if (stop_.load() || !KeepStandby()) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  NestedL1& next = *standby_;
  f.to_l1 = next.id();
  const std::string state = EncodeVmState(capture->l2);
  f.state_bytes = state.size();
  if (state.size() > next.transfer().size()) {
    Finish({ExitOutcome::kFatal, 0, "L2 state does not fit the transfer area", 0, 0, 0, true});
    return false;
  }
  std::memcpy(next.transfer().data(), state.data(), state.size());
  next.control()->transfer_len = state.size();
  ArmExitTracking(next);
  next.Send(Command::kTakeOver);
  const absl::Time handed = absl::Now();
  f.handoff = handed - captured;
  while (next.agent_state() != AgentState::kRunning) {
    const AgentState s = next.agent_state();
    if (s == AgentState::kFailed || s == AgentState::kDied || next.Ended().has_value() ||
        absl::Now() - handed > config_.takeover_timeout) {
      Finish({ExitOutcome::kFatal, 0,
              absl::StrCat("L1 #", next.id(), " could not take L2 over: ", next.control()->message),
              0, 0, 0, true});
      return false;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  const absl::Time running = absl::Now();
  f.takeover = running - handed;
  f.total = running - detected;
  Log(f.ToString());
  {
    absl::MutexLock lock(&mu_);
    failovers_.push_back(f);
  }
  console_done_ = capture->committed.console_bytes;
  active_ = std::move(standby_);
  last_heartbeat_ = active_->heartbeat();
  heartbeat_seen_ = last_fault_ = absl::Now();
  verify_pending_ = true;
  verify_at_ = absl::Now() + absl::Seconds(2);
  return true;
}

void NestedSupervisor::LogProgress() {
  if (!l2_started_ || absl::Now() < progress_at_) return;
  progress_at_ = absl::Now() + config_.progress_every;
  uint64_t reports = 0;
  if (absl::StatusOr<std::string> payload = journal_->ReadCommitted(); payload.ok()) {
    if (absl::StatusOr<NestedCommit> c = DecodeNestedCommit(*payload); c.ok()) {
      reports = c->verified_reports;
    }
  }
  const nested_abi::ControlPage* page = active_->control();
  Log(absl::StrFormat(
      "L2 in L1 #%d (agent state %d: %s): %d exits, %d reports verified, "
      "commit %d; %s; standby %s",
      active_->id(), page->agent_state.load(), page->message, page->l2_exits.load(), reports,
      journal_->commits(),
      active_->exit_tracking()
          ? absl::StrFormat("%d exits to the L1 followed (%d unreadable)", active_->exits_tracked(),
                            active_->exit_capture_errors())
          : "exits to the L1 not followed",
      standby_ == nullptr ? "none"
      : standby_->agent_state() == AgentState::kReady
          ? absl::StrCat("L1 #", standby_->id(), " ready")
          : absl::StrCat("L1 #", standby_->id(), " booting")));
}

// After a take-over, L0 checks once that the new L1 keeps L2 in the shared range: with it
// paused in guest mode, the NPT walk must find every L2 page there.
void NestedSupervisor::VerifyPlacement() {
  if (!verify_pending_ || absl::Now() < verify_at_) return;
  NestedL1& a = *active_;
  if (a.agent_state() != AgentState::kRunning || !a.machine().Pause(absl::Seconds(2)).ok()) {
    verify_pending_ = false;
    return;
  }
  absl::StatusOr<std::optional<nested::PlacementReport>> report =
      CheckL2Placement(a, config_.l2_memory);
  (void)a.machine().Resume();
  if (!report.ok()) {
    Log(absl::StrCat("L1 #", a.id(), ": NPT check failed: ", report.status().message()));
    verify_pending_ = false;
  } else if (report->has_value()) {
    Log(absl::StrCat("L1 #", a.id(), " keeps L2 in the shared range: ", (*report)->Summary()));
    verify_pending_ = false;
  } else {
    verify_at_ = absl::Now() + absl::Milliseconds(200);  // not in guest mode now: later
  }
}

}  // namespace rehome
