// recovery/nested/nested_l1.h: one L1 virtual machine of nested mode (docs/nested.md): a Linux
// + KVM guest of L0 booted from the L1 image (kernel + initramfs with the kvm modules and
// rehome-agent), with three pieces of L0's memory mapped at nested_abi's addresses: its own
// control region (a memfd this object creates and maps for L0), the shared commit journal and
// L2's RAM. L0 talks to the agent inside only through the control page; the VM itself is a
// monolithic Machine (its COM1 goes to a log file, its reset/power-off/triple fault end it).
//
// Exit tracking (docs/nested.md, "Tracking L2's exits"): once armed, a port write L0 wrote over
// the L1 kernel's VMRUN return (the agent's vmrun_return_rip, found through the L1's page
// tables; exit_trap.h) stops the L1 vCPU at each of L2's exits to the L1, before the L1 runs
// any code of its own; L0 then captures the L1 vCPU and the VMCB L2 ran with (LastExit),
// carries out the two instructions the trap replaced and lets the L1 go on after them.
//
// Thread-safety: one controller thread drives an L1 (Send, Pause/Resume through machine(),
// Kill, ArmExitTracking); the exit captures happen on the vCPU thread, LastExit and
// exits_tracked may be read from any thread; control() is shared memory read with the atomics
// of nested_abi.h.
#ifndef REHOME_RECOVERY_NESTED_NESTED_L1_H_
#define REHOME_RECOVERY_NESTED_NESTED_L1_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"
#include "state-extract/cpu_state.h"
#include "state-extract/nested/vmcb.h"
#include "vmm/cli/machine.h"
#include "vmm/nested/nested_abi.h"

namespace rehome {

struct NestedL1Config {
  int id = 0;  // this L1's number: the control page's l1_id and the agent's commit generation
  std::string kernel;  // the L1 image: a Linux bzImage ...
  std::string initrd;  // ... and its initramfs (scripts/nested-host/build-l1-image.sh)
  uint64_t memory_bytes = 320ull << 20;
  std::string extra_cmdline;  // appended to "console=ttyS0 loglevel=5 panic=-1 ..."
  std::string console_log;    // the L1's COM1 output ("" = discarded)
  int journal_fd = -1;        // L0's journal memfd (kJournalRegionSize bytes)
  int l2_ram_fd = -1;         // L2's RAM memfd
  uint64_t l2_ram_size = 0;
  nested_abi::BootParams boot;  // copied into the control page
  std::string kvm_path = "/dev/kvm";
  std::function<uint64_t()> journal_commits;  // the journal's commit count (exit tracking)
};

// L2 at its latest exit to the L1, as the breakpoint at the VMRUN return saw it.
struct L2ExitSnapshot {
  CpuState l1;        // the L1 vCPU at the VMRUN return
  nested::Vmcb vmcb;  // the VMCB L2 ran with (L1 memory at the VMRUN's RAX)
  uint64_t vmcb_gpa = 0;
  uint64_t commits = 0;  // the journal's commit count when it was taken
  uint64_t number = 0;   // exits seen so far by this L1
};

class NestedL1 final {
 public:
  // Creates the control region, the VM, and starts its vCPU (the L1 kernel boots in the
  // background). Errors as Machine::Create.
  static absl::StatusOr<std::unique_ptr<NestedL1>> Start(NestedL1Config config);
  ~NestedL1();
  NestedL1(const NestedL1&) = delete;
  NestedL1& operator=(const NestedL1&) = delete;

  int id() const { return config_.id; }
  nested_abi::ControlPage* control() const {
    return reinterpret_cast<nested_abi::ControlPage*>(control_map_.bytes());
  }
  std::span<uint8_t> transfer() const {
    return {control_map_.bytes() + nested_abi::kTransferOffset, nested_abi::kTransferSize};
  }
  std::span<const uint8_t> console_ring() const {
    return {control_map_.bytes() + nested_abi::kConsoleRingOffset, nested_abi::kConsoleRingSize};
  }
  Machine& machine() const { return *machine_; }
  absl::Time started() const { return started_; }

  nested_abi::AgentState agent_state() const;
  uint64_t heartbeat() const { return control()->heartbeat.load(std::memory_order_acquire); }
  // Publishes `command` and returns its sequence number (the agent acks it in command_done).
  uint64_t Send(nested_abi::Command command);
  // The VM's own end (reset, power-off, triple fault, KVM error), once it happened.
  std::optional<MachineResult> Ended();
  // Fencing: stops the vCPUs for good (the VM object stays until destruction).
  void Kill();
  bool killed() const { return killed_; }
  // The last `bytes` of its console log ("" without one).
  std::string ConsoleTail(size_t bytes) const;

  // Arms exit tracking at `vmrun_return_rip` on every vCPU (the caller has paused them).
  absl::Status ArmExitTracking(uint64_t vmrun_return_rip);
  // Armed, and the L1 never failed to go on past the trap.
  bool exit_tracking() const {
    return tracking_armed_.load(std::memory_order_acquire) &&
           !tracking_broken_.load(std::memory_order_acquire);
  }
  // The latest exit, if one was captured; exits_tracked counts them; a capture that failed
  // (an unreadable VMCB, a KVM error) clears LastExit until the next exit and is counted.
  std::optional<L2ExitSnapshot> LastExit() const;
  uint64_t exits_tracked() const;
  uint64_t exit_capture_errors() const;

 private:
  NestedL1(NestedL1Config config, UniqueFd control_fd, MappedRegion control_map)
      : config_(std::move(config)),
        control_fd_(std::move(control_fd)),
        control_map_(std::move(control_map)) {}

  NestedL1Config config_;
  UniqueFd control_fd_;
  MappedRegion control_map_;
  std::unique_ptr<Machine> machine_;
  absl::Time started_;
  std::optional<MachineResult> ended_;
  bool killed_ = false;
  // The vCPU thread's side of exit tracking (Machine's exit hook): true for the trap's exit.
  bool OnExit(int vcpu_index, const KvmExit& exit);
  uint64_t tracking_rip_ = 0;  // set before the trap is written, then constant
  int32_t rcx_disp_ = 0;       // of the mov the trap replaced
  std::atomic<bool> tracking_armed_{false};
  std::atomic<bool> tracking_broken_{false};
  mutable absl::Mutex exit_mu_;
  std::optional<L2ExitSnapshot> last_exit_ ABSL_GUARDED_BY(exit_mu_);
  uint64_t exits_tracked_ ABSL_GUARDED_BY(exit_mu_) = 0;
  uint64_t capture_errors_ ABSL_GUARDED_BY(exit_mu_) = 0;
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_NESTED_L1_H_
