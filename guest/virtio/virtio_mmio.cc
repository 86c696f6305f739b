// guest/virtio/virtio_mmio.cc: virtio-mmio transport and split virtqueue (see virtio_mmio.h).
// Runs at CPL3; each register access is an MMIO exit to the host, so the hot path touches only
// QueueNotify, InterruptStatus and InterruptACK.
#include "guest/virtio/virtio_mmio.h"

#include "guest/user/syscall.h"
#include "guest/virtio/mmio_cmdline.h"

namespace rehome::guest {
namespace {

constexpr uint32_t kResetPolls = 100000;

inline void CompilerBarrier() { asm volatile("" ::: "memory"); }

uint32_t Low(const void* p) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)); }
uint32_t High(const void* p) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p) >> 32); }

}  // namespace

void Virtqueue::Publish(uint16_t head) {
  mem_->avail.ring[avail_idx_ & (size_ - 1)] = head;
  ++avail_idx_;
  // Release: the descriptors and the ring slot are visible before the new index.
  __atomic_store_n(&mem_->avail.idx, avail_idx_, __ATOMIC_RELEASE);
}

bool Virtqueue::HasUsed() const {
  return __atomic_load_n(&mem_->used.idx, __ATOMIC_ACQUIRE) != last_used_;
}

WaitResult Virtqueue::WaitUsed(uint64_t timeout_ticks, VirtqUsedElem* out) {
  uint64_t start = 0;
  for (uint32_t spins = 0;; ++spins) {
    if (HasUsed()) break;
    if ((spins & 4095) == 0) {
      const uint64_t now = SysGetTicks();
      if (spins == 0) start = now;
      if (now - start > timeout_ticks) return WaitResult::kTimeout;
    }
    asm volatile("pause");
  }
  const VirtqUsedElem& e = mem_->used.ring[last_used_ & (size_ - 1)];
  out->id = e.id;
  out->len = e.len;
  ++last_used_;
  return WaitResult::kDone;
}

uint32_t VirtioMmio::Read(uint32_t reg) const {
  uint32_t value;
  const auto* p = reinterpret_cast<const volatile uint32_t*>(base_ + reg);
  asm volatile("movl (%1), %0" : "=r"(value) : "r"(p) : "memory");
  return value;
}

void VirtioMmio::Write(uint32_t reg, uint32_t value) const {
  auto* p = reinterpret_cast<volatile uint32_t*>(base_ + reg);
  asm volatile("movl %0, (%1)" : : "r"(value), "r"(p) : "memory");
}

bool VirtioMmio::Probe(uint32_t* device_id, LineWriter* err) const {
  const uint32_t magic = Read(kRegMagic);
  if (magic != kVirtioMmioMagic) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": bad magic ").Hex(magic);
    return false;
  }
  const uint32_t version = Read(kRegVersion);
  if (version != 2) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": version ").Dec(version);
    err->Str(" unsupported (modern version 2 only; QEMU: -global virtio-mmio.force-legacy=false)");
    return false;
  }
  *device_id = Read(kRegDeviceId);
  return true;
}

bool VirtioMmio::Reset(LineWriter* err) const {
  Write(kRegStatus, 0);
  for (uint32_t i = 0; i < kResetPolls; ++i) {
    if (Read(kRegStatus) == 0) return true;
  }
  err->Str("virtio-mmio at ").Hex(base_).Str(": reset did not complete");
  return false;
}

bool VirtioMmio::Begin(uint64_t features, LineWriter* err) const {
  if (!Reset(err)) return false;
  Write(kRegStatus, kStatusAcknowledge);
  Write(kRegStatus, kStatusAcknowledge | kStatusDriver);
  Write(kRegDeviceFeaturesSel, 0);
  uint64_t offered = Read(kRegDeviceFeatures);
  Write(kRegDeviceFeaturesSel, 1);
  offered |= static_cast<uint64_t>(Read(kRegDeviceFeatures)) << 32;
  if ((features & kFeatureVersion1) == 0 || (offered & features) != features) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": features offered ").Hex(offered);
    err->Str(", need ").Hex(features);
    Write(kRegStatus, kStatusFailed);
    return false;
  }
  Write(kRegDriverFeaturesSel, 0);
  Write(kRegDriverFeatures, static_cast<uint32_t>(features));
  Write(kRegDriverFeaturesSel, 1);
  Write(kRegDriverFeatures, static_cast<uint32_t>(features >> 32));
  Write(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  if ((Read(kRegStatus) & kStatusFeaturesOk) == 0) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": device refused FEATURES_OK");
    Write(kRegStatus, kStatusFailed);
    return false;
  }
  return true;
}

bool VirtioMmio::SetupQueue(uint32_t index, VirtqMemory* mem, Virtqueue* q, LineWriter* err) const {
  Write(kRegQueueSel, index);
  if (Read(kRegQueueReady) != 0) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": queue ").Dec(index).Str(" already ready");
    return false;
  }
  const uint32_t max = Read(kRegQueueNumMax);
  if (max == 0) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": no queue ").Dec(index);
    return false;
  }
  uint32_t size = kMaxQueueSize;
  while (size > max) size >>= 1;
  // Fresh rings: zeroed so a reset device and a re-initialising driver start from index 0.
  auto* bytes = reinterpret_cast<volatile uint8_t*>(mem);
  for (uint32_t i = 0; i < sizeof(VirtqMemory); ++i) bytes[i] = 0;
  CompilerBarrier();
  q->mem_ = mem;
  q->index_ = index;
  q->size_ = size;
  q->avail_idx_ = 0;
  q->last_used_ = 0;
  Write(kRegQueueNum, size);
  Write(kRegQueueDescLow, Low(mem->desc));
  Write(kRegQueueDescHigh, High(mem->desc));
  Write(kRegQueueDriverLow, Low(&mem->avail));
  Write(kRegQueueDriverHigh, High(&mem->avail));
  Write(kRegQueueDeviceLow, Low(&mem->used));
  Write(kRegQueueDeviceHigh, High(&mem->used));
  Write(kRegQueueReady, 1);
  if (Read(kRegQueueReady) != 1) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": queue ").Dec(index).Str(" not enabled");
    return false;
  }
  return true;
}

bool VirtioMmio::DriverOk(LineWriter* err) const {
  Write(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  const uint32_t status = Read(kRegStatus);
  if ((status & (kStatusNeedsReset | kStatusFailed)) != 0 || (status & kStatusDriverOk) == 0) {
    err->Str("virtio-mmio at ").Hex(base_).Str(": DRIVER_OK failed, status ").Hex(status);
    return false;
  }
  return true;
}

void VirtioMmio::AckInterrupts() const {
  const uint32_t isr = Read(kRegInterruptStatus);
  if (isr != 0) Write(kRegInterruptAck, isr);
}

bool FindVirtioDevice(const VirtioMmioRegion* regions, uint32_t count, uint32_t device_id,
                      VirtioMmio* out) {
  for (uint32_t i = 0; i < count; ++i) {
    VirtioMmio t;
    t.set_base(regions[i].base);
    uint32_t id = 0;
    LineWriter err;
    err.Str("rehome-guest: ");
    if (!t.Probe(&id, &err)) {
      err.Flush();
      continue;
    }
    if (id == device_id) {
      out->set_base(regions[i].base);
      out->set_irq(regions[i].irq);
      return true;
    }
  }
  return false;
}

}  // namespace rehome::guest
