// kvm-l0/vcpu_thread.cc: see vcpu_thread.h.
#include "kvm-l0/vcpu_thread.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <variant>

#include "absl/strings/str_cat.h"

namespace rehome {
namespace {

constexpr absl::Duration kRekickInterval = absl::Milliseconds(20);

void NoOpSignalHandler(int) {}

// Installs the kick handler once per process. No SA_RESTART: KVM_RUN must return EINTR.
void InstallKickHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = NoOpSignalHandler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(VcpuKickSignal(), &action, nullptr);
  });
}

// A copy of `exit` whose data spans (into kvm_run) are emptied, safe to keep.
KvmExit DetachedCopy(const KvmExit& exit) {
  KvmExit copy = exit;
  std::visit(
      [](auto& e) {
        if constexpr (requires { e.data; }) e.data = {};
      },
      copy);
  return copy;
}

}  // namespace

int VcpuKickSignal() { return SIGRTMIN + 1; }

void InstallVcpuKickHandler() { InstallKickHandlerOnce(); }

absl::StatusOr<std::unique_ptr<VcpuSet>> VcpuSet::Create(std::vector<VcpuFd> vcpus,
                                                         ExitHandler handler) {
  if (vcpus.empty()) return absl::InvalidArgumentError("VcpuSet: no vCPUs");
  if (!handler) return absl::InvalidArgumentError("VcpuSet: no exit handler");
  return std::unique_ptr<VcpuSet>(new VcpuSet(std::move(vcpus), std::move(handler)));
}

VcpuSet::VcpuSet(std::vector<VcpuFd> vcpus, ExitHandler handler) : handler_(std::move(handler)) {
  for (VcpuFd& vcpu : vcpus) slots_.push_back(std::make_unique<Slot>(std::move(vcpu)));
}

VcpuSet::~VcpuSet() { StopAll(); }

absl::Status VcpuSet::Start() {
  InstallKickHandlerOnce();
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("VcpuSet already started");
  if (command_ == Command::kStop) return absl::FailedPreconditionError("VcpuSet stopped");
  started_ = true;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = *slots_[i];
    slot.vcpu.SetImmediateExit(false);
    slot.state = State::kRunning;
    slot.thread = std::thread(&VcpuSet::Loop, this, static_cast<int>(i));
    slot.handle = slot.thread.native_handle();
    slot.has_thread = true;
  }
  return absl::OkStatus();
}

void VcpuSet::Loop(int i) {
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, VcpuKickSignal());
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
  Slot& slot = *slots_[i];
  slot.tid.store(static_cast<int64_t>(gettid()), std::memory_order_release);
  for (;;) {
    absl::StatusOr<KvmExit> exit = slot.vcpu.Run();
    if (!exit.ok()) {
      absl::MutexLock lock(&mu_);
      VmStopReason reason;
      reason.cause = VmStopReason::Cause::kRunError;
      reason.vcpu_index = slot.vcpu.index();
      reason.status = exit.status();
      RequestStopLocked(std::move(reason));
      slot.state = State::kExited;
      cv_.SignalAll();
      return;
    }
    if (std::holds_alternative<InterruptedExit>(*exit)) {
      if (!AfterInterrupt(i)) return;
      continue;
    }
    if (handler_(slot.vcpu.index(), *exit) == ExitVerdict::kStopVm) {
      absl::MutexLock lock(&mu_);
      VmStopReason reason;
      reason.cause = VmStopReason::Cause::kVerdict;
      reason.vcpu_index = slot.vcpu.index();
      reason.exit = DetachedCopy(*exit);
      RequestStopLocked(std::move(reason));
      // Loop on: the next KVM_RUN completes the exit's I/O and returns EINTR.
    }
  }
}

