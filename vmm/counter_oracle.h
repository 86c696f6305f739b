// vmm/counter_oracle.h: host-side verifier of the counter workload. Each vCPU of the guest runs
// the hash chain of guest/workloads/counter_chain.h and reports (vcpu, step, digest) every
// `report_every` steps; the oracle recomputes the chain per vCPU and checks that every report
// arrives in order (none lost, repeated or skipped) with the expected digest. The first
// violation is kept as a human-readable line; all are counted. A report that violates cadence
// is not applied (the vCPU's expected next step does not move).
// Thread-safety: all methods are thread-safe (one absl::Mutex; reports come from vCPU threads).
#ifndef REHOME_VMM_COUNTER_ORACLE_H_
#define REHOME_VMM_COUNTER_ORACLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "guest/abi/rehome_abi.h"
#include "guest/workloads/counter_chain.h"

namespace rehome {

class CounterOracle final {
 public:
  static constexpr uint32_t kMaxCpus = 1024;
  struct Config {
    uint32_t cpus = 1;
    uint64_t seed = 1;
    uint64_t steps = 0;  // per-vCPU chain steps; 0 = unbounded
    uint64_t report_every = abi::kDefaultReportEvery;
  };

  // Progress that must survive a failover: the config (checked on restore) and, per vCPU, the
  // host chain state at the last verified step.
  struct VcpuState {
    uint64_t last_step = 0;
    bool final_seen = false;
    counter::ChainState chain;
  };
  struct State {
    Config config;
    uint64_t verified_reports = 0;
    uint64_t violations = 0;
    std::string first_violation;  // empty = none
    std::vector<VcpuState> vcpus;
  };

  // InvalidArgument for cpus outside 1..kMaxCpus or report_every == 0.
  static absl::StatusOr<std::unique_ptr<CounterOracle>> Create(const Config& config);
  CounterOracle(const CounterOracle&) = delete;
  CounterOracle& operator=(const CounterOracle&) = delete;

  // Verifies one report (see the file comment). Returns true if it was verified.
  bool OnReport(const abi::CounterReport& report);
  // Called every 65536 recomputed steps while a report is verified (which takes CPU time
  // proportional to report_every), so that a supervisor can tell slow work from a hang.
  // Set before the first report.
  void SetProgressHook(std::function<void()> hook) { progress_ = std::move(hook); }
  // Records a violation found outside the oracle (e.g. a garbage report GPA).
  void RecordViolation(std::string what);

  uint64_t verified_reports() const;
  uint64_t verified_steps(uint32_t vcpu) const;  // 0 for an out-of-range vcpu
  uint64_t violation_count() const;
  std::optional<std::string> violation() const;  // the first one
  // steps > 0 and every vCPU has sent a verified final report.
  bool complete() const;
  // E.g. "counter: 2 vCPUs, 40 reports verified, steps 2000000/2000000, complete, no violations".
  std::string Summary() const;
  // At guest exit: OK when there is no violation and (steps == 0 or complete()); else
  // FailedPrecondition naming the first violation or the first vCPU without its final report.
  absl::Status CheckCompleteAtExit() const;

  State SaveState() const;
  // InvalidArgument if `state` is inconsistent or its config differs from this oracle's.
  absl::Status RestoreState(const State& state);

  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

 private:
  explicit CounterOracle(const Config& config);
  void Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Config config_;
  std::function<void()> progress_;
  mutable absl::Mutex mu_;
  std::vector<VcpuState> vcpus_ ABSL_GUARDED_BY(mu_);
  uint64_t verified_reports_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t violations_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_violation_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome

#endif  // REHOME_VMM_COUNTER_ORACLE_H_
