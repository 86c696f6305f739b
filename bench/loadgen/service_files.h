// bench/loadgen/service_files.h: the load generator's two file formats (docs/service-protocol.md):
// the request file it reads ("RHRQ": the datagrams to send, in order) and the response log it
// writes ("RHLG": one record per request sent, with its latency and the response body), which
// the services' oracles and checkers read. Each file ends with a CRC32 of everything before it.
// Pure functions over byte strings; thread-compatible.
#ifndef REHOME_BENCH_LOADGEN_SERVICE_FILES_H_
#define REHOME_BENCH_LOADGEN_SERVICE_FILES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome::loadgen {

inline constexpr char kRequestFileMagic[4] = {'R', 'H', 'R', 'Q'};
inline constexpr char kResponseLogMagic[4] = {'R', 'H', 'L', 'G'};
inline constexpr uint32_t kServiceFileVersion = 1;
// Largest datagram a record may hold (one unfragmented UDP payload on the guest's link).
inline constexpr uint32_t kMaxDatagram = 1472;

// Parses a request file: at least one record, each at least a 16-byte service header and at
// most kMaxDatagram bytes. The CRC32 trailer is optional for files written by hand-made tools
// only when `require_crc` is false.
absl::StatusOr<std::vector<std::string>> ParseRequestFile(std::string_view bytes,
                                                          bool require_crc = true);
std::string EncodeRequestFile(const std::vector<std::string>& datagrams);

// One request as the load generator saw it.
struct ResponseRecord {
  uint64_t request_id = 0;
  uint32_t record_index = 0;  // which request of the request file
  uint32_t retries = 0;       // sends after the first
  int64_t send_ns = 0;        // CLOCK_MONOTONIC of the first send
  int64_t latency_ns = -1;    // first send to the first valid response; -1: never answered
  uint16_t status = 0;        // the response header's kind
  std::string body;           // the response after its 16-byte header
};

std::string EncodeResponseLog(const std::vector<ResponseRecord>& records);
absl::StatusOr<std::vector<ResponseRecord>> ParseResponseLog(std::string_view bytes);

}  // namespace rehome::loadgen

#endif  // REHOME_BENCH_LOADGEN_SERVICE_FILES_H_
