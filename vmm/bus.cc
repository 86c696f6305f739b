// vmm/bus.cc: Bus range registry and access routing.
#include "vmm/bus.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_format.h"

namespace rehome {
namespace {

const char* SpaceName(BusSpace s) { return s == BusSpace::kPio ? "port" : "mmio"; }

void WriteToStderr(std::string_view line) {
  std::string s(line);
  s.push_back('\n');
  // Best effort: a failed diagnostic write is not worth reporting.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
}

}  // namespace

BusDevice::~BusDevice() = default;

Bus::Bus() : log_(WriteToStderr) {}

absl::Status Bus::Register(BusSpace space, uint64_t base, uint64_t len,
                           std::shared_ptr<BusDevice> device) {
  const std::string range = absl::StrFormat("%s range [0x%x, +0x%x)", SpaceName(space), base, len);
  if (device == nullptr) return absl::InvalidArgumentError(range + ": null device");
  if (len == 0) return absl::InvalidArgumentError(range + ": empty range");
  // Inclusive last address, so that a range may end exactly at 2^64.
  if (len - 1 > ~uint64_t{0} - base) return absl::InvalidArgumentError(range + ": range overflows");
  const uint64_t last = base + (len - 1);
  if (space == BusSpace::kPio && last >= kPioSpaceSize) {
    return absl::InvalidArgumentError(range + ": beyond port 0xffff");
  }
  absl::MutexLock lock(&mu_);
  Space& s = space == BusSpace::kPio ? pio_ : mmio_;
  auto next = s.ranges.lower_bound(base);  // first range with start >= base
  if (next != s.ranges.end() && next->first <= last) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s for '%s' overlaps [0x%x, +0x%x) of '%s'", range, device->name(),
                        next->first, next->second.len, next->second.device->name()));
  }
  if (next != s.ranges.begin()) {
    auto prev = std::prev(next);
    if (prev->first + (prev->second.len - 1) >= base) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s for '%s' overlaps [0x%x, +0x%x) of '%s'", range, device->name(),
                          prev->first, prev->second.len, prev->second.device->name()));
    }
  }
  s.ranges.emplace(base, Range{len, std::move(device)});
  return absl::OkStatus();
}

const Bus::Range* Bus::Find(BusSpace space, uint64_t addr, uint64_t len, uint64_t* offset) const {
  const Space& s = space_ref(space);
  auto it = s.ranges.upper_bound(addr);  // first range with start > addr
  if (it == s.ranges.begin()) return nullptr;
  --it;
  const uint64_t off = addr - it->first;
  if (off >= it->second.len || len > it->second.len - off) return nullptr;
  *offset = off;
  return &it->second;
}

std::shared_ptr<BusDevice> Bus::Lookup(BusSpace space, uint64_t addr, uint64_t len,
                                       uint64_t* offset) const {
  absl::ReaderMutexLock lock(&mu_);
  const Range* range = Find(space, addr, len, offset);
  return range == nullptr ? nullptr : range->device;
}

void Bus::Read(BusSpace space, uint64_t addr, std::span<uint8_t> data) {
  {
    absl::ReaderMutexLock lock(&mu_);
    uint64_t offset = 0;
    if (const Range* range = Find(space, addr, data.size(), &offset)) {
      range->device->Read(offset, data);
      return;
    }
  }
  std::fill(data.begin(), data.end(), 0xff);
  const uint64_t n = counters(space).reads.fetch_add(1, std::memory_order_relaxed) + 1;
  LogUnhandled(space, false, addr, data.size(), n);
}

void Bus::Write(BusSpace space, uint64_t addr, std::span<const uint8_t> data) {
  {
    absl::ReaderMutexLock lock(&mu_);
    uint64_t offset = 0;
    if (const Range* range = Find(space, addr, data.size(), &offset)) {
      range->device->Write(offset, data);
      return;
    }
  }
  const uint64_t n = counters(space).writes.fetch_add(1, std::memory_order_relaxed) + 1;
  LogUnhandled(space, true, addr, data.size(), n);
}

void Bus::LogUnhandled(BusSpace space, bool is_write, uint64_t addr, size_t len, uint64_t count) {
  if (count > kLogFirstUnhandled && !std::has_single_bit(count)) return;
  if (!log_) return;
  log_(absl::StrFormat("rehome: unhandled %u-byte %s %s at 0x%x (%u unhandled %ss so far)", len,
                       SpaceName(space), is_write ? "write" : "read", addr, count,
                       is_write ? "write" : "read"));
}

std::vector<PostedWriteRange> Bus::PostedWriteRanges() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<PostedWriteRange> out;
  for (const BusSpace space : {BusSpace::kPio, BusSpace::kMmio}) {
    for (const auto& [base, range] : space_ref(space).ranges) {
      if (range.device->writes_posted()) out.push_back({space, base, range.len});
    }
  }
  return out;
}

uint64_t Bus::unhandled_reads(BusSpace space) const {
  return counters(space).reads.load(std::memory_order_relaxed);
}
uint64_t Bus::unhandled_writes(BusSpace space) const {
  return counters(space).writes.load(std::memory_order_relaxed);
}

void Bus::SetLogSink(LogSink sink) { log_ = std::move(sink); }

}  // namespace rehome
