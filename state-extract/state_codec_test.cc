// state-extract/state_codec_test.cc: RHSTATE round trips, every corruption the decoder must
// reject (with the status code it must use), and a deterministic fuzz loop.
#include "state-extract/state_codec.h"

#include <zlib.h>

#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

using Sections = std::vector<std::pair<uint32_t, std::string>>;

template <typename T>
void Randomize(T& value, std::mt19937_64& rng) {
  static_assert(std::is_trivially_copyable_v<T>);
  unsigned char bytes[sizeof(T)];
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  std::memcpy(&value, bytes, sizeof(T));
}

CpuState RandomCpuState(std::mt19937_64& rng) {
  CpuState c;
  Randomize(c.regs, rng);
  Randomize(c.sregs, rng);
  Randomize(c.fpu, rng);
  c.xsave.bytes.resize(4096 + 64 * (rng() % 40));
  for (auto& b : c.xsave.bytes) b = static_cast<uint8_t>(rng());
  Randomize(c.xcrs.emplace(), rng);
  c.msrs.resize(1 + rng() % 100);
  for (MsrEntry& m : c.msrs) m = {static_cast<uint32_t>(rng()), rng()};
  Randomize(c.lapic.emplace(), rng);
  Randomize(c.events, rng);
  c.mp_state = static_cast<uint32_t>(rng());
  Randomize(c.debugregs, rng);
  c.tsc = rng();
  c.tsc_khz = static_cast<uint32_t>(rng() | 1);
  return c;
}

VmState RandomVmState(std::mt19937_64& rng, int vcpus) {
  VmState vm;
  Randomize(vm.pic_master.emplace(), rng);
  Randomize(vm.pic_slave.emplace(), rng);
  Randomize(vm.ioapic.emplace(), rng);
  Randomize(vm.pit.emplace(), rng);
  Randomize(vm.clock, rng);
  for (int i = 0; i < vcpus; ++i) vm.vcpus.push_back(RandomCpuState(rng));
  return vm;
}

// ---- Hand-made containers, to reach the structural checks behind the CRC. ----

uint32_t Le32(std::string_view s, size_t at) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x |= static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return x;
}
void PutLe(std::string& s, uint64_t x, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(x >> (8 * i)));
}

Sections SplitPayload(std::string_view payload) {
  Sections out;
  for (size_t at = 0; at < payload.size();) {
    uint32_t tag = Le32(payload, at), len = Le32(payload, at + 4);
    out.emplace_back(tag, std::string(payload.substr(at + 8, len)));
    at += 8 + len;
  }
  return out;
}
Sections SplitTop(const std::string& encoding) {
  return SplitPayload(std::string_view(encoding).substr(
      kStateHeaderSize, encoding.size() - kStateHeaderSize - kStateTrailerSize));
}
std::string JoinPayload(const Sections& sections) {
  std::string out;
  for (const auto& [tag, body] : sections) {
    PutLe(out, tag, 4);
    PutLe(out, body.size(), 4);
    out += body;
  }
  return out;
}
// Fixes the CRC of `bytes` (header + payload + old CRC).
void Reseal(std::string& bytes) {
  bytes.resize(bytes.size() - kStateTrailerSize);
  uLong crc = crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
  PutLe(bytes, crc, 4);
}
std::string Container(uint16_t flags, const Sections& sections, uint16_t version = kStateVersion,
                      int count_delta = 0) {
  std::string payload = JoinPayload(sections);
  std::string out(kStateMagic);
  PutLe(out, version, 2);
  PutLe(out, flags, 2);
  PutLe(out, sections.size() + count_delta, 4);
  PutLe(out, payload.size(), 8);
  out += payload;
  PutLe(out, 0, 4);
  Reseal(out);
  return out;
}

CpuState SmallCpuState() {
  CpuState c;
  c.regs.rip = 0x10000;
  c.msrs = {{0x1b, 0xfee00900}, {0xc0000080, 0x500}};
  c.tsc = 12345;
  return c;
}

TEST(StateCodec, FullyPopulatedCpuStateRoundTrips) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 20; ++i) {
    CpuState c = RandomCpuState(rng);
    std::string bytes = EncodeCpuState(c);
    absl::StatusOr<CpuState> back = DecodeCpuState(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(*back == c);
    EXPECT_EQ(EncodeCpuState(*back), bytes);
  }
}

TEST(StateCodec, FullyPopulatedVmStateRoundTrips) {
  std::mt19937_64 rng(2);
  VmState vm = RandomVmState(rng, 4);
  std::string bytes = EncodeVmState(vm);
  absl::StatusOr<VmState> back = DecodeVmState(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == vm);
  ASSERT_EQ(back->vcpus.size(), 4u);
  EXPECT_EQ(back->vcpus[3].xsave, vm.vcpus[3].xsave);
}

