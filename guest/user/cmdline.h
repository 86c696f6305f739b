// guest/user/cmdline.h: parses the guest command line (space-separated key=value, keys in
// guest/abi/rehome_abi.h). Unknown keys and tokens without '=' are ignored (hosts may add their
// own); a known key with a malformed value, or an unknown workload, is an error. Pure function;
// thread-safe.
#ifndef REHOME_GUEST_USER_CMDLINE_H_
#define REHOME_GUEST_USER_CMDLINE_H_

#include <stdint.h>

#include "guest/abi/rehome_abi.h"
#include "guest/kernel/serial.h"
#include "guest/virtio/mmio_cmdline.h"
#include "guest/virtio/virtio_blk.h"

namespace rehome::guest {

enum class Workload {
  kIdle,
  kCounter,
  kPio,
  kFault,
  kBlk,
  kEcho,
  kNetEcho,
  kSearch,
  kOltp,
  kVirtioBad,
  kReboot,
  kPowerOff,
  kPanic
};

struct GuestConfig {
  Workload workload = Workload::kIdle;
  uint64_t seed = 1;
  uint64_t steps = 0;                                // 0 = forever
  uint64_t report_every = abi::kDefaultReportEvery;  // 0 = only the final report
  uint32_t cpus = 0;                                 // 0 = not given on the command line
  VirtioMmioRegion virtio[kMaxVirtioDevices];        // virtio_mmio.device= entries, in order
  uint32_t virtio_count = 0;
  uint32_t ip = abi::kDefaultGuestIp;                // ip=A.B.C.D (host byte order)
  uint16_t port = abi::kDefaultNetEchoPort;          // port=N (1..65535)
  uint64_t cache_kib = abi::kDefaultSearchCacheKib;  // cache_kib=N (search, >= 4)
  uint32_t io_depth = kBlkMaxBatch;                  // io_depth=N (oltp page writes in flight)
  bool port_given = false;                           // port= was on the command line
};

const char* WorkloadName(Workload w);

// Every `virtio_mmio.device=` token adds one region (at most kMaxVirtioDevices).
// Parses `cmdline` into `config` (which holds the defaults on entry). On error returns false and
// appends a one-line reason to `error`.
bool ParseCommandLine(const char* cmdline, GuestConfig* config, LineWriter* error);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_USER_CMDLINE_H_
