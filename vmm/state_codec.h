// vmm/state_codec.h: little-endian byte encoding for device state records (see
// docs/vmm-device-state.md). Each record starts with a version byte; there is no checksum here
// (the outer state container carries one). StateReader is sticky: after the first short read
// every later read returns zero and Finish() reports the error. Not thread-safe (one owner).
#ifndef REHOME_VMM_STATE_CODEC_H_
#define REHOME_VMM_STATE_CODEC_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace rehome {

class StateWriter final {
 public:
  explicit StateWriter(uint8_t version) { U8(version); }
  // Writes into `reuse` (cleared; its capacity is kept): for encoders that run very often.
  StateWriter(uint8_t version, std::vector<uint8_t>&& reuse) : bytes_(std::move(reuse)) {
    bytes_.clear();
    U8(version);
  }
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  void U8(uint8_t v) { bytes_.push_back(v); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  // A u32 length followed by the bytes.
  void Bytes(std::string_view s);
  // The words one after another, each as U64 writes it (no length: the reader knows the count).
  void U64Array(std::span<const uint64_t> words);

  std::vector<uint8_t> Finish() { return std::move(bytes_); }

 private:
  void Le(uint64_t v, int n) {
    const size_t at = bytes_.size();
    bytes_.resize(at + n);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(bytes_.data() + at, &v, n);
    } else {
      for (int i = 0; i < n; ++i) bytes_[at + i] = static_cast<uint8_t>(v >> (8 * i));
    }
  }
  std::vector<uint8_t> bytes_;
};

class StateReader final {
 public:
  // `what` names the record in error messages ("serial8250 state: ...").
  StateReader(std::span<const uint8_t> bytes, std::string_view what) : bytes_(bytes), what_(what) {}
  StateReader(const StateReader&) = delete;
  StateReader& operator=(const StateReader&) = delete;

  // Reads the version byte; InvalidArgument unless it equals `version`.
  absl::Status ExpectVersion(uint8_t version);
  uint8_t U8() { return static_cast<uint8_t>(Le(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Le(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4)); }
  uint64_t U64() { return Le(8); }
  bool Bool();  // a byte that must be 0 or 1
  // A u32 length then the bytes; fails (sticky) if the length exceeds `max_len` or the input.
  std::string Bytes(uint32_t max_len);
  // Like Bytes, without a copy: a view into the input (valid as long as the input is); empty
  // after an error.
  std::span<const uint8_t> View(uint32_t max_len);
  // words.size() words as U64Array wrote them; on a short input all of them become zero.
  void U64Array(std::span<uint64_t> words);
  size_t remaining() const { return bytes_.size() - pos_; }
  // Records a semantic error (first one wins), e.g. a field out of range.
  void Fail(std::string_view why);

  // OK if every read succeeded and all bytes were consumed; else InvalidArgument.
  absl::Status Finish() const;

 private:
  uint64_t Le(int n) {
    if (!error_.empty() || bytes_.size() - pos_ < static_cast<size_t>(n)) return Short(n);
    uint64_t v = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&v, bytes_.data() + pos_, n);
    } else {
      for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
    }
    pos_ += n;
    return v;
  }
  uint64_t Short(size_t n);  // records a truncation (unless an error is already recorded): 0
  std::span<const uint8_t> bytes_;
  std::string what_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace rehome

#endif  // REHOME_VMM_STATE_CODEC_H_
