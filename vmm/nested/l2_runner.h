// vmm/nested/l2_runner.h: L2 inside an L1, run by the agent (docs/nested.md). L2 is a KVM VM of
// the L1's own /dev/kvm over L0's shared L2 RAM, with the device model from vmm/ (the test
// guest's ports, its counter oracle, COM1). One thread runs L2's vCPU; after every exit the
// thread completes the exit's instruction (KVM_RUN with immediate_exit), captures L2's whole VM
// state, commits it with the device state to the journal and marks L2 parked at that commit in
// the control page, then publishes the console bytes the exit produced. So whenever the agent
// stops while L2 is parked, the last commit is L2's exact state; while L2 runs, L0 reads it from
// the paused L1 vCPU instead.
//
// Fault injection (panic, hang, crash) happens only at a parked point: RequestFault kicks the
// vCPU out of KVM_RUN (a commit without an exit) and the thread calls the injector there.
//
// Thread-safety: Start, RequestFault, Stop, done() and result() from any thread; Prepare,
// SetUpBoot and Restore from the agent's thread before Start; the rest is the vCPU thread's.
#ifndef REHOME_VMM_NESTED_L2_RUNNER_H_
#define REHOME_VMM_NESTED_L2_RUNNER_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kvm-l0/kvm_system.h"
#include "kvm-l0/vcpu_fd.h"
#include "kvm-l0/vm_fd.h"
#include "state-extract/cpu_state.h"
#include "vmm/device_model.h"
#include "vmm/nested/agent_regions.h"
#include "vmm/nested/nested_commit.h"

namespace rehome {

class L2Runner final {
 public:
  struct Config {
    AgentRegions* regions = nullptr;  // must outlive the runner
    const KvmSystem* kvm = nullptr;   // the L1's /dev/kvm
    uint64_t generation = 0;          // this agent's L1 (recorded in every commit)
    // Carries out a fault at a parked point: the agent panics the L1 kernel, hangs, or exits
    // (none returns). Returning true stops L2 there as if the L1 had died (tests).
    std::function<bool(nested_abi::Command)> inject;
    std::function<void(std::string_view)> log;  // may be null
  };

  // L2's VM built ahead of need from the boot parameters in the control page: its memory slot
  // over the shared L2 RAM, irqchip, vCPU and devices, not started. A standby agent prepares
  // one before it reports ready, so that a take-over only restores state into it (the memory
  // slot, whose set-up grows with L2's RAM, is off the failover path).
  static absl::StatusOr<std::unique_ptr<L2Runner>> Prepare(Config config);
  // Then once, before Start, either a fresh L2 (the kernel L0 loaded into L2 RAM starts at the
  // PVH entry in the boot params) ...
  absl::Status SetUpBoot();
  // ... or L2 rebuilt from `state` (L0's capture) and the devices of the journal's last commit.
  absl::Status Restore(const VmState& state, const NestedCommit& committed);
  // Prepare + SetUpBoot, and Prepare + Restore.
  static absl::StatusOr<std::unique_ptr<L2Runner>> Boot(Config config);
  static absl::StatusOr<std::unique_ptr<L2Runner>> TakeOver(Config config, const VmState& state,
                                                            const NestedCommit& committed);
  ~L2Runner();
  L2Runner(const L2Runner&) = delete;
  L2Runner& operator=(const L2Runner&) = delete;

  absl::Status Start();
  void RequestFault(nested_abi::Command fault);
  void Stop();
  bool done() const { return done_.load(std::memory_order_acquire); }

 private:
  explicit L2Runner(Config config) : config_(std::move(config)) {}
  absl::Status BuildVm();
  void Loop();
  // Where the backend leaves RIP at a port I/O exit of one element (string I/O and MMIO go
  // through KVM's emulator and get no pre-handling commit). Learnt from the first exit of each
  // direction (RIP at the exit against RIP after completion): at the instruction (Linux's KVM),
  // the standby executes it again; past it (this project's development host, for writes), a
  // write's pre-handling commit carries the write. Reads past their instruction get no
  // pre-handling commit.
  enum class RipAtExit { kUnknown, kAtInstruction, kPastInstruction };
  // Captures L2, commits, marks it parked and publishes the console. Errors end the loop.
  absl::Status CommitParked(std::optional<PendingPortWrite> pending = std::nullopt);
  void Finish(const ExitOutcome& outcome);
  void Fail(const absl::Status& status);
  void Log(std::string_view line) const;

  Config config_;
  nested_abi::ControlPage* control_ = nullptr;
  std::unique_ptr<VmFd> vm_;
  std::unique_ptr<VcpuFd> vcpu_;
  std::unique_ptr<GuestMemoryView> view_;  // L2 RAM as the devices see it; outlives model_
  std::unique_ptr<DeviceModel> model_;
  bool set_up_ = false;  // SetUpBoot or Restore done
  uint64_t exits_ = 0;
  uint64_t console_total_ = 0;  // bytes emitted (published up to the last commit)
  std::string console_pending_;
  std::atomic<uint32_t> pending_fault_{0};
  std::atomic<bool> crash_in_exit_{false};
  RipAtExit out_rip_ = RipAtExit::kUnknown;
  RipAtExit in_rip_ = RipAtExit::kUnknown;
  uint64_t last_committed_rip_ = 0;
  std::optional<ExitOutcome> restored_outcome_;  // Restore handled a committed pending write
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> running_{false};
  std::atomic<pthread_t> thread_handle_{};
  std::thread thread_;
};

}  // namespace rehome

#endif  // REHOME_VMM_NESTED_L2_RUNNER_H_
