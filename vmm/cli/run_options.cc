#include "vmm/cli/run_options.h"

#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rehome {
namespace {

absl::StatusOr<uint64_t> ParseUnsigned(const std::string& option, const std::string& value) {
  uint64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || value.empty() || value[0] == '-' || value[0] == '+') {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": expected a non-negative integer, got '", value, "'"));
  }
  return parsed;
}

// The options that take a value (as `--name VALUE` or `--name=VALUE`).
bool IsValueOption(std::string_view name) {
  static constexpr std::string_view kNames[] = {"--kernel",
                                                "--memory",
                                                "--cpus",
                                                "--cmdline",
                                                "--serial-file",
                                                "--rehome-interval-ms",
                                                "--mode",
                                                "--recovery",
                                                "--standbys",
                                                "--heartbeat-ms",
                                                "--hang-timeout-ms",
                                                "--max-failovers",
                                                "--failover-window-s",
                                                "--disk",
                                                "--on-crash",
                                                "--on-reboot",
                                                "--on-poweroff",
                                                "--console-socket",
                                                "--l1-priority",
                                                "--qmp",
                                                "--domain",
                                                "--kill-active-every-ms",
                                                "--switchover-every-ms",
                                                "--l1-binary",
                                                "--standby-l1-binary",
                                                "--verify",
                                                "--l1-sandbox",
                                                "--netdev",
                                                "--initrd",
                                                "--l1-kernel",
                                                "--l1-initrd",
                                                "--l1-memory",
                                                "--l1-console-dir",
                                                "--l1-hang-timeout-ms",
                                                "--nested-fault",
                                                "--nested-fault-every-ms",
                                                "--nested-faults",
                                                "--nested-fault-seed",
                                                "--l1-exit-tracking"};
  for (std::string_view known : kNames) {
    if (name == known) return true;
  }
  return false;
}

}  // namespace

