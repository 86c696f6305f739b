// vmm/cli/machine.cc: Machine.
#include "vmm/cli/machine.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "guest/abi/rehome_abi.h"
#include "kvm-l0/vm_state_io.h"
#include "recovery/split_backend.h"
#include "state-extract/state_codec.h"
#include "vmm/ring_net_backend.h"
#include "vmm/virtio/blk_device.h"

namespace rehome {
namespace {

constexpr uint32_t kCom1Irq = 4;

// Devices see guest RAM through L0's own mapping, which outlives every VM instance.
class RamView final : public GuestMemoryView {
 public:
  explicit RamView(const GuestMemory& ram) : ram_(ram) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }

 private:
  const GuestMemory& ram_;
};

MachineResult::Kind KindOf(ExitOutcome::Action action) {
  switch (action) {
    case ExitOutcome::kGuestExit:
      return MachineResult::Kind::kGuestExit;
    case ExitOutcome::kReset:
      return MachineResult::Kind::kReset;
    case ExitOutcome::kShutdown:
      return MachineResult::Kind::kShutdown;
    case ExitOutcome::kGuestCrash:
      return MachineResult::Kind::kGuestCrash;
    case ExitOutcome::kCheckFailed:
      return MachineResult::Kind::kOracleViolation;
    case ExitOutcome::kContinue:
    case ExitOutcome::kFatal:
      break;
  }
  return MachineResult::Kind::kFatal;
}

}  // namespace

absl::StatusOr<UniqueFd> OpenDiskImage(const std::string& path, bool read_only, bool direct) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularFile(path, read_only ? O_RDONLY : O_RDWR, "disk image"));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("disk image '", path, "'"));
  constexpr uint32_t kSector = virtio::BlkDevice::kSectorSize;
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "disk image '", path, "': is empty; a disk needs at least one ", kSector, "-byte sector"));
  }
  if (st.st_size % kSector != 0) {
    return absl::InvalidArgumentError(absl::StrCat("disk image '", path, "': its ", st.st_size,
                                                   " bytes are not a whole number of ", kSector,
                                                   "-byte sectors"));
  }
  if (direct) {
    const int flags = fcntl(fd.get(), F_GETFL);
    if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_DIRECT) != 0) {
      if (errno == EINVAL) {
        return absl::InvalidArgumentError(
            absl::StrCat("disk image '", path,
                         "': its file system does not support O_DIRECT (e.g. tmpfs); drop "
                         "--disk-direct / cache='none'"));
      }
      return LastErrnoStatus(absl::StrCat("disk image '", path, "': O_DIRECT"));
    }
  }
  return fd;
}

namespace {

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // console output is best effort; the guest never waits on it
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// Devices in this process: the whole device model runs on the vCPU threads.
class MonolithicBackend final : public ExitBackend {
 public:
  explicit MonolithicBackend(std::unique_ptr<DeviceModel> model) : model_(std::move(model)) {}
  ExitOutcome Handle(int vcpu, KvmExit& exit) override { return model_->Handle(exit); }
  WorkloadProgress Progress() const override {
    WorkloadProgress progress;
    progress.pio_bench_writes = model_->pio_bench_writes();
    if (const CounterOracle* oracle = model_->oracle(); oracle != nullptr) {
      progress.has_oracle = true;
      progress.verified_reports = oracle->verified_reports();
      progress.violations = oracle->violation_count();
      progress.summary = oracle->Summary();
    }
    return progress;
  }

 private:
  std::unique_ptr<DeviceModel> model_;
};

std::string Micros(absl::Duration d) {
  return absl::StrFormat("%.0f us", absl::ToDoubleMicroseconds(d));
}

}  // namespace

std::string RehomeReport::ToString() const {
  return absl::StrCat("moved into VM #", generation, " in ", Micros(total), " (pause ",
                      Micros(pause), ", capture ", Micros(capture), ", encode+decode ",
                      Micros(codec), ", build VM ", Micros(build), ", restore ", Micros(restore),
                      ", resume ", Micros(resume), "; state ", state_bytes, " bytes)");
}

