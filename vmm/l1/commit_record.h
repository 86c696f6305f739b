// vmm/l1/commit_record.h: the payload an active L1 commits to the DeviceJournal after every exit
// it handles: the device model state, the last answer given to each vCPU (so that an exit whose
// effects are committed is answered from the record instead of being executed twice), and a few
// counters L0 reports. Encoding (docs/exit-channel.md): version byte 1, then little-endian
// fields written with StateWriter. Pure data + functions; thread-safe.
#ifndef REHOME_VMM_L1_COMMIT_RECORD_H_
#define REHOME_VMM_L1_COMMIT_RECORD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvm-l0/exit_channel.h"

namespace rehome {

inline constexpr uint8_t kCommitRecordVersion = 2;  // 2: output_stream

// An ExitResponse without its fixed-size buffers.
struct CommittedAnswer {
  uint64_t seq = 0;  // 0 = this vCPU has had no exit answered yet
  uint32_t action = 0;
  int32_t exit_status = 0;
  std::string data;
  std::string output;
  std::string reason;
  uint32_t output_stream = 0;

  // Fills `out` (a full ExitResponse, CRC included).
  void ToResponse(ExitResponse* out) const;
  static CommittedAnswer FromResponse(const ExitResponse& response);
};

struct CommitRecord {
  uint64_t l1_generation = 0;     // the L1 that committed
  uint64_t exits_handled = 0;     // exits this VM's L1s have answered so far
  uint64_t verified_reports = 0;  // counter oracle progress (0 without an oracle)
  uint64_t oracle_violations = 0;
  uint64_t pio_bench_writes = 0;
  std::vector<CommittedAnswer> last_answer;  // by vCPU
  std::vector<uint8_t> device_state;         // DeviceModel::SaveState()
};

std::vector<uint8_t> EncodeCommitRecord(const CommitRecord& record);
// The same bytes into `out`, whose capacity is reused (the L1 encodes after every exit).
void EncodeCommitRecordInto(const CommitRecord& record, std::vector<uint8_t>* out);
absl::StatusOr<CommitRecord> DecodeCommitRecord(std::string_view bytes);

}  // namespace rehome

#endif  // REHOME_VMM_L1_COMMIT_RECORD_H_
