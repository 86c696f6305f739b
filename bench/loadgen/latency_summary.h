// bench/loadgen/latency_summary.h: the per-run figures of a load-generator run (throughput,
// latency mean and percentiles, timeouts, retries, statuses) computed from its records, and
// their JSON form. Percentiles are nearest-rank over the answered requests. Pure; thread-
// compatible.
#ifndef REHOME_BENCH_LOADGEN_LATENCY_SUMMARY_H_
#define REHOME_BENCH_LOADGEN_LATENCY_SUMMARY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen/service_files.h"

namespace rehome::loadgen {

struct LatencySummary {
  uint64_t sent = 0;        // distinct requests (ids)
  uint64_t answered = 0;    // got a valid response
  uint64_t unanswered = 0;  // gave up after the last retry
  uint64_t retries = 0;     // sends after the first, all requests together
  uint64_t retried_requests = 0;
  double duration_s = 0;  // first send to the last answer or give-up
  double throughput = 0;  // answered per second
  double mean_us = 0, p50_us = 0, p95_us = 0, p99_us = 0, max_us = 0;
  std::map<uint16_t, uint64_t> statuses;  // response status -> count
};

// Nearest-rank percentile (p in 0..100) of sorted values; 0 for none.
double NearestRank(const std::vector<int64_t>& sorted, double p);

LatencySummary Summarize(const std::vector<ResponseRecord>& records);

// One JSON object; `extra` (key -> already-encoded JSON value) is appended.
std::string SummaryJson(const LatencySummary& s,
                        const std::map<std::string, std::string>& extra = {});

}  // namespace rehome::loadgen

#endif  // REHOME_BENCH_LOADGEN_LATENCY_SUMMARY_H_
