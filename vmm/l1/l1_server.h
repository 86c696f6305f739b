// vmm/l1/l1_server.h: the L1 hypervisor's main loop. RunL1Server maps nothing itself: it takes
// the attached guest RAM, exit channel and journal, builds the device model, reports itself a
// standby, and then answers exits (once promoted) until L0 asks it to quit. It commits its state
// to the journal after every exit and heartbeats on a thread of its own (docs/exit-channel.md).
// Thread-safety: call once, from the process's main thread; it owns the process from then on.
#ifndef REHOME_VMM_L1_L1_SERVER_H_
#define REHOME_VMM_L1_L1_SERVER_H_

#include "kvm-l0/exit_channel.h"
#include "kvm-l0/guest_memory.h"
#include "state-extract/device_journal.h"
#include "vmm/l1/l1_options.h"

namespace rehome {

// Returns the process exit code: 0 when L0 asked it to quit, 70 when the device model cannot be
// built. A failure while serving (a failed commit or restore) ends the process with abort().
int RunL1Server(L1Options options, GuestMemory ram, ExitChannel channel, DeviceJournal journal);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_SERVER_H_
