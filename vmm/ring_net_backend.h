// vmm/ring_net_backend.h: the virtio-net device's NetBackend over L0's two frame rings
// (kvm-l0/frame_ring.h): it reads received frames from the receive ring and writes transmitted
// frames into the transmit ring, at the device's positions. With deferred publication (split
// mode) the positions become visible to L0 only at Publish(), which the L1 calls after the commit
// that holds them: L0 never frees a receive slot the committed state still needs, and never
// sends a frame an uncommitted execution wrote (docs/failover.md). Without it (monolithic mode)
// each position is published at once and `on_tx` runs after every transmitted frame (L0 then
// writes it to the tap on the calling thread).
// Thread-safety: the NetBackend methods run under the device's transport lock; Publish is called
// by the same (L1 main) thread. The rings must outlive the backend.
#ifndef REHOME_VMM_RING_NET_BACKEND_H_
#define REHOME_VMM_RING_NET_BACKEND_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "kvm-l0/frame_ring.h"
#include "vmm/virtio/net_device.h"

namespace rehome {

class RingNetBackend final : public virtio::NetBackend {
 public:
  RingNetBackend(FrameRing* rx, FrameRing* tx, bool deferred, std::function<void()> on_tx)
      : rx_(rx), tx_(tx), deferred_(deferred), on_tx_(std::move(on_tx)) {}
  RingNetBackend(const RingNetBackend&) = delete;
  RingNetBackend& operator=(const RingNetBackend&) = delete;

  std::optional<size_t> ReadRx(uint64_t pos, std::span<uint8_t> out) override {
    return rx_->ReadAt(pos, out);
  }
  void RxDone(uint64_t pos) override {
    if (!deferred_) rx_->SetConsumed(pos);
  }
  bool TxRoom(uint64_t pos) override { return tx_->FreeAt(pos) > 0; }
  void WriteTx(uint64_t pos, std::span<const uint8_t> frame) override {
    (void)tx_->WriteAt(pos, frame);  // the device checked the room and the size
    if (deferred_) return;
    tx_->Publish(pos + 1);
    if (on_tx_) on_tx_();
  }

  // Deferred mode: makes the committed positions visible (receive slots before `rx_pos` may be
  // reused, transmitted frames before `tx_pos` sent). Stored outright, not only forward: the
  // active L1 is their only writer, and a promoted L1 thereby replaces whatever its failed
  // predecessor left there with the committed truth. True when the transmit position changed.
  bool Publish(uint64_t rx_pos, uint64_t tx_pos) {
    if (rx_->consumed() != rx_pos) rx_->StoreConsumed(rx_pos);
    if (tx_->published() == tx_pos) return false;
    tx_->StorePublished(tx_pos);
    return true;
  }
  // The fault injection "garbage" (tests): an impossible transmit position, which L0 must refuse
  // and answer with a failover.
  void PublishGarbage() { tx_->StorePublished(tx_->consumed() + 4 * uint64_t{kFrameRingSlots}); }

 private:
  FrameRing* const rx_;
  FrameRing* const tx_;
  const bool deferred_;
  const std::function<void()> on_tx_;
};

}  // namespace rehome

#endif  // REHOME_VMM_RING_NET_BACKEND_H_
