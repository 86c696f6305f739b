// vmm/l1/l1_data_path.cc: L1DataPath.
#include "vmm/l1/l1_data_path.h"

#include <sys/eventfd.h>

#include "absl/time/clock.h"
#include "base/status_macros.h"

namespace rehome {

absl::Status L1DataPath::Init(L1Options& options, DeviceModelConfig* config) {
  auto take = [](int& fd) { return UniqueFd(std::exchange(fd, -1)); };
  if (options.console_ring_fd >= 0) {
    ASSIGN_OR_RETURN(console_ring_,
                     ConsoleTxRing::Attach(std::exchange(options.console_ring_fd, -1)));
    console_out_ = take(options.console_out_fd);
    config->console_output = [this](std::string_view bytes) { WriteConsole(bytes); };
  }
  console_notify_ = take(options.console_notify_fd);
  console_irq_ = take(options.console_irq_fd);
  blk_notify_ = take(options.blk_notify_fd);
  blk_irq_ = take(options.blk_irq_fd);
  if (options.net) {
    if (options.net_rx_ring_fd < 0 || options.net_tx_ring_fd < 0) {
      return absl::InvalidArgumentError("virtio-net needs both frame rings");
    }
    ASSIGN_OR_RETURN(net_rx_ring_, FrameRing::Attach(std::exchange(options.net_rx_ring_fd, -1)));
    ASSIGN_OR_RETURN(net_tx_ring_, FrameRing::Attach(std::exchange(options.net_tx_ring_fd, -1)));
    net_backend_ = std::make_shared<RingNetBackend>(&net_rx_ring_, &net_tx_ring_,
                                                    /*deferred=*/true, nullptr);
    config->net_backend = net_backend_;
    config->net_mac = options.net_mac;
    net_notify_ = take(options.net_notify_fd);
    net_irq_ = take(options.net_irq_fd);
    net_kick_ = take(options.net_kick_fd);
    net_wake_ = take(options.net_wake_fd);
  }
  if (blk_irq_.valid() || console_irq_.valid() || net_irq_.valid()) {
    // Device i's line is kVirtioFirstIrq + i, in the order of VirtioDeviceIndices. An irqfd is
    // an edge: raise it when the line goes up (the driver acknowledges through InterruptACK).
    const VirtioIndices index =
        VirtioDeviceIndices(config->disk.valid(), config->console, options.net);
    std::vector<int> fd_of_line(3, -1);
    for (const auto& [i, fd] :
         {std::pair{index.disk, blk_irq_.get()}, std::pair{index.console, console_irq_.get()},
          std::pair{index.net, net_irq_.get()}}) {
      if (i >= 0) fd_of_line[static_cast<size_t>(i)] = fd;
    }
    config->virtio_irq = [fd_of_line](uint32_t irq, bool level) {
      const uint32_t i = irq - kVirtioFirstIrq;
      if (!level || irq < kVirtioFirstIrq || i >= fd_of_line.size()) return;
      if (fd_of_line[i] >= 0) (void)eventfd_write(fd_of_line[i], 1);
    };
  }
  return absl::OkStatus();
}

int L1DataPath::PollFds(bool active, pollfd* fds, Device* devices) const {
  if (!active) return 0;  // a standby leaves the devices' notifications to the active L1
  int n = 0;
  for (const auto& [fd, device] :
       {std::pair{blk_notify_.get(), Device::kDisk},
        std::pair{console_notify_.get(), Device::kConsole},
        std::pair{net_notify_.get(), Device::kNet}, std::pair{net_kick_.get(), Device::kNet}}) {
    if (fd < 0) continue;
    fds[n] = {fd, POLLIN, 0};
    devices[n++] = device;
  }
  return n;
}

void L1DataPath::Drain(int fd) {
  eventfd_t ignored;
  (void)eventfd_read(fd, &ignored);  // non-blocking; resets the count
}

std::vector<L1DataPath::Device> L1DataPath::devices() const {
  std::vector<Device> out;
  if (blk_notify_.valid()) out.push_back(Device::kDisk);
  if (console_notify_.valid()) out.push_back(Device::kConsole);
  if (net_backend_ != nullptr) out.push_back(Device::kNet);
  return out;
}

bool L1DataPath::Kick(DeviceModel& model, Device device) {
  switch (device) {
    case Device::kDisk:
      return model.KickDisk();
    case Device::kConsole:
      return model.KickConsole();
    case Device::kNet:
      return model.KickNet();
  }
  return false;
}

void L1DataPath::Publish(DeviceModel& model) {
  model.PublishUsed();
  if (console_ring_.has_value() && console_ring_->published() < console_produced_) {
    console_ring_->Publish(console_produced_);
    (void)eventfd_write(console_out_.get(), 1);
  }
  if (net_backend_ != nullptr && !net_garbage_ &&
      net_backend_->Publish(model.net_rx_frames(), model.net_tx_frames()) && net_wake_.valid()) {
    (void)eventfd_write(net_wake_.get(), 1);  // L0 sends the frames
  }
}

// The console device's output sink: the guest's bytes go to the transmit ring at the produce
// position (published after the commit). L0 drains the ring without blocking on the client,
// so a full ring only means its drain thread has not run yet: wait for it, within a bound.
void L1DataPath::WriteConsole(std::string_view bytes) {
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (!console_ring_->WriteAt(console_produced_, bytes)) {
    if (absl::Now() > deadline) die_("console transmit ring full: L0 does not drain it");
    (void)eventfd_write(console_out_.get(), 1);
    absl::SleepFor(absl::Microseconds(200));
  }
  console_produced_ += bytes.size();
}

}  // namespace rehome
