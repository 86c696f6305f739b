// recovery/l1_confinement.h: what L0 prepares once per process so that every L1 it spawns can
// confine itself cheaply (docs/security.md):
//  - the namespaces every L1 joins with setns(): a user namespace that maps the L1 id range 1:1,
//    and, owned by it, a mount namespace whose root is an empty read-only tmpfs (nothing of the
//    host's file system is left in it), a network namespace (no interface but lo, down), an IPC
//    and a UTS namespace. A short-lived helper process creates them; L0 holds them by fd. Joining
//    existing namespaces costs an L1 microseconds where creating its own cost ~1 ms (the network
//    namespace) and, on every exit, the tear-down of its mount namespace (an RCU grace period
//    between SIGKILL and reaping: measured up to 12 ms here, which would be fence time);
//  - when the host refuses namespaces and rehome runs as root: an empty, root-owned, read-only
//    directory to chroot into instead;
//  - the lifeline (L1Lifeline, for every L1, confined or not): a pipe whose write end only L0
//    holds, so an L1 sees L0's death as POLLHUP on the read end (getppid() says nothing from
//    inside a pid namespace);
//  - the L1 ids: when rehome runs as root, an L1's uid and gid are kL1IdBase + its host pid, so
//    no two live L1s share an id.
// Thread-safety: HostL1Confinement() is safe from any thread; the result is immutable.
#ifndef REHOME_RECOVERY_L1_CONFINEMENT_H_
#define REHOME_RECOVERY_L1_CONFINEMENT_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace rehome {

// uid = gid = kL1IdBase + host pid (pids are below 2^22 = PID_MAX_LIMIT): 2113929216 (0x7E000000)
// .. 2118123519, outside the ranges Debian and systemd allocate.
inline constexpr uint32_t kL1IdBase = 0x7E000000u;
inline constexpr uint32_t kL1IdCount = 1u << 22;

struct L1Confinement {
  // user, mnt, net, ipc, uts (this order); empty when the host refused them.
  std::vector<UniqueFd> namespace_fds;
  std::string namespaces_error;  // why there are none
  // Set only without namespaces, when rehome runs as root (chroot needs CAP_SYS_CHROOT).
  std::string empty_root;
  std::string empty_root_error;
  bool per_l1_ids = false;  // rehome runs as root: L1s take kL1IdBase + pid
};

// Prepared on the first call (a few milliseconds, once per process; only sandboxed spawns ask).
const L1Confinement& HostL1Confinement();

// The lifeline's read end (-1 if no pipe could be made); the write end is held by this process
// only, for its whole life.
int L1Lifeline();

}  // namespace rehome

#endif  // REHOME_RECOVERY_L1_CONFINEMENT_H_
