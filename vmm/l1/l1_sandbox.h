// vmm/l1/l1_sandbox.h: an L1 confines itself (docs/security.md) once it has mapped the guest
// RAM, exit channel and journal it inherited and before it reads anything a guest or another L1
// wrote: it joins the namespaces L0 prepared (user, mount with an empty root, net, ipc, uts; L0
// started it in its own pid namespace), takes an unprivileged uid/gid, drops every capability
// (bounding set too), sets no_new_privs, non-dumpable and rlimits, and loads its seccomp
// allow-list (l1_seccomp.h). A system call outside the list traps: the SIGSYS handler writes
// "seccomp: system call #N is not allowed" into the channel header's failure note and exits
// with status 159 (128 + SIGSYS); L0 names the call and fails over as for a crash.
// Before dropping privileges it raises RLIMIT_RTPRIO to 1 and RLIMIT_NICE to 30, so that its
// unprivileged self may still switch between SCHED_FIFO 1 and nice -10 (l1_server.cc).
// Thread-safety: ApplyL1Sandbox must run while the process has a single thread; the rest is
// safe from any thread.
#ifndef REHOME_VMM_L1_L1_SANDBOX_H_
#define REHOME_VMM_L1_L1_SANDBOX_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kvm-l0/exit_channel.h"
#include "recovery/policy/recovery_policy.h"

namespace rehome {

inline constexpr int kL1ExitSyscallDenied = 159;  // 128 + SIGSYS

struct L1SandboxOptions {
  L1SandboxLevel level = L1SandboxLevel::kOff;
  std::vector<int> namespace_fds;   // user, mnt, net, ipc, uts: joined, then closed
  std::string empty_root;           // without namespace fds: chroot here (when given)
  std::optional<uint32_t> id_base;  // rehome runs as root: uid = gid = base + host pid
  bool realtime = false;            // keep SCHED_FIFO 1 / nice -10 possible without privileges
};

// Applies every layer it can and returns the L1SandboxLayer bits applied, which it also stores in
// `header.sandbox_layers`. Level off: nothing (0). Strict: the first layer that cannot be applied
// is a FailedPrecondition naming it (the L1 must then not start).
absl::StatusOr<uint32_t> ApplyL1Sandbox(const L1SandboxOptions& options, ExitChannelHeader& header);

// Whether L0 has exited: the lifeline's write end (held by L0 only) is closed. Without a
// lifeline (fd < 0): whether the parent is no longer `parent_pid`. Never blocks.
bool L0Gone(int lifeline_fd, pid_t parent_pid);

// Ends the process at once, without atexit handlers or a core dump (the die-before/after-commit
// faults). raise(SIGKILL) would do nothing in the first process of a pid namespace: the kernel
// ignores its own signals that have no handler.
[[noreturn]] void KillL1Now();

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_SANDBOX_H_
