// vmm/cli/main.cc: the `rehome` binary: subcommands run, qmp, help, version.
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "qmp-client/qmp_cli.h"
#include "recovery/nested/nested_run.h"
#include "vmm/cli/run_command.h"
#include "vmm/l1/l1_main.h"

namespace {

constexpr const char* kUsage =
    "usage: rehome COMMAND [options]\n"
    "rehome is a KVM virtual machine monitor whose guests survive the failure of their\n"
    "hypervisor.\n"
    "\n"
    "commands:\n"
    "  run     boot a guest kernel (rehome run --help)\n"
    "  qmp     talk to a QMP monitor socket (rehome qmp --help)\n"
    "  help    this text\n"
    "  version print the version\n"
    "\n"
    "exit status: see each command's --help; 64 for an unknown command.\n";

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on: every Lock() then updates a
  // process-wide lock graph under a global spin lock (22 ns instead of 6 ns per lock and
  // unlock when hot; ~0.15 us on the exit path, where it runs cold after every KVM_RUN). The
  // test binaries keep it (they do not run this main).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc < 2) {
    std::cerr << kUsage;
    return rehome::kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "run") {
    rehome::SetNestedRunner(&rehome::NestedRun);
    return rehome::RunCommand(std::vector<std::string>(argv + 2, argv + argc), std::cerr);
  }
  if (command == "__l1") {  // internal: an L1 hypervisor process started by L0
    return rehome::RunL1(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (command == "qmp") return rehome::RunQmpCli(argc - 1, argv + 1, std::cout, std::cerr);
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << "rehome 0.1.0\n";
    return 0;
  }
  std::cerr << "rehome: unknown command '" << command << "' (try rehome --help)\n";
  return rehome::kExitUsage;
}
