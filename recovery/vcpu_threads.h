// recovery/vcpu_threads.h: VcpuThreads remembers which host threads run the guest's vCPUs (each
// notes itself as it forwards an exit) and tells which CPUs they are not on, so that L0 can start
// a new L1 away from them: a vCPU thread that is queued (preempted, not waking) on the CPU where
// a new L1 starts may wait behind it until the next scheduler tick, up to 4 ms at HZ=250, and the
// guest stops meanwhile (docs/failover.md, "Scheduling"); and tells the active L1 which CPUs they
// are on (ExitChannelHeader::vcpu_cpus), where it should not spin.
// Thread-safety: Note from the vCPU threads (lock-free), CpusAwayFromVcpus and CpuMask from any
// thread.
#ifndef REHOME_RECOVERY_VCPU_THREADS_H_
#define REHOME_RECOVERY_VCPU_THREADS_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

namespace rehome {

class VcpuThreads final {
 public:
  static constexpr uint32_t kMaxVcpus = 256;

  // Called by the thread that runs vCPU `vcpu` (ignored beyond kMaxVcpus): a load and a compare
  // after its first call.
  void Note(uint32_t vcpu);
  // The CPUs this thread may run on where no noted vCPU thread is running or last ran; empty when
  // that leaves none (every CPU hosts a vCPU) or no vCPU thread was noted yet.
  std::vector<int> CpusAwayFromVcpus() const;
  // Bit c set: a noted vCPU thread runs or last ran on CPU c (CPUs 0..31 only); 0 when none is
  // known. Reads /proc once per noted thread.
  uint32_t CpuMask() const;

 private:
  std::array<std::atomic<pid_t>, kMaxVcpus> tids_{};
};

// The CPU thread `tid` of this process runs on or last ran on (/proc/self/task/TID/stat).
std::optional<int> CpuOfThread(pid_t tid);

}  // namespace rehome

#endif  // REHOME_RECOVERY_VCPU_THREADS_H_
