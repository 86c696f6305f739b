// vmm/l1/l1_fault_probes.h: the test-only faults of an L1 that attack its own confinement and
// L0 (L1Fault 16 and up, docs/exit-channel.md; injected through Supervisor::InjectFault only,
// never over QMP):
//  - sandbox probes (16..31): the L1 tries something its sandbox must stop (open /dev/kvm, create
//    a socket, ptrace L0, ...). Unless seccomp stops it first (its SIGSYS handler writes its own
//    note), the L1 writes the outcome as its failure note — "sandbox probe P: refused (...)" or
//    "SANDBOX BREACH: P succeeded" — and exits. Tests assert there is never a breach;
//  - adversarial writes (32 and up): the L1 writes hostile values into a shared structure L0
//    reads (channel header, its answer, the journal, the console ring), holds them there while L0
//    reads them, and exits (or, for the posted ranges, keeps running). L0 must survive, fail over
//    and keep the guest's effects exactly once.
// Thread-safety: called from the L1's exit thread only.
#ifndef REHOME_VMM_L1_L1_FAULT_PROBES_H_
#define REHOME_VMM_L1_L1_FAULT_PROBES_H_

#include <sys/types.h>

#include "kvm-l0/console_tx_ring.h"
#include "kvm-l0/exit_channel.h"
#include "state-extract/device_journal.h"

namespace rehome {

// What the L1 can reach when it takes a fault.
struct ProbeTargets {
  ExitChannel* channel = nullptr;
  DeviceJournal* journal = nullptr;
  ConsoleTxRing* console_ring = nullptr;  // null without a virtio-console
  pid_t l0_pid = 0;                       // L0's pid (in L0's pid namespace)
};

// Whether `fault` is handled here when it is taken (probes and structure scribbles), and doing
// it: returns only for kScribblePostedRanges (the L1 keeps running); the others exit.
bool IsTakenFaultProbe(L1Fault fault);
void RunTakenFaultProbe(L1Fault fault, const ProbeTargets& targets);

// Whether `fault` rewrites the next answer (kScribbleResponse*), and doing it to the answer just
// written (after its commit): a malformed answer with a valid CRC, which L0 must refuse.
bool IsAnswerScribble(L1Fault fault);
void ScribbleAnswer(L1Fault fault, ExitResponse* response);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_FAULT_PROBES_H_
