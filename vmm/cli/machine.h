// vmm/cli/machine.h: one running guest in the monolithic configuration (L0 and the hypervisor
// personality in one process). A Machine owns the guest RAM (sealed memfds, created once), the
// devices and the guest's current VM instance (a KVM VM over its own mapping of the same memfds,
// its vCPUs and their threads). Rehome() moves the running guest into a fresh VM instance:
// pause every vCPU, capture the complete VM state, encode and decode it (the failover wire
// format), build a second KVM VM over the SAME memfds, restore, resume, and drop the old VM.
// Nothing in guest RAM is copied, so the cost does not grow with RAM size.
//
// Thread-safety: Start, Pause, Resume, Rehome, WaitFor, Wait and Stop are called from one
// controller thread. Exits are handled on the vCPU threads. oracle(), Progress(),
// generation() and QueueSerialInput() are safe from any thread.
#ifndef REHOME_VMM_CLI_MACHINE_H_
#define REHOME_VMM_CLI_MACHINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "kvm-l0/cpuid.h"
#include "kvm-l0/guest_memory.h"
#include "kvm-l0/kvm_system.h"
#include "kvm-l0/vcpu_thread.h"
#include "kvm-l0/vm_fd.h"
#include "recovery/supervisor.h"
#include "vmm/cli/boot_image.h"
#include "vmm/cli/console_socket.h"
#include "vmm/cli/net_tap.h"
#include "vmm/cli/netdev_spec.h"
#include "vmm/counter_oracle.h"
#include "vmm/device_model.h"
#include "vmm/exit_backend.h"
#include "vmm/exit_dispatcher.h"