std::string RunUsage() {
  return absl::StrCat(
      "usage: rehome run (--kernel FILE | --domain FILE.xml) [options]\n"
      "Boots a kernel on KVM and exits with the guest's exit status.\n"
      "\n"
      "options:\n"
      "  --kernel FILE             guest kernel: an ELF64 with a Xen PVH entry note, or a\n"
      "                            Linux bzImage (64-bit boot protocol, ACPI) (required)\n"
      "  --initrd FILE             initial ramdisk for a Linux bzImage\n"
      "  --memory MIB              guest RAM in MiB, ",
      kMinMemoryMib, "..", kMaxMemoryMib,
      ", a multiple of 2 (default 64)\n"
      "  --cpus N                  vCPUs, 1..",
      kMaxCpus,
      " (default 1)\n"
      "  --cmdline STR             guest command line (rehome appends cpus=N for the test\n"
      "                            guest; a Linux kernel gets it as is)\n"
      "  --serial-file FILE        write the guest's COM1 output to FILE (default stdout)\n"
      "  --rehome-interval-ms MS   move the running guest into a fresh VM every MS ms\n"
      "  --quiet                   no rehome status lines on stderr\n"
      "  --mode MODE               split (default): the hypervisor runs in an active L1 process\n"
      "                            with hot standbys and fails over when it dies; monolithic:\n"
      "                            one process, no failover (the baseline)\n",
      NestedOptionsUsage(),
      "  --recovery MODE           failover (default), restart (no standby: start a new L1 on\n"
      "                            failure) or none (an L1 failure stops the guest)\n"
      "  --standbys N              hot standby L1s, 0..4 (default 1)\n"
      "  --heartbeat-ms MS         L1 heartbeat period (default 10)\n"
      "  --l1-priority P           realtime (default: L1s ask for SCHED_FIFO, falling back to\n"
      "                            nice -10 without CAP_SYS_NICE) or normal (nice -10)\n"
      "  --hang-timeout-ms MS      an L1 silent this long is hung (default 50)\n"
      "  --l1-sandbox LEVEL        confinement of every L1 (docs/security.md): best-effort\n"
      "                            (default: every layer the host allows, one line names what\n"
      "                            is not applied), strict (an L1 missing any layer does not\n"
      "                            start) or off\n"
      "  --max-failovers N         at most N failovers ...\n"
      "  --failover-window-s S     ... within S seconds (defaults 10 / 60), then the guest stops\n"
      "  --domain FILE.xml         start the VM a libvirt domain XML defines (name, memory,\n"
      "                            vcpu, os/kernel, os/cmdline, recovery policy in <metadata>);\n"
      "                            replaces --kernel/--memory/--cpus/--cmdline and the policy\n"
      "  --qmp PATH                serve a QMP monitor on the UNIX socket PATH\n"
      "  --disk FILE               virtio-blk disk backed by the raw image FILE (virtio-mmio at\n"
      "                            0xd0000000, described on the guest command line)\n"
      "  --disk-read-only          expose the disk read-only\n"
      "  --disk-direct             open the image with O_DIRECT (bypass the host page cache;\n"
      "                            a domain <driver cache='none'/> does the same)\n"
      "  --on-crash ACTION         a guest crash (triple fault) is not an L1 failure and never\n"
      "                            fails over: destroy (default, exit 66), restart (boot again,\n"
      "                            at most 10 times) or preserve (keep it for QMP until quit\n"
      "                            or system_reset)\n"
      "  --on-reboot ACTION        the guest resets itself: restart (default: boot again),\n"
      "                            destroy (exit 0) or preserve\n"
      "  --on-poweroff ACTION      the guest powers off: destroy (default, exit 0), restart or\n"
      "                            preserve. --domain takes all three from <on_crash>,\n"
      "                            <on_reboot>, <on_poweroff> unless given here\n"
      "  --console-socket PATH     virtio-console whose host side is a UNIX socket rehome (L0)\n"
      "                            owns: a client stays connected across L1 failovers\n"
      "  --netdev tap,ifname=NAME[,mac=MAC]\n"
      "                            virtio-net on the existing tap NAME (rehome, L0, keeps it\n"
      "                            across L1 failovers; every frame exactly once); MAC default\n"
      "                            52:54:00:12:34:56\n"
      "  --verify MODE             verified execution: none (default), dual (two L1s execute\n"
      "                            every exit and must agree; a disagreement is settled by a\n"
      "                            third) or triple (three L1s, the majority wins)\n"
      "  --l1-binary PATH          design diversity: the L1 binary of the first (active) L1\n"
      "                            (default: this rehome); a build of the same version\n"
      "  --standby-l1-binary PATH  the L1 binary of every L1 started after the first\n"
      "                            (standbys, replacements; default: --l1-binary)\n"
      "  --kill-active-every-ms MS fault injection: SIGKILL the active L1 every MS ms\n"
      "  --exit-stats              at the end, print the exits handled and the VMM's mean time\n"
      "                            per exit outside KVM_RUN (benchmarks)\n"
      "  --no-posted-writes        split mode: every write waits for the L1's answer (by\n"
      "                            default, writes to devices that allow it are posted: the\n"
      "                            vCPU runs on while the L1 handles them)\n"
      "  --switchover-every-ms MS  planned switchover to the standby every MS ms\n"
      "  --help                    this text\n"
      "\n"
      "exit status: the guest's exit status (0 = success) when it exits through the debug-exit\n"
      "port and every workload report was verified; 64 bad usage (bad option, domain XML,\n"
      "kernel or disk image: not a regular file, a disk image empty or not a multiple of 512\n"
      "bytes); 65 the counter oracle found a lost, repeated or corrupted step; 66 guest crash\n"
      "(triple fault, exception); 67 L1 recovery stopped (failover limit reached or recovery\n"
      "none); the guest stopped without any exit half-applied;\n"
      "69 KVM is not usable on this host; 70 internal error (KVM failure);\n"
      "128+N: signal N (SIGHUP 129, SIGINT 130, SIGTERM 143) stopped the guest cleanly (QMP\n"
      "event SHUTDOWN with reason host-signal, QMP socket removed; QEMU exits 0 there).\n"
      "\n"
      "environment: REHOME_KVM_PATH overrides /dev/kvm (for tests).\n");
}

