// vmm/l1/l1_main.h: entry point of the L1 hypervisor process role (`rehome __l1 ...`). Only L0
// starts it, passing the guest RAM memfds, the exit channel, eventfds and the commit journal as
// inherited fds (recovery/l1_process.h builds the command line). Returns the process exit code.
// Thread-safety: call once from main().
#ifndef REHOME_VMM_L1_L1_MAIN_H_
#define REHOME_VMM_L1_L1_MAIN_H_

#include <string>
#include <vector>

namespace rehome {

int RunL1(const std::vector<std::string>& args);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_MAIN_H_
