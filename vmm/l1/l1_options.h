// vmm/l1/l1_options.h: the command line of the L1 process role (`rehome __l1 ...`), which only
// L0 writes (recovery/l1_process.cc; the options are listed in docs/exit-channel.md).
// Thread-safety: plain data and a pure parser.
#ifndef REHOME_VMM_L1_L1_OPTIONS_H_
#define REHOME_VMM_L1_L1_OPTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvm-l0/guest_memory.h"
#include "vmm/counter_oracle.h"
#include "vmm/l1/l1_sandbox.h"
#include "vmm/virtio/net_device.h"

namespace rehome {

struct L1Options {
  int cpus = 1;
  std::optional<CounterOracle::Config> oracle;
  std::vector<GuestMemory::RegionDesc> ram;
  int channel_fd = -1, request_efd = -1, ack_efd = -1, journal_fd = -1;
  std::vector<int> response_efds;
  uint32_t heartbeat_ms = 10;
  pid_t parent_pid = 0;  // L0's pid (in L0's pid namespace)
  int lifeline_fd = -1;  // readable (POLLHUP) once L0 is gone: the L1 then exits
  int disk_fd = -1;
  bool disk_read_only = false;
  bool realtime = false;       // ask for SCHED_FIFO
  int blk_notify_fd = -1;      // ioeventfd of the disk's QueueNotify (queue 0)
  int blk_irq_fd = -1;         // irqfd of the disk's interrupt line
  int console_notify_fd = -1;  // ioeventfd of the console's QueueNotify (any queue)
  int console_irq_fd = -1;     // irqfd of the console's interrupt line
  int console_ring_fd = -1;    // the transmit ring (kvm-l0/console_tx_ring.h)
  int console_out_fd = -1;     // eventfd: wakes L0 to drain the ring
  bool console = false;        // virtio-console; its host slot is the last channel slot
  // virtio-net (--net-mac): the frame rings (kvm-l0/frame_ring.h), the QueueNotify ioeventfd
  // (any queue), the irqfd, L0's kick (frames arrived, transmit room) and the eventfd that wakes
  // L0 to send transmitted frames.
  bool net = false;
  virtio::MacAddress net_mac{};
  int net_rx_ring_fd = -1, net_tx_ring_fd = -1;
  int net_notify_fd = -1, net_irq_fd = -1, net_kick_fd = -1, net_wake_fd = -1;
  // Verified execution (a replica): effects are captured into the effects area for L0 to
  // compare and apply, never applied by this L1 (docs/failover.md, "Verified execution").
  bool verify = false;
  int effects_fd = -1;
  L1SandboxOptions sandbox;  // --sandbox, --sandbox-ns-fds, --sandbox-root, --sandbox-id-base
  // Whether the channel has a host slot after the vCPUs' (console input; a replica's items that
  // no vCPU waits for: network input, queue notifications L0 took on an ioeventfd).
  bool HasHostSlot() const { return console || verify; }
};

// Parses `--key value` pairs; InvalidArgument names the first bad or missing option.
absl::StatusOr<L1Options> ParseL1Options(const std::vector<std::string>& args);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_OPTIONS_H_
