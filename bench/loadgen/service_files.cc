// bench/loadgen/service_files.cc: see service_files.h.
#include "bench/loadgen/service_files.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace rehome::loadgen {
namespace {

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // the host is little-endian (x86-64), as the format
  out->append(bytes, sizeof(T));
}

// A bounds-checked little-endian reader.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, std::string* out) {
    if (bytes_.size() - pos_ < n) return false;
    out->assign(bytes_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

uint32_t Crc(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

void AppendCrc(std::string* out) { Put<uint32_t>(out, Crc(*out)); }

// Checks the magic, version and CRC trailer; returns the bytes between header and trailer.
absl::StatusOr<std::string_view> Unwrap(std::string_view bytes, const char (&magic)[4],
                                        const char* what, bool require_crc) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), magic, 4) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("not a ", what, " (bad magic)"));
  }
  uint32_t version;
  std::memcpy(&version, bytes.data() + 4, 4);
  if (version != kServiceFileVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " version ", version, " (expected ", kServiceFileVersion, ")"));
  }
  if (bytes.size() >= 12) {
    uint32_t stored;
    std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
    if (stored == Crc(bytes.substr(0, bytes.size() - 4))) {
      return bytes.substr(8, bytes.size() - 12);
    }
  }
  if (require_crc) return absl::DataLossError(absl::StrCat(what, ": CRC32 mismatch"));
  return bytes.substr(8);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseRequestFile(std::string_view bytes,
                                                          bool require_crc) {
  absl::StatusOr<std::string_view> body =
      Unwrap(bytes, kRequestFileMagic, "request file", require_crc);
  if (!body.ok()) return body.status();
  Reader in(*body);
  uint32_t count;
  if (!in.Get(&count) || count == 0) {
    return absl::InvalidArgumentError("request file: no requests");
  }
  std::vector<std::string> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t length;
    std::string datagram;
    if (!in.Get(&length) || !in.GetBytes(length, &datagram)) {
      return absl::InvalidArgumentError(absl::StrCat("request file: record ", i, " truncated"));
    }
    if (length < 16 || length > kMaxDatagram) {
      return absl::InvalidArgumentError(
          absl::StrCat("request file: record ", i, " is ", length, " bytes (16..1472)"));
    }
    out.push_back(std::move(datagram));
  }
  if (in.pos() != body->size()) {
    return absl::InvalidArgumentError("request file: bytes after the last record");
  }
  return out;
}

std::string EncodeRequestFile(const std::vector<std::string>& datagrams) {
  std::string out(kRequestFileMagic, 4);
  Put<uint32_t>(&out, kServiceFileVersion);
  Put<uint32_t>(&out, static_cast<uint32_t>(datagrams.size()));
  for (const std::string& d : datagrams) {
    Put<uint32_t>(&out, static_cast<uint32_t>(d.size()));
    out += d;
  }
  AppendCrc(&out);
  return out;
}

std::string EncodeResponseLog(const std::vector<ResponseRecord>& records) {
  std::string out(kResponseLogMagic, 4);
  Put<uint32_t>(&out, kServiceFileVersion);
  for (const ResponseRecord& r : records) {
    Put<uint64_t>(&out, r.request_id);
    Put<uint32_t>(&out, r.record_index);
    Put<uint32_t>(&out, r.retries);
    Put<int64_t>(&out, r.send_ns);
    Put<int64_t>(&out, r.latency_ns);
    Put<uint16_t>(&out, r.status);
    Put<uint16_t>(&out, 0);
    Put<uint32_t>(&out, static_cast<uint32_t>(r.body.size()));
    out += r.body;
  }
  AppendCrc(&out);
  return out;
}

absl::StatusOr<std::vector<ResponseRecord>> ParseResponseLog(std::string_view bytes) {
  absl::StatusOr<std::string_view> body = Unwrap(bytes, kResponseLogMagic, "response log", true);
  if (!body.ok()) return body.status();
  Reader in(*body);
  std::vector<ResponseRecord> out;
  while (in.pos() < body->size()) {
    ResponseRecord r;
    uint16_t reserved;
    uint32_t length;
    if (!in.Get(&r.request_id) || !in.Get(&r.record_index) || !in.Get(&r.retries) ||
        !in.Get(&r.send_ns) || !in.Get(&r.latency_ns) || !in.Get(&r.status) || !in.Get(&reserved) ||
        !in.Get(&length) || !in.GetBytes(length, &r.body)) {
      return absl::InvalidArgumentError(
          absl::StrCat("response log: record ", out.size(), " truncated"));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace rehome::loadgen
