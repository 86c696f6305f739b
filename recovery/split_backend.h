// recovery/split_backend.h: the split-mode ExitBackend. Device exits (port I/O, MMIO) become
// ExitRequests with a global sequence number and go through the Supervisor to the active L1;
// the validated answer is applied here in L0: read data into the vCPU's kvm_run, console bytes
// written to L0's serial output exactly once (L0 is the only writer), and the action (continue,
// guest exit, ...) returned to the Machine. When recovery stops (failover limit, policy none),
// the exit in flight is answered kFatal with the supervisor's reason: the Machine stops every
// vCPU with no exit half-applied, and Supervisor::limit_reached() tells why.
// Posted writes (Supervisor::Execute): the vCPU runs on at once; the answer is collected at the
// vCPU's next exit, before that exit is forwarded, and its effects applied then (console bytes;
// an action other than continue is that exit's outcome, and the exit itself is not forwarded:
// the VM stops or resets as the earlier write asked), or at SettleAfterStop.
// Thread-safety: as ExitBackend.
#ifndef REHOME_RECOVERY_SPLIT_BACKEND_H_
#define REHOME_RECOVERY_SPLIT_BACKEND_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "kvm-l0/console_tx_ring.h"
#include "recovery/supervisor.h"
#include "recovery/verified_supervisor.h"
#include "vmm/bus.h"
#include "vmm/exit_backend.h"
#include "vmm/vm_requests.h"

namespace rehome {

class SplitBackend final : public ExitBackend {
 public:
  // Starts the supervisor (first L1 active, standbys in the background). With a `verified` sink
  // (config.policy.verify dual or triple), the replicas of verified execution instead: their
  // agreed effects go to the sink (`disk_bytes`: the image's size), console bytes included.
  static absl::StatusOr<std::unique_ptr<SplitBackend>> Start(
      SupervisorConfig config, UniqueFd serial_output,
      std::function<void(std::string_view)> console_output = nullptr,
      std::optional<VerifiedEffectsSink> verified = std::nullopt, uint64_t disk_bytes = 0);
  // Host input for the virtio console, delivered to the active L1 as a request on the host
  // slot and committed like an exit (exactly once across failovers). Call from one thread.
  absl::Status DeliverConsoleInput(std::string_view bytes);
  // Verified execution with virtio-net: frames arrived in the receive ring; the replicas process
  // the device's queues as a request on the host slot (ExitRequest::kNetInput).
  absl::Status DeliverNetInput();
  // Verified execution: a QueueNotify register whose guest writes KVM signals on the eventfd
  // `fd` (an ioeventfd) instead of exiting to L0.
  struct QueueNotifier {
    int fd;
    uint64_t addr;  // the register, for reports
  };
  // Starts the notification pump: a thread that waits on the notifiers and, when any is
  // signalled, has the replicas process the devices' queues as one item on the host slot
  // (ExitRequest::kDeviceKick, `addr` of a signalled one), with the available indices L0 read
  // after draining the eventfds (so every notification is covered by an item). The vCPU that
  // notified runs on meanwhile (the guest polls the used ring or waits for the interrupt):
  // nothing it can see changes before the replicas agreed. Call once; the fds must outlive
  // Shutdown().
  absl::Status StartNotificationPump(std::vector<QueueNotifier> notifiers);
  ~SplitBackend() override;

  ExitOutcome Handle(int vcpu, KvmExit& exit) override;
  WorkloadProgress Progress() const override;
  void Shutdown() override;
  void SettleAfterStop() override;

  L1Supervisor& supervisor() { return *supervisor_; }

 private:
  SplitBackend() = default;
  ExitOutcome Forward(int vcpu, bool is_pio, bool is_write, uint64_t addr, uint32_t size,
                      uint32_t count, std::span<uint8_t> data, uint64_t rip, uint64_t rflags);

  // Collects vCPU `vcpu`'s pending posted exit and applies its effects. False (with the outcome
  // in *outcome) when the vCPU must not run on: an error, or an action other than continue.
  bool Settle(uint32_t vcpu, ExitOutcome* outcome, bool wait_for_l1);

  std::unique_ptr<L1Supervisor> supervisor_;
  void Emit(const ExitResponse& response);
  // Per vCPU, used only by its thread (and by SettleAfterStop once every vCPU thread stopped):
  // the request and response buffers of its exits (a posted exit's request must stay unchanged
  // until settled), and whether it has a posted exit pending: a copy of the supervisor's record
  // that spares the exits of a vCPU with none the supervisor's lock.
  struct VcpuBuffers {
    std::unique_ptr<ExitRequest> request;
    std::unique_ptr<ExitResponse> response;
    bool posted_pending = false;
  };
  std::vector<VcpuBuffers> vcpus_;
  // Drains the console transmit ring into console_output_ whenever the active L1 signals.
  void DrainConsole();
  ConsoleTxRing console_ring_;
  UniqueFd console_out_;  // the L1 signals "published more" here
  UniqueFd drain_stop_;   // Shutdown() signals the drain thread here
  std::thread drain_thread_;
  void PumpNotifications(std::vector<QueueNotifier> notifiers);
  // Posts `request` (kind and payload filled in) on the host slot: numbers it under
  // host_slot_mu_, executes it through the supervisor and emits its output.
  absl::Status ExecuteOnHostSlot(ExitRequest& request, ExitResponse* response);
  UniqueFd pump_stop_;  // Shutdown() signals the notification pump here
  std::thread pump_thread_;
  UniqueFd serial_output_;
  std::function<void(std::string_view)> console_output_;
  uint32_t host_slot_ = 0;
  // Held by the threads that post on the host slot (console input, network input, the
  // notification pump) from taking a sequence number until their item was answered: an L1
  // handles a slot's requests in increasing sequence order only, so a number taken by one
  // thread must not reach the slot after a later one another thread took.
  absl::Mutex host_slot_mu_;
  // Verified execution with virtio-net: the receive ring's produced position (null otherwise).
  std::function<uint64_t()> net_rx_produced_;
  uint32_t NetRxLimit() const {
    return net_rx_produced_ ? static_cast<uint32_t>(net_rx_produced_()) : 0;
  }
  std::atomic<uint64_t> next_seq_{0};
  mutable absl::Mutex progress_mu_;
  mutable WorkloadProgress last_progress_ ABSL_GUARDED_BY(progress_mu_);
  Bus no_devices_;  // for DispatchExit of exits that need no device
  VmRequests no_requests_;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_SPLIT_BACKEND_H_
