// state-extract/nested/le_bytes.h: little-endian loads and stores at byte offsets of a buffer,
// for the fixed layouts of KVM's nested state, the VMCB and vmcs12 (never a memcpy of a
// struct). The caller guarantees offset + sizeof(T) <= bytes.size(). Header-only, pure,
// thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_LE_BYTES_H_
#define REHOME_STATE_EXTRACT_NESTED_LE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace rehome::nested {

template <typename T>
T LoadLe(std::span<const uint8_t> bytes, size_t offset) {
  static_assert(std::is_unsigned_v<T>);
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<T>(bytes[offset + i]) << (8 * i));
  }
  return value;
}

template <typename T>
void StoreLe(std::span<uint8_t> bytes, size_t offset, T value) {
  static_assert(std::is_unsigned_v<T>);
  for (size_t i = 0; i < sizeof(T); ++i) {
    bytes[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_LE_BYTES_H_
