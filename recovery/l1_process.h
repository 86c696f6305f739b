// recovery/l1_process.h: one L1 hypervisor process as L0 sees it: spawned from the rehome binary
// in its internal `__l1` role with exactly the fds it needs (guest RAM memfds, its own exit
// channel, the commit journal), confined as the recovery policy's l1-sandbox level asks (its own
// pid namespace from the spawn, the rest applied by the L1 itself: vmm/l1/l1_sandbox.h, docs/
// security.md), watched through a pidfd and its exit thread's death notice (base/death_notice.h),
// and fenced with SIGKILL. Once Fence() returns, the L1's exit thread is gone (the process may
// still be being torn down by the kernel: Reap() collects it): it can no longer answer, commit
// or write guest memory.
// Move-only owner (held by shared_ptr in the Supervisor); the destructor fences and reaps.
// Thread-safety: Fence/Signal/Exited/HeartbeatValue/state are safe from any thread.
#ifndef REHOME_RECOVERY_L1_PROCESS_H_
#define REHOME_RECOVERY_L1_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/death_notice_bell.h"
#include "base/unique_fd.h"
#include "kvm-l0/exit_channel.h"
#include "kvm-l0/guest_memory.h"
#include "recovery/policy/recovery_policy.h"
#include "vmm/counter_oracle.h"
#include "vmm/virtio/net_device.h"

namespace rehome {

struct L1LaunchSpec {
  std::string binary;  // the rehome executable to run as `__l1`
  int cpus = 1;
  std::optional<CounterOracle::Config> oracle;  // the L1's device model checks counter reports
  std::vector<GuestMemory::RegionDesc> ram;     // fds stay owned by the caller
  int journal_fd = -1;                          // owned by the caller
  bool console = false;  // virtio-console: one more channel slot, for host input
  int disk_fd = -1;      // virtio-blk image, owned by the caller (-1: none)
  bool disk_read_only = false;
  // virtio-blk data path without L0: the ioeventfd KVM signals on the disk's QueueNotify and the
  // irqfd that raises its interrupt (both owned by the caller; -1: none, notifications exit).
  int blk_notify_fd = -1;
  int blk_irq_fd = -1;
  // virtio-console the same way: its QueueNotify ioeventfd (any queue) and irqfd, plus the
  // transmit ring (kvm-l0/console_tx_ring.h) and the eventfd that wakes L0 to drain it.
  int console_notify_fd = -1;
  int console_irq_fd = -1;
  int console_ring_fd = -1;
  int console_out_fd = -1;
  // virtio-net (net_mac set): the receive and transmit frame rings (kvm-l0/frame_ring.h), its
  // QueueNotify ioeventfd (any queue) and irqfd, L0's kick eventfd (frames arrived, transmit room)
  // and the eventfd that wakes L0 to send (all owned by the caller).
  std::optional<virtio::MacAddress> net_mac;
  int net_rx_ring_fd = -1;
  int net_tx_ring_fd = -1;
  int net_notify_fd = -1;
  int net_irq_fd = -1;
  int net_kick_fd = -1;
  int net_wake_fd = -1;
  uint32_t heartbeat_ms = 10;
  bool realtime = true;  // the L1 asks for SCHED_FIFO (falls back to nice -10)
  L1SandboxLevel sandbox = L1SandboxLevel::kBestEffort;
  // The CPUs the L1 starts on, until it is ready (then every CPU L0 may use): away from the
  // vCPU threads (recovery/vcpu_threads.h). Empty: anywhere.
  std::vector<int> start_cpus;
  // Verified execution: the replica's effects area (kvm-l0/effects_area.h), owned by the caller;
  // -1: not a replica. A replica gets no ioeventfd, irqfd or console ring: L0 applies its effects.
  int effects_fd = -1;
  // Whether the channel has a host slot after the vCPUs' (L1Options::HasHostSlot).
  bool HasHostSlot() const { return console || effects_fd >= 0; }
};

// OK if `path` names an executable regular file that Spawn can start as an L1 (design diversity:
// a different rehome build); InvalidArgument naming the path and the problem otherwise.
absl::Status CheckL1Binary(const std::string& path);

class L1Process final {
 public:
  // Creates the exit channel and starts the process. The L1 reports kStandby in its channel
  // header once ready (WaitReady).
  static absl::StatusOr<std::unique_ptr<L1Process>> Spawn(const L1LaunchSpec& spec, uint64_t id);
  ~L1Process();
  L1Process(const L1Process&) = delete;
  L1Process& operator=(const L1Process&) = delete;

