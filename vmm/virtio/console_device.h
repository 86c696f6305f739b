// vmm/virtio/console_device.h: virtio-console (device id 3), port 0 only: queue 0 is the
// receiveq (host -> guest), queue 1 the transmitq (guest -> host). Offers only
// VIRTIO_CONSOLE_F_EMERG_WRITE (a byte written to config offset 8 goes to the sink). Host input
// is queued with QueueInput() (bounded to kMaxPendingInput bytes; the rest is dropped and
// counted) and copied into the guest's posted receive buffers whenever queue 0 is processed: a
// guest kick of queue 0, or MmioTransport::Kick(0) after QueueInput; with no input left waiting
// the device sets VIRTQ_USED_F_NO_NOTIFY on queue 0 (re-posted buffers need no notification),
// and clears it when input waits for a buffer (docs/virtio.md). Transmitted bytes reach the
// OutputSink in order, in chunks of at most 64 KiB. Pending input outlives a device reset and is
// part of the saved state. A receive buffer with device-readable descriptors or a transmit
// buffer with device-writable ones is a malformed chain (DEVICE_NEEDS_RESET).
// Thread-safety: QueueInput, pending_input, dropped_input and the byte counters may be called
// from any thread (own mutex, taken after the transport's); the VirtioDevice methods run under
// the transport's lock; the sink is called under it.
#ifndef REHOME_VMM_VIRTIO_CONSOLE_DEVICE_H_
#define REHOME_VMM_VIRTIO_CONSOLE_DEVICE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "vmm/virtio/virtio_device.h"

namespace rehome::virtio {

class ConsoleDevice final : public VirtioDevice {
 public:
  using OutputSink = std::function<void(std::string_view)>;
  static constexpr size_t kMaxPendingInput = 64 * 1024;
  static constexpr size_t kMaxSinkChunk = 64 * 1024;
  static constexpr int kReceiveQueue = 0;
  static constexpr int kTransmitQueue = 1;
  static constexpr int kFeatureEmergWrite = 2;
  static constexpr uint64_t kEmergWriteOffset = 8;

  struct State {
    std::string pending_input;  // queued for the guest, not yet delivered
    uint64_t rx_bytes = 0;      // delivered to the guest
    uint64_t tx_bytes = 0;      // received from the guest (transmitq and emergency writes)
    uint64_t dropped_input = 0;
  };

  explicit ConsoleDevice(OutputSink tx);
  ConsoleDevice(const ConsoleDevice&) = delete;
  ConsoleDevice& operator=(const ConsoleDevice&) = delete;

  // Queues bytes for the guest; returns how many were accepted (the rest is dropped).
  size_t QueueInput(std::string_view bytes);
  size_t pending_input() const;
  uint64_t dropped_input() const;
  uint64_t rx_bytes() const;
  uint64_t tx_bytes() const;

  uint32_t device_id() const override { return kDeviceIdConsole; }
  uint64_t device_features() const override { return uint64_t{1} << kFeatureEmergWrite; }
  int queue_count() const override { return 2; }
  bool TakesBuffersUnprompted(int q) const override { return q == 1; }  // transmitq
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override;
  absl::StatusOr<bool> ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) override;
  void Reset() override {}  // pending input and counters survive a driver reset
  std::vector<uint8_t> SaveState() const override;
  absl::Status RestoreState(std::span<const uint8_t> bytes) override;

  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

 private:
  absl::StatusOr<bool> Receive(Virtqueue& vq, const GuestMemoryView& mem);
  absl::StatusOr<bool> Transmit(Virtqueue& vq, const GuestMemoryView& mem);

  const OutputSink tx_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_CONSOLE_DEVICE_H_
