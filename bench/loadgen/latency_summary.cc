// bench/loadgen/latency_summary.cc: see latency_summary.h.
#include "bench/loadgen/latency_summary.h"

#include <algorithm>
#include <cmath>

#include "nlohmann/json.hpp"

namespace rehome::loadgen {

double NearestRank(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]);
}

LatencySummary Summarize(const std::vector<ResponseRecord>& records) {
  LatencySummary s;
  std::vector<int64_t> latencies;
  int64_t first = INT64_MAX, last = INT64_MIN;
  double total = 0;
  for (const ResponseRecord& r : records) {
    ++s.sent;
    s.retries += r.retries;
    s.retried_requests += r.retries != 0 ? 1 : 0;
    first = std::min(first, r.send_ns);
    if (r.latency_ns < 0) {
      ++s.unanswered;
      last = std::max(last, r.send_ns);
      continue;
    }
    ++s.answered;
    ++s.statuses[r.status];
    latencies.push_back(r.latency_ns);
    total += static_cast<double>(r.latency_ns);
    last = std::max(last, r.send_ns + r.latency_ns);
  }
  std::sort(latencies.begin(), latencies.end());
  if (s.sent != 0 && last > first) s.duration_s = static_cast<double>(last - first) / 1e9;
  if (s.duration_s > 0) s.throughput = static_cast<double>(s.answered) / s.duration_s;
  if (!latencies.empty()) {
    s.mean_us = total / static_cast<double>(latencies.size()) / 1e3;
    s.p50_us = NearestRank(latencies, 50) / 1e3;
    s.p95_us = NearestRank(latencies, 95) / 1e3;
    s.p99_us = NearestRank(latencies, 99) / 1e3;
    s.max_us = static_cast<double>(latencies.back()) / 1e3;
  }
  return s;
}

std::string SummaryJson(const LatencySummary& s, const std::map<std::string, std::string>& extra) {
  nlohmann::ordered_json j;
  j["sent"] = s.sent;
  j["answered"] = s.answered;
  j["unanswered"] = s.unanswered;
  j["retries"] = s.retries;
  j["retried_requests"] = s.retried_requests;
  j["duration_s"] = s.duration_s;
  j["throughput_per_s"] = s.throughput;
  j["latency_us"] = {{"mean", s.mean_us},
                     {"p50", s.p50_us},
                     {"p95", s.p95_us},
                     {"p99", s.p99_us},
                     {"max", s.max_us}};
  nlohmann::ordered_json statuses = nlohmann::ordered_json::object();
  for (const auto& [status, count] : s.statuses) statuses[std::to_string(status)] = count;
  j["statuses"] = statuses;
  for (const auto& [key, value] : extra) {
    j[key] = nlohmann::ordered_json::parse(value, nullptr, /*allow_exceptions=*/false);
  }
  return j.dump();
}

}  // namespace rehome::loadgen