bool VcpuSet::AfterInterrupt(int i) {
  Slot& slot = *slots_[i];
  absl::MutexLock lock(&mu_);
  for (;;) {
    switch (command_) {
      case Command::kRun:
        // Cleared only here, under mu_ and while kRun, so a PauseAll (which sets it under mu_
        // after switching to kPause) is never lost.
        slot.vcpu.SetImmediateExit(false);
        slot.state = State::kRunning;
        return true;
      case Command::kPause:
        if (slot.state != State::kPaused) {
          slot.state = State::kPaused;
          cv_.SignalAll();
        }
        cv_.Wait(&mu_);
        break;
      case Command::kStop:
        slot.state = State::kExited;
        cv_.SignalAll();
        return false;
    }
  }
}

void VcpuSet::KickLocked() {
  for (auto& slot : slots_) {
    if (slot->state == State::kExited) continue;
    slot->vcpu.SetImmediateExit(true);
    if (slot->has_thread) pthread_kill(slot->handle, VcpuKickSignal());
  }
}

void VcpuSet::RequestStopLocked(VmStopReason reason) {
  if (!stop_reason_.has_value()) stop_reason_ = std::move(reason);
  if (command_ != Command::kStop) {
    command_ = Command::kStop;
    KickLocked();
  }
  cv_.SignalAll();
}

bool VcpuSet::AllExitedLocked() const {
  return std::all_of(slots_.begin(), slots_.end(),
                     [](const auto& slot) { return slot->state == State::kExited; });
}

absl::Status VcpuSet::PauseAll(absl::Duration timeout) {
  absl::MutexLock control(&control_mu_);
  absl::MutexLock lock(&mu_);
  if (!started_) return absl::FailedPreconditionError("PauseAll: vCPUs not started");
  if (command_ == Command::kStop) return absl::FailedPreconditionError("PauseAll: VM stopped");
  if (command_ != Command::kPause) {
    command_ = Command::kPause;
    KickLocked();
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (command_ == Command::kStop) {
      return absl::FailedPreconditionError("PauseAll: VM stopped while pausing");
    }
    const bool all_paused = std::all_of(slots_.begin(), slots_.end(), [](const auto& slot) {
      return slot->state == State::kPaused;
    });
    if (all_paused) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("PauseAll: vCPUs not parked after ", absl::FormatDuration(timeout)));
    }
    if (cv_.WaitWithDeadline(&mu_, std::min(deadline, now + kRekickInterval))) {
      // Timed out without news: kick the stragglers again (cheap, and covers a thread that
      // was between signal checks; immediate_exit alone already guarantees progress).
      for (auto& slot : slots_) {
        if (slot->state == State::kRunning && slot->has_thread) {
          pthread_kill(slot->handle, VcpuKickSignal());
        }
      }
    }
  }
}

absl::Status VcpuSet::ResumeAll() {
  absl::MutexLock control(&control_mu_);
  absl::MutexLock lock(&mu_);
  if (!started_) return absl::FailedPreconditionError("ResumeAll: vCPUs not started");
  if (command_ == Command::kStop) return absl::FailedPreconditionError("ResumeAll: VM stopped");
  command_ = Command::kRun;
  cv_.SignalAll();
  return absl::OkStatus();
}

void VcpuSet::StopAll() {
  {
    absl::MutexLock lock(&mu_);
    RequestStopLocked(VmStopReason{});
    if (!started_) {
      for (auto& slot : slots_) slot->state = State::kExited;
      cv_.SignalAll();
    }
  }
  absl::MutexLock join(&join_mu_);
  for (auto& slot : slots_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
  absl::MutexLock lock(&mu_);
  for (auto& slot : slots_) slot->has_thread = false;
}

VcpuSet::State VcpuSet::state(int i) const {
  absl::MutexLock lock(&mu_);
  return slots_[i]->state;
}

VmStopReason VcpuSet::WaitForStop() {
  absl::MutexLock lock(&mu_);
  while (!stop_reason_.has_value() || !AllExitedLocked()) cv_.Wait(&mu_);
  return *stop_reason_;
}

std::optional<VmStopReason> VcpuSet::WaitForStopFor(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!stop_reason_.has_value() || !AllExitedLocked()) {
    if (cv_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) break;
  }
  if (!stop_reason_.has_value() || !AllExitedLocked()) return std::nullopt;
  return *stop_reason_;
}

}  // namespace rehome
