// tests/fuzz/effects_area_fuzz.cc: libFuzzer target for L0's reading of a verified replica's
// effects area (kvm-l0/effects_area.h: EffectsArea::CopyOut, ParseEffects), which a hostile or
// broken replica may fill with anything, and for L0 applying parsed effects
// (recovery/effects_apply.h: ApplyEffects), which even agreeing replicas are not trusted with.
//
// Input: a mode byte, then either
//  - raw entry bytes and an expected count for ParseEffects;
//  - a list of effects the honest replica writes (AppendEffect, EffectsArea::Write), read back
//    by L0 with CopyOut;
//  - forged header fields and entry bytes written straight into the shared mapping (as a
//    compromised replica can), read back by CopyOut;
//  - a guest RAM size, a disk image size and raw entry bytes, applied if they parse.
// Checked: no memory error or UB; an accepted parse has exactly the expected count, entries of a
// known type whose data lie inside the parsed bytes, in order and without overlap, and the
// re-encoding (AppendEffect) has the same size and parses to the same entries; what an honest
// replica writes comes back identical; what CopyOut accepts is within the capacity; applying
// writes nothing outside guest RAM (ASan) or the image (its size never grows), raises one edge
// per interrupt entry on a line that exists (refusing the others), and accounts for every entry
// (applied + refused).
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kvm-l0/effects_area.h"
#include "recovery/effects_apply.h"
#include "tests/fuzz/fuzz_util.h"
#include "vmm/guest_memory_view.h"

namespace {

using rehome::Effect;
using rehome::EffectType;
using rehome::fuzz::Check;

// The properties every accepted list of entries has (see the file comment).
void CheckParsed(std::span<const uint8_t> bytes, const std::vector<Effect>& entries) {
  const uint8_t* next = bytes.data();
  std::vector<uint8_t> again;
  for (const Effect& e : entries) {
    Check(e.type >= EffectType::kRamWrite && e.type <= EffectType::kAvailWatch);
    Check(e.data.data() >= next);
    Check(e.data.data() + e.data.size() <= bytes.data() + bytes.size());
    next = e.data.data() + e.data.size();
    rehome::AppendEffect(&again, e.type, e.addr, e.data);
  }
  Check(again.size() == bytes.size());
  absl::StatusOr<std::vector<Effect>> reparsed = rehome::ParseEffects(again, entries.size());
  Check(reparsed.ok());
  for (size_t i = 0; i < entries.size(); ++i) {
    const Effect& a = entries[i];
    const Effect& b = (*reparsed)[i];
    Check(a.type == b.type && a.addr == b.addr && a.data.size() == b.data.size());
    Check(a.data.empty() || std::memcmp(a.data.data(), b.data.data(), a.data.size()) == 0);
  }
}

rehome::EffectsArea& Area() {
  static rehome::EffectsArea* area = [] {
    absl::StatusOr<rehome::EffectsArea> made = rehome::EffectsArea::Create();
    Check(made.ok());
    return new rehome::EffectsArea(std::move(*made));
  }();
  return *area;
}

// The replica's own mapping of the area: what a compromised replica scribbles on.
uint8_t* Shared() {
  static uint8_t* shared = [] {
    void* p = mmap(nullptr, rehome::kEffectsDataOffset + rehome::kEffectsCapacity,
                   PROT_READ | PROT_WRITE, MAP_SHARED, Area().memfd(), 0);
    Check(p != MAP_FAILED);
    return static_cast<uint8_t*>(p);
  }();
  return shared;
}

void HonestReplica(FuzzedDataProvider& in) {
  std::vector<uint8_t> entries;
  struct Written {
    EffectType type;
    uint64_t addr;
    std::vector<uint8_t> data;
  };
  std::vector<Written> written;
  while (in.remaining_bytes() > 0 && written.size() < 64) {
    Written w{static_cast<EffectType>(in.ConsumeIntegralInRange<uint8_t>(1, 5)),
              in.ConsumeIntegral<uint64_t>(),
              in.ConsumeBool() ? in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 4096))
                               : std::vector<uint8_t>(in.ConsumeIntegralInRange(0, 1 << 16), 7)};
    rehome::AppendEffect(&entries, w.type, w.addr, w.data);
    written.push_back(std::move(w));
  }
  const uint64_t seq = in.ConsumeIntegral<uint64_t>();
  const uint32_t flags = in.ConsumeIntegral<uint32_t>();
  const uint32_t state_crc = in.ConsumeIntegral<uint32_t>();
  Check(Area().Write(seq, flags, state_crc, entries).ok());
  absl::StatusOr<rehome::Effects> read = Area().CopyOut(seq);
  Check(read.ok());
  Check(read->seq == seq && read->flags == flags && read->state_crc == state_crc);
  Check(read->bytes == entries && read->entries.size() == written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    const Effect& e = read->entries[i];
    Check(e.type == written[i].type && e.addr == written[i].addr);
    Check(std::vector<uint8_t>(e.data.begin(), e.data.end()) == written[i].data);
  }
  CheckParsed(read->bytes, read->entries);
  // Another item's effects are refused, whatever they hold.
  Check(!Area().CopyOut(seq + 1).ok());
}

