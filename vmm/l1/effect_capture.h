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
#include <span>
#include <string_view>
#include <vector>

#include "kvm-l0/effects_area.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/blk_device.h"

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

// A replica's view of guest RAM: reads go to guest memory, writes to the capture.
class CapturingRamView final : public GuestMemoryView {
 public:
  CapturingRamView(const GuestMemoryView& ram, EffectCapture& capture)
      : ram_(ram), capture_(capture) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }
  uint8_t* WritableAddress(uint64_t gpa, uint64_t len) const override;
  bool HasRoomForWork() const override { return capture_.HasRoom(); }

 private:
  const GuestMemoryView& ram_;
  EffectCapture& capture_;
};

}  // namespace rehome

#endif  // REHOME_VMM_L1_EFFECT_CAPTURE_H_
