// vmm/l1/l1_main.cc: the L1 hypervisor process (`rehome __l1 ...`, started by L0 only): parses
// its options, maps the guest RAM memfds, exit channel and journal it inherited, confines itself
// (l1_sandbox.h) and hands them to the server (l1_server.h). It never opens /dev/kvm.
#include "vmm/l1/l1_main.h"

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <iostream>

#include "kvm-l0/exit_channel.h"
#include "kvm-l0/guest_memory.h"
#include "state-extract/device_journal.h"
#include "vmm/l1/l1_options.h"
#include "vmm/l1/l1_sandbox.h"
#include "vmm/l1/l1_server.h"

namespace rehome {

int RunL1(const std::vector<std::string>& args) {
  // A terminal's SIGINT/SIGHUP and a service manager's SIGTERM reach the whole process group or
  // cgroup; L0 ends the guest cleanly on them (vmm/cli/host_signals.h) and alone decides when an
  // L1 ends. An L1 still exits by itself once L0 is gone (l1_server.cc).
  for (int signal_number : {SIGINT, SIGHUP, SIGTERM}) std::signal(signal_number, SIG_IGN);
  // L0 starts it with every signal blocked (l1_spawn.h).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Freed heap stays mapped: with glibc's defaults, every large free trims the heap and the
  // next allocation faults its pages in again, and a page fault costs tens of microseconds on
  // some hosts. A promotion allocates and frees the commit record (64 KiB and more) several
  // times; cold, that alone cost it ~0.1 ms here.
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  absl::StatusOr<L1Options> options = ParseL1Options(args);
  if (!options.ok()) {
    std::cerr << "rehome __l1: " << options.status().message()
              << " (this role is started by rehome itself)\n";
    return 64;
  }
  absl::StatusOr<GuestMemory> ram = GuestMemory::FromFds(options->ram);
  for (const GuestMemory::RegionDesc& d : options->ram) close(d.fd);  // FromFds duplicated them
  absl::StatusOr<ExitChannel> channel = ExitChannel::Attach(
      options->channel_fd, options->request_efd, options->ack_efd, options->response_efds);
  absl::StatusOr<DeviceJournal> journal = DeviceJournal::Attach(options->journal_fd);
  for (const absl::Status& s : {ram.status(), channel.status(), journal.status()}) {
    if (!s.ok()) {
      std::cerr << "rehome __l1: " << s.message() << "\n";
      return 70;
    }
  }
  // Confined before it reads anything a guest or another L1 wrote (the journal is read first by
  // the server's rehearsal).
  if (absl::StatusOr<uint32_t> layers = ApplyL1Sandbox(options->sandbox, channel->header());
      !layers.ok()) {
    ExitChannelHeader& h = channel->header();
    const std::string why(layers.status().message());
    const size_t n = std::min<size_t>(why.size(), kExitReasonMax);
    std::memcpy(h.failure, why.data(), n);
    h.failure_len.store(static_cast<uint32_t>(std::max<size_t>(n, 1)), std::memory_order_release);
    std::cerr << "rehome __l1: " << why << "\n";
    return 70;
  }
  const bool confined = options->sandbox.level != L1SandboxLevel::kOff;
  const int status =
      RunL1Server(std::move(*options), std::move(*ram), std::move(*channel), std::move(*journal));
  // A confined L1 ends without atexit work: what runs there (a leak checker's, for one) may
  // need system calls its filter refuses.
  if (confined) {
    std::cerr.flush();
    _exit(status);
  }
  return status;
}

}  // namespace rehome
