// vmm/cli/machine_split.cc: Machine::SetUpSplitBackend: the L1 processes of split mode. Without
// verified execution the active L1 serves the virtio devices directly (KVM signals its
// ioeventfds, it raises their irqfds); with it, L0 takes the queue notifications (ioeventfds, its
// notification pump) and every other device access exits, the replicas execute each, and L0
// applies the effects they agreed on (recovery/verified_supervisor.h) through the irqfds, the
// disk and the console it keeps.
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "base/errno_status.h"
#include "base/status_macros.h"
#include "recovery/split_backend.h"
#include "vmm/cli/machine.h"
#include "vmm/cli/net_tap.h"
#include "vmm/device_model.h"

namespace rehome {

absl::Status Machine::SetUpSplitBackend(ConsoleSocket* console, NetTap* tap,
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
    // Verified: L0 takes the notification (SplitBackend::StartNotificationPump), the replicas
    // get no ioeventfd.
    if (!irqfd(&blk_notify_)) return LastErrnoStatus("eventfd");
    if (!verified) {
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
    if (!irqfd(&console_notify_)) return LastErrnoStatus("eventfd");
    if (!verified) {
      supervisor.launch.console_notify_fd = console_notify_.get();
      supervisor.launch.console_irq_fd = console_irq_.get();
    }
  }
  if (tap != nullptr) {
    if (!irqfd(&net_irq_)) return LastErrnoStatus("eventfd");
    supervisor.launch.net_mac = config_.net->mac;
    supervisor.launch.net_rx_ring_fd = tap->rx_ring().memfd();
    if (!irqfd(&net_notify_)) return LastErrnoStatus("eventfd");
    if (!verified) {  // verified: frames travel as effects (NetTap::SendAgreed)
      supervisor.launch.net_tx_ring_fd = tap->tx_ring().memfd();
      supervisor.launch.net_notify_fd = net_notify_.get();
      supervisor.launch.net_irq_fd = net_irq_.get();
      supervisor.launch.net_kick_fd = tap->kick_fd();
      supervisor.launch.net_wake_fd = tap->wake_fd();
    }
  }
  std::optional<VerifiedEffectsSink> sink;
  if (verified) {
    sink.emplace();
    sink->ram = ram_view_.get();
    sink->disk_fd = disk_.valid() && !config_.disk_read_only ? disk_.get() : -1;
    // Device i's line is kVirtioFirstIrq + i, in the order of VirtioDeviceIndices.
    const VirtioIndices index =
        VirtioDeviceIndices(blk_irq_.valid(), console_irq_.valid(), net_irq_.valid());
    std::vector<int> fd_of_line(3, -1);
    for (const auto& [i, fd] :
         {std::pair{index.disk, blk_irq_.get()}, std::pair{index.console, console_irq_.get()},
          std::pair{index.net, net_irq_.get()}}) {
      if (i >= 0) fd_of_line[static_cast<size_t>(i)] = fd;
    }
    sink->raise_irq = [fd_of_line](uint32_t line) {
      const uint32_t i = line - kVirtioFirstIrq;
      if (line < kVirtioFirstIrq || i >= fd_of_line.size() || fd_of_line[i] < 0) return false;
      (void)eventfd_write(fd_of_line[i], 1);
      return true;
    };
    sink->console_output = console_output;
    if (tap != nullptr) {
      sink->net_tx = [tap](uint64_t pos, std::span<const uint8_t> frame) {
        return tap->SendAgreed(pos, frame);
      };
      sink->net_rx_done = [tap](uint64_t pos) { return tap->AgreedConsumed(pos); };
      sink->net_rx_produced = [tap] { return tap->rx_produced(); };
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SplitBackend> split,
                   SplitBackend::Start(std::move(supervisor), std::move(config_.serial_output),
                                       console_output, std::move(sink), disk_bytes));
  supervisor_ = &split->supervisor();
  if (verified) {
    const VirtioIndices index =
        VirtioDeviceIndices(blk_irq_.valid(), console_irq_.valid(), net_irq_.valid());
    std::vector<SplitBackend::QueueNotifier> notifiers;
    for (const auto& [i, fd] :
         {std::pair{index.disk, &blk_notify_}, std::pair{index.console, &console_notify_},
          std::pair{index.net, &net_notify_}}) {
      if (i < 0 || !fd->valid()) continue;
      notifiers.push_back({fd->get(), kVirtioMmioBase +
                                          static_cast<uint64_t>(i) * kVirtioMmioStride +
                                          virtio::MmioTransport::kRegQueueNotify});
    }
    RETURN_IF_ERROR(split->StartNotificationPump(std::move(notifiers)));
  }
  if (tap != nullptr) {
    const L1Supervisor* watched = supervisor_;
    tap->AvoidCpusOf([watched] { return watched->VcpuCpus(); });
  }
  if (tap != nullptr && verified) {
    // Frames arrived: the replicas process the device's queues (a request on the host slot).
    SplitBackend* raw = split.get();
    tap->Start([raw] { (void)raw->DeliverNetInput(); }, nullptr, /*rekick_waiting=*/true);
  } else if (tap != nullptr) {
    // Kicks the active L1 through its eventfd; an impossible ring position is a bad answer.
    L1Supervisor* active = supervisor_;
    tap->Start(nullptr, [active](const std::string& cause) { active->ReportActiveFailure(cause); });
  }
  if (console != nullptr) {
    SplitBackend* raw = split.get();
    const L1Supervisor* watched = supervisor_;
    console->AvoidCpusOf([watched] { return watched->VcpuCpus(); });
    console->Start([raw](std::string_view bytes) { (void)raw->DeliverConsoleInput(bytes); });
  }
  backend_ = std::move(split);
  return absl::OkStatus();
}

}  // namespace rehome
