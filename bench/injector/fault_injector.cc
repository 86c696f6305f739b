// bench/injector/fault_injector.cc: Inject and the fault types.
#include "bench/injector/fault_injector.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/scoped_realtime.h"
#include "bench/injector/traced_thread.h"
#include "bench/injector/trigger.h"

namespace rehome::inject {
namespace {

constexpr std::array<std::pair<FaultType, std::string_view>, 7> kFaultNames = {{
    {FaultType::kFailStop, "fail-stop"},
    {FaultType::kRegister, "register"},
    {FaultType::kCode, "code"},
    {FaultType::kMemory, "memory"},
    {FaultType::kMemoryShared, "memory-shared"},
    {FaultType::kHang, "hang"},
    {FaultType::kLivelock, "livelock"},
}};

// The registers of the register fault: every GPR (RSP included), RFLAGS and RIP.
struct RegisterSlot {
  const char* name;
  unsigned long long user_regs_struct::*field;
};
constexpr std::array<RegisterSlot, 18> kRegisters = {{
    {"rax", &user_regs_struct::rax},
    {"rbx", &user_regs_struct::rbx},
    {"rcx", &user_regs_struct::rcx},
    {"rdx", &user_regs_struct::rdx},
    {"rsi", &user_regs_struct::rsi},
    {"rdi", &user_regs_struct::rdi},
    {"rbp", &user_regs_struct::rbp},
    {"rsp", &user_regs_struct::rsp},
    {"r8", &user_regs_struct::r8},
    {"r9", &user_regs_struct::r9},
    {"r10", &user_regs_struct::r10},
    {"r11", &user_regs_struct::r11},
    {"r12", &user_regs_struct::r12},
    {"r13", &user_regs_struct::r13},
    {"r14", &user_regs_struct::r14},
    {"r15", &user_regs_struct::r15},
    {"rflags", &user_regs_struct::eflags},
    {"rip", &user_regs_struct::rip},
}};

int64_t RealtimeMicros() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000LL + ts.tv_nsec / 1000;
}

// Reads or rewrites one byte of the process's code (or any memory) through ptrace: a write to a
// read-only private mapping gives the process its own copy of the page.
absl::StatusOr<uint8_t> PeekByte(const TracedThread& thread, uint64_t addr) {
  absl::StatusOr<uint64_t> word = thread.Peek(addr & ~7ull);
  if (!word.ok()) return word.status();
  return static_cast<uint8_t>(*word >> ((addr & 7) * 8));
}

absl::Status PokeByte(TracedThread& thread, uint64_t addr, uint8_t value) {
  absl::StatusOr<uint64_t> word = thread.Peek(addr & ~7ull);
  if (!word.ok()) return word.status();
  const int shift = static_cast<int>(addr & 7) * 8;
  const uint64_t patched = (*word & ~(0xffull << shift)) | (static_cast<uint64_t>(value) << shift);
  return thread.Poke(addr & ~7ull, patched);
}

// A draw from [0, max], unless the plan fixed it (forced >= 0). Always draws, so that a forced
// choice does not change the later ones.
int DrawBit(std::mt19937_64& rng, int max, int forced) {
  const int drawn = std::uniform_int_distribution<int>(0, max)(rng);
  return forced >= 0 ? forced : drawn;
}

absl::Status FlipRegister(TracedThread& thread, user_regs_struct regs, std::mt19937_64& rng,
                          const InjectionPlan& plan, InjectionRecord* record) {
  const RegisterSlot* slot =
      &kRegisters[std::uniform_int_distribution<size_t>(0, kRegisters.size() - 1)(rng)];
  if (!plan.register_name.empty()) {
    slot = nullptr;
    for (const RegisterSlot& s : kRegisters) {
      if (plan.register_name == s.name) slot = &s;
    }
    if (slot == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown register '", plan.register_name, "'"));
    }
  }
  record->bit = DrawBit(rng, 63, plan.bit);
  record->target = slot->name;
  record->old_value = regs.*slot->field;
  regs.*slot->field ^= 1ull << record->bit;
  if (absl::Status s = thread.SetRegs(regs); !s.ok()) return s;
  absl::StatusOr<user_regs_struct> after = thread.GetRegs();
  if (!after.ok()) return after.status();
  record->new_value = (*after).*slot->field;
  if (record->new_value == record->old_value) {
    record->note = "the kernel kept the register unchanged (a reserved or privileged RFLAGS bit)";
  }
  return absl::OkStatus();
}

absl::Status FlipCode(TracedThread& thread, uint64_t rip, std::mt19937_64& rng,
                      const InjectionPlan& plan, InjectionRecord* record) {
  record->target = "code";
  record->address = rip + std::uniform_int_distribution<uint64_t>(0, 14)(rng);
  record->bit = DrawBit(rng, 7, plan.bit);
  absl::StatusOr<uint8_t> old = PeekByte(thread, record->address);
  if (!old.ok()) return old.status();
  record->old_value = *old;
  if (absl::Status s = PokeByte(thread, record->address, *old ^ (1u << record->bit)); !s.ok()) {
    return s;
  }
  absl::StatusOr<uint8_t> now = PeekByte(thread, record->address);
  if (!now.ok()) return now.status();
  record->new_value = *now;
  return absl::OkStatus();
}

// Flips a bit of a byte drawn uniformly from `candidates` (whole regions, or resident pages).
struct Span {
  uint64_t start;
  uint64_t size;
  const MapRegion* region;
};

absl::Status FlipMemory(pid_t pid, const std::vector<Span>& candidates, std::mt19937_64& rng,
                        const InjectionPlan& plan, InjectionRecord* record) {
  uint64_t total = 0;
  for (const Span& s : candidates) total += s.size;
  if (total == 0) return absl::NotFoundError("no memory of that kind in the target");
  uint64_t pick = std::uniform_int_distribution<uint64_t>(0, total - 1)(rng);
  record->bit = DrawBit(rng, 7, plan.bit);
  for (const Span& s : candidates) {
    if (pick >= s.size) {
      pick -= s.size;
      continue;
    }
    record->address = s.start + pick;
    record->region = s.region->path.empty() ? "[anon]" : s.region->path;
    record->region_offset = record->address - s.region->start;
    break;
  }
  absl::StatusOr<uint8_t> old = ReadByte(pid, record->address);
  if (!old.ok()) return old.status();
  record->old_value = *old;
  if (absl::Status s = WriteByte(pid, record->address, *old ^ (1u << record->bit)); !s.ok()) {
    return s;
  }
  absl::StatusOr<uint8_t> now = ReadByte(pid, record->address);
  if (!now.ok()) return now.status();
  record->new_value = *now;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Span>> MemoryCandidates(pid_t pid, const std::vector<MapRegion>& maps,
                                                   bool shared) {
  constexpr uint64_t kMaxRegion = 4ull << 30;  // skips sanitizer shadow reservations
  std::vector<Span> spans;
  for (const MapRegion& r : maps) {
    if (shared) {
      if (IsSharedWithL0(r)) spans.push_back({r.start, r.size(), &r});
      continue;
    }
    if (!IsPrivateData(r) || r.size() > kMaxRegion) continue;
    absl::StatusOr<std::vector<uint64_t>> pages = ResidentPages(pid, r);
    if (!pages.ok()) return pages.status();
    for (uint64_t page : *pages) spans.push_back({page, 4096, &r});
  }
  return spans;
}

}  // namespace

std::string_view FaultTypeName(FaultType type) {
  for (const auto& [t, name] : kFaultNames) {
    if (t == type) return name;
  }
  return "?";
}

absl::StatusOr<FaultType> ParseFaultType(std::string_view name) {
  for (const auto& [t, n] : kFaultNames) {
    if (n == name) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fault type '", absl::string_view(name.data(), name.size()),
                   "' (fail-stop, register, code, memory, memory-shared, hang, livelock)"));
}

