// recovery/l1_fault_names.cc: L1FaultNamed.
#include "recovery/l1_fault_names.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace rehome {

absl::StatusOr<std::optional<L1Fault>> L1FaultNamed(std::string_view kind) {
  if (kind == "kill" || kind == "hang") return std::optional<L1Fault>();
  static const std::map<std::string_view, L1Fault> kFaults = {
      {"garbage", L1Fault::kGarbageAnswer},
      {"assert", L1Fault::kAssert},
      {"die-before-commit", L1Fault::kDieBeforeCommit},
      {"die-after-commit", L1Fault::kDieAfterCommit},
      {"fail-answer", L1Fault::kFailAnswer},
      {"wrong-state", L1Fault::kWrongState},
      {"wrong-read-data", L1Fault::kWrongReadData},
      {"block", L1Fault::kBlock},
      {"exit-thread-exits", L1Fault::kExitThreadExits},
      {"try-open-kvm", L1Fault::kTryOpenKvm},
      {"try-open-host-file", L1Fault::kTryOpenHostFile},
      {"try-socket", L1Fault::kTrySocket},
      {"try-ptrace-l0", L1Fault::kTryPtraceL0},
      {"try-signal-l0", L1Fault::kTrySignalL0},
      {"try-exec", L1Fault::kTryExec},
      {"try-write-l0-memory", L1Fault::kTryWriteL0Memory},
      {"try-exec-memory", L1Fault::kTryExecMemory},
      {"try-fork", L1Fault::kTryFork},
      {"try-raise-privilege", L1Fault::kTryRaisePrivilege},
      {"scribble-header", L1Fault::kScribbleHeader},
      {"scribble-answer-lengths", L1Fault::kScribbleResponseLengths},
      {"scribble-answer-data", L1Fault::kScribbleResponseData},
      {"scribble-answer-seq", L1Fault::kScribbleResponseSeq},
      {"scribble-answer-action", L1Fault::kScribbleResponseAction},
      {"scribble-journal", L1Fault::kScribbleJournal},
      {"scribble-console-ring", L1Fault::kScribbleConsoleRing},
      {"scribble-posted-ranges", L1Fault::kScribblePostedRanges},
      {"scribble-death-notice", L1Fault::kScribbleDeathNotice},
  };
  const auto it = kFaults.find(kind);
  if (it == kFaults.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown fault kind '", std::string(kind),
                     "' (kill, hang, garbage, assert, die-before-commit, die-after-commit, "
                     "fail-answer, wrong-state, wrong-read-data, block, exit-thread-exits, or a "
                     "test kind: try-*, "
                     "scribble-*)"));
  }
  return std::optional<L1Fault>(it->second);
}

}  // namespace rehome
