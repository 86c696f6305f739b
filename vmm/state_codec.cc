// vmm/state_codec.cc: StateWriter / StateReader.
#include "vmm/state_codec.h"

#include <algorithm>

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

uint64_t StateReader::Short(size_t n) {
  if (error_.empty() && bytes_.size() - pos_ < n) {
    error_ = absl::StrCat("truncated at byte ", pos_, " of ", bytes_.size());
  }
  return 0;
}

void StateWriter::U64Array(std::span<const uint64_t> words) {
  if constexpr (std::endian::native == std::endian::little) {
    const size_t at = bytes_.size();
    bytes_.resize(at + words.size_bytes());
    std::memcpy(bytes_.data() + at, words.data(), words.size_bytes());
  } else {
    for (uint64_t word : words) U64(word);
  }
}

void StateReader::U64Array(std::span<uint64_t> words) {
  if (!error_.empty() || bytes_.size() - pos_ < words.size_bytes()) {
    Short(words.size_bytes());
    std::fill(words.begin(), words.end(), 0);
    return;
  }
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(words.data(), bytes_.data() + pos_, words.size_bytes());
    pos_ += words.size_bytes();
  } else {
    for (uint64_t& word : words) word = U64();
  }
}

bool StateReader::Bool() {
  const uint8_t b = U8();
  if (b > 1) Fail(absl::StrCat("boolean byte ", b, " at byte ", pos_ - 1));
  return b == 1;
}

std::string StateReader::Bytes(uint32_t max_len) {
  const std::span<const uint8_t> view = View(max_len);
  return std::string(reinterpret_cast<const char*>(view.data()), view.size());
}

std::span<const uint8_t> StateReader::View(uint32_t max_len) {
  const uint32_t len = U32();
  if (!error_.empty()) return {};
  if (len > max_len || len > bytes_.size() - pos_) {
    Fail(absl::StrCat("byte string of ", len, " bytes at byte ", pos_ - 4, " is too long"));
    return {};
  }
  const std::span<const uint8_t> view = bytes_.subspan(pos_, len);
  pos_ += len;
  return view;
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
