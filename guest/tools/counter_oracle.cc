// guest/tools/counter_oracle.cc: host-side recomputation of the counter workload, used by
// qemu_peer_test.sh to check the digests a guest prints. Usage:
//   rehome_guest_counter_oracle VCPU SEED STEPS
// prints the line the guest prints for that vCPU at the end of the workload:
//   rehome-guest: vcpu=VCPU step=STEPS digest=<4 x 16 hex digits>
// Single-threaded command-line tool.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "guest/workloads/counter_chain.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s VCPU SEED STEPS\n", argv[0]);
    return 2;
  }
  const auto vcpu = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 0));
  const uint64_t seed = std::strtoull(argv[2], nullptr, 0);
  const uint64_t steps = std::strtoull(argv[3], nullptr, 0);
  auto state = std::make_unique<rehome::counter::ChainState>();
  rehome::counter::Init(state.get(), vcpu, seed);
  for (uint64_t i = 0; i < steps; ++i) rehome::counter::Step(state.get());
  uint64_t digest[4];
  rehome::counter::Digest(state.get(), digest);
  std::printf("rehome-guest: vcpu=%" PRIu32 " step=%" PRIu64 " digest=", vcpu, steps);
  for (uint64_t d : digest) std::printf("%016" PRIx64, d);
  std::printf("\n");
  return 0;
}
