// tests/fuzz/fuzz_util.h: what the fuzz targets share: Check() (a failed property prints its
// line and aborts, which libFuzzer reports as a crash with the input), fake guest RAM zeroed for
// every input, and the guest writing a fuzzed run of bytes into it. Test-only; not thread-safe (one
// fuzzing thread).
#ifndef REHOME_TESTS_FUZZ_FUZZ_UTIL_H_
#define REHOME_TESTS_FUZZ_FUZZ_UTIL_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace rehome::fuzz {

// (clang 14 has no std::source_location; its builtins give the caller's place.)
inline void Check(bool ok, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz check failed at %s:%d\n", file, line);
  std::abort();
}

// `bytes` of guest RAM, all zero (allocated once, cleared for every input).
inline std::vector<uint8_t>& ZeroedRam(size_t bytes) {
  static std::vector<uint8_t>* ram = new std::vector<uint8_t>(bytes);
  std::fill(ram->begin(), ram->end(), 0);
  return *ram;
}

// The guest writes a fuzzed run of bytes at a fuzzed offset of `ram` (as a running vCPU may at
// any time).
inline void GuestWrites(FuzzedDataProvider& in, std::vector<uint8_t>& ram) {
  const size_t at = in.ConsumeIntegralInRange<size_t>(0, ram.size() - 1);
  const std::vector<uint8_t> bytes =
      in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, ram.size() - at));
  std::copy(bytes.begin(), bytes.end(), ram.begin() + static_cast<ptrdiff_t>(at));
}

}  // namespace rehome::fuzz

#endif  // REHOME_TESTS_FUZZ_FUZZ_UTIL_H_
