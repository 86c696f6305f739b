// vmm/virtio/virtio_device.h: the device-type specific half of a virtio device (virtio-blk,
// virtio-console, ...) as seen by a transport (MmioTransport), plus the virtio 1.x constants the
// transport and the devices share. A VirtioDevice never touches transport registers: it exposes
// its feature bits, its configuration space and a per-queue "process what is available" step.
// Thread-safety: a transport calls every method with its own lock held, so implementations need
// no locking for those calls; methods a device adds for other threads (e.g.
// ConsoleDevice::QueueInput) must lock on their own.
#ifndef REHOME_VMM_VIRTIO_VIRTIO_DEVICE_H_
#define REHOME_VMM_VIRTIO_VIRTIO_DEVICE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/virtqueue.h"

namespace rehome::virtio {

// Device IDs (virtio 1.1 section 5).
inline constexpr uint32_t kDeviceIdNet = 1;
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdConsole = 3;

// Transport-level feature bits.
inline constexpr int kFeatureIndirectDesc = 28;  // never offered
inline constexpr int kFeatureEventIdx = 29;      // never offered
inline constexpr int kFeatureVersion1 = 32;      // always offered, must be accepted

// Device status bits.
inline constexpr uint32_t kStatusAcknowledge = 0x01;
inline constexpr uint32_t kStatusDriver = 0x02;
inline constexpr uint32_t kStatusDriverOk = 0x04;
inline constexpr uint32_t kStatusFeaturesOk = 0x08;
inline constexpr uint32_t kStatusNeedsReset = 0x40;
inline constexpr uint32_t kStatusFailed = 0x80;

// Where a ready virtqueue's available index lives (guest-physical), and whether the device takes
// its buffers as soon as they are available (VirtioDevice::TakesBuffersUnprompted).
struct AvailIndexAddress {
  uint64_t gpa = 0;
  bool unprompted = true;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_id() const = 0;  // kDeviceIdNet, kDeviceIdBlock, ...
  // Device-specific feature bits; the transport adds VIRTIO_F_VERSION_1 itself.
  virtual uint64_t device_features() const = 0;
  virtual int queue_count() const = 0;
  // Whether the device takes queue `q`'s buffers as soon as the driver makes them available (a
  // request or transmit queue), rather than when host input arrives (a receive queue).
  virtual bool TakesBuffersUnprompted(int q) const { return true; }

  // Configuration space access at `offset` (relative to the start of the device config). Bytes
  // beyond the device's config structure read as zero; writes there are ignored.
  virtual void ReadConfig(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void WriteConfig(uint64_t offset, std::span<const uint8_t> data) {}

  // Processes the available chains of queue `q` (0 <= q < queue_count()). Returns whether used
  // buffers were added (so an interrupt is due). An error means a malformed request or ring:
  // the transport sets DEVICE_NEEDS_RESET, logs the reason and stops processing until reset.
  virtual absl::StatusOr<bool> ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) = 0;

  // Device reset (status written to 0): drops in-flight state that belongs to the driver
  // session. Host-side state that outlives a driver (console input not yet delivered, counters)
  // may be kept.
  virtual void Reset() = 0;

  // Device-specific state as a versioned record (docs/virtio.md); RestoreState validates it
  // (InvalidArgument) and applies it all or nothing.
  virtual std::vector<uint8_t> SaveState() const = 0;
  virtual absl::Status RestoreState(std::span<const uint8_t> bytes) = 0;
};

}  // namespace rehome::virtio

#endif  // REHOME_VMM_VIRTIO_VIRTIO_DEVICE_H_
