// state-extract/state_codec.cc: RHSTATE encoder/decoder. Every struct is serialised field by
// field, little-endian, from one field list per struct (Fields() in state_fields.h) that the
// writer, the reader and the size counter share, so the three cannot disagree. Thread-safe (pure).
#include "state-extract/state_codec.h"

#include <zlib.h>

#include <array>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "state-extract/state_fields.h"

namespace rehome {
namespace {

using state_fields::EncodedSize;
using state_fields::Reader;
using state_fields::Writer;

uint32_t Crc32(std::string_view bytes) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  return static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

// ---- Encoding ----

class SectionList final {
 public:
  template <typename T>
  void Add(uint32_t tag, const T& value) {
    std::string body;
    Writer w(&body);
    w(value);
    AddRaw(tag, body);
  }
  void AddRaw(uint32_t tag, std::string_view body) {
    Writer w(&bytes_);
    w(tag);
    w(static_cast<uint32_t>(body.size()));
    bytes_.append(body);
    ++count_;
  }
  const std::string& bytes() const { return bytes_; }
  uint32_t count() const { return count_; }

 private:
  std::string bytes_;
  uint32_t count_ = 0;
};

void AddCpuSections(const CpuState& c, SectionList& s) {
  s.Add(state_tag::kRegs, c.regs);
  s.Add(state_tag::kSregs, c.sregs);
  s.Add(state_tag::kFpu, c.fpu);
  if (!c.xsave.bytes.empty()) {
    s.AddRaw(state_tag::kXsave,
             std::string_view(reinterpret_cast<const char*>(c.xsave.bytes.data()),
                              c.xsave.bytes.size()));
  }
  if (c.xcrs) s.Add(state_tag::kXcrs, *c.xcrs);
  std::string msrs;
  Writer w(&msrs);
  w(static_cast<uint32_t>(c.msrs.size()));
  for (const MsrEntry& m : c.msrs) w(m);
  s.AddRaw(state_tag::kMsrs, msrs);
  if (c.lapic) s.Add(state_tag::kLapic, *c.lapic);
  s.Add(state_tag::kEvents, c.events);
  s.Add(state_tag::kMpState, c.mp_state);
  s.Add(state_tag::kDebugRegs, c.debugregs);
  s.Add(state_tag::kTsc, c.tsc);
  if (c.tsc_khz != 0) s.Add(state_tag::kTscKhz, c.tsc_khz);
}

std::string Seal(uint16_t flags, const SectionList& s) {
  std::string out;
  out.reserve(kStateHeaderSize + s.bytes().size() + kStateTrailerSize);
  out.append(kStateMagic);
  Writer w(&out);
  w(kStateVersion);
  w(flags);
  w(s.count());
  w(static_cast<uint64_t>(s.bytes().size()));
  out.append(s.bytes());
  w(Crc32(out));
  return out;
}

// ---- Decoding ----

struct Section {
  uint32_t tag = 0;
  std::string_view body;
};

absl::Status Malformed(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("state encoding: ", what));
}

std::string TagName(uint32_t tag) { return absl::StrFormat("section 0x%08x", tag); }

absl::StatusOr<std::vector<Section>> SplitSections(std::string_view payload) {
  std::vector<Section> sections;
  Reader r(payload);
  while (r.remaining() > 0) {
    Section s;
    uint32_t length = 0;
    r(s.tag);
    r(length);
    if (!r.ok()) return Malformed("truncated section header");
    if (length > r.remaining()) return Malformed(TagName(s.tag) + " overruns its container");
    s.body = r.Take(length);
    sections.push_back(s);
  }
  return sections;
}

template <typename T>
absl::Status ReadFixed(const Section& s, T& out) {
  if (s.body.size() != EncodedSize<T>()) {
    return Malformed(absl::StrCat(TagName(s.tag), " has length ", s.body.size(), ", expected ",
                                  EncodedSize<T>()));
  }
  Reader r(s.body);
  r(out);
  return absl::OkStatus();
}

// Rejects a second section with the same tag.
class SeenTags final {
 public:
  absl::Status Mark(uint32_t tag) {
    for (uint32_t t : tags_) {
      if (t == tag) return Malformed(TagName(tag) + " appears twice");
    }
    tags_.push_back(tag);
    return absl::OkStatus();
  }
  bool Has(uint32_t tag) const {
    for (uint32_t t : tags_) {
      if (t == tag) return true;
    }
    return false;
  }

