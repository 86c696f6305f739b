// state-extract/state_codec.h: the versioned, checksummed byte encoding of CpuState and VmState
// (format "RHSTATE", documented in docs/state-format.md).
//
// Contract: Encode* never fails; an empty XSAVE area, a nullopt optional and tsc_khz == 0 are
// encoded as an absent section, and a VmState with only some of the three irqchip chips encodes
// but does not decode (InvalidArgument). Decode* accepts any byte string and never reads outside
// it; it returns InvalidArgument for malformed or foreign input (wrong magic, unsupported version,
// truncation, bad section lengths, missing/duplicate/unknown mandatory sections), and DataLoss
// when the CRC32 does not match. Pure functions: thread-safe.
#ifndef REHOME_STATE_EXTRACT_STATE_CODEC_H_
#define REHOME_STATE_EXTRACT_STATE_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "state-extract/cpu_state.h"

namespace rehome {

inline constexpr std::string_view kStateMagic{"RHSTATE\0", 8};
inline constexpr uint16_t kStateVersion = 1;
inline constexpr size_t kStateHeaderSize = 24;  // magic, version, flags, count, payload length
inline constexpr size_t kStateTrailerSize = 4;  // CRC32
inline constexpr uint16_t kStateFlagVm = 1;     // header flag: a VmState (else a CpuState)

// Section tags. A decoder that does not know a tag skips the section if kTagOptional is set in
// it and rejects the input otherwise.
namespace state_tag {
inline constexpr uint32_t kOptional = 0x80000000u;
// Top level of a VmState.
inline constexpr uint32_t kVcpu = 0x0001;  // payload: the CPU sections of one vCPU
inline constexpr uint32_t kPicMaster = 0x0100;
inline constexpr uint32_t kPicSlave = 0x0101;
inline constexpr uint32_t kIoapic = 0x0102;
inline constexpr uint32_t kPit = 0x0103;
inline constexpr uint32_t kClock = 0x0104;
// CPU sections (top level of a CpuState, or inside a kVcpu section).
inline constexpr uint32_t kRegs = 0x0200;
inline constexpr uint32_t kSregs = 0x0201;
inline constexpr uint32_t kFpu = 0x0202;
inline constexpr uint32_t kXsave = 0x0203;
inline constexpr uint32_t kXcrs = 0x0204;
inline constexpr uint32_t kMsrs = 0x0205;
inline constexpr uint32_t kLapic = 0x0206;
inline constexpr uint32_t kEvents = 0x0207;
inline constexpr uint32_t kMpState = 0x0208;
inline constexpr uint32_t kDebugRegs = 0x0209;
inline constexpr uint32_t kTsc = 0x020a;
inline constexpr uint32_t kTscKhz = kOptional | 0x020b;
}  // namespace state_tag

std::string EncodeCpuState(const CpuState& state);
absl::StatusOr<CpuState> DecodeCpuState(std::string_view bytes);

std::string EncodeVmState(const VmState& state);
absl::StatusOr<VmState> DecodeVmState(std::string_view bytes);

}  // namespace rehome

#endif  // REHOME_STATE_EXTRACT_STATE_CODEC_H_
