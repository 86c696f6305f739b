// vmm/l1/l1_binary_main.cc: `rehome-l1`, the L1 hypervisor process on its own (docs/security.md,
// "The L1 binary"). L0 starts it as `rehome-l1 __l1 ARGS...`, exactly as it can start
// `rehome __l1 ARGS...`; it links the device model and the L1 loop only, so the sandboxed
// process carries a fraction of the libraries (no libvirt, libxml2, ICU, TLS stacks) and
// starts and dies faster (docs/benchmarks.md).
#include <iostream>
#include <string>
#include <vector>

#include "vmm/l1/l1_main.h"

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "__l1") {
    std::cerr << "rehome-l1: started by rehome only (rehome-l1 __l1 ...)\n";
    return 64;
  }
  return rehome::RunL1(std::vector<std::string>(argv + 2, argv + argc));
}
