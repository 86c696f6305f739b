// vmm/virtio/net_device.h: virtio-net (device id 1), one receive queue (0) and one transmit
// queue (1), the MAC address in the configuration space (VIRTIO_NET_F_MAC, the only feature
// offered: no offloads, no mergeable buffers, no control queue). Frames come from and go to a
// NetBackend by absolute position (frames since boot): the device's receive position is the
// next frame it delivers to the guest, its transmit position the next frame it hands to the
// backend; both are part of the saved state, so a restored device continues with exactly the
// frames after the committed positions (docs/failover.md). Every buffer carries the 12-byte
// virtio 1.x net header (all zero, num_buffers = 1, on receive; ignored on transmit).
// Driver errors (DEVICE_NEEDS_RESET, docs/virtio.md): a receive buffer with device-readable
// bytes or too small for the header and the frame, a transmit buffer with device-writable
// bytes, shorter than the header, or holding a frame over kFrameMax bytes. A transmitted frame
// shorter than an Ethernet header is dropped (completed and counted). A frame stays in the
// backend until a buffer takes it, across device resets too.
// Thread-safety: VirtioDevice methods run under the transport's lock (the backend is called
// under it); the counters may be read from any thread.
#ifndef REHOME_VMM_VIRTIO_NET_DEVICE_H_
#define REHOME_VMM_VIRTIO_NET_DEVICE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/virtio/virtio_device.h"

namespace rehome::virtio {

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56": six two-digit hexadecimal octets separated by ':' (either case). A
// multicast address (bit 0 of the first octet) cannot name a device. InvalidArgument naming the
// problem otherwise.
absl::StatusOr<MacAddress> ParseMac(std::string_view text);
std::string FormatMac(const MacAddress& mac);  // lower case, ':'-separated

// Where a NetDevice's frames come from and go to. Positions are absolute frame numbers; the
// device asks for each receive position until it gets a frame, and writes each transmit
// position once per execution (a re-execution after a failover writes the same frame again).
class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // Copies the received frame at `pos` into `out` (kFrameMax bytes) and returns its length;
  // nullopt when it has not arrived; 0 for an unusable frame, which the device skips.
  virtual std::optional<size_t> ReadRx(uint64_t pos, std::span<uint8_t> out) = 0;
  // Every frame before `pos` has been delivered to the guest.
  virtual void RxDone(uint64_t pos) = 0;
  // Whether a frame can be written at transmit position `pos` now.
  virtual bool TxRoom(uint64_t pos) = 0;
  // Writes the transmitted frame at `pos` (after TxRoom(pos) said yes).
  virtual void WriteTx(uint64_t pos, std::span<const uint8_t> frame) = 0;
};

class NetDevice final : public VirtioDevice {
 public:
  static constexpr int kReceiveQueue = 0;
  static constexpr int kTransmitQueue = 1;
  static constexpr int kFeatureMac = 5;
  static constexpr uint32_t kHeaderBytes = 12;  // struct virtio_net_hdr (virtio 1.x)
  static constexpr uint32_t kFrameMax = 1518;   // Ethernet without FCS, one VLAN tag
  static constexpr uint32_t kEthernetHeader = 14;

  // The saved record: the MAC it was taken with (checked on restore), the positions and
  // counters.
  struct State {
    MacAddress mac{};
    uint64_t rx_frames = 0;  // receive position: frames delivered to the guest
    uint64_t tx_frames = 0;  // transmit position: frames handed to the backend
    uint64_t rx_bytes = 0;
    uint64_t tx_bytes = 0;
    uint64_t rx_skipped = 0;  // unusable frames the backend reported
    uint64_t tx_dropped = 0;  // frames shorter than an Ethernet header
    bool operator==(const State&) const = default;
  };

  // `backend` must not be null and must outlive the device.
  NetDevice(MacAddress mac, std::shared_ptr<NetBackend> backend);
  NetDevice(const NetDevice&) = delete;
  NetDevice& operator=(const NetDevice&) = delete;

  uint32_t device_id() const override { return kDeviceIdNet; }
  uint64_t device_features() const override { return uint64_t{1} << kFeatureMac; }
  int queue_count() const override { return 2; }
  bool TakesBuffersUnprompted(int q) const override { return q == 1; }  // transmitq
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  absl::StatusOr<bool> ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) override;
  void Reset() override {}  // positions and counters are host-side: they survive a reset
  std::vector<uint8_t> SaveState() const override;
  // InvalidArgument for a bad record or one taken with another MAC.
  absl::Status RestoreState(std::span<const uint8_t> bytes) override;

  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

  const MacAddress& mac() const { return mac_; }
  uint64_t rx_frames() const { return rx_frames_.load(std::memory_order_relaxed); }
  uint64_t tx_frames() const { return tx_frames_.load(std::memory_order_relaxed); }
  State state() const;

 private:
  absl::StatusOr<bool> Receive(Virtqueue& vq, const GuestMemoryView& mem);
  absl::StatusOr<bool> Transmit(Virtqueue& vq, const GuestMemoryView& mem);

  const MacAddress mac_;
  const std::shared_ptr<NetBackend> backend_;
  std::vector<uint8_t> frame_;  // one frame, reused
  std::atomic<uint64_t> rx_frames_{0}, tx_frames_{0}, rx_bytes_{0}, tx_bytes_{0}, rx_skipped_{0},
      tx_dropped_{0};
};

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_NET_DEVICE_H_
