// vmm/state_codec.cc: StateWriter / StateReader.
#include "vmm/state_codec.h"

#include "absl/strings/str_cat.h"

namespace rehome {

void StateWriter::Bytes(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  bytes_.insert(bytes_.end(), s.begin(), s.end());
}

absl::Status StateReader::ExpectVersion(uint8_t version) {
  if (bytes_.empty()) return absl::InvalidArgumentError(absl::StrCat(what_, " state: empty"));
  const uint8_t got = U8();
  if (got != version) {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, " state: unsupported version ", got, " (expected ", version, ")"));
  }
  return absl::OkStatus();
}

uint64_t StateReader::Le(int n) {
  if (!error_.empty()) return 0;
  if (bytes_.size() - pos_ < static_cast<size_t>(n)) {
    error_ = absl::StrCat("truncated at byte ", pos_, " of ", bytes_.size());
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
  pos_ += n;
  return v;
}

bool StateReader::Bool() {
  const uint8_t b = U8();
  if (b > 1) Fail(absl::StrCat("boolean byte ", b, " at byte ", pos_ - 1));
  return b == 1;
}

std::string StateReader::Bytes(uint32_t max_len) {
  const uint32_t len = U32();
  if (!error_.empty()) return {};
  if (len > max_len || len > bytes_.size() - pos_) {
    Fail(absl::StrCat("byte string of ", len, " bytes at byte ", pos_ - 4, " is too long"));
    return {};
  }
  std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
  pos_ += len;
  return s;
}

void StateReader::Fail(std::string_view why) {
  if (error_.empty()) error_ = std::string(why);
}

absl::Status StateReader::Finish() const {
  if (!error_.empty()) return absl::InvalidArgumentError(absl::StrCat(what_, " state: ", error_));
  if (pos_ != bytes_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, " state: ", bytes_.size() - pos_, " trailing bytes"));
  }
  return absl::OkStatus();
}

}  // namespace rehome
