// vmm/l1/effect_capture.cc: EffectCapture, CapturingRamView.
#include "vmm/l1/effect_capture.h"

#include <algorithm>
#include <cstring>

namespace rehome {

void EffectCapture::Clear() {
  entries_.clear();
  bytes_ = 0;
}

EffectCapture::Entry& EffectCapture::Add(EffectType type, uint64_t addr, uint64_t len) {
  entries_.push_back(Entry{type, addr, len > 0 ? std::make_unique<uint8_t[]>(len) : nullptr, len});
  bytes_ += sizeof(EffectEntryHead) + len;
  return entries_.back();
}

uint8_t* EffectCapture::RamWrite(uint64_t gpa, const uint8_t* current, uint64_t len) {
  Entry& e = Add(EffectType::kRamWrite, gpa, len);
  if (len > 0) std::memcpy(e.data.get(), current, len);
  return e.data.get();
}

void EffectCapture::Irq(uint32_t line) { Add(EffectType::kIrq, line, 0); }

void EffectCapture::ConsoleOut(std::string_view bytes) {
  Entry& e = Add(EffectType::kConsoleOut, 0, bytes.size());
  if (!bytes.empty()) std::memcpy(e.data.get(), bytes.data(), bytes.size());
}

void EffectCapture::Write(uint64_t offset, std::span<const uint8_t> data) {
  Entry& e = Add(EffectType::kDiskWrite, offset, data.size());
  if (!data.empty()) std::memcpy(e.data.get(), data.data(), data.size());
}

void EffectCapture::Flush() { Add(EffectType::kDiskFlush, 0, 0); }

void EffectCapture::Overlay(uint64_t offset, std::span<uint8_t> out) const {
  // Later writes win: apply in order.
  for (const Entry& e : entries_) {
    if (e.type != EffectType::kDiskWrite) continue;
    const uint64_t begin = std::max(offset, e.addr);
    const uint64_t end = std::min(offset + out.size(), e.addr + e.len);
    if (begin >= end) continue;
    std::memcpy(out.data() + (begin - offset), e.data.get() + (begin - e.addr), end - begin);
  }
}

void EffectCapture::EncodeInto(std::vector<uint8_t>* out) const {
  out->clear();
  for (const Entry& e : entries_) {
    AppendEffect(out, e.type, e.addr, std::span<const uint8_t>(e.data.get(), e.len));
  }
}

uint8_t* CapturingRamView::WritableAddress(uint64_t gpa, uint64_t len) const {
  const uint8_t* current = ram_.HostAddress(gpa, len);
  if (current == nullptr) return nullptr;  // outside guest RAM: the device reports it
  return capture_.RamWrite(gpa, current, len);
}

}  // namespace rehome