namespace rehome {

enum class MachineMode { kMonolithic, kSplit };

// Split mode: how L1 processes are started and supervised.
struct SplitConfig {
  std::string l1_binary;          // the rehome executable (run as `rehome __l1`)
  std::string standby_l1_binary;  // L1s after the first (empty: l1_binary); design diversity
  RecoveryPolicy policy;
  std::function<void(const SupervisorEvent&)> on_event;
  bool pause_on_limit = false;  // see SupervisorConfig
  // L1 processes ask for SCHED_FIFO (a woken L1 preempts vCPU threads at once, so an exit's
  // round trip and a standby's promotion do not wait for a busy core); without CAP_SYS_NICE
  // they fall back to nice -10, then to normal priority.
  bool l1_realtime = true;
  bool post_writes = true;  // see SupervisorConfig
};

// Opens the raw disk image `path` for virtio-blk, refusing (InvalidArgument, one line naming
// the file) anything but a regular file of a positive multiple of 512 bytes, without ever
// blocking (a FIFO is refused, not waited on); `direct`: O_DIRECT. L0 checks the image so before
// any L1 starts.
absl::StatusOr<UniqueFd> OpenDiskImage(const std::string& path, bool read_only, bool direct);

struct MachineConfig {
  MachineMode mode = MachineMode::kMonolithic;
  SplitConfig split;        // kSplit only
  std::string kernel_path;  // an ELF with a PVH note, or a Linux bzImage
  std::string initrd_path;  // bzImage only ("" = none)
  uint64_t memory_bytes = 64ull << 20;
  int cpus = 1;
  std::string cmdline;                          // passed to the guest as is
  UniqueFd serial_output;                       // COM1 output goes here (e.g. a dup of stdout)
  std::optional<CounterOracle::Config> oracle;  // checks counter reports when set
  std::string kvm_path = "/dev/kvm";
  std::string disk_path;  // virtio-blk raw image ("" = none); the guest cmdline must describe it
  std::string console_socket;  // virtio-console host side: UNIX socket path ("" = none)
  // virtio-net on an existing tap (device index after the disk and the console; the guest
  // cmdline must describe it, see VirtioMmioCmdline).
  std::optional<NetdevSpec> net;
  bool disk_read_only = false;
  bool disk_direct = false;  // open the image with O_DIRECT (no host page cache)
  bool exit_stats = false;   // time every exit's handling (ExitStats)
  // Memory of other memfds mapped into every VM instance at their GPAs, outside RAM (nested
  // mode's shared ranges, docs/nested.md); a Linux guest's e820 marks them reserved.
  std::vector<GuestMemory::RegionDesc> extra_memory;
  // Device diagnostics (unhandled ports, ...); null: "rehome: ..." lines on stderr.
  std::function<void(std::string_view)> device_log;
  // Called first for every exit, on the vCPU's thread; true: the hook consumed the exit and
  // the vCPU runs on (nested mode's trap at an L1's VMRUN return, docs/nested.md).
  std::function<bool(int vcpu_index, const KvmExit& exit)> exit_hook;
};

// Exits handled and the time the VMM spent handling them (outside KVM_RUN: in monolithic mode
// the device model, in split mode forwarding to the L1 and waiting for its answer), over every
// VM instance of this Machine. Collected only with MachineConfig::exit_stats.
struct ExitStats {
  uint64_t exits = 0;
  absl::Duration handling;
};

// How and why the guest stopped.
struct MachineResult {
  enum class Kind {
    kGuestExit,        // the guest wrote its exit status to the debug-exit port
    kShutdown,         // the guest asked for power-off
    kReset,            // the guest asked for a reset
    kGuestCrash,       // triple fault or crash event
    kOracleViolation,  // the counter oracle rejected a report
    kFatal,            // KVM or rehome failure
    kStopped,          // Stop() was called
  };
  Kind kind = Kind::kStopped;
  int exit_status = 0;  // kGuestExit only
  std::string reason;
};

// Phase timings of one Rehome().
struct RehomeReport {
  int generation = 0;  // the new VM instance's number (the first VM is 1)
  size_t state_bytes = 0;
  absl::Duration pause, capture, codec, build, restore, resume, total;
  std::string ToString() const;
};

class Machine final {
 public:
  // Opens KVM, creates the RAM, loads the kernel and builds the first VM instance (vCPUs not
  // yet running). Errors: NotFound/InvalidArgument for a bad kernel or configuration (one
  // line, naming the file or option), FailedPrecondition/NotFound when KVM is unusable,
  // Internal for KVM failures.
  static absl::StatusOr<std::unique_ptr<Machine>> Create(MachineConfig config);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  absl::Status Start();
  absl::Status Pause(absl::Duration timeout);
  absl::Status Resume();
  // FailedPrecondition when the guest has already stopped (then Wait() says why).
  absl::StatusOr<RehomeReport> Rehome(absl::Duration pause_timeout = absl::Seconds(5));
  // nullopt while the guest still runs after `timeout`.
  std::optional<MachineResult> WaitFor(absl::Duration timeout);
  MachineResult Wait();
  void Stop();

  // Monolithic mode: the device model's oracle (nullptr without one, and in split mode).
  const CounterOracle* oracle() const { return model_ != nullptr ? model_->oracle() : nullptr; }
  WorkloadProgress Progress() const { return backend_->Progress(); }
  ExitStats exit_stats() const {
    return {exits_timed_.load(std::memory_order_relaxed),
            absl::Nanoseconds(handling_ns_.load(std::memory_order_relaxed))};
  }
  // Split mode: the L1 supervisor (nullptr in monolithic mode).
  L1Supervisor* supervisor() const { return supervisor_; }
  // The tap behind the guest's virtio-net device (nullptr without one).
  const NetTap* net_tap() const { return net_tap_.get(); }
  int generation() const;
  // Host thread ids of the vCPU threads (0 for a thread not started yet). Any thread.
  std::vector<int64_t> VcpuThreadIds() const;
  int cpus() const { return config_.cpus; }
  // L0's mapping of the guest RAM (not the extra memory); valid while the Machine lives.
  const GuestMemory& ram() const { return ram_; }
  int kvm_fd() const { return kvm_.fd(); }
  // The current VM instance's vCPU fds, for state capture while Pause()d (controller thread).
  std::vector<int> VcpuFds() const;
  uint64_t memory_bytes() const { return config_.memory_bytes; }
  MachineMode mode() const { return config_.mode; }
  // Queues bytes for the guest's COM1 receiver (monolithic mode; split mode drops them).
  size_t QueueSerialInput(std::string_view bytes) {
    return model_ != nullptr ? model_->QueueSerialInput(bytes) : 0;
  }

