// recovery/replica_vote.cc: SameResult, Decide.
#include "recovery/replica_vote.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rehome {
namespace {

bool SameBytes(const uint8_t* a, uint32_t a_len, const uint8_t* b, uint32_t b_len) {
  return a_len == b_len && (a_len == 0 || std::memcmp(a, b, a_len) == 0);
}

std::string EffectsDifference(const Effects& a, const Effects& b) {
  if (a.entries.size() != b.entries.size()) {
    return absl::StrCat("effects (", a.entries.size(), " vs ", b.entries.size(), " entries)");
  }
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const Effect& x = a.entries[i];
    const Effect& y = b.entries[i];
    if (x.type != y.type || x.addr != y.addr || x.data.size() != y.data.size()) {
      return absl::StrFormat(
          "effects (entry %d: type %d at 0x%x, %d bytes vs type %d at 0x%x, %d "
          "bytes)",
          i, static_cast<int>(x.type), x.addr, x.data.size(), static_cast<int>(y.type), y.addr,
          y.data.size());
    }
    if (!x.data.empty() && std::memcmp(x.data.data(), y.data.data(), x.data.size()) != 0) {
      return absl::StrFormat("effects (entry %d: data at 0x%x)", i, x.addr);
    }
  }
  return "effects";
}

}  // namespace

bool SameResult(const ReplicaResult& a, const ReplicaResult& b, std::string* difference) {
  const ExitResponse& x = *a.response;
  const ExitResponse& y = *b.response;
  if (x.action != y.action || x.exit_status != y.exit_status) {
    *difference = absl::StrCat("answer (action ", x.action, "/", x.exit_status, " vs ", y.action,
                               "/", y.exit_status, ")");
    return false;
  }
  if (!SameBytes(x.data, x.data_len, y.data, y.data_len)) {
    *difference =
        x.data_len == y.data_len
            ? absl::StrCat("answer (read data differs, ", x.data_len, " bytes)")
            : absl::StrCat("answer (read data, ", x.data_len, " vs ", y.data_len, " bytes)");
    return false;
  }
  if (x.output_stream != y.output_stream ||
      !SameBytes(x.output, x.output_len, y.output, y.output_len) ||
      !SameBytes(reinterpret_cast<const uint8_t*>(x.reason), x.reason_len,
                 reinterpret_cast<const uint8_t*>(y.reason), y.reason_len)) {
    *difference = "answer (console output or reason)";
    return false;
  }
  if (a.effects.state_crc != b.effects.state_crc) {
    *difference =
        absl::StrFormat("state (crc 0x%08x vs 0x%08x)", a.effects.state_crc, b.effects.state_crc);
    return false;
  }
  if (a.effects.flags != b.effects.flags || a.effects.bytes != b.effects.bytes) {
    *difference = EffectsDifference(a.effects, b.effects);
    return false;
  }
  return true;
}

Vote Decide(const std::vector<const ReplicaResult*>& results, size_t quorum, size_t max_opinions) {
  Vote vote;
  std::vector<std::vector<size_t>> groups;
  size_t valid = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i] == nullptr || !results[i]->ok) continue;
    ++valid;
    bool placed = false;
    for (std::vector<size_t>& group : groups) {
      std::string difference;
      if (SameResult(*results[group.front()], *results[i], &difference)) {
        group.push_back(i);
        placed = true;
        break;
      }
      if (vote.difference.empty()) vote.difference = difference;
    }
    if (!placed) groups.push_back({i});
  }
  auto largest = std::max_element(groups.begin(), groups.end(),
                                  [](const auto& a, const auto& b) { return a.size() < b.size(); });
  if (largest != groups.end() && largest->size() >= quorum) {
    vote.kind = Vote::Kind::kAgreed;
    vote.majority = *largest;
    for (const std::vector<size_t>& group : groups) {
      if (&group == &*largest) continue;
      vote.minority.insert(vote.minority.end(), group.begin(), group.end());
    }
    std::sort(vote.minority.begin(), vote.minority.end());
    return vote;
  }
  vote.kind = valid >= max_opinions ? Vote::Kind::kNoMajority : Vote::Kind::kNeedMore;
  return vote;
}

}  // namespace rehome
