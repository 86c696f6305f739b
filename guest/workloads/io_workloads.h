// guest/workloads/io_workloads.h: the virtio workloads (blk, echo, netecho, search, oltp,
// virtio-bad), run by
// vCPU 0 only at CPL3 over the virtio-mmio transports named on the command line. Each prints its
// own result lines on COM1 and returns false after printing the reason for a failed check (the
// caller then exits with kExitWorkloadFailed). Not thread-safe: vCPU 0 only.
#ifndef REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_
#define REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/mmio_cmdline.h"

namespace rehome::guest {

// Where the virtio-bad workload points descriptors it wants outside guest RAM: far above any
// test guest's RAM.
inline constexpr uint64_t kOutsideRam = 0xffff0000000ull;

struct VirtioDevices {
  const VirtioMmioRegion* regions;
  uint32_t count;
  uint64_t rsdp_paddr = 0;  // the ACPI tables (I/O APICs) from the PVH start info; 0 = none
};

// `steps` write/read-back iterations on the first virtio-blk device (0 = forever).
bool RunBlk(const VirtioDevices& devices, uint64_t seed, uint64_t steps);
// `steps` request/response round trips on the first virtio-console device (0 = forever).
bool RunEcho(const VirtioDevices& devices, uint64_t seed, uint64_t steps);
// Echoes `steps` UDP datagrams sent to `port` (0 = forever) on the first virtio-net device, with
// the IPv4 address `ip` (host byte order); answers ARP and ping meanwhile.
bool RunNetEcho(const VirtioDevices& devices, uint32_t ip, uint16_t port, uint64_t steps);
// Serves BM25 queries (docs/search-index.md, docs/service-protocol.md) from the index on the
// first virtio-blk device over the first virtio-net device (address `ip`), `steps` requests
// (0 = forever), with a block cache of `cache_kib` KiB (less when it does not fit) in the RAM
// between the guest image and `ram_end`.
bool RunSearch(const VirtioDevices& devices, uint32_t ip, uint64_t steps, uint64_t cache_kib,
               uint64_t ram_end);
// Serves TPC-C's five transactions (docs/service-protocol.md, "oltp") on UDP `port` against the
// oltp database on the first virtio-blk device (docs/oltp-format.md), `steps` requests (0 =
// forever), then checkpoints; answers ARP and ping meanwhile. Its page cache and recorded
// responses (8 MiB) live in the RAM between the guest image and `ram_end`. Page writes go
// `io_depth` at a time (at most what the disk's queue holds).
bool RunOltp(const VirtioDevices& devices, uint32_t ip, uint16_t port, uint64_t steps,
             uint64_t ram_end, uint32_t io_depth);
// Brings up the first virtio-net device and a NetStack on it (printing the device line); the
// network services (netecho, and the request/response workloads) serve through *out.
class NetStack;
bool BringUpNet(const VirtioDevices& devices, uint32_t ip, NetStack** out, LineWriter* err);
// Hostile-driver cases against the first virtio-blk device and the first virtio-net device
// (each when present).
bool RunVirtioBad(const VirtioDevices& devices, uint64_t seed);
// The virtio-net cases of RunVirtioBad against the device at `base`; adds them to *cases.
bool RunVirtioBadNet(uint64_t base, uint64_t* cases, LineWriter* err);

// Shared by the blk workloads: true when `got` is exactly blockpattern::Fill(seed, iteration,
// lba); otherwise prints what was found instead and returns false.
bool VerifyBlock(const uint8_t* got, uint64_t seed, uint64_t iteration, uint64_t lba);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_WORKLOADS_IO_WORKLOADS_H_
