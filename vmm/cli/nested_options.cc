// vmm/cli/nested_options.cc: ParseNestedOption and friends.
#include "vmm/cli/nested_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rehome {
namespace {

absl::Status Number(const std::string& name, const std::string& value, uint64_t min, uint64_t max,
                    uint64_t* out) {
  uint64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": must be a number from ", min, " to ", max, ", got '", value, "'"));
  }
  *out = parsed;
  return absl::OkStatus();
}

}  // namespace

std::optional<absl::Status> ParseNestedOption(const std::string& name, const std::string& value,
                                              NestedOptions* o) {
  if (name == "--l1-kernel") {
    o->l1_kernel = value;
  } else if (name == "--l1-initrd") {
    o->l1_initrd = value;
  } else if (name == "--l1-memory") {
    return Number(name, value, 128, 16384, &o->l1_memory_mib);
  } else if (name == "--l1-console-dir") {
    o->l1_console_dir = value;
  } else if (name == "--l1-hang-timeout-ms") {
    return Number(name, value, 10, 600000, &o->hang_timeout_ms);
  } else if (name == "--nested-fault") {
    if (value != "kill" && value != "panic" && value != "hang" && value != "crash" &&
        value != "crash-in-exit" && value != "die-in-exit" && value != "mixed" &&
        value != "register") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--nested-fault: expected kill, panic, hang, crash, crash-in-exit, die-in-exit, mixed or "
          "register, got '",
          value, "'"));
    }
    o->fault = value;
  } else if (name == "--nested-fault-every-ms") {
    return Number(name, value, 1, 86400000, &o->fault_every_ms);
  } else if (name == "--nested-faults") {
    return Number(name, value, 0, 1000000, &o->faults);
  } else if (name == "--nested-fault-seed") {
    return Number(name, value, 0, UINT64_MAX, &o->fault_seed);
  } else if (name == "--l1-exit-tracking") {
    if (value != "on" && value != "off") {
      return absl::InvalidArgumentError(
          absl::StrCat("--l1-exit-tracking: expected on or off, got '", value, "'"));
    }
    o->exit_tracking = value == "on";
  } else {
    return std::nullopt;
  }
  return absl::OkStatus();
}

absl::Status ValidateNestedOptions(const NestedOptions& o) {
  if (o.l1_kernel.empty() || o.l1_initrd.empty()) {
    return absl::InvalidArgumentError(
        "--mode nested: needs --l1-kernel and --l1-initrd (the L1 image, "
        "scripts/nested-host/build-l1-image.sh)");
  }
  return absl::OkStatus();
}

const char* NestedOptionsUsage() {
  return "  --mode nested             each hypervisor is a Linux+KVM L1 VM (active + standby);\n"
         "                            the guest is their L2 (AMD SVM hosts with nested KVM)\n"
         "  --l1-kernel FILE          nested: the L1 image's kernel (a bzImage)\n"
         "  --l1-initrd FILE          nested: its initramfs with the kvm modules and rehome-agent\n"
         "  --l1-memory MIB           nested: RAM of each L1 (default 320)\n"
         "  --l1-console-dir DIR      nested: write each L1's console to DIR/l1-N.log\n"
         "  --l1-hang-timeout-ms MS   nested: an agent silent this long is hung (default 3000)\n"
         "  --l1-exit-tracking on|off nested: L0 captures L2 at each of its exits to the L1, to\n"
         "                            re-home it from an L1 that dies inside its KVM (default on)\n"
         "  --nested-fault KIND       nested fault injection into the active L1: kill, panic,\n"
         "                            hang, crash, crash-in-exit (the agent dies while it\n"
         "                            handles one of L2's port I/O exits), die-in-exit (the L1\n"
         "                            stops for good while L2 is inside it), mixed (the five in\n"
         "                            turn) or register (a bit flip in an L1 vCPU register\n"
         "                            while it runs L1 code)\n"
         "  --nested-fault-every-ms MS  nested: inject every MS ms once a standby is ready\n"
         "  --nested-faults N         nested: stop injecting after N faults\n"
         "  --nested-fault-seed N     nested: seed of the register flips' choices (register\n"
         "                            and bit), for campaigns and replays (default: the clock)\n";
}

}  // namespace rehome
