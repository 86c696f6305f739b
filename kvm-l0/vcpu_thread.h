// kvm-l0/vcpu_thread.h: the vCPU run loops of one VM. A VcpuSet owns the VM's VcpuFds and one
// std::thread per vCPU; each thread calls VcpuFd::Run() in a loop and hands every exit to the
// ExitHandler. Each vCPU is an explicit state machine driven by the set's command:
//
//   kRunning --PauseAll--> kPaused --ResumeAll--> kRunning
//   any      --StopAll / a kStopVm verdict / a Run() error--> kExited (final)
//
// Pausing sets kvm_run->immediate_exit and kicks the thread with VcpuKickSignal() (a no-op
// handler installed without SA_RESTART), which also gets a vCPU halted inside KVM out. A thread
// parks only after a KVM_RUN that returned EINTR, i.e. after KVM has completed any pending
// IN/MMIO read, so a paused vCPU has no exit in flight and its state can be saved from the
// controller thread (KVM allows ioctls on a vCPU that is not in KVM_RUN). Threads that exit
// also complete pending I/O first.
//
// Thread-safety: Start/PauseAll/ResumeAll/StopAll/state/WaitForStop are thread-safe.
// PauseAll and ResumeAll are serialised against each other. StopAll and the destructor must not
// be called from the ExitHandler (a handler returns kStopVm instead). vcpu(i) is for use while
// paused or stopped. The kick signal can interrupt blocking system calls made by the handler
// (EINTR): handlers must retry them.
#ifndef REHOME_KVM_L0_VCPU_THREAD_H_
#define REHOME_KVM_L0_VCPU_THREAD_H_

#include <pthread.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kvm-l0/kvm_exit.h"
#include "kvm-l0/vcpu_fd.h"

namespace rehome {

enum class ExitVerdict { kContinue, kStopVm };

// Called on the vCPU's thread for every exit except InterruptedExit. For IN/MMIO reads it fills
// exit's data span. Must not call StopAll() or destroy the VcpuSet.
using ExitHandler = std::function<ExitVerdict(int vcpu_index, KvmExit& exit)>;

// Why the VM stopped.
struct VmStopReason {
  enum class Cause { kStopAll, kVerdict, kRunError };
  Cause cause = Cause::kStopAll;
  int vcpu_index = -1;  // the vCPU whose exit or error stopped the VM; -1 for kStopAll
  KvmExit exit;         // kVerdict: the exit the handler stopped on (data spans emptied)
  absl::Status status;  // kRunError: the Run() error; OK otherwise
};

// The real-time signal used to kick vCPU threads (SIGRTMIN + 1).
int VcpuKickSignal();
// Installs its no-op handler (without SA_RESTART) once per process, for code that runs vCPUs
// on its own threads; VcpuSet does it itself.
void InstallVcpuKickHandler();

class VcpuSet final {
 public:
  enum class State { kRunning, kPaused, kExited };

  // Takes ownership of `vcpus` (index i of the vector is addressed as i in the API; its
  // VcpuFd::index() is what the handler receives). Threads start in Start().
  // InvalidArgument when `vcpus` is empty or `handler` is null.
  static absl::StatusOr<std::unique_ptr<VcpuSet>> Create(std::vector<VcpuFd> vcpus,
                                                         ExitHandler handler);
  ~VcpuSet();  // StopAll()
  VcpuSet(const VcpuSet&) = delete;
  VcpuSet& operator=(const VcpuSet&) = delete;

  // Starts one thread per vCPU, all kRunning. FailedPrecondition when called twice.
  absl::Status Start();

  // Returns when every vCPU is parked (kPaused, no exit in flight), OK at once when already
  // paused. DeadlineExceeded when that takes longer than `timeout` (the pause request stays in
  // force: call ResumeAll or PauseAll again); FailedPrecondition when not started or when the VM
  // stops (or has stopped) instead.
  absl::Status PauseAll(absl::Duration timeout);

  // Lets paused vCPUs run again; does not wait for them to leave kPaused. FailedPrecondition
  // when not started or stopped.
  absl::Status ResumeAll();

  // Stops every vCPU thread (completing pending I/O) and joins them. Idempotent.
  void StopAll();

  State state(int i) const;
  // The host thread id (gettid) of vCPU i's thread; 0 before it started.
  int64_t thread_id(int i) const { return slots_[i]->tid.load(std::memory_order_acquire); }
  int size() const { return static_cast<int>(slots_.size()); }
  VcpuFd& vcpu(int i) { return slots_[i]->vcpu; }

  // Blocks until the VM has stopped (every thread kExited) and says why. Threads are not
  // joined: StopAll() or the destructor does that.
  VmStopReason WaitForStop();
  // Same with a timeout: nullopt when the VM still runs after `timeout`.
  std::optional<VmStopReason> WaitForStopFor(absl::Duration timeout);

 private:
  enum class Command { kRun, kPause, kStop };
  struct Slot {
    explicit Slot(VcpuFd v) : vcpu(std::move(v)) {}
    VcpuFd vcpu;
    std::thread thread;             // written in Start, joined in StopAll
    pthread_t handle{};             // guarded by mu_; valid when has_thread
    bool has_thread = false;        // guarded by mu_
    State state = State::kRunning;  // guarded by mu_
    std::atomic<int64_t> tid{0};    // set by the thread itself
  };

  VcpuSet(std::vector<VcpuFd> vcpus, ExitHandler handler);
  void Loop(int i);
  // After an EINTR from KVM_RUN: parks while paused. False when the thread must exit.
  bool AfterInterrupt(int i);
  // Records `reason` (if none yet), orders every thread to stop and kicks them.
  void RequestStopLocked(VmStopReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllExitedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ExitHandler handler_;
  std::vector<std::unique_ptr<Slot>> slots_;
  absl::Mutex control_mu_;  // serialises PauseAll/ResumeAll; taken before mu_
  absl::Mutex join_mu_;     // serialises joining in StopAll
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // any change of command_, a state or stop_reason_
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  Command command_ ABSL_GUARDED_BY(mu_) = Command::kRun;
  std::optional<VmStopReason> stop_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_VCPU_THREAD_H_
