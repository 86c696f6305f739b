// bench/loadgen/load_generator.h: drives a UDP request/response service (docs/service-
// protocol.md) with the requests of a request file, open loop (a fixed send schedule that does
// not wait for answers: `clients` clients each sending every `interval`, evenly phased, as
// Romulus's Solr clients) or closed loop (`clients` requests outstanding at a time, each answer
// releasing the next: maximum throughput). Send number k carries request id k+1 and request
// record k % size; a request unanswered after `timeout` is sent again with the same id, up to
// `max_retries` times, then given up. Latency is from the first send to the first valid answer's
// arrival (what a retrying client sees), the arrival dated by the kernel as the datagram reached
// the socket (SO_TIMESTAMPNS), so the client's own scheduling after that does not count. One
// thread, one connected socket; RunLoad blocks until every request is answered or given up, or
// `stop` is set (outstanding ones are then unanswered).
#ifndef REHOME_BENCH_LOADGEN_LOAD_GENERATOR_H_
#define REHOME_BENCH_LOADGEN_LOAD_GENERATOR_H_

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/loadgen/service_files.h"

namespace rehome::loadgen {

struct LoadConfig {
  sockaddr_in target{};
  std::vector<std::string> requests;  // datagrams; bytes 8..15 (the id) are overwritten
  bool closed_loop = false;
  uint32_t clients = 1;  // open loop: clients; closed loop: requests outstanding
  absl::Duration interval = absl::Milliseconds(50);  // open loop: each client's period
  uint64_t count = 0;  // distinct requests to send (0: until `duration`)
  absl::Duration duration = absl::InfiniteDuration();  // stop sending new ones after this
  absl::Duration timeout = absl::Milliseconds(100);
  uint32_t max_retries = 50;
  // Called about once a second with (sent, answered, retries, outstanding), for progress lines.
  std::function<void(uint64_t, uint64_t, uint64_t, uint64_t)> progress;
};

// Counters the records do not show.
struct LoadExtras {
  uint64_t duplicates = 0;  // answers to an id already answered (after a retry)
  uint64_t stray = 0;       // answers with an id never sent
  uint64_t malformed = 0;   // datagrams without a valid response header
  uint64_t late_sends = 0;  // open loop: sends more than 1 ms behind their schedule
};

absl::StatusOr<std::vector<ResponseRecord>> RunLoad(const LoadConfig& config, LoadExtras* extras,
                                                    const std::atomic<bool>* stop = nullptr);

}  // namespace rehome::loadgen

#endif  // REHOME_BENCH_LOADGEN_LOAD_GENERATOR_H_
