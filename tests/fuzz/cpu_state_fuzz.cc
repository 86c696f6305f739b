// tests/fuzz/cpu_state_fuzz.cc: libFuzzer target for the RHSTATE decoders
// (state-extract/state_codec.h): DecodeCpuState and DecodeVmState, which read state that crossed
// a process boundary or a disk.
//
// Input: a mode byte, then either the raw encoding, or a flags word, a section count and the
// section bytes that the harness wraps in a correct header (magic, version, payload length) and
// CRC32, so that the fuzzer reaches the section parser. Checked: no memory error or UB; a
// decoded state re-encodes to bytes that decode again and re-encode to the same bytes.
#include <fuzzer/FuzzedDataProvider.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "state-extract/state_codec.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using rehome::fuzz::Check;

template <typename T>
void PutLe(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// A well-formed RHSTATE container around `sections` (docs/state-format.md).
std::string Seal(uint16_t flags, uint32_t count, const std::string& sections) {
  std::string out(rehome::kStateMagic);
  PutLe<uint16_t>(out, rehome::kStateVersion);
  PutLe<uint16_t>(out, flags);
  PutLe<uint32_t>(out, count);
  PutLe<uint64_t>(out, sections.size());
  out += sections;
  const uLong crc =
      crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(out.data()), out.size());
  PutLe<uint32_t>(out, static_cast<uint32_t>(crc));
  return out;
}

template <typename Decode, typename Encode>
void RoundTrip(const std::string& bytes, Decode decode, Encode encode) {
  auto decoded = decode(bytes);
  if (!decoded.ok()) return;
  const std::string once = encode(*decoded);
  auto again = decode(once);
  Check(again.ok());
  Check(encode(*again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool vm = in.ConsumeBool();
  std::string bytes;
  if (in.ConsumeBool()) {
    const uint16_t flags =
        in.ConsumeBool() ? (vm ? rehome::kStateFlagVm : 0) : in.ConsumeIntegral<uint16_t>();
    const uint32_t count = in.ConsumeIntegralInRange<uint32_t>(0, 32);
    bytes = Seal(flags, count, in.ConsumeRemainingBytesAsString());
  } else {
    bytes = in.ConsumeRemainingBytesAsString();
  }
  if (vm) {
    RoundTrip(bytes, rehome::DecodeVmState, rehome::EncodeVmState);
  } else {
    RoundTrip(bytes, rehome::DecodeCpuState, rehome::EncodeCpuState);
  }
  return 0;
}
