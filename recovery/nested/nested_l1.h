// recovery/nested/nested_l1.h: one L1 virtual machine of nested mode (docs/nested.md): a Linux
// + KVM guest of L0 booted from the L1 image (kernel + initramfs with the kvm modules and
// rehome-agent), with three pieces of L0's memory mapped at nested_abi's addresses: its own
// control region (a memfd this object creates and maps for L0), the shared commit journal and
// L2's RAM. L0 talks to the agent inside only through the control page; the VM itself is a
// monolithic Machine (its COM1 goes to a log file, its reset/power-off/triple fault end it).
//
// Thread-safety: one controller thread drives an L1 (Send, Pause/Resume through machine(),
// Kill); control() is shared memory read with the atomics of nested_abi.h.
#ifndef REHOME_RECOVERY_NESTED_NESTED_L1_H_
#define REHOME_RECOVERY_NESTED_NESTED_L1_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"
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
};

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_NESTED_L1_H_
