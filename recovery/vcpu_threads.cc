#include "recovery/vcpu_threads.h"

#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rehome {

void VcpuThreads::Note(uint32_t vcpu) {
  if (vcpu >= kMaxVcpus) return;
  thread_local const pid_t self = gettid();
  if (tids_[vcpu].load(std::memory_order_relaxed) != self) {
    tids_[vcpu].store(self, std::memory_order_relaxed);
  }
}

std::vector<int> VcpuThreads::CpusAwayFromVcpus() const {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return {};
  bool noted = false;
  for (const std::atomic<pid_t>& tid : tids_) {
    const pid_t t = tid.load(std::memory_order_relaxed);
    if (t == 0) continue;
    const std::optional<int> cpu = CpuOfThread(t);
    if (!cpu.has_value()) continue;  // the thread is gone (a reset started new ones)
    noted = true;
    if (*cpu >= 0 && *cpu < CPU_SETSIZE) CPU_CLR(*cpu, &allowed);
  }
  std::vector<int> away;
  if (!noted) return away;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) away.push_back(cpu);
  }
  return away;
}

uint32_t VcpuThreads::CpuMask() const {
  uint32_t mask = 0;
  for (const std::atomic<pid_t>& tid : tids_) {
    const pid_t t = tid.load(std::memory_order_relaxed);
    if (t == 0) continue;
    const std::optional<int> cpu = CpuOfThread(t);
    if (cpu.has_value() && *cpu >= 0 && *cpu < 32) mask |= 1u << *cpu;
  }
  return mask;
}

std::optional<int> CpuOfThread(pid_t tid) {
  std::ifstream stat(absl::StrCat("/proc/self/task/", tid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); "processor" is field 39.
  constexpr size_t kProcessor = 39 - 3;
  int cpu = -1;
  if (fields.size() <= kProcessor || !absl::SimpleAtoi(fields[kProcessor], &cpu)) {
    return std::nullopt;
  }
  return cpu;
}

}  // namespace rehome
