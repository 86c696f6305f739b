// vmm/device_model.h: the guest's device model: the port-I/O/MMIO bus with COM1, the debug-exit
// and reset ports, the pio benchmark sink, (for the counter workload) the report port and its
// oracle, and the virtio-mmio devices (blk, console, net). The same model runs inside the
// monolithic rehome process and inside each split L1 process. SaveState/RestoreState cover every
// device, so a standby L1 continues exactly where the committed state of the failed one ended
// (format in docs/vmm-device-state.md).
// Thread-safety: Handle may be called from several threads (devices lock themselves);
// SaveState/RestoreState must not race with Handle (callers serialise them).
#ifndef REHOME_VMM_DEVICE_MODEL_H_
#define REHOME_VMM_DEVICE_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "kvm-l0/kvm_exit.h"
#include "vmm/bus.h"
#include "vmm/counter_oracle.h"
#include "vmm/devices/debug_exit_port.h"
#include "vmm/devices/pio_bench_port.h"
#include "vmm/devices/serial8250.h"
#include "vmm/exit_dispatcher.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/mmio_transport.h"
#include "vmm/virtio/net_device.h"
#include "vmm/vm_requests.h"

namespace rehome {

// Where the virtio-mmio devices sit: the MMIO hole below 4 GiB, one 0x200-byte window each,
// described to the guest as `virtio_mmio.device=512@<base>:<irq>` on its command line.
inline constexpr uint64_t kVirtioMmioBase = 0xd000'0000;
inline constexpr uint64_t kVirtioMmioStride = 0x200;
inline constexpr uint32_t kVirtioFirstIrq = 5;

// The command-line entry describing the virtio-mmio device at `index`.
std::string VirtioMmioCmdlineEntry(int index);
// The entries for a model with an optional disk (index 0 when present), console (next) and
// network device (next).
std::string VirtioMmioCmdline(bool disk, bool console, bool net = false);
// The index of each device in that order (-1: absent).
struct VirtioIndices {
  int disk = -1;
  int console = -1;
  int net = -1;
};
VirtioIndices VirtioDeviceIndices(bool disk, bool console, bool net);

struct DeviceModelConfig {
  std::optional<CounterOracle::Config> oracle;  // arms the counter report port
  Serial8250::OutputSink serial_output;         // every byte the guest writes to COM1
  Serial8250::IrqHook serial_irq;               // COM1 interrupt line (may be null)
  std::function<void()> progress;               // long work in progress (may be null)
  UniqueFd disk;                                // virtio-blk image (raw); invalid = no disk
  bool disk_read_only = false;
  virtio::BlkWriteCapture* disk_capture = nullptr;  // verified execution (not owned); else null
  bool console = false;                             // virtio-console (port 0)
  std::function<void(std::string_view)> console_output;  // bytes the guest sends on it
  // virtio-net when set: frames from and to this backend (shared with its owner), this MAC.
  std::shared_ptr<virtio::NetBackend> net_backend;
  virtio::MacAddress net_mac{};
  std::function<void(uint32_t irq, bool level)> virtio_irq;  // may be null (guest polls)
  std::function<void(std::string_view)> log;                 // device diagnostics (may be null)
};

inline constexpr uint8_t kDeviceModelStateVersion = 4;  // 2: virtio-blk; 3: console; 4: net

class DeviceModel final {
 public:
  // `ram` must outlive the model.
  static absl::StatusOr<std::unique_ptr<DeviceModel>> Create(DeviceModelConfig config,
                                                             const GuestMemoryView& ram);
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  // DispatchExit, then kCheckFailed when the oracle has recorded a violation, or when the guest
  // reports success (exit status 0) before every vCPU's final report was verified.
  ExitOutcome Handle(KvmExit& exit);

  std::vector<uint8_t> SaveState() const;
  // The same bytes into `out`, reusing its capacity (the split L1 saves after every exit).
  void SaveStateInto(std::vector<uint8_t>* out) const;
  // InvalidArgument/DataLoss for a malformed blob; the model is unchanged then.
  absl::Status RestoreState(std::span<const uint8_t> bytes);

  // The ranges whose writes may be posted (BusDevice::writes_posted).
  std::vector<PostedWriteRange> PostedWriteRanges() const { return bus_.PostedWriteRanges(); }

  const CounterOracle* oracle() const { return oracle_.get(); }
  uint64_t pio_bench_writes() const { return pio_bench_->writes(); }
  // The virtio-blk transport (nullptr without a disk), for tests and statistics.
  const virtio::MmioTransport* disk() const { return disk_.get(); }
  // Host input for the virtio console: queued and placed into the guest's receive buffers at
  // once when it has posted some (else at its next kick). Returns bytes accepted.
  size_t QueueConsoleInput(std::string_view bytes);
  bool has_console() const { return console_ != nullptr; }

  // Split mode: completions of every virtio device become visible to the guest only at
  // PublishUsed(), which the L1 calls after committing the state that holds them.
  void SetDeferredPublication(bool deferred);
  void PublishUsed();
  // A notification of the disk's request queue that arrived outside an exit (ioeventfd): processes
  // it. True when the state changed (chains consumed or the device needs a reset).
  bool KickDisk();
  // The same for the console's queues (receive and transmit), e.g. from its ioeventfd.
  bool KickConsole();
  // Bytes the guest has sent on the console since boot (part of the device state).
  uint64_t console_tx_bytes() const;
  // The network device's queues (receive, then transmit), e.g. from its ioeventfd or after the
  // host added frames or made room. True when the state changed.
  bool KickNet();
  bool has_net() const { return net_ != nullptr; }
  // Whether the guest has made a transmit chain available that the device has not taken yet.
  bool NetTransmitAvailable() const;
  // Whether the guest has made a disk request available that the device has not taken yet.
  bool DiskRequestAvailable() const;
  // Where the available index of every ready virtqueue lives (disk, console, network, in queue
  // order): the words a verified replica reads the guest's progress from (see
  // GuestMemoryView::AvailableIndex); with whether the device takes the queue's buffers
  // unprompted (what L0's notification pump watches for).
  std::vector<virtio::AvailIndexAddress> AvailIndexAddresses() const;
  // Its receive and transmit positions (frames since boot; part of the device state).
  uint64_t net_rx_frames() const;
  uint64_t net_tx_frames() const;
  // The virtio-net transport (nullptr without one), for tests and statistics.
  const virtio::MmioTransport* net() const { return net_.get(); }
  size_t QueueSerialInput(std::string_view bytes) { return serial_->QueueInput(bytes); }

 private:
  DeviceModel() = default;

  Bus bus_;
  std::shared_ptr<VmRequests> requests_;
  std::shared_ptr<Serial8250> serial_;
  std::shared_ptr<DebugExitPort> debug_exit_;
  std::shared_ptr<PioBenchPort> pio_bench_;
  std::shared_ptr<CounterOracle> oracle_;
  // SaveState's cache of the encoded oracle state, keyed by (verified reports, violations).
  mutable std::vector<uint8_t> oracle_blob_;
  mutable uint64_t oracle_key_[2] = {0, 0};
  mutable bool oracle_blob_valid_ = false;
  std::shared_ptr<virtio::MmioTransport> disk_;     // null without a disk
  std::shared_ptr<virtio::MmioTransport> console_;  // null without a console
  std::shared_ptr<virtio::MmioTransport> net_;      // null without a network device
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICE_MODEL_H_