nlohmann::json InjectionRecord::ToJson() const {
  nlohmann::json j = {
      {"injected", injected},
      {"fault", std::string(FaultTypeName(type))},
      {"pid", pid},
      {"tid", tid},
      {"rip", absl::StrFormat("0x%x", rip)},
      {"module", where.module},
      {"function", where.function},
      {"module_offset", absl::StrFormat("0x%x", where.module_offset)},
      {"target", target},
      {"bit", bit},
      {"old", absl::StrFormat("0x%x", old_value)},
      {"new", absl::StrFormat("0x%x", new_value)},
      {"steps", steps},
      {"run_us", run_us},
      {"attempts", attempts},
      {"injected_at_us", injected_at_us},
      {"note", note},
  };
  if (address != 0) j["address"] = absl::StrFormat("0x%x", address);
  if (!region.empty()) {
    j["region"] = region;
    j["region_offset"] = region_offset;
  }
  return j;
}

namespace {

// The thread or process vanished under the injector (ESRCH, or its /proc files are gone): L0 may
// have fenced it meanwhile. Not an injector failure.
bool TargetGone(const absl::Status& status, pid_t pid) {
  return absl::IsNotFound(status) || absl::IsUnavailable(status) ||
         access(absl::StrCat("/proc/", pid).c_str(), F_OK) != 0 ||
         absl::StrContains(status.message(), "No such process");
}

absl::StatusOr<InjectionRecord> InjectTraced(pid_t pid, pid_t tid, const InjectionPlan& plan,
                                             InjectionRecord& record) {
  record.type = plan.type;
  record.pid = pid;
  record.tid = tid;
  // Two streams: the fault's parameters do not depend on how many trigger attempts it took.
  std::mt19937_64 trigger_rng(plan.seed * 0x9e3779b97f4a7c15ull + 1);
  std::mt19937_64 fault_rng(plan.seed * 0xbf58476d1ce4e5b9ull + 2);
  absl::StatusOr<TracedThread> thread = TracedThread::Seize(pid, tid);
  if (!thread.ok()) return thread.status();
  absl::SleepFor(plan.delay);
  TriggerSettings settings;
  settings.single_step = plan.trigger == TriggerMode::kStep;
  settings.max_steps = plan.max_steps;
  settings.max_run_us = plan.max_run_us;
  settings.max_attempts = plan.max_attempts;
  absl::StatusOr<TriggerPoint> point = ReachWorkingPoint(*thread, settings, trigger_rng);
  if (!point.ok()) return point.status();
  record.steps = point->steps;
  record.run_us = point->run_us;
  record.attempts = point->attempts;
  if (!point->reached) {
    record.note = thread->gone() ? "the target exited before the trigger"
                                 : "the target was never caught outside a system call";
    return record;
  }
  absl::StatusOr<user_regs_struct> regs = thread->GetRegs();
  if (!regs.ok()) return regs.status();
  record.rip = regs->rip;
  absl::StatusOr<std::vector<MapRegion>> maps = ReadMaps(pid);
  if (!maps.ok()) return maps.status();
  record.where = Locate(pid, *maps, record.rip);
  absl::Status applied = absl::OkStatus();
  switch (plan.type) {
    case FaultType::kFailStop: {
      record.target = "rip";
      record.old_value = regs->rip;
      user_regs_struct changed = *regs;
      changed.rip = 0;
      applied = thread->SetRegs(changed);
      break;
    }
    case FaultType::kRegister:
      applied = FlipRegister(*thread, *regs, fault_rng, plan, &record);
      break;
    case FaultType::kCode:
      applied = FlipCode(*thread, regs->rip, fault_rng, plan, &record);
      break;
    case FaultType::kMemory:
    case FaultType::kMemoryShared: {
      const bool shared = plan.type == FaultType::kMemoryShared;
      record.target = shared ? "memory-shared" : "memory";
      absl::StatusOr<std::vector<Span>> spans = MemoryCandidates(pid, *maps, shared);
      applied = spans.ok() ? FlipMemory(pid, *spans, fault_rng, plan, &record) : spans.status();
      break;
    }
    case FaultType::kHang:
      record.target = "process";
      break;  // after the detach below
    case FaultType::kLivelock:
      record.target = "code";
      record.address = regs->rip;
      // `jmp .` (eb fe): the thread spins at this instruction from now on.
      applied = PokeByte(*thread, regs->rip, 0xeb);
      if (applied.ok()) applied = PokeByte(*thread, regs->rip + 1, 0xfe);
      break;
  }
  if (!applied.ok()) return applied;
  record.injected_at_us = RealtimeMicros();
  thread->Detach();
  if (plan.type == FaultType::kHang && kill(pid, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("SIGSTOP to pid ", pid, " failed"));
  }
  record.injected = true;
  return record;
}

}  // namespace

absl::StatusOr<InjectionRecord> Inject(pid_t pid, pid_t tid, const InjectionPlan& plan) {
  // The trigger stops and inspects the target many times: it must not wait behind the target's
  // and L0's threads for a CPU while the target is stopped (L0 would take a long stop for a hang).
  const ScopedRealtime realtime(2);
  InjectionRecord record;
  absl::StatusOr<InjectionRecord> done = InjectTraced(pid, tid, plan, record);
  if (done.ok() || !TargetGone(done.status(), pid)) return done;
  record.injected = false;
  record.note =
      absl::StrCat("the target exited during the injection (", done.status().message(), ")");
  return record;
}

}  // namespace rehome::inject