TEST(StateCodec, MinimalStatesRoundTripWithAbsentOptionalParts) {
  CpuState c = SmallCpuState();
  absl::StatusOr<CpuState> cpu = DecodeCpuState(EncodeCpuState(c));
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(*cpu == c);
  EXPECT_FALSE(cpu->lapic.has_value());
  EXPECT_FALSE(cpu->xcrs.has_value());
  EXPECT_TRUE(cpu->xsave.bytes.empty());

  VmState vm;
  vm.clock.clock = 99;
  absl::StatusOr<VmState> back = DecodeVmState(EncodeVmState(vm));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == vm);
  EXPECT_FALSE(back->pit.has_value());
  EXPECT_TRUE(back->vcpus.empty());
}

TEST(StateCodec, HeaderIsLittleEndianWithMagicVersionAndCrc) {
  std::string bytes = EncodeCpuState(SmallCpuState());
  EXPECT_EQ(bytes.substr(0, 8), std::string("RHSTATE\0", 8));
  EXPECT_EQ(bytes[8], 1);
  EXPECT_EQ(bytes[9], 0);
  uLong crc = crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4);
  EXPECT_EQ(Le32(bytes, bytes.size() - 4), static_cast<uint32_t>(crc));
}

TEST(StateCodec, WrongMagicIsInvalidArgument) {
  std::string bytes = EncodeCpuState(SmallCpuState());
  bytes[3] = 'x';
  Reseal(bytes);
  EXPECT_EQ(DecodeCpuState(bytes).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, UnsupportedVersionIsInvalidArgument) {
  std::string bytes = Container(0, SplitTop(EncodeCpuState(SmallCpuState())), /*version=*/2);
  absl::Status status = DecodeCpuState(bytes).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("version"), std::string_view::npos) << status;
  // Sanity: the same container with version 1 decodes.
  EXPECT_TRUE(DecodeCpuState(Container(0, SplitTop(EncodeCpuState(SmallCpuState())))).ok());
}

TEST(StateCodec, EveryFlippedByteIsRejectedWithDataLossOrInvalidArgument) {
  VmState vm;
  vm.vcpus.push_back(SmallCpuState());
  for (const std::string& good : {EncodeCpuState(SmallCpuState()), EncodeVmState(vm)}) {
    const bool is_vm = good[10] == kStateFlagVm;  // header flags, low byte
    for (size_t i = 0; i < good.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        absl::Status s = is_vm ? DecodeVmState(bad).status() : DecodeCpuState(bad).status();
        ASSERT_TRUE(s.code() == absl::StatusCode::kDataLoss ||
                    s.code() == absl::StatusCode::kInvalidArgument)
            << "byte " << i << " mask " << int{mask} << ": " << s;
      }
    }
  }
}

TEST(StateCodec, PayloadCorruptionIsDataLoss) {
  std::string bytes = EncodeCpuState(SmallCpuState());
  bytes[kStateHeaderSize + 20] ^= 0x10;
  EXPECT_EQ(DecodeCpuState(bytes).status().code(), absl::StatusCode::kDataLoss);
}

