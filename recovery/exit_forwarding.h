// recovery/exit_forwarding.h: L0's side of handing one exit to an L1 through its channel slot,
// shared by Supervisor and VerifiedSupervisor: publishing the request, copying the (untrusted)
// answer out of shared memory before it is checked, and telling a hung L1 from one the host does
// not schedule when an exit's deadline passes. Thread-safety: pure functions; the slot belongs
// to the calling vCPU thread.
#ifndef REHOME_RECOVERY_EXIT_FORWARDING_H_
#define REHOME_RECOVERY_EXIT_FORWARDING_H_

#include <cstdint>
#include <optional>
#include <string>

#include "kvm-l0/exit_channel.h"
#include "recovery/l1_process.h"

namespace rehome {

// Copies the used part of `request` into `slot` and publishes it (request_seq, release).
void PostRequest(ExitSlot& slot, const ExitRequest& request);
// Copies the used part of a response out of shared memory (the L1 may scribble on it later).
void CopyResponse(const ExitResponse& src, ExitResponse* dst);

// What LooksHung remembers between the expiries of one exit's deadline.
struct HangWatch {
  std::optional<uint64_t> runtime_at_expiry;
  uint64_t progress_at_expiry = 0;
  int extensions = 0;
};

// At an expiry of an exit's deadline (`hang_timeout_ms`): whether `l1` is hung. One that is
// stopped, sleeping or dead while an exit waits is; one that is runnable is hung only if it
// burned CPU without answering or announcing progress (work_progress) since the last expiry, or
// stayed starved or busy for too many periods. `why` says which.
bool LooksHung(const L1Process& l1, int hang_timeout_ms, HangWatch* watch, std::string* why);

}  // namespace rehome

#endif  // REHOME_RECOVERY_EXIT_FORWARDING_H_