 private:
  std::vector<uint32_t> tags_;
};

absl::Status UnknownSection(uint32_t tag) {
  if (tag & state_tag::kOptional) return absl::OkStatus();
  return Malformed("unknown mandatory " + TagName(tag));
}

absl::Status ReadMsrs(const Section& s, std::vector<MsrEntry>& out) {
  Reader r(s.body);
  uint32_t count = 0;
  r(count);
  const size_t entry_size = EncodedSize<MsrEntry>();
  if (!r.ok() || r.remaining() % entry_size != 0 || r.remaining() / entry_size != count) {
    return Malformed("MSR section length does not match its entry count");
  }
  out.resize(count);
  for (MsrEntry& m : out) r(m);
  return absl::OkStatus();
}

absl::StatusOr<CpuState> DecodeCpuSections(const std::vector<Section>& sections) {
  namespace t = state_tag;
  CpuState c;
  SeenTags seen;
  for (const Section& s : sections) {
    RETURN_IF_ERROR(seen.Mark(s.tag));
    switch (s.tag) {
      case t::kRegs:
        RETURN_IF_ERROR(ReadFixed(s, c.regs));
        break;
      case t::kSregs:
        RETURN_IF_ERROR(ReadFixed(s, c.sregs));
        break;
      case t::kFpu:
        RETURN_IF_ERROR(ReadFixed(s, c.fpu));
        break;
      case t::kXsave:
        if (s.body.empty()) return Malformed("empty XSAVE section");
        c.xsave.bytes.assign(s.body.begin(), s.body.end());
        break;
      case t::kXcrs:
        RETURN_IF_ERROR(ReadFixed(s, c.xcrs.emplace()));
        break;
      case t::kMsrs:
        RETURN_IF_ERROR(ReadMsrs(s, c.msrs));
        break;
      case t::kLapic:
        RETURN_IF_ERROR(ReadFixed(s, c.lapic.emplace()));
        break;
      case t::kEvents:
        RETURN_IF_ERROR(ReadFixed(s, c.events));
        break;
      case t::kMpState:
        RETURN_IF_ERROR(ReadFixed(s, c.mp_state));
        break;
      case t::kDebugRegs:
        RETURN_IF_ERROR(ReadFixed(s, c.debugregs));
        break;
      case t::kTsc:
        RETURN_IF_ERROR(ReadFixed(s, c.tsc));
        break;
      case t::kTscKhz:
        RETURN_IF_ERROR(ReadFixed(s, c.tsc_khz));
        break;
      default:
        RETURN_IF_ERROR(UnknownSection(s.tag));
    }
  }
  for (uint32_t tag :
       {t::kRegs, t::kSregs, t::kFpu, t::kMsrs, t::kEvents, t::kMpState, t::kDebugRegs, t::kTsc}) {
    if (!seen.Has(tag)) return Malformed("missing mandatory CPU " + TagName(tag));
  }
  return c;
}

// Validates header, length and CRC; returns the top-level sections.
absl::StatusOr<std::vector<Section>> Open(std::string_view bytes, bool want_vm) {
  if (bytes.size() < kStateHeaderSize + kStateTrailerSize) return Malformed("truncated header");
  if (bytes.substr(0, kStateMagic.size()) != kStateMagic) return Malformed("bad magic");
  Reader h(bytes.substr(kStateMagic.size(), kStateHeaderSize - kStateMagic.size()));
  uint16_t version = 0, flags = 0;
  uint32_t count = 0;
  uint64_t payload_length = 0;
  h(version), h(flags), h(count), h(payload_length);
  if (version != kStateVersion) {
    return Malformed(
        absl::StrCat("unsupported version ", version, " (this build reads ", kStateVersion, ")"));
  }
  if (payload_length != bytes.size() - kStateHeaderSize - kStateTrailerSize) {
    return Malformed(absl::StrCat("payload length ", payload_length, " does not match the ",
                                  bytes.size(), "-byte input (truncated or trailing bytes)"));
  }
  std::string_view sealed = bytes.substr(0, bytes.size() - kStateTrailerSize);
  uint32_t stored_crc = 0;
  Reader tr(bytes.substr(sealed.size()));
  tr(stored_crc);
  if (stored_crc != Crc32(sealed)) return absl::DataLossError("state encoding: CRC32 mismatch");
  if (flags & ~kStateFlagVm) return Malformed(absl::StrFormat("unknown header flags 0x%x", flags));
  if (((flags & kStateFlagVm) != 0) != want_vm) {
    return Malformed(want_vm ? "this is a CPU state, not a VM state"
                             : "this is a VM state, not a CPU state");
  }
  ASSIGN_OR_RETURN(std::vector<Section> sections, SplitSections(sealed.substr(kStateHeaderSize)));
  if (sections.size() != count) {
    return Malformed(
        absl::StrCat("header announces ", count, " sections, found ", sections.size()));
  }
  return sections;
}

}  // namespace

