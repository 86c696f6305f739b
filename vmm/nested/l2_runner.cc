// vmm/nested/l2_runner.cc: L2Runner.
#include "vmm/nested/l2_runner.h"

#include <signal.h>

#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kvm-l0/cpuid.h"
#include "kvm-l0/vcpu_thread.h"
#include "kvm-l0/vm_state_io.h"
#include "state-extract/state_codec.h"
#include "vmm/cli/guest_cmdline.h"

namespace rehome {
namespace {

constexpr uint32_t kCom1Irq = 4;

class RamView final : public GuestMemoryView {
 public:
  explicit RamView(const GuestMemory& ram) : ram_(ram) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }

 private:
  const GuestMemory& ram_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<L2Runner>> L2Runner::Prepare(Config config) {
  std::unique_ptr<L2Runner> runner(new L2Runner(std::move(config)));
  RETURN_IF_ERROR(runner->BuildVm());
  return runner;
}

absl::Status L2Runner::SetUpBoot() {
  if (set_up_ || running_.load()) return absl::FailedPreconditionError("L2 is set up already");
  const nested_abi::BootParams& boot = control_->boot;
  RETURN_IF_ERROR(vcpu_->SetupPvhBootState(boot.entry32, boot.start_info));
  RETURN_IF_ERROR(vcpu_->SetupBootMsrs());
  ASSIGN_OR_RETURN(const std::vector<CpuidEntry> supported, config_.kvm->SupportedCpuid());
  RETURN_IF_ERROR(vcpu_->SetupBootXcr0(SupportedXcr0(supported)));
  set_up_ = true;
  return absl::OkStatus();
}

absl::Status L2Runner::Restore(const VmState& state, const NestedCommit& committed) {
  if (set_up_ || running_.load()) return absl::FailedPreconditionError("L2 is set up already");
  const std::vector<int> fds{vcpu_->fd()};
  RETURN_IF_ERROR(RestoreVm(config_.kvm->fd(), vm_->fd(), fds, state));
  RETURN_IF_ERROR(model_->RestoreState(committed.device_state));
  exits_ = committed.exits;
  console_total_ = committed.console_bytes;
  if (committed.pending_write.has_value()) {  // L2 executed it; the devices have not seen it
    std::vector<uint8_t> data = committed.pending_write->data;
    PortIoExit write;
    write.is_write = true;
    write.port = committed.pending_write->port;
    write.size = static_cast<uint8_t>(data.size());
    write.data = std::span<uint8_t>(data);
    KvmExit exit = write;
    restored_outcome_ = model_->Handle(exit);
    ++exits_;
    Log(absl::StrCat("handled the committed port write to 0x", absl::Hex(write.port)));
  }
  set_up_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<L2Runner>> L2Runner::Boot(Config config) {
  ASSIGN_OR_RETURN(std::unique_ptr<L2Runner> runner, Prepare(std::move(config)));
  RETURN_IF_ERROR(runner->SetUpBoot());
  return runner;
}

absl::StatusOr<std::unique_ptr<L2Runner>> L2Runner::TakeOver(Config config, const VmState& state,
                                                             const NestedCommit& committed) {
  ASSIGN_OR_RETURN(std::unique_ptr<L2Runner> runner, Prepare(std::move(config)));
  RETURN_IF_ERROR(runner->Restore(state, committed));
  return runner;
}

absl::Status L2Runner::BuildVm() {
  control_ = config_.regions->control();
  const nested_abi::BootParams& boot = control_->boot;
  if (boot.cpus != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested mode runs L2 with 1 vCPU, the boot parameters ask for ", boot.cpus));
  }
  const std::string cmdline(boot.cmdline, std::min<size_t>(boot.cmdline_len, sizeof(boot.cmdline)));
  ASSIGN_OR_RETURN(const GuestWorkload workload, ParseGuestWorkload(cmdline));
  ASSIGN_OR_RETURN(VmFd vm, VmFd::Create(*config_.kvm));
  vm_ = std::make_unique<VmFd>(std::move(vm));
  Log("L2 VM created");
  RETURN_IF_ERROR(vm_->MapMemory(config_.regions->l2_ram()));
  RETURN_IF_ERROR(vm_->CreateIrqchipAndPit());
  Log("L2 memory and irqchip set up");
  ASSIGN_OR_RETURN(VcpuFd vcpu, VcpuFd::Create(*config_.kvm, *vm_, 0));
  vcpu_ = std::make_unique<VcpuFd>(std::move(vcpu));
  ASSIGN_OR_RETURN(std::vector<CpuidEntry> supported, config_.kvm->SupportedCpuid());
  RETURN_IF_ERROR(vcpu_->SetCpuid(SanitizeCpuid(std::move(supported), 0, 1)));

  DeviceModelConfig devices;
  devices.oracle = OracleConfigFor(workload, 1);
  devices.serial_output = [this](std::string_view bytes) { console_pending_.append(bytes); };
  VmFd* raw_vm = vm_.get();
  devices.serial_irq = [raw_vm](bool level) { (void)raw_vm->SetIrqLine(kCom1Irq, level); };
  devices.log = config_.log;
  view_ = std::make_unique<RamView>(config_.regions->l2_ram());
  ASSIGN_OR_RETURN(model_, DeviceModel::Create(std::move(devices), *view_));
  return absl::OkStatus();
}

L2Runner::~L2Runner() { Stop(); }

absl::Status L2Runner::Start() {
  if (!set_up_) return absl::FailedPreconditionError("L2 is neither booted nor restored");
  if (running_.exchange(true)) return absl::FailedPreconditionError("L2 already started");
  InstallVcpuKickHandler();
  thread_ = std::thread([this] {
    thread_handle_.store(pthread_self(), std::memory_order_release);
    Loop();
  });
  return absl::OkStatus();
}

void L2Runner::RequestFault(nested_abi::Command fault) {
  if (fault == nested_abi::Command::kCrashInExit) {  // at the next port I/O exit, no kick
    crash_in_exit_.store(true, std::memory_order_release);
    return;
  }
  pending_fault_.store(static_cast<uint32_t>(fault), std::memory_order_release);
  if (vcpu_ != nullptr) vcpu_->SetImmediateExit(true);  // the next KVM_RUN returns at once
  const pthread_t thread = thread_handle_.load(std::memory_order_acquire);
  if (running_.load() && thread != pthread_t{}) pthread_kill(thread, VcpuKickSignal());
}

void L2Runner::Stop() {
  stop_.store(true, std::memory_order_release);
  if (vcpu_ != nullptr) vcpu_->SetImmediateExit(true);
  if (thread_.joinable()) {
    const pthread_t thread = thread_handle_.load(std::memory_order_acquire);
    if (thread != pthread_t{}) pthread_kill(thread, VcpuKickSignal());
    thread_.join();
  }
}

void L2Runner::Loop() {
  if (restored_outcome_.has_value()) {  // the write a pre-handling commit carried, handled
    if (absl::Status committed = CommitParked(); !committed.ok()) return Fail(committed);
    if (restored_outcome_->action != ExitOutcome::kContinue) return Finish(*restored_outcome_);
  }
  while (!stop_.load(std::memory_order_acquire)) {
    control_->parked.store(0, std::memory_order_release);
    absl::StatusOr<KvmExit> exit = vcpu_->Run();
    if (!exit.ok()) return Fail(exit.status());
    ExitOutcome outcome;
    const bool io =
        std::holds_alternative<PortIoExit>(*exit) || std::holds_alternative<MmioExit>(*exit);
    const auto* pio = std::get_if<PortIoExit>(&*exit);
    RipAtExit* rip_at_exit = nullptr;  // what this backend does with this exit's RIP
    uint64_t exit_rip = 0;
    bool before = false;  // a pre-handling commit
    if (pio != nullptr && pio->count == 1 && pio->rip != 0) {
      rip_at_exit = pio->is_write ? &out_rip_ : &in_rip_;
      exit_rip = pio->rip;
      std::optional<PendingPortWrite> pending;
      if (*rip_at_exit == RipAtExit::kPastInstruction && pio->is_write) {
        pending = PendingPortWrite{pio->port, {pio->data.begin(), pio->data.end()}};
      }
      before = *rip_at_exit == RipAtExit::kAtInstruction || pending.has_value();
      if (before) {
        if (absl::Status committed = CommitParked(pending); !committed.ok()) return Fail(committed);
      }
    }
    if (!std::holds_alternative<InterruptedExit>(*exit)) {
      outcome = model_->Handle(*exit);
      if (++exits_ <= 3) Log(absl::StrCat("L2 exit ", exits_, ": index ", exit->index()));
    }
    if (io) {  // complete the instruction: the committed state is after it
      vcpu_->SetImmediateExit(true);
      absl::StatusOr<KvmExit> done = vcpu_->Run();
      if (!done.ok()) return Fail(done.status());
    }
    vcpu_->SetImmediateExit(false);
    if (before && crash_in_exit_.exchange(false) && config_.inject) {
      Log(absl::StrCat("fault crash-in-exit: exit ", exits_,
                       " handled, not committed (L2 parked at commit ",
                       control_->parked_commit.load(), ")"));
      if (config_.inject(
              nested_abi::Command::kCrashInExit)) {  // production injectors do not return
        done_.store(true, std::memory_order_release);
        return;
      }
    }
    if (absl::Status committed = CommitParked(); !committed.ok()) return Fail(committed);
    if (rip_at_exit != nullptr && *rip_at_exit == RipAtExit::kUnknown) {
      *rip_at_exit =
          last_committed_rip_ == exit_rip ? RipAtExit::kPastInstruction : RipAtExit::kAtInstruction;
      Log(absl::StrCat("port ", pio->is_write ? "writes" : "reads", " exit ",
                       *rip_at_exit == RipAtExit::kAtInstruction ? "at" : "past",
                       " their instruction"));
    }
    if (outcome.action != ExitOutcome::kContinue) return Finish(outcome);
    const auto fault =
        static_cast<nested_abi::Command>(pending_fault_.exchange(0, std::memory_order_acq_rel));
    if (fault != nested_abi::Command::kNone && config_.inject) {
      Log(absl::StrCat("fault ", static_cast<int>(fault), " at parked commit ",
                       control_->parked_commit.load()));
      if (config_.inject(fault)) {  // production injectors do not return
        done_.store(true, std::memory_order_release);
        return;
      }
    }
  }
}

absl::Status L2Runner::CommitParked(std::optional<PendingPortWrite> pending) {
  const std::vector<int> fds{vcpu_->fd()};
  ASSIGN_OR_RETURN(const VmState state, CaptureVm(config_.kvm->fd(), vm_->fd(), fds));
  if (!state.vcpus.empty()) last_committed_rip_ = state.vcpus[0].regs.rip;
  NestedCommit commit;
  commit.pending_write = std::move(pending);
  commit.exits = exits_;
  commit.console_bytes = console_total_ + console_pending_.size();
  if (const CounterOracle* oracle = model_->oracle(); oracle != nullptr) {
    commit.verified_reports = oracle->verified_reports();
    commit.oracle_violations = oracle->violation_count();
  }
  commit.agent_generation = config_.generation;
  commit.l2_state = EncodeVmState(state);
  model_->SaveStateInto(&commit.device_state);
  // The bytes go into the ring before the commit that counts them, so that L0 finds every
  // committed byte there even if this agent dies before publishing.
  WriteConsoleRing(config_.regions->console_ring(), console_total_, console_pending_);
  DeviceJournal& journal = config_.regions->journal();
  RETURN_IF_ERROR(journal.Commit(EncodeNestedCommit(commit)));
  control_->parked_commit.store(journal.commits(), std::memory_order_release);
  control_->parked.store(1, std::memory_order_release);
  control_->l2_exits.store(exits_, std::memory_order_release);
  console_total_ += console_pending_.size();
  console_pending_.clear();
  control_->console_published.store(console_total_, std::memory_order_release);
  return absl::OkStatus();
}

void L2Runner::Finish(const ExitOutcome& outcome) {
  control_->result.action = static_cast<uint32_t>(outcome.action);
  control_->result.exit_status = outcome.exit_status;
  nested_abi::SetMessage(control_, outcome.reason);
  control_->agent_state.store(static_cast<uint32_t>(nested_abi::AgentState::kFinished),
                              std::memory_order_release);
  Log(absl::StrCat("L2 finished: ", outcome.reason));
  done_.store(true, std::memory_order_release);
}

void L2Runner::Fail(const absl::Status& status) {
  if (stop_.load(std::memory_order_acquire)) {
    done_.store(true, std::memory_order_release);
    return;
  }
  nested_abi::SetMessage(control_, absl::StrCat("L2 failed: ", status.message()));
  control_->agent_state.store(static_cast<uint32_t>(nested_abi::AgentState::kFailed),
                              std::memory_order_release);
  Log(absl::StrCat("L2 failed: ", status.message()));
  done_.store(true, std::memory_order_release);
}

void L2Runner::Log(std::string_view line) const {
  if (config_.log) config_.log(line);
}

}  // namespace rehome
