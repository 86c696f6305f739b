// guest/virtio/virtio_mmio.h: a minimal virtio 1.x driver core for CPL3 guest code: the
// virtio-mmio (version 2, "modern") register interface and split virtqueues whose rings live in
// guest RAM (identity mapped, so a pointer is its guest-physical address). Completions are found
// by polling the used ring; no interrupt is ever enabled (InterruptStatus is read and acked after
// each completion so a level-triggered line does not stay asserted). x86 only: the ring
// orderings need compiler barriers alone, and every MMIO access is one 32-bit `mov`.
// Not thread-safe: one vCPU drives a device.
#ifndef REHOME_GUEST_VIRTIO_VIRTIO_MMIO_H_
#define REHOME_GUEST_VIRTIO_VIRTIO_MMIO_H_

#include <stddef.h>
#include <stdint.h>

#include "guest/kernel/serial.h"

namespace rehome::guest {

// ---- virtio constants ----
inline constexpr uint32_t kVirtioMmioMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kVirtioIdBlock = 2;
inline constexpr uint32_t kVirtioIdConsole = 3;
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 0x40;
inline constexpr uint32_t kStatusFailed = 0x80;
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint32_t kInterruptUsedBuffer = 1;  // InterruptStatus bit 0
inline constexpr uint16_t kUsedFNoNotify = 1;  // used ring flags: the device needs no notification

// Register offsets (virtio 1.x, 4.2.2).
enum MmioReg : uint32_t {
  kRegMagic = 0x000,
  kRegVersion = 0x004,
  kRegDeviceId = 0x008,
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
  kRegConfig = 0x100,
};

// ---- split virtqueue memory (one 4 KiB page per queue, at most kMaxQueueSize entries) ----
inline constexpr uint32_t kMaxQueueSize = 64;

struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct VirtqUsedElem {
  uint32_t id;
  uint32_t len;
};
struct alignas(4096) VirtqMemory {
  VirtqDesc desc[kMaxQueueSize];  // offset 0, 16-byte aligned
  struct {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[kMaxQueueSize + 1];  // + used_event slot
  } avail;                             // offset 1024
  alignas(64) struct {
    uint16_t flags;
    uint16_t idx;
    VirtqUsedElem ring[kMaxQueueSize];
    uint16_t avail_event;
  } used;
};
static_assert(sizeof(VirtqMemory) == 4096, "one page per queue");
static_assert(offsetof(VirtqMemory, avail) == 1024 && offsetof(VirtqMemory, used) == 1216,
              "ring offsets documented in docs/guest-abi.md");

// Result of waiting for a used buffer.
enum class WaitResult { kDone, kTimeout };

// One split virtqueue. The descriptor table is the caller's to fill (desc()); Publish() makes a
// chain head available and WaitUsed() polls for the next used element.
class Virtqueue final {
 public:
  Virtqueue() = default;
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;

  uint32_t size() const { return size_; }
  uint32_t index() const { return index_; }
  VirtqDesc* desc() { return mem_->desc; }
  VirtqMemory* mem() { return mem_; }
  // The driver's next available index (what avail.idx holds after the last Publish).
  uint16_t avail_idx() const { return avail_idx_; }

  // Puts `head` in the next available slot and publishes the new avail.idx (release order).
  void Publish(uint16_t head);
  // True when the device has used a buffer that WaitUsed has not returned yet.
  bool HasUsed() const;
  // Polls the used ring until the next element appears or `timeout_ticks` LAPIC ticks pass.
  WaitResult WaitUsed(uint64_t timeout_ticks, VirtqUsedElem* out);

 private:
  friend class VirtioMmio;
  VirtqMemory* mem_ = nullptr;
  uint32_t index_ = 0;
  uint32_t size_ = 0;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
};

// One virtio-mmio transport. Methods that can fail print a one-line reason to `err` (which the
// caller flushes) and return false.
class VirtioMmio final {
 public:
  VirtioMmio() = default;
  VirtioMmio(const VirtioMmio&) = delete;
  VirtioMmio& operator=(const VirtioMmio&) = delete;

  void set_base(uint64_t base) { base_ = base; }
  uint64_t base() const { return base_; }
  // The transport's interrupt (global system interrupt) from its virtio_mmio.device= entry.
  void set_irq(uint32_t irq) { irq_ = irq; }
  uint32_t irq() const { return irq_; }

  uint32_t Read(uint32_t reg) const;
  void Write(uint32_t reg, uint32_t value) const;

  // Magic and version check; returns the DeviceID (0 = no device behind this transport).
  bool Probe(uint32_t* device_id, LineWriter* err) const;
  // Writes Status 0 and waits (bounded) until it reads back 0.
  bool Reset(LineWriter* err) const;
  // Reset, ACKNOWLEDGE, DRIVER, accepts `features` (must be offered and include
  // kFeatureVersion1), FEATURES_OK and checks that the device kept it.
  bool Begin(uint64_t features, LineWriter* err) const;
  // Sets up queue `index` on `mem` with size min(QueueNumMax, kMaxQueueSize) rounded down to a
  // power of two, and enables it.
  bool SetupQueue(uint32_t index, VirtqMemory* mem, Virtqueue* q, LineWriter* err) const;
  // Sets DRIVER_OK and checks that the device did not fail.
  bool DriverOk(LineWriter* err) const;
  void Notify(const Virtqueue& q) const { Write(kRegQueueNotify, q.index()); }
  // Reads InterruptStatus and acks whatever is set.
  void AckInterrupts() const;
  uint32_t Status() const { return Read(kRegStatus); }
  uint32_t ConfigRead32(uint32_t offset) const { return Read(kRegConfig + offset); }

 private:
  uint64_t base_ = 0;
  uint32_t irq_ = 0;
};

// Scans `regions` for the first transport whose DeviceID is `device_id`; sets its base and irq
// in `out` and returns true. Transports that fail the probe are reported on serial and skipped.
struct VirtioMmioRegion;
bool FindVirtioDevice(const VirtioMmioRegion* regions, uint32_t count, uint32_t device_id,
                      VirtioMmio* out);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_VIRTIO_VIRTIO_MMIO_H_