  // Waits until the L1 reports kStandby. DeadlineExceeded / Unavailable (it died, with its note).
  // Then checks the confinement it reports: strict, FailedPrecondition unless complete;
  // best-effort, one line on stderr per process naming what is not applied.
  absl::Status WaitReady(absl::Duration timeout);
  // Asks a ready L1 to restore the journal and become active as `generation`, and waits for its
  // acknowledgement.
  absl::Status Promote(uint64_t generation, absl::Duration timeout);
  // SIGKILL. Idempotent; returns once the L1's exit thread is dead (its death notice is marked)
  // and the process reaped, or 2 ms after the notice when the kernel's teardown takes longer
  // (much memory mapped: it goes on at SCHED_IDLE, Reap collects it later); for an L1 that never
  // claimed the notice, once the process is reaped.
  void Fence();
  // Collects the exited process: without blocking when `block` is false (then true only if it
  // was collected). Idempotent.
  bool Reap(bool block);
  // Sends `signal` (SIGKILL, SIGSTOP, SIGCONT) without reaping. No-op once fenced.
  void Signal(int signal);
  // Asks the L1 to inject `fault` into itself, into the exit after the next `after_exits`.
  void RequestFault(L1Fault fault, uint32_t after_exits = 0);
  // Whether the L1 died: its exit thread's death notice is marked (the kernel marks it before it
  // tears the process down; or the L1 wrote it, and is fenced for that as for a crash), or the
  // process has exited (pidfd readable).
  bool Exited() const;
  // Whether the death notice is marked (a subset of Exited()).
  bool ExitThreadDied() const;
  // The death notice word, for waiting on it (base/death_notice.h).
  std::atomic<uint32_t>* death_notice() { return &channel_.header().exit_thread_notice; }
  // For callers that poll fds (verified execution): starts a thread that makes death_fd()
  // readable once the death notice is marked (base/death_notice_bell.h). Call once, after
  // WaitReady and before the L1 is shared with other threads.
  absl::Status StartDeathBell();
  // Readable once the exit thread died; -1 before StartDeathBell (poll() skips it). Not drained.
  int death_fd() const { return death_bell_.has_value() ? death_bell_->fd() : -1; }
  // The failure's cause once Exited(): "crash: L1 pid P <ExitDescription>", or
  // "self-reported failure: <note>" when the L1 wrote one.
  std::string CrashCause() const;

  uint64_t id() const { return id_; }
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  ExitChannel& channel() { return channel_; }
  absl::Time started() const { return started_; }
  L1State state() const {
    return static_cast<L1State>(channel_.header().l1_state.load(std::memory_order_acquire));
  }
  uint64_t heartbeat() const { return channel_.header().heartbeat.load(std::memory_order_acquire); }
  // When it says it last beat (CLOCK_MONOTONIC ns; untrusted: recovery/heartbeat_watch.h).
  int64_t heartbeat_ns() const {
    return channel_.header().heartbeat_ns.load(std::memory_order_relaxed);
  }
  uint64_t work_progress() const {
    return channel_.header().work_progress.load(std::memory_order_relaxed);
  }
  // The L1's own failure note, printable; a seccomp note names the system call.
  std::string reported_failure() const;
  // The L1SandboxLayer bits it reported at start (0 until ready, or with the sandbox off).
  uint32_t sandbox_layers() const {
    return channel_.header().sandbox_layers.load(std::memory_order_acquire);
  }
  // How it ended, once Exited(): "exited with status N" or "killed by signal N (name)".
  std::string ExitDescription() const;

 private:
  L1Process(uint64_t id, ExitChannel channel, L1SandboxLevel sandbox)
      : id_(id), channel_(std::move(channel)), sandbox_(sandbox) {}
  // A killed L1: SCHED_IDLE for each of its threads, so that the kernel's teardown of the
  // process (in the context of its last thread) takes no CPU from the guest and its new L1.
  void YieldTeardown();
  // Sandboxed L1: nice -10 and (realtime) SCHED_FIFO for each of its threads.
  void GiveSchedulingToThreads();
  // Every thread of a ready L1 started on L1LaunchSpec::start_cpus: the CPUs of the calling thread.
  void LiftStartCpus();
  // Polls the ack eventfd and the pidfd until `done` holds or `timeout` passes.
  absl::Status WaitFor(const std::function<bool()>& done, absl::Duration timeout, const char* what);

  const uint64_t id_;
  ExitChannel channel_;
  std::optional<DeathNoticeBell> death_bell_;  // after channel_: stopped before it is unmapped
  const L1SandboxLevel sandbox_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool realtime_ = true;          // L1LaunchSpec::realtime
  bool started_on_cpus_ = false;  // L1LaunchSpec::start_cpus was set: WaitReady lifts it
  absl::Time started_;
  absl::Mutex mu_;
  bool fenced_ ABSL_GUARDED_BY(mu_) = false;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_L1_PROCESS_H_
