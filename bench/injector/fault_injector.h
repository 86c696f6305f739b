// bench/injector/fault_injector.h: injects one fault into one thread of a running process, with
// the research's fault model (NiLiHype, Romulus/ucXception; docs/fault-injection.md):
//   fail-stop      RIP set to 0 (the thread faults at once; not a SIGKILL)
//   register       one random bit of one random GPR, RSP, RFLAGS or RIP
//   code           one random bit within 15 bytes of RIP (the process's private copy of the page)
//   memory         one random bit of a resident page of private writable memory (heap, stacks,
//                  .data/.bss)
//   memory-shared  one random bit of the memory shared with rehome's L0 (exit channel, journal,
//                  console ring, ...; not guest RAM)
//   hang           the whole process stops (SIGSTOP)
//   livelock       the thread spins forever where it is (`jmp .` written at RIP)
// Trigger: after `delay`, the thread is stopped; if it is inside a system call (asleep, waiting
// for work), it is let run until that call returns, i.e. until it has work to do; then it runs a
// random count of instructions (`kStep`: 0..max_steps single steps, NiLiHype's trigger) or a
// random time (`kTime`: 0..max_run_us of free running, then stopped again, retried if it went
// back to sleep), and the fault is applied where it stands. Every random choice comes from
// `seed`; the thread's own state at that moment (which the seed cannot fix) is recorded.
// Thread-safety: Inject uses ptrace and must run on one thread at a time per target.
#ifndef REHOME_BENCH_INJECTOR_FAULT_INJECTOR_H_
#define REHOME_BENCH_INJECTOR_FAULT_INJECTOR_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/injector/process_maps.h"
#include "nlohmann/json.hpp"

namespace rehome::inject {

enum class FaultType { kFailStop, kRegister, kCode, kMemory, kMemoryShared, kHang, kLivelock };
std::string_view FaultTypeName(FaultType type);
absl::StatusOr<FaultType> ParseFaultType(std::string_view name);

enum class TriggerMode { kTime, kStep };

struct InjectionPlan {
  FaultType type = FaultType::kRegister;
  uint64_t seed = 1;
  absl::Duration delay;  // from the call to the trigger
  TriggerMode trigger = TriggerMode::kTime;
  uint64_t max_steps = 20000;  // kStep: the count is drawn from [0, max_steps]
  uint32_t max_run_us = 100;   // kTime: the run time is drawn from [0, max_run_us] microseconds
  int max_attempts = 200;      // kTime: tries to catch the thread out of a system call
  // Overrides of the random choices (tests, manual experiments): the register fault's register
  // ("rax" ... "r15", "rflags", "rip") and the bit flipped (register: 0..63, code/memory: 0..7).
  std::string register_name;
  int bit = -1;
};

// What Inject did. `injected` false: the target exited first, or was never caught running.
struct InjectionRecord {
  bool injected = false;
  std::string note;  // why not injected, or a detail ("rflags bit masked by the kernel", ...)
  FaultType type = FaultType::kRegister;
  pid_t pid = -1;
  pid_t tid = -1;
  uint64_t rip = 0;  // where the thread stood when the fault was applied
  CodeLocation where;
  std::string target;          // register name, "code", "memory", "process"
  uint64_t address = 0;        // code/memory: the byte's address
  std::string region;          // memory: the mapping's name
  uint64_t region_offset = 0;  // memory: offset of the byte in its mapping
  int bit = -1;
  uint64_t old_value = 0;      // register or byte before
  uint64_t new_value = 0;      // ... and after (read back)
  uint64_t steps = 0;          // kStep: instructions stepped
  uint32_t run_us = 0;         // kTime: free-running time of the last attempt
  int attempts = 0;            // kTime: attempts to catch the thread running
  int64_t injected_at_us = 0;  // CLOCK_REALTIME, microseconds since the epoch
  nlohmann::json ToJson() const;
};

// Injects `plan` into thread `tid` of process `pid` (tid == pid: the main thread). Errors are
// failures of the injector itself (no permission, ...); a target that disappears gives a record
// with injected = false.
absl::StatusOr<InjectionRecord> Inject(pid_t pid, pid_t tid, const InjectionPlan& plan);

}  // namespace rehome::inject

#endif  // REHOME_BENCH_INJECTOR_FAULT_INJECTOR_H_
