// guest/workloads/workloads.h: the CPL3 workloads. RunCounter is built with SSE2 (no AVX: the
// development host's guest CPUID has no XSAVE); the rest of the guest is general-registers-only.
// Each vCPU calls these for its own index only; the per-vCPU state they keep is not shared.
#ifndef REHOME_GUEST_WORKLOADS_WORKLOADS_H_
#define REHOME_GUEST_WORKLOADS_WORKLOADS_H_

#include <stdint.h>

#include "guest/abi/rehome_abi.h"

namespace rehome::guest {

// Runs the counter hash chain for vCPU `vcpu`: Init(seed), then `steps` steps (0 = forever),
// reporting every `report_every` steps (0 = final report only) and at the last step through
// the per-vCPU CounterReport and a 32-bit write of its address to kCounterReportPort.
void RunCounter(uint32_t vcpu, uint64_t seed, uint64_t steps, uint64_t report_every);

// The last report RunCounter wrote for `vcpu` (all zero before the first one).
const abi::CounterReport& CounterLastReport(uint32_t vcpu);

// Writes one byte to kPioBenchPort `steps` times (0 = forever).
void RunPio(uint64_t steps);

}  // namespace rehome::guest

#endif  // REHOME_GUEST_WORKLOADS_WORKLOADS_H_