std::string EncodeCpuState(const CpuState& state) {
  SectionList s;
  AddCpuSections(state, s);
  return Seal(0, s);
}

absl::StatusOr<CpuState> DecodeCpuState(std::string_view bytes) {
  ASSIGN_OR_RETURN(std::vector<Section> sections, Open(bytes, /*want_vm=*/false));
  return DecodeCpuSections(sections);
}

std::string EncodeVmState(const VmState& state) {
  SectionList s;
  if (state.pic_master) s.Add(state_tag::kPicMaster, *state.pic_master);
  if (state.pic_slave) s.Add(state_tag::kPicSlave, *state.pic_slave);
  if (state.ioapic) s.Add(state_tag::kIoapic, *state.ioapic);
  if (state.pit) s.Add(state_tag::kPit, *state.pit);
  s.Add(state_tag::kClock, state.clock);
  for (const CpuState& cpu : state.vcpus) {
    SectionList inner;
    AddCpuSections(cpu, inner);
    s.AddRaw(state_tag::kVcpu, inner.bytes());
  }
  return Seal(kStateFlagVm, s);
}

absl::StatusOr<VmState> DecodeVmState(std::string_view bytes) {
  namespace t = state_tag;
  ASSIGN_OR_RETURN(std::vector<Section> sections, Open(bytes, /*want_vm=*/true));
  VmState vm;
  SeenTags seen;
  for (const Section& s : sections) {
    if (s.tag == t::kVcpu) {
      ASSIGN_OR_RETURN(std::vector<Section> inner, SplitSections(s.body));
      ASSIGN_OR_RETURN(CpuState cpu, DecodeCpuSections(inner));
      vm.vcpus.push_back(std::move(cpu));
      continue;
    }
    RETURN_IF_ERROR(seen.Mark(s.tag));
    switch (s.tag) {
      case t::kPicMaster:
        RETURN_IF_ERROR(ReadFixed(s, vm.pic_master.emplace()));
        break;
      case t::kPicSlave:
        RETURN_IF_ERROR(ReadFixed(s, vm.pic_slave.emplace()));
        break;
      case t::kIoapic:
        RETURN_IF_ERROR(ReadFixed(s, vm.ioapic.emplace()));
        break;
      case t::kPit:
        RETURN_IF_ERROR(ReadFixed(s, vm.pit.emplace()));
        break;
      case t::kClock:
        RETURN_IF_ERROR(ReadFixed(s, vm.clock));
        break;
      default:
        RETURN_IF_ERROR(UnknownSection(s.tag));
    }
  }
  if (!seen.Has(t::kClock)) return Malformed("missing mandatory " + TagName(t::kClock));
  const int chips = seen.Has(t::kPicMaster) + seen.Has(t::kPicSlave) + seen.Has(t::kIoapic);
  if (chips != 0 && chips != 3) return Malformed("irqchip needs all of PIC master, slave, IOAPIC");
  return vm;
}

}  // namespace rehome