Machine::Machine(MachineConfig config, KvmSystem kvm, GuestMemory ram)
    : config_(std::move(config)), kvm_(std::move(kvm)), ram_(std::move(ram)) {}

Machine::~Machine() {
  Stop();
  absl::MutexLock lock(&mu_);
  current_vm_ = nullptr;
}

absl::StatusOr<std::unique_ptr<Machine>> Machine::Create(MachineConfig config) {
  if (config.cpus < 1) return absl::InvalidArgumentError("cpus must be at least 1");
  absl::StatusOr<KvmSystem> opened = KvmSystem::Open(config.kvm_path.c_str());
  if (!opened.ok()) {
    return absl::UnavailableError(absl::StrCat("KVM is not usable: ", opened.status().message()));
  }
  KvmSystem kvm = std::move(*opened);
  if (config.cpus > kvm.max_vcpus()) {
    return absl::InvalidArgumentError(absl::StrCat("--cpus: KVM supports at most ", kvm.max_vcpus(),
                                                   " vCPUs, got ", config.cpus));
  }
  ASSIGN_OR_RETURN(GuestMemory ram, GuestMemory::Create(config.memory_bytes));
  std::unique_ptr<Machine> machine(new Machine(std::move(config), std::move(kvm), std::move(ram)));
  ASSIGN_OR_RETURN(machine->supported_cpuid_, machine->kvm_.SupportedCpuid());
  machine->ram_view_ = std::make_unique<RamView>(machine->ram_);
  // The kernel first: a bad image is reported before any L1 process starts.
  const MachineConfig& c = machine->config_;
  BootImageConfig boot{c.kernel_path,
                       c.initrd_path,
                       c.cmdline,
                       c.memory_bytes,
                       c.cpus,
                       (c.disk_path.empty() ? 0 : 1) + (c.console_socket.empty() ? 0 : 1),
                       {}};
  ASSIGN_OR_RETURN(machine->boot_, LoadBootImage(boot, *machine->ram_view_));
  RETURN_IF_ERROR(machine->SetUpBackend());

  std::vector<VcpuFd> vcpus;
  ASSIGN_OR_RETURN(machine->instance_, machine->BuildInstance(&vcpus));
  RETURN_IF_ERROR(SetupBootVcpus(machine->boot_, vcpus, SupportedXcr0(machine->supported_cpuid_)));
  Machine* self = machine.get();
  ASSIGN_OR_RETURN(machine->instance_->vcpus,
                   VcpuSet::Create(std::move(vcpus), [self](int index, KvmExit& exit) {
                     return self->HandleExit(index, exit);
                   }));
  absl::MutexLock lock(&machine->mu_);
  machine->current_vm_ = &machine->instance_->vm;
  machine->generation_ = 1;
  return machine;
}

