// vmm/cli/guest_cmdline.h: host-side reading of the test guest's command line (the keys listed
// in guest/abi/rehome_abi.h), so that rehome can arm the right oracle and pass cpus=N.
// Pure functions; thread-safe.
#ifndef REHOME_VMM_CLI_GUEST_CMDLINE_H_
#define REHOME_VMM_CLI_GUEST_CMDLINE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/counter_oracle.h"

namespace rehome {

struct GuestWorkload {
  std::string name = "idle";  // workload= (the guest's default is idle)
  uint64_t seed = 1;
  uint64_t steps = 0;
  uint64_t report_every = abi::kDefaultReportEvery;
};

// Reads workload/seed/steps/report_every from a space-separated key=value command line. Other
// keys and words are ignored (they belong to other kernels). InvalidArgument naming the key
// when a value of a known key is not a number, or report_every is 0.
absl::StatusOr<GuestWorkload> ParseGuestWorkload(const std::string& cmdline);

// The oracle for `workload` on `cpus` vCPUs, or nullopt when the workload reports nothing.
std::optional<CounterOracle::Config> OracleConfigFor(const GuestWorkload& workload, int cpus);

// `cmdline` with " cpus=N" appended unless it already has a cpus= key. InvalidArgument when it
// has one with another value (the guest would wait for vCPUs that do not exist).
absl::StatusOr<std::string> WithCpusKey(const std::string& cmdline, int cpus);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_GUEST_CMDLINE_H_
