// recovery/replica_vote.h: the decision L0 takes over the results two or three replica L1s
// produced for one work item (verified execution, docs/failover.md): the answer to the vCPU, the
// effects (guest RAM, disk, interrupt and console writes) and the digest of the device state
// after the item. Results are grouped by equality; a group of at least `quorum` wins, the other
// valid results are the outvoted minority; otherwise more opinions are needed, until
// `max_opinions` valid results did not produce a quorum (no majority). Pure functions over
// made-up results; thread-compatible.
#ifndef REHOME_RECOVERY_REPLICA_VOTE_H_
#define REHOME_RECOVERY_REPLICA_VOTE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kvm-l0/effects_area.h"
#include "kvm-l0/exit_channel.h"

namespace rehome {

// One replica's result for one item.
struct ReplicaResult {
  bool ok = false;                         // a valid answer and valid effects arrived in time
  std::string failure;                     // else why not (crash, hang, bad answer, bad effects)
  std::unique_ptr<ExitResponse> response;  // ok: the validated copy
  Effects effects;                         // ok: the checked copy
};

// Whether two valid results are the same: answer fields, effects and state digest. When not,
// `difference` says what differed first ("answer data", "state crc 0x1 vs 0x2", ...).
bool SameResult(const ReplicaResult& a, const ReplicaResult& b, std::string* difference);

struct Vote {
  enum class Kind {
    kAgreed,      // `majority` agree (at least the quorum)
    kNeedMore,    // ask another replica (or a replacement for a failed one)
    kNoMajority,  // max_opinions valid results and still no quorum
  };
  Kind kind = Kind::kNeedMore;
  std::vector<size_t> majority;  // indices into the results
  std::vector<size_t> minority;  // valid results outside the majority (outvoted)
  std::string difference;        // the first difference seen between valid results, if any
};

// `results` may include failed ones (they count for nothing).
Vote Decide(const std::vector<const ReplicaResult*>& results, size_t quorum, size_t max_opinions);

}  // namespace rehome

#endif  // REHOME_RECOVERY_REPLICA_VOTE_H_