absl::StatusOr<RunOptions> ParseRunOptions(const std::vector<std::string>& args) {
  RunOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    auto flag = [](std::string_view n) {
      return n == "--quiet" || n == "--disk-read-only" || n == "--disk-direct" ||
             n == "--exit-stats" || n == "--no-posted-writes";
    };
    const bool is_flag = flag(name);
    // Named before any value is taken: an unknown option must not swallow the next argument.
    if (const std::string bare = name.substr(0, name.find('='));
        !is_flag && !flag(bare) && !IsValueOption(bare)) {
      return absl::InvalidArgumentError(
          bare.rfind("--", 0) == 0
              ? absl::StrCat("unknown option '", bare, "'")
              : absl::StrCat("unexpected argument '", name, "' (options start with --)"));
    }
    auto number = [&](int* out, int min, int max) -> absl::Status {
      auto parsed = ParseUnsigned(name, value);
      if (!parsed.ok()) return parsed.status();
      if (*parsed < static_cast<uint64_t>(min) || *parsed > static_cast<uint64_t>(max)) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": must be between ", min, " and ", max, ", got ", value));
      }
      *out = static_cast<int>(*parsed);
      return absl::OkStatus();
    };
    if (!is_flag) {
      if (size_t eq = name.find('='); eq != std::string::npos && name.rfind("--", 0) == 0) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        if (flag(name)) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": takes no value, got '", value, "'"));
        }
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat(name, ": missing value"));
      }
    }
    if (name == "--kernel") {
      options.kernel = value;
    } else if (name == "--initrd") {
      options.initrd = value;
    } else if (name == "--memory") {
      auto mib = ParseUnsigned(name, value);
      if (!mib.ok()) return mib.status();
      options.memory_mib = *mib;
    } else if (name == "--cpus") {
      auto cpus = ParseUnsigned(name, value);
      if (!cpus.ok()) return cpus.status();
      if (*cpus < 1 || *cpus > static_cast<uint64_t>(kMaxCpus)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--cpus: must be between 1 and ", kMaxCpus, ", got ", value));
      }
      options.cpus = static_cast<int>(*cpus);
    } else if (name == "--cmdline") {
      options.cmdline = value;
    } else if (name == "--serial-file") {
      options.serial_file = value;
    } else if (name == "--rehome-interval-ms") {
      auto ms = ParseUnsigned(name, value);
      if (!ms.ok()) return ms.status();
      options.rehome_interval_ms = *ms;
    } else if (name == "--quiet") {
      options.quiet = true;
    } else if (name == "--exit-stats") {
      options.exit_stats = true;
    } else if (name == "--no-posted-writes") {
      options.posted_writes = false;
    } else if (name == "--mode") {
      if (value != "split" && value != "monolithic" && value != "nested") {
        return absl::InvalidArgumentError(
            absl::StrCat("--mode: expected split, monolithic or nested, got '", value, "'"));
      }
      options.split = value == "split";
      options.nested = value == "nested";
    } else if (std::optional<absl::Status> nested =
                   ParseNestedOption(name, value, &options.nested_options);
               nested.has_value()) {
      if (!nested->ok()) return *nested;
    } else if (name == "--recovery") {
      auto mode = ParseRecoveryMode(value);
      if (!mode.ok())
        return absl::InvalidArgumentError(absl::StrCat("--recovery: ", mode.status().message()));
      options.policy.mode = *mode;
      if (*mode != RecoveryMode::kFailover) options.policy.standbys = 0;
    } else if (name == "--standbys") {
      if (auto s = number(&options.policy.standbys, 0, RecoveryPolicy::kMaxStandbys); !s.ok()) {
        return s;
      }
    } else if (name == "--heartbeat-ms") {
      if (auto s = number(&options.policy.heartbeat_period_ms, 1, 10000); !s.ok()) return s;
    } else if (name == "--hang-timeout-ms") {
      if (auto s = number(&options.policy.hang_timeout_ms, 2, 60000); !s.ok()) return s;
    } else if (name == "--max-failovers") {
      if (auto s = number(&options.policy.max_failovers, 1, 1000000); !s.ok()) return s;
    } else if (name == "--failover-window-s") {
      if (auto s = number(&options.policy.failover_window_s, 1, 1000000); !s.ok()) return s;
    } else if (name == "--l1-sandbox") {
      absl::StatusOr<L1SandboxLevel> level = ParseL1SandboxLevel(value);
      if (!level.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--l1-sandbox: expected strict, best-effort or off, got '", value, "'"));
      }
      options.policy.l1_sandbox = *level;
    } else if (name == "--disk") {
      options.disk = value;
    } else if (name == "--on-crash" || name == "--on-reboot" || name == "--on-poweroff") {
      if (value != "destroy" && value != "restart" && value != "preserve") {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": expected destroy, restart or preserve, got '", value, "'"));
      }
      (name == "--on-crash"    ? options.on_crash
       : name == "--on-reboot" ? options.on_reboot
                               : options.on_poweroff) = value;
    } else if (name == "--console-socket") {
      options.console_socket = value;
    } else if (name == "--netdev") {
      if (options.netdev.has_value()) {
        return absl::InvalidArgumentError("--netdev: given twice (rehome has one network device)");
      }
      absl::StatusOr<NetdevSpec> spec = ParseNetdevSpec(value);
      if (!spec.ok()) return spec.status();
      options.netdev = *spec;
    } else if (name == "--disk-read-only") {
      options.disk_read_only = true;
    } else if (name == "--disk-direct") {
      options.disk_direct = true;
    } else if (name == "--l1-priority") {
      if (value != "realtime" && value != "normal") {
        return absl::InvalidArgumentError(
            absl::StrCat("--l1-priority: expected realtime or normal, got '", value, "'"));
      }
      options.l1_realtime = value == "realtime";
    } else if (name == "--verify") {
      absl::StatusOr<VerifyMode> mode = ParseVerifyMode(value);
      if (!mode.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--verify: ", mode.status().message()));
      }
      options.policy.verify = *mode;
    } else if (name == "--l1-binary") {
      options.policy.l1_binary = value;
    } else if (name == "--standby-l1-binary") {
      options.policy.standby_l1_binary = value;
    } else if (name == "--qmp") {
      options.qmp_socket = value;
    } else if (name == "--domain") {
      options.domain_file = value;
    } else if (name == "--kill-active-every-ms") {
      auto ms = ParseUnsigned(name, value);
      if (!ms.ok()) return ms.status();
      options.kill_active_every_ms = *ms;
    } else if (name == "--switchover-every-ms") {
      auto ms = ParseUnsigned(name, value);
      if (!ms.ok()) return ms.status();
      options.switchover_every_ms = *ms;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", name, "'"));
    }
  }
  if (!options.domain_file.empty()) {
    for (const std::string& arg : args) {
      for (const char* flag : {"--kernel", "--initrd", "--memory", "--cpus", "--cmdline",
                               "--recovery", "--standbys", "--heartbeat-ms", "--hang-timeout-ms",
                               "--max-failovers", "--failover-window-s", "--l1-sandbox"}) {
        if (arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(flag, ": conflicts with --domain (the domain XML defines it)"));
        }
      }
    }
    return options;  // the domain supplies and validates the rest
  }
  if (options.kernel.empty()) return absl::InvalidArgumentError("--kernel: required");
  if (options.nested) {
    if (absl::Status valid = ValidateNestedOptions(options.nested_options); !valid.ok()) {
      return valid;
    }
  } else if (!options.nested_options.fault.empty()) {
    return absl::InvalidArgumentError("--nested-fault: needs --mode nested");
  }
  if (options.split) {
    if (absl::Status valid = options.policy.Validate(); !valid.ok()) return valid;
  } else if (options.kill_active_every_ms != 0 || options.switchover_every_ms != 0) {
    return absl::InvalidArgumentError(
        "--kill-active-every-ms/--switchover-every-ms need --mode split");
  }
  if (options.memory_mib < kMinMemoryMib || options.memory_mib > kMaxMemoryMib ||
      options.memory_mib % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--memory: must be an even number of MiB from ",
                                                   kMinMemoryMib, " to ", kMaxMemoryMib, ", got ",
                                                   options.memory_mib));
  }
  return options;
}

}  // namespace rehome
