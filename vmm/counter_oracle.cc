// vmm/counter_oracle.cc: CounterOracle verification, summary and state encoding.
#include "vmm/counter_oracle.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome {
namespace {

constexpr uint8_t kStateVersion = 1;
constexpr uint32_t kMaxViolationText = 4096;

bool SameConfig(const CounterOracle::Config& a, const CounterOracle::Config& b) {
  return a.cpus == b.cpus && a.seed == b.seed && a.steps == b.steps &&
         a.report_every == b.report_every;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CounterOracle>> CounterOracle::Create(const Config& config) {
  if (config.cpus == 0 || config.cpus > kMaxCpus) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter oracle: cpus must be 1..", kMaxCpus, ", got ", config.cpus));
  }
  if (config.report_every == 0) {
    return absl::InvalidArgumentError("counter oracle: report_every must be > 0");
  }
  return std::unique_ptr<CounterOracle>(new CounterOracle(config));
}

CounterOracle::CounterOracle(const Config& config) : config_(config), vcpus_(config.cpus) {
  for (uint32_t i = 0; i < config.cpus; ++i) counter::Init(&vcpus_[i].chain, i, config.seed);
}

void CounterOracle::Violation(std::string what) {
  ++violations_;
  if (first_violation_.empty()) first_violation_ = std::move(what);
}

void CounterOracle::RecordViolation(std::string what) {
  absl::MutexLock lock(&mu_);
  Violation(std::move(what));
}

bool CounterOracle::OnReport(const abi::CounterReport& report) {
  absl::MutexLock lock(&mu_);
  if (report.magic != abi::kCounterReportMagic) {
    Violation(absl::StrFormat("report with bad magic 0x%08x (expected 0x%08x)", report.magic,
                              abi::kCounterReportMagic));
    return false;
  }
  if (report.vcpu >= config_.cpus) {
    Violation(absl::StrFormat("report from vcpu %u, but the guest has %u vCPUs", report.vcpu,
                              config_.cpus));
    return false;
  }
  VcpuState& v = vcpus_[report.vcpu];
  const uint32_t id = report.vcpu;
  if (v.final_seen) {
    Violation(absl::StrFormat("vcpu %u: report for step %u after its final report (step %u)", id,
                              report.step, v.last_step));
    return false;
  }
  uint64_t expected = v.last_step + config_.report_every;
  if (expected < v.last_step) expected = UINT64_MAX;
  if (config_.steps > 0 && expected >= config_.steps) expected = config_.steps;
  if (report.step != expected) {
    const char* why = report.step <= v.last_step ? "repeated report"
                      : report.step > expected   ? "lost or skipped report"
                                                 : "report out of cadence";
    Violation(
        absl::StrFormat("vcpu %u: expected step %u, got %u (%s)", id, expected, report.step, why));
    return false;
  }
  const bool is_final = (report.flags & abi::kCounterReportFinal) != 0;
  const bool want_final = config_.steps > 0 && report.step == config_.steps;
  if (is_final != want_final) {
    Violation(want_final ? absl::StrFormat("vcpu %u: report for the last step %u lacks the final "
                                           "flag",
                                           id, report.step)
                         : absl::StrFormat("vcpu %u: final flag on step %u, but steps=%u", id,
                                           report.step, config_.steps));
    return false;
  }
  while (v.chain.step < report.step) {
    counter::Step(&v.chain);
    if ((v.chain.step & 0xffff) == 0 && progress_) progress_();  // long recomputations
  }
  v.last_step = report.step;
  v.final_seen = is_final;
  uint64_t digest[4];
  counter::Digest(&v.chain, digest);
  if (std::memcmp(digest, report.digest, sizeof(digest)) != 0) {
    Violation(absl::StrFormat(
        "vcpu %u: digest mismatch at step %u: guest %016x.., host %016x.. (state corrupted)", id,
        report.step, report.digest[0], digest[0]));
    return false;
  }
  ++verified_reports_;
  return true;
}

uint64_t CounterOracle::verified_reports() const {
  absl::MutexLock lock(&mu_);
  return verified_reports_;
}

uint64_t CounterOracle::verified_steps(uint32_t vcpu) const {
  absl::MutexLock lock(&mu_);
  return vcpu < vcpus_.size() ? vcpus_[vcpu].last_step : 0;
}

uint64_t CounterOracle::violation_count() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

std::optional<std::string> CounterOracle::violation() const {
  absl::MutexLock lock(&mu_);
  if (violations_ == 0) return std::nullopt;
  return first_violation_;
}

bool CounterOracle::complete() const {
  absl::MutexLock lock(&mu_);
  if (config_.steps == 0) return false;
  for (const VcpuState& v : vcpus_) {
    if (!v.final_seen) return false;
  }
  return true;
}

std::string CounterOracle::Summary() const {
  const bool done = complete();
  absl::MutexLock lock(&mu_);
  uint64_t total = 0;
  for (const VcpuState& v : vcpus_) total += v.last_step;
  std::string s = absl::StrFormat("counter: %u vCPUs, %u reports verified, steps %u", config_.cpus,
                                  verified_reports_, total);
  if (config_.steps > 0) {
    absl::StrAppend(&s, "/", config_.steps * config_.cpus, done ? ", complete" : ", incomplete");
  }
  if (violations_ == 0) {
    absl::StrAppend(&s, ", no violations");
  } else {
    absl::StrAppend(&s, ", ", violations_, " violation(s), first: ", first_violation_);
  }
  return s;
}

absl::Status CounterOracle::CheckCompleteAtExit() const {
  absl::MutexLock lock(&mu_);
  if (violations_ > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("counter oracle: ", violations_, " violation(s), first: ", first_violation_));
  }
  if (config_.steps == 0) return absl::OkStatus();
  for (uint32_t i = 0; i < vcpus_.size(); ++i) {
    if (!vcpus_[i].final_seen) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "counter oracle: vcpu %u exited without its final report (verified %u of %u steps)", i,
          vcpus_[i].last_step, config_.steps));
    }
  }
  return absl::OkStatus();
}

