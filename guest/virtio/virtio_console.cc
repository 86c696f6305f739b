// guest/virtio/virtio_console.cc: polled virtio-console port 0 driver (see virtio_console.h).
// CPL3.
#include "guest/virtio/virtio_console.h"

namespace rehome::guest {
namespace {

VirtqMemory rx_ring;
VirtqMemory tx_ring;
alignas(64) char rx_buffers[kConsoleRxBuffers][kConsoleRxBufferSize];
alignas(64) char tx_buffer[kConsoleTxBufferSize];

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

bool VirtioConsole::Init(uint64_t base, LineWriter* err) {
  mmio_.set_base(base);
  if (!mmio_.Begin(kFeatureVersion1, err)) return false;
  if (!mmio_.SetupQueue(0, &rx_ring, &rxq_, err)) return false;
  if (!mmio_.SetupQueue(1, &tx_ring, &txq_, err)) return false;
  if (!mmio_.DriverOk(err)) return false;
  rx_count_ = rxq_.size() < kConsoleRxBuffers ? rxq_.size() : kConsoleRxBuffers;
  rx_current_ = -1;
  for (uint32_t i = 0; i < rx_count_; ++i) {
    rxq_.desc()[i] = {Addr(rx_buffers[i]), kConsoleRxBufferSize, kDescFWrite, 0};
    rxq_.Publish(static_cast<uint16_t>(i));
  }
  mmio_.Notify(rxq_);
  return true;
}

void VirtioConsole::PostRx(uint16_t id) {
  rxq_.Publish(id);
  // Notify only when the device asks for it (VIRTQ_USED_F_NO_NOTIFY clear: input waits for a
  // buffer), as virtio-net's driver does: an echo then costs one exit (the transmission), not
  // two. The full fence orders the available index before the flags' read.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if ((__atomic_load_n(&rxq_.mem()->used.flags, __ATOMIC_ACQUIRE) & kUsedFNoNotify) == 0) {
    mmio_.Notify(rxq_);
  }
}

bool VirtioConsole::Write(const char* data, uint32_t n, uint64_t timeout_ticks, LineWriter* err) {
  while (n > 0) {
    const uint32_t chunk = n < kConsoleTxBufferSize ? n : kConsoleTxBufferSize;
    for (uint32_t i = 0; i < chunk; ++i) tx_buffer[i] = data[i];
    txq_.desc()[0] = {Addr(tx_buffer), chunk, 0, 0};
    txq_.Publish(0);
    mmio_.Notify(txq_);
    VirtqUsedElem used;
    // Polled like the blk driver: no register access per buffer (each would be an exit).
    const WaitResult r = txq_.WaitUsed(timeout_ticks, &used);
    if (r == WaitResult::kTimeout) {
      err->Str("console transmit timeout, status=").Hex(mmio_.Status());
      return false;
    }
    data += chunk;
    n -= chunk;
  }
  return true;
}

bool VirtioConsole::ReadByte(char* c, uint64_t timeout_ticks, LineWriter* err) {
  while (rx_current_ < 0 || rx_pos_ >= rx_len_) {
    if (rx_current_ >= 0) {  // consumed: give the buffer back
      PostRx(static_cast<uint16_t>(rx_current_));
      rx_current_ = -1;
    }
    VirtqUsedElem used;
    const WaitResult r = rxq_.WaitUsed(timeout_ticks, &used);
    if (r == WaitResult::kTimeout) {
      err->Str("console receive timeout, status=").Hex(mmio_.Status());
      return false;
    }
    if (used.id >= rx_count_ || used.len > kConsoleRxBufferSize) {
      err->Str("console: bad used element id=").Dec(used.id).Str(" len=").Dec(used.len);
      return false;
    }
    rx_current_ = static_cast<int32_t>(used.id);
    rx_pos_ = 0;
    rx_len_ = used.len;
  }
  *c = rx_buffers[rx_current_][rx_pos_++];
  return true;
}

}  // namespace rehome::guest