void CompromisedReplica(FuzzedDataProvider& in) {
  uint8_t* shared = Shared();
  // Start from an honest write, then forge parts of it.
  const uint64_t seq = in.ConsumeIntegral<uint64_t>();
  const std::vector<uint8_t> honest = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 512));
  Check(Area().Write(seq, 0, 0, honest).ok());
  auto* h = reinterpret_cast<rehome::EffectsHeader*>(shared);
  for (int op = 0; op < 16 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 6)) {
      case 0:
        h->length = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>()
                                     : in.ConsumeIntegralInRange<uint64_t>(0, 4096);
        break;
      case 1:
        h->entry_count = in.ConsumeIntegral<uint64_t>();
        break;
      case 2:
        h->entries_crc = in.ConsumeIntegral<uint32_t>();
        break;
      case 3:
        h->seq = in.ConsumeIntegral<uint64_t>();
        break;
      case 4:
        h->magic = in.ConsumeBool() ? rehome::kEffectsMagic : in.ConsumeIntegral<uint64_t>();
        h->version = in.ConsumeIntegral<uint32_t>();
        h->capacity = in.ConsumeIntegral<uint64_t>();
        break;
      case 5: {  // raw entry bytes
        const size_t at = in.ConsumeIntegralInRange<size_t>(0, 4096);
        const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(256);
        std::copy(bytes.begin(), bytes.end(), shared + rehome::kEffectsDataOffset + at);
        break;
      }
      case 6: {  // a correct CRC over whatever the length now covers (the replica computes it)
        const uint64_t length = std::min<uint64_t>(h->length, rehome::kEffectsCapacity);
        h->entries_crc = static_cast<uint32_t>(crc32(
            crc32(0L, Z_NULL, 0), shared + rehome::kEffectsDataOffset, static_cast<uInt>(length)));
        break;
      }
    }
    absl::StatusOr<rehome::Effects> read = Area().CopyOut(in.ConsumeBool() ? seq : h->seq);
    if (read.ok()) {
      Check(read->bytes.size() <= rehome::kEffectsCapacity);
      CheckParsed(read->bytes, read->entries);
    }
  }
  // Restore what Create() wrote, for the next input.
  h->magic = rehome::kEffectsMagic;
  h->version = rehome::kEffectsVersion;
  h->capacity = rehome::kEffectsCapacity;
}

void Apply(FuzzedDataProvider& in) {
  // Guest RAM of its own size, so ASan sees any write past it.
  std::vector<uint8_t> ram(in.ConsumeIntegralInRange<size_t>(0, 1 << 16));
  const uint64_t base = in.ConsumeBool() ? 0 : in.ConsumeIntegral<uint64_t>();
  rehome::FlatGuestMemoryView view(ram, base);
  static const int disk = [] {
    const int fd = memfd_create("effects-fuzz-disk", MFD_CLOEXEC);
    Check(fd >= 0);
    return fd;
  }();
  const uint64_t disk_bytes = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 16);
  Check(ftruncate(disk, static_cast<off_t>(disk_bytes)) == 0);
  rehome::VerifiedEffectsSink sink;
  sink.ram = in.ConsumeBool() ? &view : nullptr;
  sink.disk_fd = in.ConsumeBool() ? disk : -1;
  uint64_t raised = 0;
  const uint32_t lines = in.ConsumeIntegralInRange<uint32_t>(0, 8);  // lines 0..lines-1 exist
  if (in.ConsumeBool()) {
    sink.raise_irq = [&raised, lines](uint32_t line) {
      if (line >= lines) return false;
      ++raised;
      return true;
    };
  }
  size_t console = 0;
  sink.console_output = [&console](std::string_view bytes) { console += bytes.size(); };
  rehome::Effects effects;
  effects.bytes = in.ConsumeRemainingBytes<uint8_t>();
  uint64_t count = 0;  // what a replica's Write would put in the header
  for (uint64_t pos = 0; pos + sizeof(rehome::EffectEntryHead) <= effects.bytes.size(); ++count) {
    rehome::EffectEntryHead head;
    std::memcpy(&head, effects.bytes.data() + pos, sizeof(head));
    pos += sizeof(head) + ((uint64_t{head.len} + 7) & ~uint64_t{7});
  }
  absl::StatusOr<std::vector<Effect>> parsed = rehome::ParseEffects(effects.bytes, count);
  if (!parsed.ok()) return;
  effects.entries = std::move(*parsed);
  const rehome::ApplyResult result = rehome::ApplyEffects(effects, sink, disk_bytes);
  Check(result.applied + result.refused == effects.entries.size());
  Check((result.refused == 0) == result.first_refusal.empty());
  uint64_t irqs = 0;
  for (const Effect& e : effects.entries) {
    irqs += e.type == rehome::EffectType::kIrq && e.addr < lines ? 1 : 0;  // never wrapped
  }
  Check(raised == (sink.raise_irq ? irqs : 0));
  struct stat st {};
  Check(fstat(disk, &st) == 0 && static_cast<uint64_t>(st.st_size) == disk_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: {
      const uint64_t count = in.ConsumeIntegralInRange<uint64_t>(0, 80);
      const std::vector<uint8_t> bytes = in.ConsumeRemainingBytes<uint8_t>();
      absl::StatusOr<std::vector<Effect>> parsed = rehome::ParseEffects(bytes, count);
      if (parsed.ok()) {
        Check(parsed->size() == count);
        CheckParsed(bytes, *parsed);
      }
      break;
    }
    case 1:
      HonestReplica(in);
      break;
    case 2:
      CompromisedReplica(in);
      break;
    case 3:
      Apply(in);
      break;
  }
  return 0;
}
