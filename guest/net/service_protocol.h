// guest/net/service_protocol.h: the request/response framing of the test guest's network
// services (search, oltp) over UDP, shared by the guest handlers and the host tools (load
// generator, oracles); docs/service-protocol.md is the reference. Every datagram starts with a
// 16-byte little-endian header; the body depends on the service and kind. A request id is chosen
// by the client and echoed in the response; a client that retries sends the same id again, and
// a service that changes state applies an id at most once (it answers a repeat from its record
// of the first answer). Plain data, header-only; usable from freestanding guest code.
#ifndef REHOME_GUEST_NET_SERVICE_PROTOCOL_H_
#define REHOME_GUEST_NET_SERVICE_PROTOCOL_H_

#include <stdint.h>

namespace rehome::service {

inline constexpr uint32_t kRequestMagic = 0x51534852;   // "RHSQ" little-endian
inline constexpr uint32_t kResponseMagic = 0x52534852;  // "RHSR" little-endian
inline constexpr uint16_t kVersion = 1;

// Service ports (UDP) on the guest address.
inline constexpr uint16_t kSearchPort = 8081;
inline constexpr uint16_t kOltpPort = 8082;

struct Header {
  uint32_t magic;       // kRequestMagic or kResponseMagic
  uint16_t version;     // kVersion
  uint16_t kind;        // request: the operation (per service); response: a Status
  uint64_t request_id;  // chosen by the client, echoed in the response
};
static_assert(sizeof(Header) == 16, "wire header is 16 bytes");

// A request of this kind whose body is exactly kStopBody ends the service: it is answered with
// status kOk (empty body) and the workload then finishes as after its last step (done line,
// guest exit 0). A test-harness control (the fault campaigns end their runs with it), not an
// authenticated one: the test guest serves only its own namespace's tap.
inline constexpr uint16_t kStopService = 0xfff0;
inline constexpr char kStopBody[4] = {'s', 't', 'o', 'p'};

// Response status (Header::kind of a response).
enum Status : uint16_t {
  kOk = 0,
  kMalformed = 1,  // bad magic/version/kind/length: nothing was done
  kNotFound = 2,   // the request named something that does not exist (service-defined)
  kAborted = 3,    // the transaction rolled back by its own logic (TPC-C's 1% New-Order)
  kFailed = 4,     // the service could not do it (I/O error); nothing was applied
};

}  // namespace rehome::service

#endif  // REHOME_GUEST_NET_SERVICE_PROTOCOL_H_
