// guest/virtio/mmio_cmdline.h: parses one `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` value
// (the Linux kernel's syntax, which QEMU microvm and rehome pass on the command line). Pure
// function; thread-safe.
#ifndef REHOME_GUEST_VIRTIO_MMIO_CMDLINE_H_
#define REHOME_GUEST_VIRTIO_MMIO_CMDLINE_H_

#include <stdint.h>

namespace rehome::guest {

inline constexpr uint32_t kMaxVirtioDevices = 16;
// The smallest transport window the guest accepts: registers 0x000-0x0ff plus 0x100 bytes of
// device configuration space.
inline constexpr uint64_t kMinVirtioMmioSize = 0x200;

// One virtio-mmio transport window, identity mapped (the guest maps 0-4 GiB).
struct VirtioMmioRegion {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t irq = 0;  // global system interrupt; the network services wake on it when idle
};

// Parses the `n` bytes at `s` (the value after `virtio_mmio.device=`). Sizes and the base are
// decimal or 0x-hexadecimal with an optional K, M or G suffix (binary units, either case); the
// irq is decimal and an optional `:<id>` is ignored. The window must be 4-byte aligned, at
// least kMinVirtioMmioSize bytes and end at or below 4 GiB. Returns false when malformed.
bool ParseVirtioMmioDevice(const char* s, uint32_t n, VirtioMmioRegion* out);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_VIRTIO_MMIO_CMDLINE_H_
