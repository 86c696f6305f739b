// vmm/l1/effect_capture.h: what a verified replica L1 holds back while it executes one work item
// (verified execution, docs/failover.md): instead of writing guest RAM, the disk image, an irqfd
// or the console, the device model's writes land here, in order, and are encoded for the effects
// area (kvm-l0/effects_area.h), where L0 compares the replicas' and applies one copy once they
// agree. Reads see the item's own disk writes (Overlay); guest RAM reads see guest memory as it
// is (a device does not read back what it wrote within an item). One item's effects are bounded
// (HasRoom): a device stops taking requests past the budget and the rest waits for the next item.
// Thread-safety: single-threaded (the replica's main thread).
#ifndef REHOME_VMM_L1_EFFECT_CAPTURE_H_
#define REHOME_VMM_L1_EFFECT_CAPTURE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kvm-l0/effects_area.h"
#include "kvm-l0/exit_channel.h"
#include "kvm-l0/frame_ring.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/net_device.h"

namespace rehome {

class EffectCapture final : public virtio::BlkWriteCapture {
 public:
  // `budget`: bytes of effects after which HasRoom() turns false.
  explicit EffectCapture(uint64_t budget) : budget_(budget) {}

  // Forgets everything captured (a new item).
  void Clear();

  // A guest RAM write of `len` bytes at `gpa` whose current content is `current`: returns a
  // private buffer holding those bytes for the device to change (valid until Clear()).
  uint8_t* RamWrite(uint64_t gpa, const uint8_t* current, uint64_t len);
  void Irq(uint32_t line);
  void ConsoleOut(std::string_view bytes);
  void NetTx(uint64_t pos, std::span<const uint8_t> frame);
  void NetRxDone(uint64_t pos) { Add(EffectType::kNetRxDone, pos, 0); }

  // virtio::BlkWriteCapture
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  void Flush() override;
  void Overlay(uint64_t offset, std::span<uint8_t> out) const override;

  bool HasRoom() const { return bytes_ < budget_; }
  // The effects in the effects area's encoding (AppendEffect), in the order they happened.
  void EncodeInto(std::vector<uint8_t>* out) const;

 private:
  struct Entry {
    EffectType type;
    uint64_t addr;
    std::unique_ptr<uint8_t[]> data;  // its own buffer: RamWrite hands out stable pointers
    uint64_t len;
  };
  Entry& Add(EffectType type, uint64_t addr, uint64_t len);

  const uint64_t budget_;
  uint64_t bytes_ = 0;
  std::vector<Entry> entries_;
};

// A replica's view of guest RAM: reads go to guest memory, writes to the capture, and the
// available indices of the item's snapshot (ExitRequest::avail_snapshot) come from the item.
class CapturingRamView final : public GuestMemoryView {
 public:
  CapturingRamView(const GuestMemoryView& ram, EffectCapture& capture)
      : ram_(ram), capture_(capture) {}
  // Before each item: its snapshot (`count` entries of `entries`; at most kMaxAvailSnapshot are
  // used, the count comes from L0 but is bounded here).
  void SetAvailSnapshot(const AvailIndexSnapshot* entries, uint32_t count);
  std::optional<uint16_t> AvailableIndex(uint64_t gpa) const override;
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }
  uint8_t* WritableAddress(uint64_t gpa, uint64_t len) const override;
  bool HasRoomForWork() const override { return capture_.HasRoom(); }

 private:
  const GuestMemoryView& ram_;
  EffectCapture& capture_;
  AvailIndexSnapshot snapshot_[kMaxAvailSnapshot];
  uint32_t snapshot_count_ = 0;
};

// A replica's virtio-net backend: received frames come from L0's receive ring, but only those
// before the limit of the item being executed (ExitRequest::net_rx_limit), so that every replica
// delivers the same frames whenever it runs; the receive position and every transmitted frame
// are captured (NetRxDone, NetTx) for L0, which frees receive slots and sends frames only once
// the replicas agreed. The ring is never written here.
class CapturingNetBackend final : public virtio::NetBackend {
 public:
  CapturingNetBackend(FrameRing rx, EffectCapture& capture)
      : rx_(std::make_unique<FrameRing>(std::move(rx))), capture_(capture) {}
  // Before each item: its limit's low 32 bits and the device's receive position.
  void SetRxLimit(uint32_t limit_low32, uint64_t position);
  uint64_t rx_limit() const { return limit_; }

  std::optional<size_t> ReadRx(uint64_t pos, std::span<uint8_t> out) override;
  void RxDone(uint64_t pos) override { capture_.NetRxDone(pos); }
  bool TxRoom(uint64_t /*pos*/) override { return capture_.HasRoom(); }
  void WriteTx(uint64_t pos, std::span<const uint8_t> frame) override {
    capture_.NetTx(pos, frame);
  }

 private:
  std::unique_ptr<FrameRing> rx_;
  EffectCapture& capture_;
  uint64_t limit_ = 0;
};

}  // namespace rehome

#endif  // REHOME_VMM_L1_EFFECT_CAPTURE_H_