TEST(StateCodec, TruncationAtEveryLengthIsInvalidArgument) {
  std::mt19937_64 rng(3);
  std::string bytes = EncodeVmState(RandomVmState(rng, 1));
  for (size_t n = 0; n < bytes.size(); ++n) {
    ASSERT_EQ(DecodeVmState(std::string_view(bytes).substr(0, n)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "length " << n;
  }
  EXPECT_EQ(DecodeVmState(bytes + "x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, CpuAndVmEncodingsAreNotInterchangeable) {
  EXPECT_EQ(DecodeVmState(EncodeCpuState(SmallCpuState())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeCpuState(EncodeVmState(VmState{})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

absl::StatusCode DecodeCpuSections(const Sections& s, int count_delta = 0) {
  return DecodeCpuState(Container(0, s, kStateVersion, count_delta)).status().code();
}

TEST(StateCodec, StructuralErrorsBehindAValidCrcAreInvalidArgument) {
  const Sections good = SplitTop(EncodeCpuState(SmallCpuState()));
  ASSERT_EQ(DecodeCpuSections(good), absl::StatusCode::kOk);
  EXPECT_EQ(DecodeCpuSections(good, +1), absl::StatusCode::kInvalidArgument);  // count
  EXPECT_EQ(DecodeCpuSections(good, -1), absl::StatusCode::kInvalidArgument);
  for (size_t i = 0; i < good.size(); ++i) {
    Sections missing = good;
    missing.erase(missing.begin() + i);
    EXPECT_EQ(DecodeCpuSections(missing), absl::StatusCode::kInvalidArgument) << "drop " << i;
    Sections twice = good;
    twice.push_back(good[i]);
    EXPECT_EQ(DecodeCpuSections(twice), absl::StatusCode::kInvalidArgument) << "dup " << i;
    Sections longer = good;
    longer[i].second.push_back('\0');
    EXPECT_EQ(DecodeCpuSections(longer), absl::StatusCode::kInvalidArgument) << "long " << i;
    Sections shorter = good;
    shorter[i].second.pop_back();
    EXPECT_EQ(DecodeCpuSections(shorter), absl::StatusCode::kInvalidArgument) << "short " << i;
  }
  // A section length that runs past the payload.
  std::string bytes = Container(0, good);
  bytes[kStateHeaderSize + 4] = static_cast<char>(0xff);
  bytes[kStateHeaderSize + 5] = static_cast<char>(0xff);
  Reseal(bytes);
  EXPECT_EQ(DecodeCpuState(bytes).status().code(), absl::StatusCode::kInvalidArgument);
  // Unknown header flags.
  EXPECT_EQ(DecodeCpuState(Container(0x40, good)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, UnknownSectionsAreSkippedOnlyWhenOptional) {
  Sections s = SplitTop(EncodeCpuState(SmallCpuState()));
  s.emplace_back(state_tag::kOptional | 0x7777, "future data");
  absl::StatusOr<CpuState> back = DecodeCpuState(Container(0, s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == SmallCpuState());
  s.emplace_back(0x7778, "future mandatory data");
  EXPECT_EQ(DecodeCpuSections(s), absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, MsrCountMustMatchSectionLength) {
  Sections s = SplitTop(EncodeCpuState(SmallCpuState()));
  for (auto& [tag, body] : s) {
    if (tag == state_tag::kMsrs) body[0] = 3;  // two entries present
  }
  EXPECT_EQ(DecodeCpuSections(s), absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, VmStateNeedsClockAndAllOrNoIrqchips) {
  std::mt19937_64 rng(4);
  const Sections good = SplitTop(EncodeVmState(RandomVmState(rng, 1)));
  ASSERT_TRUE(DecodeVmState(Container(kStateFlagVm, good)).ok());
  for (uint32_t drop : {state_tag::kClock, state_tag::kPicSlave, state_tag::kIoapic}) {
    Sections s;
    for (const auto& section : good) {
      if (section.first != drop) s.push_back(section);
    }
    EXPECT_EQ(DecodeVmState(Container(kStateFlagVm, s)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << drop;
  }
  // A vCPU section whose inner sections are broken.
  Sections s = good;
  for (auto& [tag, body] : s) {
    if (tag == state_tag::kVcpu) body.resize(body.size() - 3);
  }
  EXPECT_EQ(DecodeVmState(Container(kStateFlagVm, s)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StateCodec, FuzzedInputsNeverCrash) {
  std::mt19937_64 rng(20240601);
  VmState vm = RandomVmState(rng, 2);
  vm.vcpus[0].xsave.bytes.resize(64);
  vm.vcpus[1].xsave.bytes.clear();
  const std::string good = EncodeVmState(vm);
  for (int i = 0; i < 3000; ++i) {
    std::string input;
    switch (i % 3) {
      case 0: {  // Random bytes, sometimes behind a valid magic.
        input.resize(rng() % 200);
        for (char& c : input) c = static_cast<char>(rng());
        if (rng() % 2) input = std::string(kStateMagic) + input;
        break;
      }
      case 1: {  // Mutations of a valid encoding, CRC fixed so the parser sees them.
        input = good;
        for (int n = 1 + rng() % 8; n > 0; --n) {
          input[kStateHeaderSize + rng() % (input.size() - kStateHeaderSize - 4)] =
              static_cast<char>(rng());
        }
        Reseal(input);
        break;
      }
      default: {  // Random sections in a well-formed container.
        Sections s;
        for (int n = rng() % 6; n > 0; --n) {
          std::string body(rng() % 600, '\0');
          for (char& c : body) c = static_cast<char>(rng());
          uint32_t tag = (rng() % 2) ? static_cast<uint32_t>(rng()) : 0x200 + rng() % 12;
          s.emplace_back(rng() % 4 ? tag : state_tag::kVcpu, body);
        }
        input = Container(rng() % 2 ? kStateFlagVm : 0, s);
      }
    }
    absl::StatusCode vm_code = DecodeVmState(input).status().code();
    absl::StatusCode cpu_code = DecodeCpuState(input).status().code();
    for (absl::StatusCode code : {vm_code, cpu_code}) {
      ASSERT_TRUE(code == absl::StatusCode::kOk || code == absl::StatusCode::kInvalidArgument ||
                  code == absl::StatusCode::kDataLoss)
          << "input " << i;
    }
    if (i % 3 != 1) continue;
    ASSERT_NE(vm_code, absl::StatusCode::kDataLoss) << "input " << i;
  }
}

}  // namespace
}  // namespace rehome
