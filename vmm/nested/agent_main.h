// vmm/nested/agent_main.h: `rehome-agent`, the process an L1 VM's init starts (docs/nested.md).
// It maps L0's shared regions from /dev/mem, forks a watcher that reports the agent's death in
// the control page (AgentState::kDied), opens the L1's /dev/kvm, says it is ready, and then
// heartbeats and obeys L0's commands: boot L2, take L2 over, inject a fault, stop.
#ifndef REHOME_VMM_NESTED_AGENT_MAIN_H_
#define REHOME_VMM_NESTED_AGENT_MAIN_H_

#include <ostream>
#include <string>
#include <vector>

namespace rehome {

inline constexpr int kAgentHeartbeatMs = 5;

// args: [--devmem PATH] [--kvm PATH]. Returns the process exit status (0 after kStop).
int AgentMain(const std::vector<std::string>& args, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_VMM_NESTED_AGENT_MAIN_H_
