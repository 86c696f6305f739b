// vmm/acpi/aml.cc: the AML encoders.
#include "vmm/acpi/aml.h"

#include <cassert>

namespace rehome::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                  kDWordPrefix = 0x0c, kStringPrefix = 0x0d, kQWordPrefix = 0x0e, kNameOp = 0x08,
                  kScopeOp = 0x10, kBufferOp = 0x11, kPackageOp = 0x12, kExtOpPrefix = 0x5b,
                  kDeviceOp = 0x82, kRootChar = 0x5c, kDualNamePrefix = 0x2e,
                  kMultiNamePrefix = 0x2f, kEndTag = 0x79;

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

void AppendLe(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

Bytes Concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// op, PkgLength(body), body.
Bytes WithPkgLength(Bytes op, const Bytes& body) {
  Append(op, PkgLength(body.size()));
  Append(op, body);
  return op;
}

}  // namespace

Bytes NameString(std::string_view path) {
  Bytes out;
  if (!path.empty() && path[0] == '\\') {
    out.push_back(kRootChar);
    path.remove_prefix(1);
  }
  std::vector<std::string> segs;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    std::string seg(path.substr(0, dot));
    assert(!seg.empty() && seg.size() <= 4);
    seg.resize(4, '_');
    segs.push_back(seg);
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  if (segs.empty()) out.push_back(0);  // NullName
  for (const std::string& s : segs) out.insert(out.end(), s.begin(), s.end());
  return out;
}

Bytes PkgLength(size_t body_size) {
  if (body_size + 1 < 0x40) return {static_cast<uint8_t>(body_size + 1)};
  for (int extra = 1; extra <= 3; ++extra) {
    const size_t total = body_size + 1 + extra;
    if (total < (size_t{1} << (4 + 8 * extra))) {
      Bytes out{static_cast<uint8_t>((extra << 6) | (total & 0xf))};
      for (int i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  assert(false && "AML package too large");
  return {};
}

Bytes Integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe(out, value, 1);
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe(out, value, 2);
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    AppendLe(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    AppendLe(out, value, 8);
  }
  return out;
}

Bytes String(std::string_view text) {
  Bytes out(text.size() + 2, 0);
  out[0] = kStringPrefix;
  for (size_t i = 0; i < text.size(); ++i) out[i + 1] = static_cast<uint8_t>(text[i]);
  return out;
}

Bytes EisaId(std::string_view id) {
  assert(id.size() == 7);
  auto hex = [](char c) -> uint32_t { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  const uint32_t vendor = ((id[0] - 0x40u) << 10) | ((id[1] - 0x40u) << 5) | (id[2] - 0x40u);
  const uint32_t product = (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
  // Stored big-endian: vendor high byte, vendor low byte, product high byte, product low byte.
  const uint32_t value =
      (vendor >> 8) | ((vendor & 0xff) << 8) | ((product >> 8) << 16) | ((product & 0xff) << 24);
  Bytes out{kDWordPrefix};
  AppendLe(out, value, 4);
  return out;
}

Bytes Package(const std::vector<Bytes>& elements) {
  Bytes body{static_cast<uint8_t>(elements.size())};
  Append(body, Concat(elements));
  return WithPkgLength({kPackageOp}, body);
}

Bytes Buffer(const Bytes& data) {
  Bytes body = Integer(data.size());
  Append(body, data);
  return WithPkgLength({kBufferOp}, body);
}

Bytes Name(std::string_view name, const Bytes& value) {
  Bytes out{kNameOp};
  Append(out, NameString(name));
  Append(out, value);
  return out;
}

Bytes Scope(std::string_view name, const std::vector<Bytes>& terms) {
  Bytes body = NameString(name);
  Append(body, Concat(terms));
  return WithPkgLength({kScopeOp}, body);
}

Bytes Device(std::string_view name, const std::vector<Bytes>& terms) {
  Bytes body = NameString(name);
  Append(body, Concat(terms));
  return WithPkgLength({kExtOpPrefix, kDeviceOp}, body);
}

Bytes Memory32Fixed(uint32_t base, uint32_t length, bool writable) {
  Bytes out{0x86, 9, 0, static_cast<uint8_t>(writable ? 1 : 0)};
  AppendLe(out, base, 4);
  AppendLe(out, length, 4);
  return out;
}

Bytes ExtendedInterrupt(uint32_t gsi, Trigger trigger, bool active_low, bool shared) {
  const uint8_t flags =
      static_cast<uint8_t>(1 /* consumer */ | (trigger == Trigger::kEdge ? 2 : 0) |
                           (active_low ? 4 : 0) | (shared ? 8 : 0));
  Bytes out{0x89, 6, 0, flags, 1};
  AppendLe(out, gsi, 4);
  return out;
}

Bytes IoPort(uint16_t base, uint8_t length) {
  Bytes out{0x47, 1};  // IO, 16-bit decode
  AppendLe(out, base, 2);
  AppendLe(out, base, 2);
  out.push_back(1);  // alignment
  out.push_back(length);
  return out;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data = Concat(descriptors);
  data.push_back(kEndTag);
  data.push_back(0);  // checksum 0: "treat as correct"
  return Buffer(data);
}

}  // namespace rehome::aml
