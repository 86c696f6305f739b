// vmm/virtio/mmio_transport.h: the virtio-mmio transport, modern register layout (version 2,
// virtio 1.1 section 4.2.2), in front of one VirtioDevice. It owns the device and one Virtqueue
// per device queue, negotiates features (VIRTIO_F_VERSION_1 is always offered and a driver
// without it cannot reach FEATURES_OK), and drives the device synchronously: a QueueNotify
// write processes that queue on the calling vCPU thread. The interrupt is level-triggered: the
// IrqHook sees the level whenever it changes, and the line is asserted while InterruptStatus
// != 0. A malformed ring or request sets DEVICE_NEEDS_RESET (with a config-change interrupt when
// DRIVER_OK), logs the reason and stops all queue processing until the driver writes Status 0.
// Register rules, hostile-guest rules and the state record: docs/virtio.md.
// Thread-safety: thread-safe; one absl::Mutex serialises registers, queues and the device. The
// IrqHook, the LogSink and the device's own sinks are called with that mutex held and must not
// call back into this transport. `mem` must outlive the transport.
#ifndef REHOME_VMM_VIRTIO_MMIO_TRANSPORT_H_
#define REHOME_VMM_VIRTIO_MMIO_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "vmm/bus.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/virtio_device.h"
#include "vmm/virtio/virtqueue.h"

namespace rehome::virtio {

class MmioTransport final : public BusDevice {
 public:
  using IrqHook = std::function<void(bool level)>;
  using LogSink = std::function<void(std::string_view)>;

  static constexpr uint64_t kMmioSize = 0x200;  // registers 0x000..0x0ff, config 0x100..0x1ff
  static constexpr uint64_t kConfigOffset = 0x100;
  static constexpr uint32_t kMagic = 0x74726976;  // "virt"
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kVendorId = 0x554d4551;  // "QEMU", as QEMU and most VMMs report
  static constexpr uint32_t kInterruptUsedBuffer = 0x1;
  static constexpr uint32_t kInterruptConfigChange = 0x2;
  // Ignored accesses logged before the log thins out to powers of two.
  static constexpr uint64_t kLogFirstIgnored = 16;

  // Register offsets.
  enum Register : uint64_t {
    kRegMagic = 0x000,
    kRegVersion = 0x004,
    kRegDeviceId = 0x008,
    kRegVendorId = 0x00c,
    kRegDeviceFeatures = 0x010,
    kRegDeviceFeaturesSel = 0x014,
    kRegDriverFeatures = 0x020,
    kRegDriverFeaturesSel = 0x024,
    kRegQueueSel = 0x030,
    kRegQueueNumMax = 0x034,
    kRegQueueNum = 0x038,
    kRegQueueReady = 0x044,
    kRegQueueNotify = 0x050,
    kRegInterruptStatus = 0x060,
    kRegInterruptAck = 0x064,
    kRegStatus = 0x070,
    kRegQueueDescLow = 0x080,
    kRegQueueDescHigh = 0x084,
    kRegQueueDriverLow = 0x090,
    kRegQueueDriverHigh = 0x094,
    kRegQueueDeviceLow = 0x0a0,
    kRegQueueDeviceHigh = 0x0a4,
    kRegConfigGeneration = 0x0fc,
  };

  // Transport registers plus every queue and the device's own record: what a failover carries.
  struct State {
    uint32_t device_id = 0;  // must match the device restored into
    uint32_t status = 0;
    uint32_t device_features_sel = 0;
    uint32_t driver_features_sel = 0;
    uint64_t driver_features = 0;
    uint32_t queue_sel = 0;
    uint32_t interrupt_status = 0;
    uint32_t config_generation = 0;
    std::string last_error;  // why DEVICE_NEEDS_RESET was last set (may be empty)
    std::vector<Virtqueue::State> queues;
    std::vector<uint8_t> device_state;  // VirtioDevice::SaveState()
  };

  // `irq` and `log` may be empty. The device must not be null.
  MmioTransport(std::unique_ptr<VirtioDevice> device, const GuestMemoryView& mem, IrqHook irq,
                LogSink log);
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  // Registers: aligned 32-bit accesses only; config space (offset >= 0x100): aligned 1, 2, 4
  // or 8 byte accesses. Anything else is ignored (reads return zeros) and logged.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;  // QueueNotify processes
  std::string name() const override;

  // Host-side notification: processes `queue` as if the driver had written QueueNotify (e.g.
  // after ConsoleDevice::QueueInput). Does nothing unless DRIVER_OK is set, the queue is ready
  // and the device does not need a reset.
  // Returns true when the notification consumed chains or put the device into
  // DEVICE_NEEDS_RESET (i.e. the state changed).
  bool Kick(int queue);
  // Whether Kick(queue) would find a chain to take (DRIVER_OK, queue ready, no reset needed,
  // the driver's available index ahead of the device's). Reads the available index only.
  bool HasAvailable(int queue) const;
  // Appends where the driver's available index of each ready queue lives (guest-physical), and
  // whether the device takes that queue's buffers unprompted, in queue order. Part of what the
  // device state determines (verified execution: L0 reads these words when it posts an item;
  // GuestMemoryView::AvailableIndex).
  void AppendAvailIndexAddresses(std::vector<AvailIndexAddress>* out) const;

  // Deferred publication of completions (split mode): queue processing writes used elements and
  // advances the saved used_idx, but the driver-visible used ring idx and the used-buffer
  // interrupt wait for PublishUsed(), which the L1 calls once the state containing them is
  // committed. So a completion the guest can see is always in the committed state.
  void SetDeferredPublication(bool deferred);
  // Publishes every ready queue's used_idx and updates the interrupt line. Idempotent.
  void PublishUsed();

  // The device. Only methods the device documents as thread-safe may be called while vCPUs run
  // (e.g. ConsoleDevice::QueueInput); use static_cast to reach the concrete type.
  VirtioDevice& device() { return *device_; }
  const VirtioDevice& device() const { return *device_; }

  uint32_t status() const;  // device status byte (kStatusNeedsReset = 0x40)
  uint32_t interrupt_status() const;
  bool irq_level() const;
  std::string last_error() const;     // reason for the last DEVICE_NEEDS_RESET; kept across reset
  uint64_t ignored_accesses() const;  // malformed / misplaced register accesses

  // The whole state as a versioned record (docs/virtio.md).
  std::vector<uint8_t> SaveState() const;
  // Decodes, validates (device type, queue count, queue layouts in guest RAM, device record)
  // and applies all or nothing; InvalidArgument / OutOfRange otherwise. Reports the restored
  // interrupt line level to the IrqHook.
  absl::Status RestoreState(std::span<const uint8_t> bytes);
  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

 private:
  uint32_t ReadRegister(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteStatus(uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteQueueAddress(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessLocked(uint32_t queue, bool from_guest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnterNeedsReset(std::string reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateIrq(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogIgnored(std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Virtqueue* SelectedQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t OfferedFeatures() const;

  const std::unique_ptr<VirtioDevice> device_;
  const GuestMemoryView& mem_;
  const IrqHook irq_;
  const LogSink log_;
  const std::string name_;

  mutable absl::Mutex mu_;
  uint32_t status_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t device_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t driver_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t driver_features_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t queue_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t interrupt_status_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t config_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::vector<Virtqueue> queues_ ABSL_GUARDED_BY(mu_);
  bool irq_level_ ABSL_GUARDED_BY(mu_) = false;
  bool deferred_publication_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ignored_accesses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_MMIO_TRANSPORT_H_
