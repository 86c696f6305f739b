// kvm-l0/effects_area.cc: EffectsArea.
#include "kvm-l0/effects_area.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr size_t kAreaBytes = kEffectsDataOffset + kEffectsCapacity;

uint64_t Padded(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

uint32_t Crc(std::span<const uint8_t> bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes at most 4 GiB per call; the area is far smaller.
  return static_cast<uint32_t>(crc32(crc, bytes.data(), static_cast<uInt>(bytes.size())));
}

}  // namespace

void AppendEffect(std::vector<uint8_t>* entries, EffectType type, uint64_t addr,
                  std::span<const uint8_t> data) {
  EffectEntryHead head{};
  head.type = static_cast<uint8_t>(type);
  head.len = static_cast<uint32_t>(data.size());
  head.addr = addr;
  const size_t at = entries->size();
  entries->resize(at + sizeof(head) + Padded(data.size()), 0);
  std::memcpy(entries->data() + at, &head, sizeof(head));
  if (!data.empty()) std::memcpy(entries->data() + at + sizeof(head), data.data(), data.size());
}

absl::StatusOr<std::vector<Effect>> ParseEffects(std::span<const uint8_t> bytes,
                                                 uint64_t expected_count) {
  std::vector<Effect> out;
  uint64_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < sizeof(EffectEntryHead)) {
      return absl::InvalidArgumentError(absl::StrCat("effects: truncated entry at ", pos));
    }
    EffectEntryHead head;
    std::memcpy(&head, bytes.data() + pos, sizeof(head));
    if (head.type < static_cast<uint8_t>(EffectType::kRamWrite) ||
        head.type > static_cast<uint8_t>(EffectType::kAvailWatch)) {
      return absl::InvalidArgumentError(
          absl::StrCat("effects: unknown entry type ", head.type, " at ", pos));
    }
    const uint64_t body = Padded(head.len);
    if (body > bytes.size() - pos - sizeof(head)) {
      return absl::InvalidArgumentError(
          absl::StrCat("effects: entry at ", pos, " of ", head.len, " bytes runs past the end"));
    }
    out.push_back({static_cast<EffectType>(head.type), head.addr,
                   bytes.subspan(pos + sizeof(head), head.len)});
    pos += sizeof(head) + body;
  }
  if (out.size() != expected_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("effects: ", out.size(), " entries, header says ", expected_count));
  }
  return out;
}

absl::StatusOr<EffectsArea> EffectsArea::Create() {
  EffectsArea area;
  area.memfd_.Reset(memfd_create("rehome-effects", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!area.memfd_.valid()) return LastErrnoStatus("memfd_create effects area");
  if (ftruncate(area.memfd_.get(), static_cast<off_t>(kAreaBytes)) != 0) {
    return LastErrnoStatus("ftruncate effects area");
  }
  if (fcntl(area.memfd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return LastErrnoStatus("sealing effects area");
  }
  ASSIGN_OR_RETURN(area.mapping_, MappedRegion::Map(kAreaBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                                                    area.memfd_.get(), 0));
  auto* h = new (area.mapping_.get()) EffectsHeader{};
  h->magic = kEffectsMagic;
  h->version = kEffectsVersion;
  h->capacity = kEffectsCapacity;
  return area;
}

absl::StatusOr<EffectsArea> EffectsArea::Attach(int memfd) {
  EffectsArea area;
  area.memfd_.Reset(memfd);
  struct stat st {};
  if (fstat(memfd, &st) != 0) return LastErrnoStatus("fstat effects area");
  if (static_cast<uint64_t>(st.st_size) != kAreaBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("effects area: size ", st.st_size, ", expected ", kAreaBytes));
  }
  ASSIGN_OR_RETURN(area.mapping_,
                   MappedRegion::Map(kAreaBytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0));
  const EffectsHeader* h = area.header();
  if (h->magic != kEffectsMagic || h->version != kEffectsVersion ||
      h->capacity != kEffectsCapacity) {
    return absl::InvalidArgumentError("effects area: bad magic, version or capacity");
  }
  return area;
}

absl::Status EffectsArea::Write(uint64_t seq, uint32_t flags, uint32_t state_crc,
                                std::span<const uint8_t> entries) {
  if (entries.size() > kEffectsCapacity) {
    return absl::ResourceExhaustedError(absl::StrCat("effects of item ", seq, ": ", entries.size(),
                                                     " bytes, the area holds ", kEffectsCapacity));
  }
  if (!entries.empty()) std::memcpy(data(), entries.data(), entries.size());
  uint64_t count = 0;
  for (uint64_t pos = 0; pos + sizeof(EffectEntryHead) <= entries.size(); ++count) {
    EffectEntryHead head;
    std::memcpy(&head, entries.data() + pos, sizeof(head));
    pos += sizeof(head) + Padded(head.len);
  }
  EffectsHeader* h = header();
  h->flags = flags;
  h->seq = seq;
  h->length = entries.size();
  h->entries_crc = Crc(entries);
  h->state_crc = state_crc;
  h->entry_count = count;
  return absl::OkStatus();
}

absl::StatusOr<Effects> EffectsArea::CopyOut(uint64_t seq, const Effects* checked) const {
  EffectsHeader h;
  std::memcpy(&h, header(), sizeof(h));  // one copy: the replica cannot change it under us
  if (h.magic != kEffectsMagic || h.version != kEffectsVersion || h.capacity != kEffectsCapacity) {
    return absl::InvalidArgumentError("effects area: bad magic, version or capacity");
  }
  if (h.seq != seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("effects area: holds item ", h.seq, ", expected ", seq));
  }
  if (h.length > kEffectsCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("effects area: length ", h.length));
  }
  Effects effects;
  effects.seq = h.seq;
  effects.flags = h.flags;
  effects.state_crc = h.state_crc;
  effects.entries_crc = h.entries_crc;
  effects.bytes.assign(data(), data() + h.length);
  const bool known_good = checked != nullptr && checked->seq == seq &&
                          checked->entries_crc == h.entries_crc && checked->bytes == effects.bytes;
  if (!known_good && Crc(effects.bytes) != h.entries_crc) {
    return absl::InvalidArgumentError(absl::StrCat("effects of item ", seq, " fail their CRC"));
  }
  ASSIGN_OR_RETURN(effects.entries, ParseEffects(effects.bytes, h.entry_count));
  return effects;
}

}  // namespace rehome
