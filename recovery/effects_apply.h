// recovery/effects_apply.h: L0 applies the effects its verified replicas agreed on for one work
// item (verified execution): guest RAM writes, disk writes and flushes (pwrite, fdatasync on
// L0's own image fd), interrupt edges (L0's irqfds), console bytes (L0's console socket), in the
// order the replicas produced them, completions made visible only after the data they complete
// (a release fence before an interrupt). An entry that could not be applied (outside guest RAM
// or the image, an unknown line) is refused and counted, never written: even a majority of
// replicas is not trusted with L0's memory. Thread-safety: callers serialise items.
#ifndef REHOME_RECOVERY_EFFECTS_APPLY_H_
#define REHOME_RECOVERY_EFFECTS_APPLY_H_

#include <cstdint>
#include <string>

#include "kvm-l0/effects_area.h"
#include "recovery/l1_supervisor.h"

namespace rehome {

struct ApplyResult {
  uint64_t applied = 0;
  uint64_t refused = 0;
  std::string first_refusal;  // why the first refused entry was refused
  bool disk_error = false;    // a disk write or flush failed on the host
};

// `disk_bytes`: the image's size (writes beyond it are refused).
ApplyResult ApplyEffects(const Effects& effects, const VerifiedEffectsSink& sink,
                         uint64_t disk_bytes);

}  // namespace rehome

#endif  // REHOME_RECOVERY_EFFECTS_APPLY_H_