CounterOracle::State CounterOracle::SaveState() const {
  absl::MutexLock lock(&mu_);
  return State{config_, verified_reports_, violations_, first_violation_, vcpus_};
}

absl::Status CounterOracle::RestoreState(const State& state) {
  if (!SameConfig(state.config, config_)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "counter oracle state: config (cpus %u seed %u steps %u report_every %u) differs from "
        "this oracle's (cpus %u seed %u steps %u report_every %u)",
        state.config.cpus, state.config.seed, state.config.steps, state.config.report_every,
        config_.cpus, config_.seed, config_.steps, config_.report_every));
  }
  if (state.vcpus.size() != config_.cpus) {
    return absl::InvalidArgumentError(absl::StrCat("counter oracle state: ", state.vcpus.size(),
                                                   " vCPU records for ", config_.cpus, " vCPUs"));
  }
  for (size_t i = 0; i < state.vcpus.size(); ++i) {
    const VcpuState& v = state.vcpus[i];
    if (v.chain.step != v.last_step || (config_.steps > 0 && v.last_step > config_.steps) ||
        (v.final_seen && v.last_step != config_.steps)) {
      return absl::InvalidArgumentError(
          absl::StrCat("counter oracle state: vcpu ", i, " progress is inconsistent"));
    }
  }
  absl::MutexLock lock(&mu_);
  vcpus_ = state.vcpus;
  verified_reports_ = state.verified_reports;
  violations_ = state.violations;
  first_violation_ = state.first_violation;
  return absl::OkStatus();
}

std::vector<uint8_t> CounterOracle::EncodeState(const State& state) {
  StateWriter w(kStateVersion);
  w.U32(state.config.cpus);
  w.U64(state.config.seed);
  w.U64(state.config.steps);
  w.U64(state.config.report_every);
  w.U64(state.verified_reports);
  w.U64(state.violations);
  w.Bytes(std::string_view(state.first_violation).substr(0, kMaxViolationText));
  w.U32(static_cast<uint32_t>(state.vcpus.size()));
  for (const VcpuState& v : state.vcpus) {
    w.U64(v.last_step);
    w.U8(v.final_seen ? 1 : 0);
    for (int j = 0; j < 4; ++j) w.U64(v.chain.v[j]);
    w.U64(v.chain.step);
    w.U64Array(v.chain.scratch);
  }
  return w.Finish();
}

absl::StatusOr<CounterOracle::State> CounterOracle::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "counter oracle");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State state;
  state.config.cpus = r.U32();
  state.config.seed = r.U64();
  state.config.steps = r.U64();
  state.config.report_every = r.U64();
  state.verified_reports = r.U64();
  state.violations = r.U64();
  state.first_violation = r.Bytes(kMaxViolationText);
  const uint32_t n = r.U32();
  constexpr size_t kVcpuRecordBytes = 8 + 1 + 8 * (5 + counter::kScratchWords);
  if (n != state.config.cpus || n > kMaxCpus) {
    r.Fail(absl::StrCat(n, " vCPU records for ", state.config.cpus, " vCPUs"));
  } else if (r.remaining() < n * kVcpuRecordBytes) {
    r.Fail(absl::StrCat(r.remaining(), " bytes left for ", n, " vCPU records"));
  } else {
    state.vcpus.resize(n);
    for (VcpuState& v : state.vcpus) {
      v.last_step = r.U64();
      v.final_seen = r.Bool();
      for (int j = 0; j < 4; ++j) v.chain.v[j] = r.U64();
      v.chain.step = r.U64();
      v.chain.pad[0] = v.chain.pad[1] = v.chain.pad[2] = 0;
      r.U64Array(v.chain.scratch);
    }
  }
  RETURN_IF_ERROR(r.Finish());
  return state;
}

}  // namespace rehome
