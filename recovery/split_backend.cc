// recovery/split_backend.cc: SplitBackend.
#include "recovery/split_backend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/cpu_avoidance.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "vmm/l1/commit_record.h"

namespace rehome {
namespace {

void WriteAll(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    const ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // console output is best effort; the guest never waits on it
    data += n;
    len -= static_cast<size_t>(n);
  }
}

// How long the notification pump spins for the guest's next notification after an item.
constexpr absl::Duration kNotificationSpin = absl::Microseconds(100);

ExitOutcome::Action ActionOf(uint32_t action) {
  return static_cast<ExitOutcome::Action>(action);  // same numbering (checked in l1_main.cc)
}

}  // namespace

absl::StatusOr<std::unique_ptr<SplitBackend>> SplitBackend::Start(
    SupervisorConfig config, UniqueFd serial_output,
    std::function<void(std::string_view)> console_output,
    std::optional<VerifiedEffectsSink> verified, uint64_t disk_bytes) {
  std::unique_ptr<SplitBackend> backend(new SplitBackend());
  backend->serial_output_ = std::move(serial_output);
  backend->console_output_ = std::move(console_output);
  backend->host_slot_ = static_cast<uint32_t>(config.launch.cpus);
  // Not value-initialised: zeroing the 12 KiB of payload buffers would cost more than the rest
  // of forwarding; every field and every used byte is written before it is read.
  backend->vcpus_.resize(static_cast<size_t>(std::max(config.launch.cpus, 0)));
  for (VcpuBuffers& b : backend->vcpus_) {
    b.request = std::make_unique_for_overwrite<ExitRequest>();
    b.response = std::make_unique_for_overwrite<ExitResponse>();
  }
  if (verified.has_value()) {
    // Every exit through the replicas; their agreed effects (console bytes too) go to the sink.
    SplitBackend* raw = backend.get();
    backend->net_rx_produced_ = verified->net_rx_produced;
    ASSIGN_OR_RETURN(
        backend->supervisor_,
        VerifiedSupervisor::Start(std::move(config), std::move(*verified), disk_bytes, [raw] {
          return raw->next_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
        }));
    return backend;
  }
  if (config.launch.console) {
    // The guest's console output reaches L0 through the transmit ring, not through answers.
    ASSIGN_OR_RETURN(backend->console_ring_, ConsoleTxRing::Create());
    backend->console_out_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    backend->drain_stop_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!backend->console_out_.valid() || !backend->drain_stop_.valid()) {
      return absl::InternalError("eventfd for the console ring failed");
    }
    config.launch.console_ring_fd = backend->console_ring_.memfd();
    config.launch.console_out_fd = backend->console_out_.get();
    SplitBackend* raw = backend.get();
    config.before_promote = [raw] { raw->console_ring_.RepairShared(); };
    backend->drain_thread_ = std::thread([raw] { raw->DrainConsole(); });
  }
  ASSIGN_OR_RETURN(backend->supervisor_, Supervisor::Start(std::move(config)));
  return backend;
}

SplitBackend::~SplitBackend() { Shutdown(); }

void SplitBackend::Shutdown() {
  if (supervisor_) supervisor_->Shutdown();  // an item in flight returns (Cancelled)
  if (pump_thread_.joinable()) {
    (void)eventfd_write(pump_stop_.get(), 1);
    pump_thread_.join();
  }
  if (drain_thread_.joinable()) {
    (void)eventfd_write(drain_stop_.get(), 1);
    drain_thread_.join();
  }
}

