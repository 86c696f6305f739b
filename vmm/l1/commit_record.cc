// vmm/l1/commit_record.cc: CommitRecord encoding.
#include "vmm/l1/commit_record.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome {

void CommittedAnswer::ToResponse(ExitResponse* out) const {
  out->seq = seq;
  out->action = action;
  out->exit_status = exit_status;
  out->data_len = static_cast<uint32_t>(std::min<size_t>(data.size(), kExitDataMax));
  out->output_len = static_cast<uint32_t>(std::min<size_t>(output.size(), kExitOutputMax));
  out->output_stream = output_stream;
  out->reason_len = static_cast<uint32_t>(std::min<size_t>(reason.size(), kExitReasonMax));
  std::memcpy(out->data, data.data(), out->data_len);
  std::memcpy(out->output, output.data(), out->output_len);
  std::memcpy(out->reason, reason.data(), out->reason_len);
  out->crc = ResponseCrc(*out);
}

CommittedAnswer CommittedAnswer::FromResponse(const ExitResponse& r) {
  CommittedAnswer a;
  a.seq = r.seq;
  a.action = r.action;
  a.exit_status = r.exit_status;
  a.data.assign(reinterpret_cast<const char*>(r.data), std::min(r.data_len, kExitDataMax));
  a.output.assign(reinterpret_cast<const char*>(r.output), std::min(r.output_len, kExitOutputMax));
  a.reason.assign(r.reason, std::min(r.reason_len, kExitReasonMax));
  a.output_stream = r.output_stream;
  return a;
}

std::vector<uint8_t> EncodeCommitRecord(const CommitRecord& record) {
  std::vector<uint8_t> bytes;
  EncodeCommitRecordInto(record, &bytes);
  return bytes;
}

void EncodeCommitRecordInto(const CommitRecord& record, std::vector<uint8_t>* out) {
  StateWriter w(kCommitRecordVersion, std::move(*out));
  w.U64(record.l1_generation);
  w.U64(record.exits_handled);
  w.U64(record.verified_reports);
  w.U64(record.oracle_violations);
  w.U64(record.pio_bench_writes);
  w.U32(static_cast<uint32_t>(record.last_answer.size()));
  for (const CommittedAnswer& a : record.last_answer) {
    w.U64(a.seq);
    w.U32(a.action);
    w.U32(static_cast<uint32_t>(a.exit_status));
    w.Bytes(a.data);
    w.Bytes(a.output);
    w.Bytes(a.reason);
    w.U32(a.output_stream);
  }
  w.Bytes(std::string_view(reinterpret_cast<const char*>(record.device_state.data()),
                           record.device_state.size()));
  *out = w.Finish();
}

absl::StatusOr<CommitRecord> DecodeCommitRecord(std::string_view bytes) {
  StateReader r(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      "commit record");
  RETURN_IF_ERROR(r.ExpectVersion(kCommitRecordVersion));
  CommitRecord record;
  record.l1_generation = r.U64();
  record.exits_handled = r.U64();
  record.verified_reports = r.U64();
  record.oracle_violations = r.U64();
  record.pio_bench_writes = r.U64();
  const uint32_t vcpus = r.U32();
  if (vcpus > kMaxChannelSlots) {
    // Not only recorded: the loop below must not run 2^32 times (the reader does not advance
    // after an error), whatever a hostile L1 wrote.
    return absl::InvalidArgumentError(
        absl::StrCat("commit record: ", vcpus, " vCPU answers (at most ", kMaxChannelSlots, ")"));
  }
  for (uint32_t i = 0; i < vcpus && r.remaining() > 0; ++i) {
    CommittedAnswer a;
    a.seq = r.U64();
    a.action = r.U32();
    a.exit_status = static_cast<int32_t>(r.U32());
    a.data = r.Bytes(kExitDataMax);
    a.output = r.Bytes(kExitOutputMax);
    a.reason = r.Bytes(kExitReasonMax);
    a.output_stream = r.U32();
    record.last_answer.push_back(std::move(a));
  }
  const std::span<const uint8_t> state = r.View(1u << 30);
  record.device_state.assign(state.begin(), state.end());
  RETURN_IF_ERROR(r.Finish());
  if (record.last_answer.size() != vcpus) {
    return absl::InvalidArgumentError("commit record: truncated vCPU answers");
  }
  return record;
}

}  // namespace rehome
