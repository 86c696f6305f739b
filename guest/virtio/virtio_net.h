// guest/virtio/virtio_net.h: a polled virtio-net driver on one virtio-mmio transport (modern;
// VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC negotiated, nothing else: no offloads, no mergeable
// buffers, no control queue). Receive: kNetRxBuffers device-writable buffers of
// kNetBufferBytes (the 12-byte header plus the largest frame) stay posted on queue 0; a buffer
// is re-posted when the caller releases its frame, with a notification only when the device
// asks for one (VIRTQ_USED_F_NO_NOTIFY clear), so a steady stream costs no exit per frame.
// Transmit: kNetTxBuffers buffers on queue 1, one descriptor each (header + frame); Send copies
// the frame into a free one, publishes and notifies; completed buffers are reclaimed lazily.
// Not thread-safe: one vCPU drives the device.
#ifndef REHOME_GUEST_VIRTIO_VIRTIO_NET_H_
#define REHOME_GUEST_VIRTIO_VIRTIO_NET_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_mmio.h"

namespace rehome::guest {

inline constexpr uint32_t kVirtioIdNet = 1;
inline constexpr uint64_t kNetFeatureMac = 1ull << 5;
inline constexpr uint32_t kNetHeaderBytes = 12;  // struct virtio_net_hdr (virtio 1.x)
inline constexpr uint32_t kNetFrameMax = 1518;   // Ethernet without FCS, one VLAN tag
inline constexpr uint32_t kNetBufferBytes = 1536;
inline constexpr uint32_t kNetRxBuffers = 32;
inline constexpr uint32_t kNetTxBuffers = 16;
static_assert(kNetBufferBytes >= kNetHeaderBytes + kNetFrameMax, "a buffer holds any frame");

class VirtioNet final {
 public:
  VirtioNet() = default;
  VirtioNet(const VirtioNet&) = delete;
  VirtioNet& operator=(const VirtioNet&) = delete;

  // (Re)initialises the device behind `base` from reset to DRIVER_OK, reads the MAC and, with
  // `post_rx`, posts every receive buffer.
  bool Init(uint64_t base, LineWriter* err, bool post_rx = true);
  const uint8_t* mac() const { return mac_; }

  // The next received frame (header stripped) and its length, or nullptr when none has arrived.
  // The frame stays valid until Release().
  const uint8_t* Receive(uint32_t* len);
  // Gives the last received frame's buffer back to the device.
  void Release();
  // Copies `frame` (14..kNetFrameMax bytes) into a transmit buffer and hands it to the device.
  // Waits (at most `timeout_ticks`) when every buffer is still in flight.
  bool Send(const uint8_t* frame, uint32_t len, uint64_t timeout_ticks, LineWriter* err);
  // Waits until the device has completed every transmitted buffer.
  bool Flush(uint64_t timeout_ticks, LineWriter* err);
  // Acknowledges the used-buffer interrupt (one InterruptACK write, no read), so that the next
  // used buffer raises the device's line again: a new edge for an edge-triggered route.
  void AckUsedBufferInterrupt() { mmio_.Write(kRegInterruptAck, kInterruptUsedBuffer); }

  // Raw access for the hostile-driver workload (virtio-bad).
  VirtioMmio& transport() { return mmio_; }
  Virtqueue& rx_queue() { return rxq_; }
  Virtqueue& tx_queue() { return txq_; }
  uint8_t* tx_buffer(uint32_t i);

 private:
  void Reclaim();  // takes completed transmit buffers back
  void PostRx(uint16_t id);

  VirtioMmio mmio_;
  Virtqueue rxq_;
  Virtqueue txq_;
  uint8_t mac_[6] = {};
  uint32_t rx_count_ = 0;      // receive buffers in use (<= queue size)
  int32_t rx_current_ = -1;    // buffer of the frame handed out, -1 = none
  uint32_t tx_count_ = 0;      // transmit buffers in use (<= queue size)
  uint32_t tx_in_flight_ = 0;  // published, not yet completed
  uint32_t tx_free_[kNetTxBuffers] = {};
  uint32_t tx_free_count_ = 0;
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_VIRTIO_VIRTIO_NET_H_
