// vmm/cli/nested_options.h: the options of `rehome run --mode nested` (docs/nested.md), parsed
// apart from the rest of run_options.cc. Pure; thread-safe.
#ifndef REHOME_VMM_CLI_NESTED_OPTIONS_H_
#define REHOME_VMM_CLI_NESTED_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace rehome {

struct NestedOptions {
  std::string l1_kernel;            // --l1-kernel FILE: the L1 image's bzImage (required)
  std::string l1_initrd;            // --l1-initrd FILE: its initramfs (required)
  uint64_t l1_memory_mib = 320;     // --l1-memory MIB
  std::string l1_console_dir;       // --l1-console-dir DIR: each L1's console log
  uint64_t hang_timeout_ms = 3000;  // --l1-hang-timeout-ms MS: a silent agent is hung
  std::string
      fault;  // --nested-fault kill|panic|hang|crash|crash-in-exit|die-in-exit|mixed|register
  uint64_t fault_every_ms = 1000;  // --nested-fault-every-ms MS (after a standby is ready)
  uint64_t faults = 0;             // --nested-faults N: stop injecting after N (0: no limit)
  bool exit_tracking = true;       // --l1-exit-tracking on|off (docs/nested.md)
  uint64_t fault_seed = 0;         // --nested-fault-seed N: register flips' choices (0: clock)
};

// Handles `name` (with `value`) if it is a nested-mode option: nullopt when it is not one,
// else the parse result (InvalidArgument naming the option).
std::optional<absl::Status> ParseNestedOption(const std::string& name, const std::string& value,
                                              NestedOptions* options);

// Checks a complete set for --mode nested (the L1 image is required).
absl::Status ValidateNestedOptions(const NestedOptions& options);

// The help text lines for these options.
const char* NestedOptionsUsage();

}  // namespace rehome

#endif  // REHOME_VMM_CLI_NESTED_OPTIONS_H_
