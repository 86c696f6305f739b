// vmm/l1/l1_seccomp.h: the L1's seccomp-bpf allow-list (libseccomp), the last layer of its
// sandbox (l1_sandbox.h). Exactly the system calls an L1 makes once it is confined — found by
// running the workloads (counter, pio, blk, echo; failover, switchover, rehearsal) under
// `strace -f`, in the normal and the ASan+UBSan build, and by reading the code — with argument
// filters where they are cheap: no executable mapping, scheduling calls on the caller only,
// signals to this process only, threads but no processes, ioctl TCGETS only, and a SIGSYS handler
// that cannot be replaced. Anything else traps (SIGSYS, handled by l1_sandbox.cc: note + exit);
// calls of another architecture's ABI kill the process. In sanitizer builds only, path lookups
// fail with ENOENT instead of trapping, so that a sanitizer report comes out whole, pipe2 is
// allowed (UBSan's vptr check probes memory through a pipe) and so is sched_getaffinity of any
// thread (ASan asks for a new thread's stack bounds).
// docs/security.md lists the calls and why.
// Thread-safety: call from a single-threaded process (the filter covers the calling thread and
// the threads it starts later).
#ifndef REHOME_VMM_L1_L1_SECCOMP_H_
#define REHOME_VMM_L1_L1_SECCOMP_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace rehome {

// Loads the filter. `self_pid`: this process's pid as it sees it (getpid()): the only target
// tgkill may name.
absl::Status LoadL1SeccompFilter(pid_t self_pid);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_SECCOMP_H_
