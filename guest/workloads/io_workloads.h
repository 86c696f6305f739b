// guest/workloads/io_workloads.h: the virtio workloads (blk, echo, virtio-bad), run by vCPU 0
// only at CPL3 over the virtio-mmio transports named on the command line. Each prints its own
// result lines on COM1 and returns false after printing the reason for a failed check (the
// caller then exits with kExitWorkloadFailed). Not thread-safe: vCPU 0 only.
#ifndef REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_
#define REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_

#include <stdint.h>

#include "guest/virtio/mmio_cmdline.h"

namespace rehome::guest {

struct VirtioDevices {
  const VirtioMmioRegion* regions;
  uint32_t count;
};

// `steps` write/read-back iterations on the first virtio-blk device (0 = forever).
bool RunBlk(const VirtioDevices& devices, uint64_t seed, uint64_t steps);
// `steps` request/response round trips on the first virtio-console device (0 = forever).
bool RunEcho(const VirtioDevices& devices, uint64_t seed, uint64_t steps);
// Hostile-driver cases against the first virtio-blk device.
bool RunVirtioBad(const VirtioDevices& devices, uint64_t seed);

// Shared by the blk workloads: true when `got` is exactly blockpattern::Fill(seed, iteration,
// lba); otherwise prints what was found instead and returns false.
bool VerifyBlock(const uint8_t* got, uint64_t seed, uint64_t iteration, uint64_t lba);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_
