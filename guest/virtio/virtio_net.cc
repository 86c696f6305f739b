// guest/virtio/virtio_net.cc: polled virtio-net driver (see virtio_net.h). CPL3.
#include "guest/virtio/virtio_net.h"

#include "guest/user/syscall.h"

namespace rehome::guest {
namespace {

VirtqMemory rx_ring;
VirtqMemory tx_ring;
alignas(64) uint8_t rx_buffers[kNetRxBuffers][kNetBufferBytes];
alignas(64) uint8_t tx_buffers[kNetTxBuffers][kNetBufferBytes];

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

uint8_t* VirtioNet::tx_buffer(uint32_t i) { return tx_buffers[i % kNetTxBuffers]; }

bool VirtioNet::Init(uint64_t base, LineWriter* err, bool post_rx) {
  mmio_.set_base(base);
  if (!mmio_.Begin(kFeatureVersion1 | kNetFeatureMac, err)) return false;
  if (!mmio_.SetupQueue(0, &rx_ring, &rxq_, err)) return false;
  if (!mmio_.SetupQueue(1, &tx_ring, &txq_, err)) return false;
  // The MAC (config offset 0, 6 bytes) as two 32-bit reads, retried if the generation moved.
  uint32_t gen, low, high;
  do {
    gen = mmio_.Read(kRegConfigGeneration);
    low = mmio_.ConfigRead32(0);
    high = mmio_.ConfigRead32(4);
  } while (gen != mmio_.Read(kRegConfigGeneration));
  for (int i = 0; i < 4; ++i) mac_[i] = static_cast<uint8_t>(low >> (8 * i));
  mac_[4] = static_cast<uint8_t>(high);
  mac_[5] = static_cast<uint8_t>(high >> 8);
  if (!mmio_.DriverOk(err)) return false;
  rx_count_ = rxq_.size() < kNetRxBuffers ? rxq_.size() : kNetRxBuffers;
  rx_current_ = -1;
  tx_count_ = txq_.size() < kNetTxBuffers ? txq_.size() : kNetTxBuffers;
  tx_in_flight_ = 0;
  tx_free_count_ = 0;
  for (uint32_t i = 0; i < tx_count_; ++i) tx_free_[tx_free_count_++] = tx_count_ - 1 - i;
  if (post_rx) {
    for (uint32_t i = 0; i < rx_count_; ++i) {
      rxq_.desc()[i] = {Addr(rx_buffers[i]), kNetBufferBytes, kDescFWrite, 0};
      rxq_.Publish(static_cast<uint16_t>(i));
    }
    mmio_.Notify(rxq_);
  }
  return true;
}

const uint8_t* VirtioNet::Receive(uint32_t* len) {
  if (rx_current_ >= 0 || !rxq_.HasUsed()) return nullptr;  // a memory read: no exit
  VirtqUsedElem used;
  rxq_.WaitUsed(0, &used);  // there is one: returns at once
  if (used.id >= rx_count_ || used.len < kNetHeaderBytes || used.len > kNetBufferBytes) {
    // Not a buffer of ours, or an impossible length: give the slot back, report no frame.
    if (used.id < rx_count_) PostRx(static_cast<uint16_t>(used.id));
    return nullptr;
  }
  rx_current_ = static_cast<int32_t>(used.id);
  *len = used.len - kNetHeaderBytes;
  return rx_buffers[used.id] + kNetHeaderBytes;
}

void VirtioNet::Release() {
  if (rx_current_ < 0) return;
  PostRx(static_cast<uint16_t>(rx_current_));
  rx_current_ = -1;
}

void VirtioNet::PostRx(uint16_t id) {
  rxq_.desc()[id] = {Addr(rx_buffers[id]), kNetBufferBytes, kDescFWrite, 0};
  rxq_.Publish(id);
  // Notify only when the device asks for it (VIRTQ_USED_F_NO_NOTIFY clear: it ran out of
  // buffers with a frame waiting), so a steady stream costs no exit per frame. The full fence
  // orders the available index before the flags' read; the device orders them the other way.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if ((__atomic_load_n(&rxq_.mem()->used.flags, __ATOMIC_ACQUIRE) & kUsedFNoNotify) == 0) {
    mmio_.Notify(rxq_);
  }
}

void VirtioNet::Reclaim() {
  VirtqUsedElem used;
  while (txq_.HasUsed()) {
    txq_.WaitUsed(0, &used);
    if (used.id < tx_count_ && tx_free_count_ < tx_count_) tx_free_[tx_free_count_++] = used.id;
    if (tx_in_flight_ > 0) --tx_in_flight_;
  }
}

bool VirtioNet::Send(const uint8_t* frame, uint32_t len, uint64_t timeout_ticks, LineWriter* err) {
  if (len < 14 || len > kNetFrameMax) {
    err->Str("net: frame of ").Dec(len).Str(" bytes");
    return false;
  }
  Reclaim();
  if (tx_free_count_ == 0) {
    const uint64_t start = SysGetTicks();
    while (tx_free_count_ == 0) {
      if (SysGetTicks() - start > timeout_ticks) {
        err->Str("net: transmit timeout, status=").Hex(mmio_.Status());
        return false;
      }
      Reclaim();
    }
  }
  const uint32_t id = tx_free_[--tx_free_count_];
  uint8_t* buf = tx_buffers[id];
  for (uint32_t i = 0; i < kNetHeaderBytes; ++i) buf[i] = 0;
  for (uint32_t i = 0; i < len; ++i) buf[kNetHeaderBytes + i] = frame[i];
  txq_.desc()[id] = {Addr(buf), kNetHeaderBytes + len, 0, 0};
  txq_.Publish(static_cast<uint16_t>(id));
  ++tx_in_flight_;
  mmio_.Notify(txq_);
  return true;
}

bool VirtioNet::Flush(uint64_t timeout_ticks, LineWriter* err) {
  const uint64_t start = SysGetTicks();
  for (uint32_t spins = 0;; ++spins) {
    Reclaim();
    if (tx_in_flight_ == 0) return true;
    if ((spins & 1023) == 0 && SysGetTicks() - start > timeout_ticks) {
      err->Str("net: transmit timeout, status=").Hex(mmio_.Status());
      return false;
    }
  }
}

}  // namespace rehome::guest
