// vmm/l1/l1_options.cc: ParseL1Options.
#include "vmm/l1/l1_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

absl::StatusOr<int> ParseFd(const std::string& s) {
  int fd = -1;
  if (!absl::SimpleAtoi(s, &fd) || fd < 0) return absl::InvalidArgumentError("bad fd " + s);
  return fd;
}

}  // namespace

absl::StatusOr<L1Options> ParseL1Options(const std::vector<std::string>& args) {
  L1Options o;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    if (k == "--cpus") {
      if (!absl::SimpleAtoi(v, &o.cpus)) return absl::InvalidArgumentError("--cpus");
    } else if (k == "--oracle") {
      std::vector<std::string> f = absl::StrSplit(v, ':');
      CounterOracle::Config c;
      if (f.size() != 3 || !absl::SimpleAtoi(f[0], &c.seed) || !absl::SimpleAtoi(f[1], &c.steps) ||
          !absl::SimpleAtoi(f[2], &c.report_every)) {
        return absl::InvalidArgumentError("--oracle");
      }
      o.oracle = c;
    } else if (k == "--ram") {
      for (absl::string_view region : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        std::vector<std::string> f = absl::StrSplit(region, ':');
        GuestMemory::RegionDesc d;
        if (f.size() != 3 || !absl::SimpleAtoi(f[0], &d.gpa) || !absl::SimpleAtoi(f[1], &d.size) ||
            !absl::SimpleAtoi(f[2], &d.fd)) {
          return absl::InvalidArgumentError("--ram");
        }
        o.ram.push_back(d);
      }
    } else if (k == "--channel-fd") {
      ASSIGN_OR_RETURN(o.channel_fd, ParseFd(v));
    } else if (k == "--request-efd") {
      ASSIGN_OR_RETURN(o.request_efd, ParseFd(v));
    } else if (k == "--ack-efd") {
      ASSIGN_OR_RETURN(o.ack_efd, ParseFd(v));
    } else if (k == "--journal-fd") {
      ASSIGN_OR_RETURN(o.journal_fd, ParseFd(v));
    } else if (k == "--response-efds") {
      for (absl::string_view fd : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(int parsed, ParseFd(std::string(fd)));
        o.response_efds.push_back(parsed);
      }
    } else if (k == "--heartbeat-ms") {
      if (!absl::SimpleAtoi(v, &o.heartbeat_ms) || o.heartbeat_ms == 0) {
        return absl::InvalidArgumentError("--heartbeat-ms");
      }
    } else if (k == "--disk-fd") {
      ASSIGN_OR_RETURN(o.disk_fd, ParseFd(v));
    } else if (k == "--realtime") {
      o.realtime = v == "1";
    } else if (k == "--console-notify-fd") {
      ASSIGN_OR_RETURN(o.console_notify_fd, ParseFd(v));
    } else if (k == "--console-irq-fd") {
      ASSIGN_OR_RETURN(o.console_irq_fd, ParseFd(v));
    } else if (k == "--console-ring-fd") {
      ASSIGN_OR_RETURN(o.console_ring_fd, ParseFd(v));
    } else if (k == "--console-out-fd") {
      ASSIGN_OR_RETURN(o.console_out_fd, ParseFd(v));
    } else if (k == "--blk-notify-fd") {
      ASSIGN_OR_RETURN(o.blk_notify_fd, ParseFd(v));
    } else if (k == "--blk-irq-fd") {
      ASSIGN_OR_RETURN(o.blk_irq_fd, ParseFd(v));
    } else if (k == "--verify") {
      o.verify = v == "1";
    } else if (k == "--effects-fd") {
      ASSIGN_OR_RETURN(o.effects_fd, ParseFd(v));
    } else if (k == "--console") {
      o.console = v == "1";
    } else if (k == "--disk-read-only") {
      o.disk_read_only = v == "1";
    } else if (k == "--parent-pid") {
      if (!absl::SimpleAtoi(v, &o.parent_pid)) return absl::InvalidArgumentError("--parent-pid");
    } else if (k == "--lifeline-fd") {
      ASSIGN_OR_RETURN(o.lifeline_fd, ParseFd(v));
    } else if (k == "--sandbox") {
      absl::StatusOr<L1SandboxLevel> level = ParseL1SandboxLevel(v);
      if (!level.ok()) return absl::InvalidArgumentError("--sandbox");
      o.sandbox.level = *level;
    } else if (k == "--sandbox-ns-fds") {
      for (absl::string_view fd : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(int parsed, ParseFd(std::string(fd)));
        o.sandbox.namespace_fds.push_back(parsed);
      }
      if (o.sandbox.namespace_fds.size() != 5)
        return absl::InvalidArgumentError("--sandbox-ns-fds");
    } else if (k == "--sandbox-root") {
      o.sandbox.empty_root = v;
    } else if (k == "--sandbox-id-base") {
      uint32_t base = 0;
      if (!absl::SimpleAtoi(v, &base)) return absl::InvalidArgumentError("--sandbox-id-base");
      o.sandbox.id_base = base;
    } else {
      return absl::InvalidArgumentError("unknown L1 option " + k);
    }
  }
  o.sandbox.realtime = o.realtime;
  if (o.verify && o.effects_fd < 0) {
    return absl::InvalidArgumentError("--verify 1 needs --effects-fd");
  }
  if (o.channel_fd < 0 || o.journal_fd < 0 || o.ram.empty() ||
      static_cast<int>(o.response_efds.size()) != o.cpus + (o.console ? 1 : 0)) {
    return absl::InvalidArgumentError("incomplete L1 options");
  }
  return o;
}

}  // namespace rehome
