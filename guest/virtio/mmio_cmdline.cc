// guest/virtio/mmio_cmdline.cc: `virtio_mmio.device=` value parser (see mmio_cmdline.h). CPL3.
#include "guest/virtio/mmio_cmdline.h"

namespace rehome::guest {
namespace {

// Parses a number at s[*i..n) in the Linux memparse style (decimal or 0x hex, optional K/M/G
// suffix) and advances *i. Stops at the first character that cannot continue the number.
bool ParseMem(const char* s, uint32_t n, uint32_t* i, bool allow_suffix, uint64_t* out) {
  uint32_t p = *i;
  uint64_t base = 10;
  if (p + 1 < n && s[p] == '0' && (s[p + 1] == 'x' || s[p + 1] == 'X')) {
    base = 16;
    p += 2;
  }
  const uint32_t first = p;
  uint64_t value = 0;
  for (; p < n; ++p) {
    const char c = s[p];
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      break;
    }
    if (value > (~0ull - digit) / base) return false;
    value = value * base + digit;
  }
  if (p == first) return false;
  if (allow_suffix && p < n) {
    uint32_t shift = 0;
    const char c = s[p];
    if (c == 'k' || c == 'K') shift = 10;
    if (c == 'm' || c == 'M') shift = 20;
    if (c == 'g' || c == 'G') shift = 30;
    if (shift != 0) {
      if (value > (~0ull >> shift)) return false;
      value <<= shift;
      ++p;
    }
  }
  *i = p;
  *out = value;
  return true;
}

}  // namespace

bool ParseVirtioMmioDevice(const char* s, uint32_t n, VirtioMmioRegion* out) {
  uint32_t i = 0;
  uint64_t size = 0, base = 0, irq = 0;
  if (!ParseMem(s, n, &i, true, &size) || i >= n || s[i++] != '@') return false;
  if (!ParseMem(s, n, &i, true, &base) || i >= n || s[i++] != ':') return false;
  if (!ParseMem(s, n, &i, false, &irq) || irq > 0xffffffffu) return false;
  if (i < n) {  // optional ":<platform device id>", ignored
    if (s[i++] != ':') return false;
    uint64_t id = 0;
    if (!ParseMem(s, n, &i, false, &id) || i != n) return false;
  }
  constexpr uint64_t k4G = 1ull << 32;
  if (size < kMinVirtioMmioSize || size > k4G || base > k4G - size || (base & 3) != 0) {
    return false;
  }
  out->base = base;
  out->size = size;
  out->irq = static_cast<uint32_t>(irq);
  return true;
}

}  // namespace rehome::guest
