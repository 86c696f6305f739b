// recovery/nested/nested_l1.cc: NestedL1.
#include "recovery/nested/nested_l1.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "kvm-l0/cpu_state_io.h"
#include "kvm-l0/nested_state_io.h"
#include "recovery/nested/exit_trap.h"
#include "recovery/nested/l1_memory.h"
#include "state-extract/nested/linear_walk.h"

namespace rehome {

absl::StatusOr<std::unique_ptr<NestedL1>> NestedL1::Start(NestedL1Config config) {
  UniqueFd control_fd(memfd_create("rehome-l1-control", MFD_CLOEXEC));
  if (!control_fd.valid()) return LastErrnoStatus("memfd_create L1 control region");
  if (ftruncate(control_fd.get(), static_cast<off_t>(nested_abi::kControlRegionSize)) != 0) {
    return LastErrnoStatus("ftruncate L1 control region");
  }
  ASSIGN_OR_RETURN(MappedRegion map,
                   MappedRegion::Map(nested_abi::kControlRegionSize, PROT_READ | PROT_WRITE,
                                     MAP_SHARED, control_fd.get(), 0));
  auto* page = new (map.bytes()) nested_abi::ControlPage{};
  page->magic = nested_abi::kControlMagic;
  page->version = nested_abi::kControlVersion;
  page->l1_id = static_cast<uint32_t>(config.id);
  page->boot = config.boot;
  page->boot.l2_ram_size = config.l2_ram_size;

  std::unique_ptr<NestedL1> l1(
      new NestedL1(std::move(config), std::move(control_fd), std::move(map)));
  const NestedL1Config& c = l1->config_;
  MachineConfig machine;
  machine.mode = MachineMode::kMonolithic;
  machine.kernel_path = c.kernel;
  machine.initrd_path = c.initrd;
  machine.memory_bytes = c.memory_bytes;
  machine.cpus = 1;
  machine.cmdline = absl::StrCat(
      "console=ttyS0 loglevel=5 panic=-1 mitigations=off no_timer_check rehome.l1=", c.id,
      c.extra_cmdline.empty() ? "" : " ", c.extra_cmdline);
  machine.kvm_path = c.kvm_path;
  machine.device_log = [](std::string_view) {};  // a Linux L1 probes PCI and more: noise
  NestedL1* raw = l1.get();
  machine.exit_hook = [raw](int vcpu_index, const KvmExit& exit) {
    return raw->OnExit(vcpu_index, exit);
  };
  machine.serial_output.Reset(::open(c.console_log.empty() ? "/dev/null" : c.console_log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!machine.serial_output.valid()) return LastErrnoStatus(c.console_log);
  machine.extra_memory = {
      {nested_abi::kControlGpa, nested_abi::kControlRegionSize, l1->control_fd_.get(), 0},
      {nested_abi::kJournalGpa, nested_abi::kJournalRegionSize, c.journal_fd, 0},
      {nested_abi::kL2RamGpa, c.l2_ram_size, c.l2_ram_fd, 0}};
  ASSIGN_OR_RETURN(l1->machine_, Machine::Create(std::move(machine)));
  RETURN_IF_ERROR(l1->machine_->Start());
  l1->started_ = absl::Now();
  return l1;
}

NestedL1::~NestedL1() {
  if (machine_ != nullptr) machine_->Stop();
}

nested_abi::AgentState NestedL1::agent_state() const {
  return static_cast<nested_abi::AgentState>(
      control()->agent_state.load(std::memory_order_acquire));
}

uint64_t NestedL1::Send(nested_abi::Command command) {
  nested_abi::ControlPage* page = control();
  page->command.store(static_cast<uint32_t>(command), std::memory_order_release);
  return page->command_seq.fetch_add(1, std::memory_order_acq_rel) + 1;
}

std::optional<MachineResult> NestedL1::Ended() {
  if (ended_.has_value() || machine_ == nullptr) return ended_;
  ended_ = machine_->WaitFor(absl::ZeroDuration());
  return ended_;
}

void NestedL1::Kill() {
  if (machine_ != nullptr && !killed_) machine_->Stop();
  killed_ = true;
}

absl::Status NestedL1::ArmExitTracking(uint64_t vmrun_return_rip) {
  if (vmrun_return_rip == 0) return absl::InvalidArgumentError("no VMRUN return address");
  const std::vector<int> fds = machine_->VcpuFds();
  if (fds.empty()) return absl::FailedPreconditionError("the L1 has no vCPU");
  // Any CR3 maps the kernel half (the L1 runs without page-table isolation).
  ASSIGN_OR_RETURN(const CpuState cpu, CaptureCpuState(machine_->kvm_fd(), fds[0]));
  const L1Memory memory(machine_->ram());
  ASSIGN_OR_RETURN(const uint64_t gpa,
                   nested::TranslateLinear(memory, cpu.sregs.cr3, vmrun_return_rip));
  uint8_t* code = (gpa & 0xfff) <= 0x1000 - nested::kExitTrapCodeBytes
                      ? machine_->ram().HostAddress(gpa, nested::kExitTrapCodeBytes)
                      : nullptr;
  if (code == nullptr) {
    return absl::DataLossError(absl::StrFormat(
        "the VMRUN return 0x%x maps to 0x%x: not L1 RAM, or across a page", vmrun_return_rip, gpa));
  }
  const std::optional<int32_t> disp =
      nested::ParseVmrunReturnCode({code, nested::kExitTrapCodeBytes});
  if (!disp.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("unknown code at the VMRUN return: %02x %02x %02x %02x", code[0], code[1],
                        code[2], code[3]));
  }
  tracking_rip_ = vmrun_return_rip;
  rcx_disp_ = *disp;
  code[0] = nested::kExitTrapBytes[0];
  code[1] = nested::kExitTrapBytes[1];
  tracking_armed_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

bool NestedL1::OnExit(int vcpu_index, const KvmExit& exit) {
  const auto* io = std::get_if<PortIoExit>(&exit);
  if (io == nullptr || !io->is_write || io->port != nested::kExitTrapPort || tracking_rip_ == 0 ||
      (io->rip != 0 && io->rip != tracking_rip_)) {
    return false;
  }
  const std::vector<int> fds = machine_->VcpuFds();
  if (vcpu_index < 0 || static_cast<size_t>(vcpu_index) >= fds.size()) return false;
  const int fd = fds[static_cast<size_t>(vcpu_index)];
  static constexpr uint32_t kMsrKernelGsBase = 0xc0000102;  // L2's, not yet saved by the L1
  absl::StatusOr<CpuState> l1 =
      CaptureRegistersAndFpu(machine_->kvm_fd(), fd, std::span(&kMsrKernelGsBase, 1));
  if (!l1.ok() || l1->regs.rip != tracking_rip_) return false;  // not the trap
  // Capture L2 first: RAX is still VMRUN's operand (the VMCB), the other registers L2's.
  absl::StatusOr<L2ExitSnapshot> snapshot = [&]() -> absl::StatusOr<L2ExitSnapshot> {
    L2ExitSnapshot s;
    s.l1 = *l1;
    s.vmcb_gpa = s.l1.regs.rax;
    const uint8_t* page = (s.vmcb_gpa & 0xfff) == 0
                              ? machine_->ram().HostAddress(s.vmcb_gpa, nested::kVmcbSize)
                              : nullptr;
    if (page == nullptr) {
      return absl::DataLossError(absl::StrFormat("VMCB at 0x%x is not L1 RAM", s.vmcb_gpa));
    }
    ASSIGN_OR_RETURN(s.vmcb, nested::ParseVmcb({page, nested::kVmcbSize}));
    s.commits = config_.journal_commits ? config_.journal_commits() : 0;
    return s;
  }();
  {
    absl::MutexLock lock(&exit_mu_);
    ++exits_tracked_;
    if (snapshot.ok()) {
      snapshot->number = exits_tracked_;
      last_exit_ = std::move(*snapshot);
    } else {
      ++capture_errors_;
      last_exit_.reset();
    }
  }
  // Then the two instructions the trap replaced: pop %rax; mov %rcx, disp(%rax).
  absl::Status emulated = [&]() -> absl::Status {
    const L1Memory memory(machine_->ram());
    Regs regs = l1->regs;
    ASSIGN_OR_RETURN(const uint64_t stack,
                     nested::TranslateLinear(memory, l1->sregs.cr3, regs.rsp));
    const uint8_t* top = (stack & 7) == 0 ? machine_->ram().HostAddress(stack, 8) : nullptr;
    if (top == nullptr) return absl::DataLossError("the L1's stack is not L1 RAM");
    std::memcpy(&regs.rax, top, 8);
    regs.rsp += 8;
    const uint64_t target = regs.rax + static_cast<uint64_t>(static_cast<int64_t>(rcx_disp_));
    ASSIGN_OR_RETURN(const uint64_t slot, nested::TranslateLinear(memory, l1->sregs.cr3, target));
    uint8_t* field = (slot & 7) == 0 ? machine_->ram().HostAddress(slot, 8) : nullptr;
    if (field == nullptr) return absl::DataLossError("the svm structure is not L1 RAM");
    std::memcpy(field, &regs.rcx, 8);
    regs.rip = tracking_rip_ + nested::kExitTrapCodeBytes;  // KVM does not step a moved RIP
    return SetVcpuRegs(fd, regs);
  }();
  if (!emulated.ok()) {
    // The L1 cannot go on past the trap: it is lost (L0 detects its failure as any other).
    tracking_broken_.store(true, std::memory_order_release);
  }
  return true;
}

std::optional<L2ExitSnapshot> NestedL1::LastExit() const {
  absl::MutexLock lock(&exit_mu_);
  return last_exit_;
}

uint64_t NestedL1::exits_tracked() const {
  absl::MutexLock lock(&exit_mu_);
  return exits_tracked_;
}

uint64_t NestedL1::exit_capture_errors() const {
  absl::MutexLock lock(&exit_mu_);
  return capture_errors_;
}

std::string NestedL1::ConsoleTail(size_t bytes) const {
  if (config_.console_log.empty()) return "";
  UniqueFd fd(::open(config_.console_log.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  const off_t from = size > static_cast<off_t>(bytes) ? size - static_cast<off_t>(bytes) : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  const ssize_t n = ::pread(fd.get(), out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace rehome
