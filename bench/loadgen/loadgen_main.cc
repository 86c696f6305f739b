// bench/loadgen/loadgen_main.cc: `rehome-loadgen`, the load generator of the service benchmarks
// (docs/service-protocol.md, docs/benchmarks.md). Reads a request file, drives the service at
// --target open loop or closed loop, writes the response log (--out) for the oracles, and prints
// one JSON summary line (throughput, latency mean/p50/p95/p99/max in µs, retries, unanswered).
// Exit status: 0 run complete (unanswered requests are counted, not an error), 1 socket or file
// error, 2 bad usage or a bad request file. SIGINT/SIGTERM end the run early; what was measured
// so far is still written.
#include <arpa/inet.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/loadgen/latency_summary.h"
#include "bench/loadgen/load_generator.h"

namespace {

using rehome::loadgen::LoadConfig;

constexpr char kUsage[] =
    "usage: rehome-loadgen --target IP:PORT --requests FILE [--out LOG] [--summary FILE]\n"
    "         [--profile full|light | --clients N --interval-ms MS | --closed N]\n"
    "         (--count N | --duration-s S) [--timeout-ms MS] [--max-retries N] [--progress]\n"
    "  --profile full    25 clients x 1 request / 50 ms (open loop; Romulus's full load)\n"
    "  --profile light   1 client x 1 request / 1000 ms (open loop; Romulus's light load)\n"
    "  --closed N        closed loop, N requests outstanding (maximum throughput)\n"
    "  --timeout-ms MS   resend an unanswered request with the same id after MS (default 100)\n"
    "  --max-retries N   then give it up after N resends (default 50)\n";

std::atomic<bool> g_stop{false};

int Usage(const std::string& why) {
  std::fprintf(stderr, "rehome-loadgen: %s\n%s", why.c_str(), kUsage);
  return 2;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  LoadConfig config;
  std::string target, requests_path, out_path, summary_path;
  bool have_rate = false, progress = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    auto number = [&](auto* out) {
      std::string text;
      return value(&text) && absl::SimpleAtoi(text, out);
    };
    std::string text;
    uint64_t n = 0;
    double seconds = 0;
    if (arg == "--target") {
      if (!value(&target)) return Usage("--target needs IP:PORT");
    } else if (arg == "--requests") {
      if (!value(&requests_path)) return Usage("--requests needs a file");
    } else if (arg == "--out") {
      if (!value(&out_path)) return Usage("--out needs a file");
    } else if (arg == "--summary") {
      if (!value(&summary_path)) return Usage("--summary needs a file");
    } else if (arg == "--profile") {
      if (!value(&text)) return Usage("--profile needs full or light");
      if (text == "full") {
        config.clients = 25;
        config.interval = absl::Milliseconds(50);
      } else if (text == "light") {
        config.clients = 1;
        config.interval = absl::Milliseconds(1000);
      } else {
        return Usage(absl::StrCat("unknown profile '", text, "' (full, light)"));
      }
      have_rate = true;
    } else if (arg == "--clients") {
      if (!number(&n) || n == 0 || n > 100000) return Usage("--clients needs 1..100000");
      config.clients = static_cast<uint32_t>(n);
      have_rate = true;
    } else if (arg == "--interval-ms") {
      if (!value(&text) || !absl::SimpleAtod(text, &seconds) || !(seconds > 0)) {
        return Usage("--interval-ms needs a positive number");
      }
      config.interval = absl::Microseconds(static_cast<int64_t>(seconds * 1000));
      have_rate = true;
    } else if (arg == "--closed") {
      if (!number(&n) || n == 0 || n > 100000) return Usage("--closed needs 1..100000");
      config.closed_loop = true;
      config.clients = static_cast<uint32_t>(n);
      have_rate = true;
    } else if (arg == "--count") {
      if (!number(&config.count) || config.count == 0) return Usage("--count needs N >= 1");
    } else if (arg == "--duration-s") {
      if (!value(&text) || !absl::SimpleAtod(text, &seconds) || !(seconds > 0)) {
        return Usage("--duration-s needs a positive number");
      }
      config.duration = absl::Milliseconds(static_cast<int64_t>(seconds * 1000));
    } else if (arg == "--timeout-ms") {
      if (!number(&n) || n == 0) return Usage("--timeout-ms needs N >= 1");
      config.timeout = absl::Milliseconds(static_cast<int64_t>(n));
    } else if (arg == "--max-retries") {
      if (!number(&n) || n > 1000000) return Usage("--max-retries needs 0..1000000");
      config.max_retries = static_cast<uint32_t>(n);
    } else if (arg == "--progress") {
      progress = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      return Usage(absl::StrCat("unknown option '", arg, "'"));
    }
  }
  if (target.empty() || requests_path.empty()) return Usage("--target and --requests are needed");
  if (!have_rate) return Usage("give --profile, --clients/--interval-ms or --closed");
  if (config.count == 0 && config.duration == absl::InfiniteDuration()) {
    return Usage("give --count or --duration-s");
  }
  std::vector<std::string> parts = absl::StrSplit(target, ':');
  uint32_t port = 0;
  config.target.sin_family = AF_INET;
  if (parts.size() != 2 || inet_pton(AF_INET, parts[0].c_str(), &config.target.sin_addr) != 1 ||
      !absl::SimpleAtoi(parts[1], &port) || port == 0 || port > 65535) {
    return Usage(absl::StrCat("bad --target '", target, "' (IPv4:PORT)"));
  }
  config.target.sin_port = htons(static_cast<uint16_t>(port));
  std::string bytes;
  if (!ReadFile(requests_path, &bytes)) {
    std::fprintf(stderr, "rehome-loadgen: cannot read %s: %s\n", requests_path.c_str(),
                 std::strerror(errno));
    return 2;
  }
  absl::StatusOr<std::vector<std::string>> requests = rehome::loadgen::ParseRequestFile(bytes);
  if (!requests.ok()) {
    std::fprintf(stderr, "rehome-loadgen: %s: %s\n", requests_path.c_str(),
                 std::string(requests.status().message()).c_str());
    return 2;
  }
  config.requests = std::move(*requests);
  if (progress) {
    config.progress = [](uint64_t sent, uint64_t answered, uint64_t retries, uint64_t out) {
      std::fprintf(stderr,
                   "rehome-loadgen: sent %llu answered %llu retries %llu outstanding %llu\n",
                   static_cast<unsigned long long>(sent), static_cast<unsigned long long>(answered),
                   static_cast<unsigned long long>(retries), static_cast<unsigned long long>(out));
    };
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop.store(true); };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  rehome::loadgen::LoadExtras extras;
  absl::StatusOr<std::vector<rehome::loadgen::ResponseRecord>> records =
      rehome::loadgen::RunLoad(config, &extras, &g_stop);
  if (!records.ok()) {
    std::fprintf(stderr, "rehome-loadgen: %s\n", std::string(records.status().message()).c_str());
    return 1;
  }
  if (!out_path.empty()) {
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out << rehome::loadgen::EncodeResponseLog(*records);
    if (!out.flush()) {
      std::fprintf(stderr, "rehome-loadgen: cannot write %s\n", out_path.c_str());
      return 1;
    }
  }
  const std::string json =
      rehome::loadgen::SummaryJson(rehome::loadgen::Summarize(*records),
                                   {{"duplicates", std::to_string(extras.duplicates)},
                                    {"stray", std::to_string(extras.stray)},
                                    {"malformed_responses", std::to_string(extras.malformed)},
                                    {"late_sends", std::to_string(extras.late_sends)},
                                    {"interrupted", g_stop.load() ? "true" : "false"}});
  std::printf("%s\n", json.c_str());
  if (!summary_path.empty()) {
    std::ofstream out(summary_path, std::ios::trunc);
    out << json << "\n";
    if (!out.flush()) {
      std::fprintf(stderr, "rehome-loadgen: cannot write %s\n", summary_path.c_str());
      return 1;
    }
  }
  return 0;
}
