// vmm/cli/machine_split.cc: Machine::SetUpSplitBackend: the L1 processes of split mode. Without
// verified execution the active L1 serves the virtio devices directly (KVM signals its
// ioeventfds, it raises their irqfds); with it, every device access exits, the replicas execute
// it, and L0 applies the effects they agreed on (recovery/verified_supervisor.h) through the
// irqfds, the disk and the console it keeps.
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "base/errno_status.h"
#include "base/status_macros.h"
#include "recovery/split_backend.h"
#include "vmm/cli/machine.h"
#include "vmm/device_model.h"

namespace rehome {

absl::Status Machine::SetUpSplitBackend(ConsoleSocket* console,
                                        std::function<void(std::string_view)> console_output) {
  const bool verified = config_.split.policy.verify != VerifyMode::kNone;
  SupervisorConfig supervisor;
  supervisor.launch.binary = config_.split.l1_binary;
  supervisor.standby_binary = config_.split.standby_l1_binary;
  supervisor.launch.cpus = config_.cpus;
  supervisor.launch.oracle = config_.oracle;
  for (const GuestMemory::Region& region : ram_.regions()) {
    supervisor.launch.ram.push_back({region.gpa, region.size, region.fd});
  }
  supervisor.policy = config_.split.policy;
  auto irqfd = [](UniqueFd* fd) {
    fd->Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    return fd->valid();
  };
  uint64_t disk_bytes = 0;
  if (disk_.valid()) {
    supervisor.launch.disk_fd = disk_.get();
    supervisor.launch.disk_read_only = config_.disk_read_only;
    if (!irqfd(&blk_irq_)) return LastErrnoStatus("eventfd");
    if (!verified) {  // verified: notifications exit, so that every replica sees them
      if (!irqfd(&blk_notify_)) return LastErrnoStatus("eventfd");
      supervisor.launch.blk_notify_fd = blk_notify_.get();
      supervisor.launch.blk_irq_fd = blk_irq_.get();
    }
    struct stat st {};
    if (fstat(disk_.get(), &st) == 0) disk_bytes = static_cast<uint64_t>(st.st_size);
  }
  supervisor.on_event = config_.split.on_event;
  supervisor.pause_on_limit = config_.split.pause_on_limit;
  supervisor.post_writes = config_.split.post_writes;
  supervisor.launch.realtime = config_.split.l1_realtime;
  supervisor.launch.console = console != nullptr;
  if (console != nullptr) {
    if (!irqfd(&console_irq_)) return LastErrnoStatus("eventfd");
    if (!verified) {
      if (!irqfd(&console_notify_)) return LastErrnoStatus("eventfd");
      supervisor.launch.console_notify_fd = console_notify_.get();
      supervisor.launch.console_irq_fd = console_irq_.get();
    }
  }
  std::optional<VerifiedEffectsSink> sink;
  if (verified) {
    sink.emplace();
    sink->ram = ram_view_.get();
    sink->disk_fd = disk_.valid() && !config_.disk_read_only ? disk_.get() : -1;
    const int blk = blk_irq_.get();
    const int cons = console_irq_.get();
    const uint32_t console_line = kVirtioFirstIrq + (disk_.valid() ? 1 : 0);
    sink->raise_irq = [blk, cons, console_line](uint32_t line) {
      const int fd = line == console_line ? cons : line == kVirtioFirstIrq ? blk : -1;
      if (fd >= 0) (void)eventfd_write(fd, 1);
    };
    sink->console_output = console_output;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SplitBackend> split,
                   SplitBackend::Start(std::move(supervisor), std::move(config_.serial_output),
                                       console_output, std::move(sink), disk_bytes));
  supervisor_ = &split->supervisor();
  if (console != nullptr) {
    SplitBackend* raw = split.get();
    console->Start([raw](std::string_view bytes) { (void)raw->DeliverConsoleInput(bytes); });
  }
  backend_ = std::move(split);
  return absl::OkStatus();
}

}  // namespace rehome
