// vmm/cli/run_options.h: the options of `rehome run`, parsed and validated without side
// effects (no file or device is opened here). Thread-safe: pure functions.
#ifndef REHOME_VMM_CLI_RUN_OPTIONS_H_
#define REHOME_VMM_CLI_RUN_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "recovery/policy/recovery_policy.h"
#include "vmm/cli/nested_options.h"
#include "vmm/cli/netdev_spec.h"

namespace rehome {

inline constexpr uint64_t kMinMemoryMib = 16;
inline constexpr uint64_t kMaxMemoryMib = 1024 * 1024;  // 1 TiB: RAM is a sparse memfd
inline constexpr int kMaxCpus = 64;

struct RunOptions {
  std::string kernel;                 // --kernel FILE (required)
  std::string initrd;                 // --initrd FILE (a Linux bzImage's initial ramdisk)
  uint64_t memory_mib = 64;           // --memory MIB
  int cpus = 1;                       // --cpus N
  std::string cmdline;                // --cmdline STR (rehome appends cpus=N)
  std::string serial_file;            // --serial-file FILE (default: stdout)
  uint64_t rehome_interval_ms = 0;    // --rehome-interval-ms MS: move the running guest into a
                                      // fresh VM every MS milliseconds (0 = never)
  bool quiet = false;                 // --quiet: no rehome status lines on stderr
  bool split = true;                  // --mode split|monolithic|nested
  bool nested = false;                // --mode nested (split is false then)
  NestedOptions nested_options;       // --l1-*, --nested-* (docs/nested.md)
  RecoveryPolicy policy;              // --standbys, --heartbeat-ms, --hang-timeout-ms,
                                      // --max-failovers, --failover-window-s, --recovery
  uint64_t kill_active_every_ms = 0;  // --kill-active-every-ms MS: fault injection (demo)
  uint64_t switchover_every_ms = 0;   // --switchover-every-ms MS: planned switchovers
  std::string qmp_socket;             // --qmp PATH: QMP monitor on a UNIX socket
  std::string domain_file;            // --domain FILE.xml: VM definition (libvirt domain XML)
  std::string disk;                   // --disk FILE: virtio-blk raw image
  bool disk_read_only = false;        // --disk-read-only
  bool disk_direct = false;           // --disk-direct: O_DIRECT, no host page cache
  bool exit_stats = false;            // --exit-stats: print the VMM's handling time per exit
  bool posted_writes = true;          // off with --no-posted-writes (split mode)
  bool l1_realtime = true;            // --l1-priority realtime|normal
  std::string console_socket;         // --console-socket PATH: virtio-console host side
  std::optional<NetdevSpec> netdev;   // --netdev tap,ifname=NAME[,mac=MAC]: virtio-net
  // Lifecycle actions (destroy|restart|preserve); empty = from --domain, else libvirt's default
  // (on_crash destroy, on_reboot restart, on_poweroff destroy).
  std::string on_crash;     // --on-crash: the guest crashed (triple fault, exception report)
  std::string on_reboot;    // --on-reboot: the guest reset itself (port 0xcf9)
  std::string on_poweroff;  // --on-poweroff: the guest powered off (ACPI PM1a SLP_EN)
};

// Parses the arguments that follow `rehome run`. Errors are InvalidArgument with a one-line
// message naming the option (e.g. "--memory: must be between 16 and 1048576 MiB, got 0").
absl::StatusOr<RunOptions> ParseRunOptions(const std::vector<std::string>& args);

// The text printed by `rehome run --help`.
std::string RunUsage();

}  // namespace rehome

#endif  // REHOME_VMM_CLI_RUN_OPTIONS_H_