void SplitBackend::DrainConsole() {
  bool reported = false;
  for (;;) {
    pollfd fds[2] = {{console_out_.get(), POLLIN, 0}, {drain_stop_.get(), POLLIN, 0}};
    // The timeout only bounds how late bytes published without a signal (an L1 killed between
    // publishing and signalling) reach the client; normally the eventfd wakes this at once.
    (void)poll(fds, 2, 50);
    eventfd_t ignored;
    (void)eventfd_read(console_out_.get(), &ignored);
    const bool stopping = (fds[1].revents & POLLIN) != 0;
    absl::StatusOr<std::string> bytes = console_ring_.Take();
    if (!bytes.ok()) {
      // An L1 published an impossible position: take nothing from it. A well-behaved successor
      // republishes the committed position, which is valid again.
      if (!reported)
        std::fprintf(stderr, "rehome: %s\n", std::string(bytes.status().message()).c_str());
      reported = true;
    } else if (!bytes->empty() && console_output_) {
      console_output_(*bytes);
    }
    if (stopping) return;
  }
}

ExitOutcome SplitBackend::Handle(int vcpu, KvmExit& exit) {
  if (auto* io = std::get_if<PortIoExit>(&exit)) {
    return Forward(vcpu, true, io->is_write, io->port, io->size, io->count, io->data, io->rip,
                   io->rflags);
  }
  if (auto* mmio = std::get_if<MmioExit>(&exit)) {
    return Forward(vcpu, false, mmio->is_write, mmio->gpa, static_cast<uint32_t>(mmio->data.size()),
                   1, mmio->data, mmio->rip, mmio->rflags);
  }
  return DispatchExit(exit, no_devices_, no_requests_);
}

ExitOutcome SplitBackend::Forward(int vcpu, bool is_pio, bool is_write, uint64_t addr,
                                  uint32_t size, uint32_t count, std::span<uint8_t> data,
                                  uint64_t rip, uint64_t rflags) {
  if (data.size() > kExitDataMax || size == 0 ||
      static_cast<uint64_t>(size) * count != data.size()) {
    return ExitOutcome{ExitOutcome::kFatal, 0,
                       absl::StrCat("exit with ", data.size(), " data bytes cannot be forwarded")};
  }
  if (vcpu < 0 || static_cast<size_t>(vcpu) >= vcpus_.size()) {
    return ExitOutcome{ExitOutcome::kFatal, 0, absl::StrCat("exit from unknown vCPU ", vcpu)};
  }
  VcpuBuffers& buffers = vcpus_[static_cast<size_t>(vcpu)];
  // This vCPU's posted write, if one is pending, comes first: its answer arrived long ago in
  // the normal case; it may end the VM, and it must reach its L1 before this exit does.
  if (ExitOutcome late;
      buffers.posted_pending && !Settle(static_cast<uint32_t>(vcpu), &late, true)) {
    return late;
  }
  ExitRequest* request = buffers.request.get();
  ExitResponse* response = buffers.response.get();
  request->seq = next_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
  request->vcpu = static_cast<uint32_t>(vcpu);
  request->kind = is_pio ? ExitRequest::kPio : ExitRequest::kMmio;
  request->is_write = is_write ? 1 : 0;
  request->size = size;
  request->count = count;
  request->addr = addr;
  request->rip = rip;  // the exit's vCPU state, recorded with it (and retried with it)
  request->rflags = rflags;
  request->data_len = is_write ? static_cast<uint32_t>(data.size()) : 0;
  request->host_cpu = ~0u;
  request->net_rx_limit = NetRxLimit();
  if (is_write) std::memcpy(request->data, data.data(), data.size());
  bool posted = false;
  absl::Status status = supervisor_->Execute(*request, response, &posted);
  if (!status.ok()) {
    return ExitOutcome{ExitOutcome::kFatal, 0,
                       absl::StrCat("no L1 can handle exits: ", status.message())};
  }
  if (posted) {
    buffers.posted_pending = true;
    return ExitOutcome{ExitOutcome::kContinue, 0, ""};
  }
  // (Validated: a kContinue answer to a read carries exactly data.size() bytes.)
  if (!is_write && response->action == ExitResponse::kContinue) {
    std::memcpy(data.data(), response->data, data.size());
  }
  Emit(*response);
  return ExitOutcome{ActionOf(response->action), response->exit_status,
                     PrintableL1Text(std::string_view(response->reason, response->reason_len))};
}

