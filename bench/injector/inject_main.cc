// bench/injector/inject_main.cc: `rehome-inject`, the fault injector's command line (driven by
// bench/campaign.py; usable by hand). Injects one fault into one thread of a running process and
// prints what it did as one JSON line on stdout (fault_injector.h, docs/fault-injection.md).
// Exit status: 0 injected; 3 not injected (the target exited first, or was never caught
// running); 2 usage; 1 the injector failed (e.g. no permission to trace the target).
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "bench/injector/fault_injector.h"

namespace {

constexpr char kUsage[] =
    "usage: rehome-inject --pid PID [--tid TID] --fault TYPE [--seed N] [--delay-ms MS]\n"
    "                     [--trigger time|step] [--max-steps N] [--max-run-us US]\n"
    "                     [--register NAME] [--bit N]\n"
    "  TYPE: fail-stop, register, code, memory, memory-shared, hang, livelock\n"
    "  --tid: the thread (default: the main thread, TID = PID)\n"
    "  --trigger step: single-step 0..max-steps (default 20000) instructions after the thread\n"
    "    wakes up (NiLiHype); time (default): run it 0..max-run-us (default 100) us instead\n"
    "  --register, --bit: fix the register (register fault) or the bit instead of drawing them\n"
    "exit status: 0 injected, 3 not injected (target gone or never running), 2 usage, 1 error\n";

int Usage(const std::string& why) {
  std::cerr << "rehome-inject: " << why << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using rehome::inject::InjectionPlan;
  InjectionPlan plan;
  int64_t pid = -1, tid = -1, delay_ms = 0;
  bool have_fault = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& key = args[i];
    if (key == "--help" || key == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= args.size()) return Usage("option " + key + " needs a value");
    const std::string& value = args[++i];
    bool ok = true;
    if (key == "--pid") {
      ok = absl::SimpleAtoi(value, &pid) && pid > 0;
    } else if (key == "--tid") {
      ok = absl::SimpleAtoi(value, &tid) && tid > 0;
    } else if (key == "--fault") {
      absl::StatusOr<rehome::inject::FaultType> type = rehome::inject::ParseFaultType(value);
      if (!type.ok()) return Usage(std::string(type.status().message()));
      plan.type = *type;
      have_fault = true;
    } else if (key == "--seed") {
      ok = absl::SimpleAtoi(value, &plan.seed);
    } else if (key == "--delay-ms") {
      ok = absl::SimpleAtoi(value, &delay_ms) && delay_ms >= 0;
    } else if (key == "--trigger") {
      ok = value == "time" || value == "step";
      plan.trigger =
          value == "step" ? rehome::inject::TriggerMode::kStep : rehome::inject::TriggerMode::kTime;
    } else if (key == "--max-steps") {
      ok = absl::SimpleAtoi(value, &plan.max_steps);
    } else if (key == "--register") {
      plan.register_name = value;
    } else if (key == "--bit") {
      ok = absl::SimpleAtoi(value, &plan.bit) && plan.bit >= 0 && plan.bit <= 63;
    } else if (key == "--max-run-us") {
      ok = absl::SimpleAtoi(value, &plan.max_run_us);
    } else {
      return Usage("unknown option " + key);
    }
    if (!ok) return Usage("bad value for " + key + ": '" + value + "'");
  }
  if (pid <= 0) return Usage("--pid is required");
  if (!have_fault) return Usage("--fault is required");
  plan.delay = absl::Milliseconds(delay_ms);
  absl::StatusOr<rehome::inject::InjectionRecord> record = rehome::inject::Inject(
      static_cast<pid_t>(pid), static_cast<pid_t>(tid > 0 ? tid : pid), plan);
  if (!record.ok()) {
    std::cerr << "rehome-inject: " << record.status().message() << "\n";
    return 1;
  }
  std::cout << record->ToJson().dump() << std::endl;
  return record->injected ? 0 : 3;
}
