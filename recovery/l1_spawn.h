// recovery/l1_spawn.h: starts a child process (an L1: the rehome binary in its `__l1` role) with
// exactly the fds it is given, optionally as the first process of a new pid namespace.
// posix_spawn cannot ask for a namespace, so this is the same technique by hand: clone(CLONE_VM |
// CLONE_VFORK) on a private stack (no copy of L0's page tables; L0's thread waits until the child
// has exec'd or failed), dup2 of the given fds, every other fd closed, stdin and stdout on
// /dev/null, stderr inherited, all signals blocked until exec (the child shares L0's memory until
// then, so no handler of L0's may run in it; the L1 unblocks them itself). The pid it returns is
// the host pid (as L0 sees it), whatever namespace the child is in; the pidfd comes from the
// clone itself (CLONE_PIDFD), so there is no pid reuse window.
// Thread-safety: SpawnChild may be called from several threads at once.
#ifndef REHOME_RECOVERY_L1_SPAWN_H_
#define REHOME_RECOVERY_L1_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace rehome {

struct ChildFd {
  int source = -1;  // an fd of this process (its flags do not matter)
  int target = -1;  // the number it has in the child
};

struct SpawnRequest {
  std::string binary;
  std::vector<std::string> argv;  // argv[0] included
  // Every target must be above every source and above 2; nothing else but 0..2 stays open.
  std::vector<ChildFd> fds;
  bool new_pid_namespace = false;  // CLONE_NEWPID: the child is pid 1 of a new namespace
  // The CPUs the child may start on (sched_setaffinity before exec; best effort); all of the
  // caller's when empty.
  std::vector<int> cpus;
};

struct SpawnedChild {
  pid_t pid = -1;  // in L0's pid namespace
  UniqueFd pidfd;
};

// Starts the child; returns once it has exec'd. An exec failure is reported as a status naming
// the binary (the child is reaped). A host that refuses the pid namespace gives the errno of
// clone (EPERM, EINVAL, ENOSPC, EUSERS) as PermissionDenied / InvalidArgument / ...
absl::StatusOr<SpawnedChild> SpawnChild(const SpawnRequest& request);

}  // namespace rehome

#endif  // REHOME_RECOVERY_L1_SPAWN_H_