bool SplitBackend::Settle(uint32_t vcpu, ExitOutcome* outcome, bool wait_for_l1) {
  VcpuBuffers& buffers = vcpus_[vcpu];
  bool settled = false;
  const absl::Status status =
      supervisor_->SettlePosted(vcpu, buffers.response.get(), &settled, wait_for_l1);
  buffers.posted_pending = false;
  if (!status.ok()) {
    *outcome = ExitOutcome{ExitOutcome::kFatal, 0,
                           absl::StrCat("no L1 can handle exits: ", status.message())};
    return false;
  }
  if (!settled) return true;
  const ExitResponse& response = *buffers.response;
  Emit(response);
  if (response.action == ExitResponse::kContinue) return true;
  *outcome = ExitOutcome{
      ActionOf(response.action), response.exit_status,
      absl::StrCat(PrintableL1Text(std::string_view(response.reason, response.reason_len)),
                   " (posted write)")};
  return false;
}

void SplitBackend::SettleAfterStop() {
  for (uint32_t v = 0; v < vcpus_.size(); ++v) {
    ExitOutcome ignored;
    // Not waiting for a new L1: a VM paused at the failover limit is stopped by Shutdown.
    if (vcpus_[v].posted_pending) (void)Settle(v, &ignored, /*wait_for_l1=*/false);
  }
}

void SplitBackend::Emit(const ExitResponse& response) {
  if (response.output_len == 0) return;
  if (response.output_stream == 1) {
    if (console_output_) {
      console_output_(
          std::string_view(reinterpret_cast<const char*>(response.output), response.output_len));
    }
    return;
  }
  WriteAll(serial_output_.get(), response.output, response.output_len);
}

absl::Status SplitBackend::ExecuteOnHostSlot(ExitRequest& request, ExitResponse* response) {
  absl::MutexLock host(&host_slot_mu_);
  request.seq = next_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
  request.vcpu = host_slot_;
  request.is_write = 1;
  request.size = 1;
  request.host_cpu = ~0u;
  request.net_rx_limit = NetRxLimit();
  RETURN_IF_ERROR(supervisor_->Execute(request, response));
  Emit(*response);
  return absl::OkStatus();
}

