// recovery/proc_stats.h: what /proc says about an L1 process, so that a starved L1 (runnable
// but not scheduled on a loaded host) is not mistaken for a hung one. Pure reads of procfs;
// thread-safe.
#ifndef REHOME_RECOVERY_PROC_STATS_H_
#define REHOME_RECOVERY_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace rehome {

// Nanoseconds the main thread of `pid` has spent on a CPU (/proc/PID/schedstat, field 1).
std::optional<uint64_t> MainThreadRuntimeNs(pid_t pid);

// The scheduler state letter of `pid` (/proc/PID/stat field 3: 'R', 'S', 'D', 'T', 'Z', ...).
std::optional<char> ProcessState(pid_t pid);

}  // namespace rehome

#endif  // REHOME_RECOVERY_PROC_STATS_H_
