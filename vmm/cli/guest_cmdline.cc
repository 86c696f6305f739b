// vmm/cli/guest_cmdline.cc: ParseGuestWorkload, OracleConfigFor, WithCpusKey.
#include "vmm/cli/guest_cmdline.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rehome {
namespace {

absl::Status ParseNumber(const std::string& key, const std::string& value, uint64_t* out) {
  if (value.empty() || value[0] == '-' || value[0] == '+' || !absl::SimpleAtoi(value, out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("guest command line: ", key, "=", value, ": not a non-negative integer"));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> KeyValues(const std::string& cmdline) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (absl::string_view word : absl::StrSplit(cmdline, ' ', absl::SkipEmpty())) {
    const size_t eq = word.find('=');
    if (eq == absl::string_view::npos) continue;
    pairs.emplace_back(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
  }
  return pairs;
}

}  // namespace

absl::StatusOr<GuestWorkload> ParseGuestWorkload(const std::string& cmdline) {
  GuestWorkload workload;
  for (const auto& [key, value] : KeyValues(cmdline)) {
    absl::Status status;
    if (key == "workload") {
      workload.name = value;
    } else if (key == "seed") {
      status = ParseNumber(key, value, &workload.seed);
    } else if (key == "steps") {
      status = ParseNumber(key, value, &workload.steps);
    } else if (key == "report_every") {
      status = ParseNumber(key, value, &workload.report_every);
      if (status.ok() && workload.report_every == 0) {
        status = absl::InvalidArgumentError("guest command line: report_every must be positive");
      }
    }
    if (!status.ok()) return status;
  }
  return workload;
}

std::optional<CounterOracle::Config> OracleConfigFor(const GuestWorkload& workload, int cpus) {
  if (workload.name != "counter") return std::nullopt;
  CounterOracle::Config config;
  config.cpus = static_cast<uint32_t>(cpus);
  config.seed = workload.seed;
  config.steps = workload.steps;
  config.report_every = workload.report_every;
  return config;
}

absl::StatusOr<std::string> WithCpusKey(const std::string& cmdline, int cpus) {
  for (const auto& [key, value] : KeyValues(cmdline)) {
    if (key != "cpus") continue;
    if (value == absl::StrCat(cpus)) return cmdline;
    return absl::InvalidArgumentError(
        absl::StrCat("--cmdline: cpus=", value, " contradicts --cpus ", cpus));
  }
  if (cmdline.empty()) return absl::StrCat("cpus=", cpus);
  return absl::StrCat(cmdline, " cpus=", cpus);
}

}  // namespace rehome
