// recovery/nested/nested_l1.cc: NestedL1.
#include "recovery/nested/nested_l1.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

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
