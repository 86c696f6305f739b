// vmm/nested/agent_bin.cc: the rehome-agent executable (see agent_main.h).
#include <iostream>
#include <string>
#include <vector>

#include "vmm/nested/agent_main.h"

int main(int argc, char** argv) {
  return rehome::AgentMain(std::vector<std::string>(argv + 1, argv + argc), std::cerr);
}