absl::Status Machine::SetUpBackend() {
  if (!config_.console_socket.empty()) {
    ASSIGN_OR_RETURN(console_socket_, ConsoleSocket::Listen(config_.console_socket));
  }
  if (config_.net.has_value()) {
    ASSIGN_OR_RETURN(net_tap_, NetTap::Open(config_.net->ifname));
  }
  NetTap* tap = net_tap_.get();
  ConsoleSocket* console = console_socket_.get();
  auto console_output = [console](std::string_view bytes) {
    if (console != nullptr) console->Write(bytes);
  };
  if (config_.mode == MachineMode::kSplit) {
    if (!config_.disk_path.empty()) {
      ASSIGN_OR_RETURN(
          disk_, OpenDiskImage(config_.disk_path, config_.disk_read_only, config_.disk_direct));
    }
    return SetUpSplitBackend(console, tap, console_output);
  }
  DeviceModelConfig devices;
  devices.oracle = config_.oracle;
  auto serial_fd = std::make_shared<UniqueFd>(std::move(config_.serial_output));
  devices.serial_output = [serial_fd](std::string_view bytes) {
    WriteAll(serial_fd->get(), bytes);
  };
  devices.serial_irq = [this](bool level) { SetIrq(kCom1Irq, level); };
  devices.virtio_irq = [this](uint32_t irq, bool level) { SetIrq(irq, level); };
  devices.console = console != nullptr;
  devices.console_output = console_output;
  devices.log = config_.device_log ? config_.device_log : [](std::string_view line) {
    std::fprintf(stderr, "rehome: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  if (!config_.disk_path.empty()) {
    ASSIGN_OR_RETURN(devices.disk,
                     OpenDiskImage(config_.disk_path, config_.disk_read_only, config_.disk_direct));
    devices.disk_read_only = config_.disk_read_only;
  }
  if (tap != nullptr) {
    // Frames go through the same rings as in split mode, published at once; a transmitted
    // frame is written to the tap on the thread that processed it.
    devices.net_backend =
        std::make_shared<RingNetBackend>(&tap->rx_ring(), &tap->tx_ring(),
                                         /*deferred=*/false, [tap] { (void)tap->DrainTx(); });
    devices.net_mac = config_.net->mac;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DeviceModel> model,
                   DeviceModel::Create(std::move(devices), *ram_view_));
  model_ = model.get();
  backend_ = std::make_unique<MonolithicBackend>(std::move(model));
  if (tap != nullptr) {
    DeviceModel* raw = model_;
    tap->Start([raw] { raw->KickNet(); });  // on the pump thread
  }
  if (console != nullptr) {
    DeviceModel* raw = model_;
    console->Start([raw](std::string_view bytes) { raw->QueueConsoleInput(bytes); });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Machine::VmInstance>> Machine::BuildInstance(
    std::vector<VcpuFd>* vcpus_out) {
  std::vector<GuestMemory::RegionDesc> regions;
  for (const GuestMemory::Region& region : ram_.regions()) {
    regions.push_back({region.gpa, region.size, region.fd});
  }
  regions.insert(regions.end(), config_.extra_memory.begin(), config_.extra_memory.end());
  ASSIGN_OR_RETURN(GuestMemory mapping, GuestMemory::FromFds(regions));
  ASSIGN_OR_RETURN(VmFd vm, VmFd::Create(kvm_));
  auto instance = std::make_unique<VmInstance>(VmInstance{std::move(mapping), std::move(vm), {}});
  RETURN_IF_ERROR(instance->vm.MapMemory(instance->mapping));
  RETURN_IF_ERROR(instance->vm.CreateIrqchipAndPit());
  if (blk_notify_.valid()) {
    // The disk is virtio device 0: a 32-bit write of queue index 0 to its QueueNotify.
    RETURN_IF_ERROR(instance->vm.RegisterIoEventFd(
        blk_notify_.get(), IoSpace::kMmio, kVirtioMmioBase + virtio::MmioTransport::kRegQueueNotify,
        4, /*datamatch=*/0));
  }
  if (blk_irq_.valid()) {
    RETURN_IF_ERROR(instance->vm.RegisterIrqFd(blk_irq_.get(), kVirtioFirstIrq));
  }
  // Verified execution: L0 raises the agreed interrupts on the irqfds and takes the ioeventfds.
  const VirtioIndices index =
      VirtioDeviceIndices(blk_irq_.valid(), console_irq_.valid(), net_irq_.valid());
  // Any queue (console and net: receive 0, transmit 1): the L1 processes both on a notification.
  for (const auto& [i, notify, irq] : {std::tuple{index.console, &console_notify_, &console_irq_},
                                       std::tuple{index.net, &net_notify_, &net_irq_}}) {
    if (i < 0) continue;
    if (notify->valid()) {
      RETURN_IF_ERROR(instance->vm.RegisterIoEventFd(
          notify->get(), IoSpace::kMmio,
          kVirtioMmioBase + i * kVirtioMmioStride + virtio::MmioTransport::kRegQueueNotify, 4));
    }
    RETURN_IF_ERROR(instance->vm.RegisterIrqFd(irq->get(), kVirtioFirstIrq + i));
  }
  vcpus_out->clear();
  for (int i = 0; i < config_.cpus; ++i) {
    ASSIGN_OR_RETURN(VcpuFd vcpu, VcpuFd::Create(kvm_, instance->vm, i));
    RETURN_IF_ERROR(vcpu.SetCpuid(SanitizeCpuid(supported_cpuid_, i, config_.cpus)));
    vcpus_out->push_back(std::move(vcpu));
  }
  return instance;
}

absl::Status Machine::Start() {
  if (started_) return absl::FailedPreconditionError("machine already started");
  started_ = true;
  return instance_->vcpus->Start();
}

absl::Status Machine::Pause(absl::Duration timeout) { return instance_->vcpus->PauseAll(timeout); }

absl::Status Machine::Resume() { return instance_->vcpus->ResumeAll(); }

absl::StatusOr<RehomeReport> Machine::Rehome(absl::Duration pause_timeout) {
  if (!started_) return absl::FailedPreconditionError("machine not started");
  RehomeReport report;
  const absl::Time t0 = absl::Now();
  absl::Status paused = instance_->vcpus->PauseAll(pause_timeout);
  if (!paused.ok()) {
    if (absl::IsDeadlineExceeded(paused)) (void)instance_->vcpus->ResumeAll();
    return paused;
  }
  const absl::Time t1 = absl::Now();
  std::vector<int> old_fds;
  for (int i = 0; i < instance_->vcpus->size(); ++i) {
    old_fds.push_back(instance_->vcpus->vcpu(i).fd());
  }
  absl::StatusOr<VmState> captured = CaptureVm(kvm_.fd(), instance_->vm.fd(), old_fds);
  if (!captured.ok()) {
    (void)instance_->vcpus->ResumeAll();  // the guest keeps running where it was
    return captured.status();
  }
  const absl::Time t2 = absl::Now();
  const std::string encoded = EncodeVmState(*captured);
  ASSIGN_OR_RETURN(VmState decoded, DecodeVmState(encoded));
  report.state_bytes = encoded.size();
  const absl::Time t3 = absl::Now();

  std::vector<VcpuFd> vcpus;
  absl::StatusOr<std::unique_ptr<VmInstance>> next = BuildInstance(&vcpus);
  if (!next.ok()) {
    (void)instance_->vcpus->ResumeAll();
    return next.status();
  }
  const absl::Time t4 = absl::Now();
  std::vector<int> new_fds;
  for (const VcpuFd& vcpu : vcpus) new_fds.push_back(vcpu.fd());
  absl::Status restored = RestoreVm(kvm_.fd(), (*next)->vm.fd(), new_fds, decoded);
  if (!restored.ok()) {
    (void)instance_->vcpus->ResumeAll();
    return restored;
  }
  Machine* self = this;
  absl::StatusOr<std::unique_ptr<VcpuSet>> set = VcpuSet::Create(
      std::move(vcpus), [self](int index, KvmExit& exit) { return self->HandleExit(index, exit); });
  if (!set.ok()) {
    (void)instance_->vcpus->ResumeAll();
    return set.status();
  }
  (*next)->vcpus = std::move(*set);
  const absl::Time t5 = absl::Now();

  // The old VM never runs again: its threads exit without entering the guest.
  std::unique_ptr<VmInstance> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::move(instance_);
    instance_ = std::move(*next);
    current_vm_ = &instance_->vm;
    report.generation = ++generation_;
  }
  RETURN_IF_ERROR(instance_->vcpus->Start());
  const absl::Time t6 = absl::Now();
  old->vcpus->StopAll();
  old.reset();

  report.pause = t1 - t0;
  report.capture = t2 - t1;
  report.codec = t3 - t2;
  report.build = t4 - t3;
  report.restore = t5 - t4;
  report.resume = t6 - t5;
  report.total = t6 - t0;
  return report;
}

std::optional<MachineResult> Machine::WaitFor(absl::Duration timeout) {
  std::optional<VmStopReason> reason = instance_->vcpus->WaitForStopFor(timeout);
  if (!reason.has_value()) return std::nullopt;
  backend_->SettleAfterStop();  // every vCPU thread has stopped
  return ResultOf(*reason);
}

MachineResult Machine::Wait() {
  const VmStopReason reason = instance_->vcpus->WaitForStop();
  backend_->SettleAfterStop();  // every vCPU thread has stopped
  return ResultOf(reason);
}

void Machine::Stop() {
  // Split mode: the L1s first (a verified pump may wait for its replicas; Shutdown cancels that);
  // monolithic: the pump first (no more kicks into the device model).
  if (config_.mode == MachineMode::kSplit && backend_ != nullptr) backend_->Shutdown();
  if (net_tap_ != nullptr) net_tap_->Stop();
  if (backend_ != nullptr) backend_->Shutdown();  // unblocks vCPUs waiting for an L1 (idempotent)
  if (instance_ != nullptr && instance_->vcpus != nullptr) instance_->vcpus->StopAll();
}

std::vector<int64_t> Machine::VcpuThreadIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> ids;
  if (instance_ == nullptr || instance_->vcpus == nullptr) return ids;
  for (int i = 0; i < instance_->vcpus->size(); ++i) ids.push_back(instance_->vcpus->thread_id(i));
  return ids;
}

std::vector<int> Machine::VcpuFds() const {
  std::vector<int> fds;
  if (instance_ == nullptr || instance_->vcpus == nullptr) return fds;
  for (int i = 0; i < instance_->vcpus->size(); ++i) fds.push_back(instance_->vcpus->vcpu(i).fd());
  return fds;
}

int Machine::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

ExitVerdict Machine::HandleExit(int vcpu_index, KvmExit& exit) {
  if (config_.exit_hook && config_.exit_hook(vcpu_index, exit)) return ExitVerdict::kContinue;
  const int64_t start = config_.exit_stats ? absl::GetCurrentTimeNanos() : 0;
  ExitOutcome outcome = backend_->Handle(vcpu_index, exit);
  if (config_.exit_stats) {
    handling_ns_.fetch_add(absl::GetCurrentTimeNanos() - start, std::memory_order_relaxed);
    exits_timed_.fetch_add(1, std::memory_order_relaxed);
  }
  if (outcome.action == ExitOutcome::kContinue) return ExitVerdict::kContinue;
  RecordOutcome({KindOf(outcome.action), outcome.exit_status,
                 absl::StrCat("vCPU ", vcpu_index, ": ", outcome.reason)});
  return ExitVerdict::kStopVm;
}

void Machine::RecordOutcome(MachineResult result) {
  absl::MutexLock lock(&mu_);
  if (!outcome_.has_value()) outcome_ = std::move(result);
}

MachineResult Machine::ResultOf(const VmStopReason& reason) {
  switch (reason.cause) {
    case VmStopReason::Cause::kVerdict: {
      absl::MutexLock lock(&mu_);
      if (outcome_.has_value()) return *outcome_;
      return {MachineResult::Kind::kFatal, 0, "VM stopped without a recorded cause"};
    }
    case VmStopReason::Cause::kRunError:
      return {MachineResult::Kind::kFatal, 0,
              absl::StrCat("vCPU ", reason.vcpu_index, ": ", reason.status.message())};
    case VmStopReason::Cause::kStopAll:
      break;
  }
  return {MachineResult::Kind::kStopped, 0, "stopped"};
}

void Machine::SetIrq(uint32_t irq, bool level) {
  absl::MutexLock lock(&mu_);
  // The IOAPIC line level is part of the captured VM state. A failure here only delays an
  // interrupt that the guest also discovers by polling LSR.
  if (current_vm_ != nullptr) (void)current_vm_->SetIrqLine(irq, level);
}

}  // namespace rehome
