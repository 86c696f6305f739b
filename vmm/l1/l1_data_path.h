// vmm/l1/l1_data_path.h: the virtio data path of an L1 that does not go through L0's exit
// channel. KVM signals each device's QueueNotify on an ioeventfd the active L1 polls, and the L1
// raises each device's interrupt through an irqfd. The console's output goes to L0 through the
// console transmit ring; the network device's frames come from L0's receive ring (L0 kicks an
// eventfd when it added frames or made transmit room) and go to its transmit ring. Everything
// the guest or L0 can see is made visible only by Publish(), which the server calls after the
// commit that holds it (docs/failover.md).
// Thread-safety: used by the L1's main thread only (Init before the device model exists).
#ifndef REHOME_VMM_L1_L1_DATA_PATH_H_
#define REHOME_VMM_L1_L1_DATA_PATH_H_

#include <poll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/unique_fd.h"
#include "kvm-l0/console_tx_ring.h"
#include "kvm-l0/frame_ring.h"
#include "vmm/device_model.h"
#include "vmm/l1/l1_options.h"
#include "vmm/ring_net_backend.h"

namespace rehome {

class L1DataPath final {
 public:
  enum class Device { kDisk, kConsole, kNet };
  static constexpr int kMaxFds = 4;  // disk, console, net queue notify, net kick from L0

  // `die` reports a failure of this L1 and does not return.
  explicit L1DataPath(std::function<void(std::string_view)> die) : die_(std::move(die)) {}
  L1DataPath(const L1DataPath&) = delete;
  L1DataPath& operator=(const L1DataPath&) = delete;

  // Takes the data path's fds from `options` (setting them to -1) and fills the parts of
  // `config` that belong to it: the console's output sink, the network backend and MAC, the
  // interrupt hook (irqfds).
  absl::Status Init(L1Options& options, DeviceModelConfig* config);

  // The notification fds an active L1 polls (standbys poll none): fills fds[0..n) and the
  // device each stands for, returns n (<= kMaxFds).
  int PollFds(bool active, pollfd* fds, Device* devices) const;
  // Empties a notification fd that poll reported readable.
  static void Drain(int fd);
  // The devices a new active L1 processes as if notified (a notification the dead one
  // consumed but never committed is not lost).
  std::vector<Device> devices() const;

  // Kicks `device`'s queues in `model`; true when its state changed (then commit and Publish).
  static bool Kick(DeviceModel& model, Device device);
  // After the commit: used rings and interrupts, console bytes, frame positions.
  void Publish(DeviceModel& model);
  // The fault injection "garbage" on a device notification (tests): publishes an impossible
  // transmit frame position after the commit, and keeps it there (this L1 publishes no transmit
  // position any more) until L0 fences it. False without a network device.
  bool PublishGarbage() {
    if (net_backend_ == nullptr) return false;
    net_backend_->PublishGarbage();
    net_garbage_ = true;
    if (net_wake_.valid()) (void)eventfd_write(net_wake_.get(), 1);
    return true;
  }
  // The console transmit ring; null without a virtio-console (the fault probes scribble on it).
  ConsoleTxRing* console_ring() { return console_ring_.has_value() ? &*console_ring_ : nullptr; }
  // A promoted L1: continues the console ring at the committed position.
  void Promoted(const DeviceModel& model) { console_produced_ = model.console_tx_bytes(); }

 private:
  void WriteConsole(std::string_view bytes);

  const std::function<void(std::string_view)> die_;
  UniqueFd blk_notify_, blk_irq_;
  UniqueFd console_notify_, console_irq_;
  std::optional<ConsoleTxRing> console_ring_;
  UniqueFd console_out_;
  uint64_t console_produced_ = 0;  // ring position of the next console byte (= tx_bytes)
  FrameRing net_rx_ring_, net_tx_ring_;
  std::shared_ptr<RingNetBackend> net_backend_;
  UniqueFd net_notify_, net_irq_, net_kick_, net_wake_;
  bool net_garbage_ = false;  // PublishGarbage was called
};

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_DATA_PATH_H_
