// guest/workloads/workloads.cc: the counter and pio workloads (see workloads.h). Runs at CPL3
// with IOPL=3; the hot loops make no exits except the report/pio port writes themselves.
#include "guest/workloads/workloads.h"

#include "guest/kernel/io.h"
#include "guest/kernel/layout.h"
#include "guest/workloads/counter_chain.h"

namespace rehome::guest {
namespace {

static_assert(sizeof(counter::ChainState) % 64 == 0, "ChainState array keeps 64-byte alignment");

alignas(64) counter::ChainState chains[GUEST_MAX_CPUS];
alignas(64) abi::CounterReport reports[GUEST_MAX_CPUS];

void Report(uint32_t vcpu, const counter::ChainState& s, bool final) {
  abi::CounterReport& r = reports[vcpu];
  r.magic = abi::kCounterReportMagic;
  r.vcpu = vcpu;
  r.step = s.step;
  counter::Digest(&s, r.digest);
  r.flags = final ? abi::kCounterReportFinal : 0;
  r.reserved = 0;
  // The "memory" clobber in OutL orders the record's stores before the port write.
  OutL(abi::kCounterReportPort, static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&r)));
}

}  // namespace

void RunCounter(uint32_t vcpu, uint64_t seed, uint64_t steps, uint64_t report_every) {
  counter::ChainState* s = &chains[vcpu];
  counter::Init(s, vcpu, seed);
  uint64_t done = 0;
  for (;;) {
    uint64_t chunk = report_every != 0 ? report_every : ~0ull;
    if (steps != 0 && steps - done < chunk) chunk = steps - done;
    for (uint64_t i = 0; i < chunk; ++i) counter::Step(s);
    done += chunk;
    const bool final = steps != 0 && done == steps;
    Report(vcpu, *s, final);
    if (final) return;
  }
}

const abi::CounterReport& CounterLastReport(uint32_t vcpu) { return reports[vcpu]; }

void RunPio(uint64_t steps) {
  uint64_t left = steps;
  uint8_t value = 0;
  do {
    OutB(abi::kPioBenchPort, value++);
  } while (steps == 0 || --left != 0);
}

}  // namespace rehome::guest
