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

void EffectCapture::NetTx(uint64_t pos, std::span<const uint8_t> frame) {
  Entry& e = Add(EffectType::kNetTx, pos, frame.size());
  if (!frame.empty()) std::memcpy(e.data.get(), frame.data(), frame.size());
}

void CapturingNetBackend::SetRxLimit(uint32_t limit_low32, uint64_t position) {
  // The limit is at most a ring's worth of frames above the receive position (L0 frees no slot
  // before the agreed position), so its low 32 bits name it.
  limit_ = position + static_cast<uint32_t>(limit_low32 - static_cast<uint32_t>(position));
}

std::optional<size_t> CapturingNetBackend::ReadRx(uint64_t pos, std::span<uint8_t> out) {
  if (pos >= limit_) return std::nullopt;
  return rx_->ReadAt(pos, out);
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

void CapturingRamView::SetAvailSnapshot(const AvailIndexSnapshot* entries, uint32_t count) {
  snapshot_count_ = std::min(count, kMaxAvailSnapshot);
  std::copy_n(entries, snapshot_count_, snapshot_);  // the item is in shared memory: copy it
}

std::optional<uint16_t> CapturingRamView::AvailableIndex(uint64_t gpa) const {
  if (ram_.HostAddress(gpa, sizeof(uint16_t)) == nullptr) return std::nullopt;
  for (uint32_t i = 0; i < snapshot_count_; ++i) {
    if (snapshot_[i].gpa == gpa) return snapshot_[i].index;
  }
  return ram_.AvailableIndex(gpa);
}

uint8_t* CapturingRamView::WritableAddress(uint64_t gpa, uint64_t len) const {
  const uint8_t* current = ram_.HostAddress(gpa, len);
  if (current == nullptr) return nullptr;  // outside guest RAM: the device reports it
  return capture_.RamWrite(gpa, current, len);
}

}  // namespace rehome