absl::Status SplitBackend::DeliverConsoleInput(std::string_view bytes) {
  while (!bytes.empty()) {
    auto request = std::make_unique<ExitRequest>();
    auto response = std::make_unique<ExitResponse>();
    const size_t n = std::min<size_t>(bytes.size(), kExitDataMax);
    request->kind = ExitRequest::kConsoleInput;
    request->count = static_cast<uint32_t>(n);
    request->data_len = static_cast<uint32_t>(n);
    std::memcpy(request->data, bytes.data(), n);
    RETURN_IF_ERROR(ExecuteOnHostSlot(*request, response.get()));
    bytes.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status SplitBackend::DeliverNetInput() {
  auto request = std::make_unique<ExitRequest>();
  auto response = std::make_unique<ExitResponse>();
  request->kind = ExitRequest::kNetInput;
  return ExecuteOnHostSlot(*request, response.get());
}

absl::Status SplitBackend::StartNotificationPump(std::vector<QueueNotifier> notifiers) {
  if (pump_thread_.joinable()) return absl::FailedPreconditionError("pump already started");
  pump_stop_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!pump_stop_.valid()) return absl::InternalError("eventfd for the notification pump failed");
  pump_thread_ =
      std::thread([this, n = std::move(notifiers)]() mutable { PumpNotifications(std::move(n)); });
  return absl::OkStatus();
}

void SplitBackend::PumpNotifications(std::vector<QueueNotifier> notifiers) {
  std::vector<pollfd> fds;
  for (const QueueNotifier& n : notifiers) fds.push_back({n.fd, POLLIN, 0});
  fds.push_back({pump_stop_.get(), POLLIN, 0});
  auto request = std::make_unique<ExitRequest>();
  auto response = std::make_unique<ExitResponse>();
  CpuAvoidance avoidance;
  bool spin = false;  // after an item, or a notification that an item had covered already
  for (;;) {
    // A guest that just got an answer tends to submit the next request within tens of
    // microseconds (its driver polls the used ring): watch for it first, as the active L1 does
    // in split mode, both the available indices of the queues the devices serve unprompted (new
    // buffers are seen before the guest's notification, which costs it an exit, arrives) and the
    // notifications (a sleep plus a wake-up on an idle CPU cost ~30 us here). Never beside a
    // vCPU thread, which would take turns with this spin.
    bool seen = false;  // new buffers seen in guest RAM
    int signalled = 0;
    if (spin) {
      const uint32_t vcpu_cpus = supervisor_->VcpuCpus();
      (void)avoidance.MoveOff(vcpu_cpus);
      const int cpu = sched_getcpu();
      if (vcpu_cpus != 0 && cpu >= 0 && cpu < 32 && (vcpu_cpus & (1u << cpu)) == 0) {
        (void)SpinUntil(
            [&] {
              seen = supervisor_->QueueWorkAvailable(/*wait_for_item=*/false);
              if (seen || (signalled = poll(fds.data(), fds.size(), 0)) != 0) return true;
              // A thread woken on this CPU (the console's, the network pump, a replica L0 did
              // not raise) runs at once instead of waiting up to a time slice behind the spin.
              (void)sched_yield();
              return false;
            },
            kNotificationSpin);
      }
      spin = false;
    }
    if (!seen && signalled == 0 && poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      return;
    }
    if (seen) (void)poll(fds.data(), fds.size(), 0);  // and the notifications that came with it
    if ((fds.back().revents & POLLIN) != 0) return;
    // Drained before the item reads the available indices: a notification that arrives after
    // this read signals again and gets an item of its own.
    const QueueNotifier* first = nullptr;
    for (size_t i = 0; i < notifiers.size(); ++i) {
      if (fds[i].revents == 0) continue;
      eventfd_t ignored;
      (void)eventfd_read(notifiers[i].fd, &ignored);
      if (first == nullptr) first = &notifiers[i];
    }
    if (!seen && first == nullptr) continue;
    // A notification whose buffers an earlier item (one that watching started, or a vCPU's
    // exit) already took needs none: the indices are as that item read them.
    if (!seen && !supervisor_->QueueWorkAvailable(/*wait_for_item=*/true)) {
      spin = true;
      continue;
    }
    request->kind = ExitRequest::kDeviceKick;
    request->count = 1;
    request->addr = first != nullptr ? first->addr : 0;
    request->data_len = 0;
    // Fails only when recovery stopped for good or at shutdown (a paused VM waits inside).
    if (!ExecuteOnHostSlot(*request, response.get()).ok()) return;
    spin = true;
  }
}

WorkloadProgress SplitBackend::Progress() const {
  // If every read of the journal was torn by a concurrent commit, report the last progress read
  // rather than none: callers poll it and must never see it go backwards.
  if (std::optional<CommitRecord> record = supervisor_->LatestCommit(); record.has_value()) {
    WorkloadProgress progress;
    progress.verified_reports = record->verified_reports;
    progress.violations = record->oracle_violations;
    progress.pio_bench_writes = record->pio_bench_writes;
    progress.exits_handled = record->exits_handled;
    progress.has_oracle = record->verified_reports != 0 || record->oracle_violations != 0;
    absl::MutexLock lock(&progress_mu_);
    last_progress_ = progress;
    return progress;
  }
  absl::MutexLock lock(&progress_mu_);
  return last_progress_;
}

}  // namespace rehome
