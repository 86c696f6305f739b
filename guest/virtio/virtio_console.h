// guest/virtio/virtio_console.h: a polled virtio-console driver for port 0 (modern, only
// VIRTIO_F_VERSION_1 negotiated, so no MULTIPORT: queue 0 = receiveq, queue 1 = transmitq).
// Receive: kConsoleRxBuffers device-writable buffers stay posted on queue 0; a buffer is
// re-posted as soon as its bytes are consumed. Transmit: one buffer (descriptor 0 of queue 1),
// one transfer in flight, waited for before Write returns. Not thread-safe: one vCPU.
#ifndef REHOME_GUEST_VIRTIO_VIRTIO_CONSOLE_H_
#define REHOME_GUEST_VIRTIO_VIRTIO_CONSOLE_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_mmio.h"

namespace rehome::guest {

inline constexpr uint32_t kConsoleRxBuffers = 8;
inline constexpr uint32_t kConsoleRxBufferSize = 256;
inline constexpr uint32_t kConsoleTxBufferSize = 4096;

class VirtioConsole final {
 public:
  VirtioConsole() = default;
  VirtioConsole(const VirtioConsole&) = delete;
  VirtioConsole& operator=(const VirtioConsole&) = delete;

  // Initialises the device behind `base` and posts the receive buffers.
  bool Init(uint64_t base, LineWriter* err);
  // Sends `n` bytes (split into kConsoleTxBufferSize pieces) and waits until the device has
  // consumed each piece, at most `timeout_ticks` per piece.
  bool Write(const char* data, uint32_t n, uint64_t timeout_ticks, LineWriter* err);
  // Returns the next received byte in *c; false (with a reason in `err`) when nothing arrives
  // within `timeout_ticks`.
  bool ReadByte(char* c, uint64_t timeout_ticks, LineWriter* err);

 private:
  void PostRx(uint16_t id);

  VirtioMmio mmio_;
  Virtqueue rxq_;
  Virtqueue txq_;
  uint32_t rx_count_ = 0;    // posted receive buffers (<= queue size)
  int32_t rx_current_ = -1;  // buffer being consumed, -1 = none
  uint32_t rx_pos_ = 0;
  uint32_t rx_len_ = 0;
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_VIRTIO_VIRTIO_CONSOLE_H_