 private:
  // One KVM VM over the machine's RAM. Destruction order matters: threads, VM, mapping.
  struct VmInstance {
    GuestMemory mapping;
    VmFd vm;
    std::unique_ptr<VcpuSet> vcpus;
  };

  Machine(MachineConfig config, KvmSystem kvm, GuestMemory ram);
  absl::Status SetUpBackend();
  // Split mode (machine_split.cc): the supervisor (or, with verified execution, the replicas)
  // and their fds; disk_ and the tap (null without virtio-net) are open already.
  absl::Status SetUpSplitBackend(ConsoleSocket* console, NetTap* tap,
                                 std::function<void(std::string_view)> console_output);
  // A new VM over `ram_` with `vcpus_out` created (CPUID set), not yet in a VcpuSet.
  absl::StatusOr<std::unique_ptr<VmInstance>> BuildInstance(std::vector<VcpuFd>* vcpus_out);
  ExitVerdict HandleExit(int vcpu_index, KvmExit& exit);
  void RecordOutcome(MachineResult result);
  MachineResult ResultOf(const VmStopReason& reason);
  void SetIrq(uint32_t irq, bool level);

  MachineConfig config_;
  KvmSystem kvm_;
  UniqueFd disk_;  // split mode: the image, passed to every L1
  // Split mode with a disk: the disk's QueueNotify ioeventfd and interrupt irqfd, registered
  // with every VM this machine builds and served by the active L1 (L0 stays out of the path).
  UniqueFd blk_notify_;
  UniqueFd blk_irq_;
  // The same for the virtio console (device 0 without a disk, else 1): any QueueNotify.
  UniqueFd console_notify_;
  UniqueFd console_irq_;
  // The network device's tap and rings (L0 owns them: they outlive every L1), and in split mode
  // its QueueNotify ioeventfd (any queue) and irqfd. Destroyed after backend_ (whose device model
  // reads its rings in monolithic mode); its pump thread is stopped first (Stop).
  std::unique_ptr<NetTap> net_tap_;
  UniqueFd net_notify_;
  UniqueFd net_irq_;
  GuestMemory ram_;  // L0's own mapping of the guest RAM memfds; devices use it
  std::vector<CpuidEntry> supported_cpuid_;
  BootImage boot_;

  std::unique_ptr<GuestMemoryView> ram_view_;
  std::unique_ptr<ExitBackend> backend_;
  DeviceModel* model_ = nullptr;  // monolithic mode, owned by backend_
  // After backend_: destroyed first, so its thread never calls into a dead backend.
  std::unique_ptr<ConsoleSocket> console_socket_;
  std::atomic<uint64_t> exits_timed_{0};  // ExitStats (config_.exit_stats only)
  std::atomic<int64_t> handling_ns_{0};
  L1Supervisor* supervisor_ = nullptr;  // split mode, owned by backend_

  // Written by the controller thread under mu_ (Rehome); read by it without the lock, by
  // others (VcpuThreadIds) with it.
  std::unique_ptr<VmInstance> instance_;
  bool started_ = false;

  mutable absl::Mutex mu_;
  VmFd* current_vm_ ABSL_GUARDED_BY(mu_) = nullptr;  // for the serial IRQ line
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<MachineResult> outcome_ ABSL_GUARDED_BY(mu_);  // first stop cause from an exit
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_MACHINE_H_
