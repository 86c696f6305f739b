// vmm/nested/nested_commit.cc: NestedCommit encoding.
#include "vmm/nested/nested_commit.h"

#include <span>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome {

std::vector<uint8_t> EncodeNestedCommit(const NestedCommit& c) {
  StateWriter w(kNestedCommitVersion);
  w.U64(c.exits);
  w.U64(c.console_bytes);
  w.U64(c.verified_reports);
  w.U64(c.oracle_violations);
  w.U64(c.agent_generation);
  w.Bytes(c.l2_state);
  w.Bytes(std::string_view(reinterpret_cast<const char*>(c.device_state.data()),
                           c.device_state.size()));
  w.U8(c.pending_write.has_value() ? 1 : 0);
  if (c.pending_write.has_value()) {
    w.U16(c.pending_write->port);
    w.Bytes(std::string_view(reinterpret_cast<const char*>(c.pending_write->data.data()),
                             c.pending_write->data.size()));
  }
  return w.Finish();
}

absl::StatusOr<NestedCommit> DecodeNestedCommit(std::string_view bytes) {
  StateReader r(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      "nested commit");
  RETURN_IF_ERROR(r.ExpectVersion(kNestedCommitVersion));
  NestedCommit c;
  c.exits = r.U64();
  c.console_bytes = r.U64();
  c.verified_reports = r.U64();
  c.oracle_violations = r.U64();
  c.agent_generation = r.U64();
  c.l2_state = r.Bytes(kMaxNestedStateBytes);
  const std::string device = r.Bytes(kMaxNestedStateBytes);
  c.device_state.assign(device.begin(), device.end());
  const uint8_t has_pending = r.U8();
  if (has_pending > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested commit: pending-write flag ", has_pending, " is not 0 or 1"));
  }
  if (has_pending == 1) {
    PendingPortWrite pending;
    pending.port = r.U16();
    const std::string data = r.Bytes(4);
    pending.data.assign(data.begin(), data.end());
    RETURN_IF_ERROR(r.Finish());
    if (data.size() != 1 && data.size() != 2 && data.size() != 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("nested commit: a pending port write of ", data.size(), " bytes"));
    }
    c.pending_write = std::move(pending);
    return c;
  }
  RETURN_IF_ERROR(r.Finish());
  return c;
}

}  // namespace rehome
