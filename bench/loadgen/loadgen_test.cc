// bench/loadgen/loadgen_test.cc: the load generator's file formats (round trip, damage), its
// statistics, and whole runs against a real UDP responder on the loopback interface that drops
// first attempts (retries with the same id), answers twice (duplicates), never answers one
// request (given up) and sends garbage (malformed answers), open loop and closed loop.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "bench/loadgen/latency_summary.h"
#include "bench/loadgen/load_generator.h"
#include "bench/loadgen/service_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "guest/net/service_protocol.h"

namespace rehome::loadgen {
namespace {

using ::testing::HasSubstr;

std::string Request(uint16_t kind, const std::string& body) {
  service::Header h{service::kRequestMagic, service::kVersion, kind, 0};
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  return out + body;
}

TEST(ServiceFilesTest, RequestFileRoundTripsAndDamageIsRefused) {
  const std::vector<std::string> requests = {Request(1, "alpha"), Request(2, "")};
  const std::string bytes = EncodeRequestFile(requests);
  absl::StatusOr<std::vector<std::string>> parsed = ParseRequestFile(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, requests);

  std::string flipped = bytes;
  flipped[20] ^= 1;
  EXPECT_THAT(ParseRequestFile(flipped).status().message(), HasSubstr("CRC32"));
  EXPECT_THAT(ParseRequestFile("RHLG\1\0\0\0").status().message(), HasSubstr("bad magic"));
  std::string version = bytes;
  version[4] = 9;
  EXPECT_THAT(ParseRequestFile(version).status().message(), HasSubstr("version 9"));
  EXPECT_FALSE(ParseRequestFile(bytes.substr(0, bytes.size() - 7), false).ok());
  EXPECT_THAT(ParseRequestFile(EncodeRequestFile({"short"})).status().message(),
              HasSubstr("16..1472"));
}

TEST(ServiceFilesTest, ResponseLogRoundTrips) {
  std::vector<ResponseRecord> records(2);
  records[0] = {1, 0, 0, 1000, 250, 0, "body"};
  records[1] = {2, 1, 3, 2000, -1, 0, ""};
  absl::StatusOr<std::vector<ResponseRecord>> parsed = ParseResponseLog(EncodeResponseLog(records));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].body, "body");
  EXPECT_EQ((*parsed)[1].retries, 3u);
  EXPECT_EQ((*parsed)[1].latency_ns, -1);
  std::string damaged = EncodeResponseLog(records);
  damaged[12] ^= 0x40;
  EXPECT_FALSE(ParseResponseLog(damaged).ok());
}

TEST(LatencySummaryTest, NearestRankPercentilesAndCounts) {
  std::vector<ResponseRecord> records;
  for (int i = 1; i <= 100; ++i) {
    ResponseRecord r;
    r.request_id = i;
    r.send_ns = i * 1'000'000;
    r.latency_ns = i * 1000;  // 1..100 µs
    r.retries = i == 50 ? 2 : 0;
    records.push_back(r);
  }
  records.push_back({101, 0, 50, 200'000'000, -1, 0, ""});
  const LatencySummary s = Summarize(records);
  EXPECT_EQ(s.sent, 101u);
  EXPECT_EQ(s.answered, 100u);
  EXPECT_EQ(s.unanswered, 1u);
  EXPECT_EQ(s.retries, 52u);
  EXPECT_EQ(s.retried_requests, 2u);
  EXPECT_DOUBLE_EQ(s.p50_us, 50);
  EXPECT_DOUBLE_EQ(s.p95_us, 95);
  EXPECT_DOUBLE_EQ(s.p99_us, 99);
  EXPECT_DOUBLE_EQ(s.max_us, 100);
  EXPECT_DOUBLE_EQ(s.mean_us, 50.5);
  EXPECT_NEAR(s.duration_s, 0.199, 1e-9);
  EXPECT_THAT(SummaryJson(s, {{"duplicates", "3"}}), HasSubstr("\"duplicates\":3"));
}

// A UDP service on 127.0.0.1 that misbehaves on purpose, on its own thread.
class Responder {
 public:
  Responder() : sock_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(sock_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr_);
    getsockname(sock_.get(), reinterpret_cast<sockaddr*>(&addr_), &len);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Responder() {
    done_ = true;
    thread_.join();
  }
  const sockaddr_in& addr() const { return addr_; }
  std::map<uint64_t, int> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void Serve() {
    char buf[2048];
    while (!done_) {
      pollfd fd{sock_.get(), POLLIN, 0};
      if (poll(&fd, 1, 20) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      const ssize_t n =
          recvfrom(sock_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 16) continue;
      service::Header h;
      std::memcpy(&h, buf, sizeof(h));
      int attempt;
      {
        std::lock_guard lock(mu_);
        attempt = seen_[h.request_id]++;
      }
      if (h.request_id == 3) continue;                      // never answered
      if (h.request_id % 5 == 0 && attempt == 0) continue;  // first attempt lost
      auto reply = [&](const std::string& bytes) {
        sendto(sock_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      };
      if (h.request_id == 4) reply("garbage, not a response header");
      service::Header r{service::kResponseMagic, service::kVersion, h.kind, h.request_id};
      const std::string answer =
          std::string(reinterpret_cast<const char*>(&r), sizeof(r)) + std::string(buf + 16, n - 16);
      reply(answer);
      if (h.request_id == 7) reply(answer);  // a duplicate
    }
  }

  UniqueFd sock_;
  sockaddr_in addr_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<uint64_t, int> seen_;
};

void ExpectMisbehaviourHandled(const std::vector<ResponseRecord>& records, const LoadExtras& extras,
                               Responder& responder, const std::vector<std::string>& requests) {
  ASSERT_EQ(records.size(), 40u);
  for (const ResponseRecord& r : records) {
    SCOPED_TRACE(r.request_id);
    EXPECT_EQ(r.record_index, (r.request_id - 1) % requests.size());
    if (r.request_id == 3) {
      EXPECT_EQ(r.latency_ns, -1);
      EXPECT_EQ(r.retries, 2u);  // max_retries, then given up
      continue;
    }
    ASSERT_GE(r.latency_ns, 0);
    EXPECT_EQ(r.retries, r.request_id % 5 == 0 ? 1u : 0u);  // resent once, with the same id
    // The body came back from the request this id was sent with.
    EXPECT_EQ(r.body, requests[r.record_index].substr(16));
    EXPECT_EQ(r.status, r.record_index + 1);
  }
  std::map<uint64_t, int> seen = responder.seen();
  EXPECT_EQ(seen.size(), 40u);  // ids 1..40, nothing else
  EXPECT_EQ(seen[3], 3);
  EXPECT_EQ(seen[10], 2);
  EXPECT_EQ(extras.duplicates, 1u);
  EXPECT_EQ(extras.malformed, 1u);
  EXPECT_EQ(extras.stray, 0u);
}

TEST(LoadGeneratorTest, OpenLoopRetriesWithTheSameIdAndGivesUp) {
  Responder responder;
  LoadConfig config;
  config.target = responder.addr();
  config.requests = {Request(1, "one"), Request(2, "two"), Request(3, "three")};
  config.clients = 4;
  config.interval = absl::Milliseconds(8);  // a send every 2 ms
  config.count = 40;
  config.timeout = absl::Milliseconds(30);
  config.max_retries = 2;
  LoadExtras extras;
  absl::StatusOr<std::vector<ResponseRecord>> records = RunLoad(config, &extras);
  ASSERT_TRUE(records.ok()) << records.status();
  ExpectMisbehaviourHandled(*records, extras, responder, config.requests);
  // Open loop: sends follow the schedule, answered or not.
  EXPECT_GE((*records)[39].send_ns - (*records)[0].send_ns, 39 * 2'000'000 - 1'000'000);
}

// The client stalls (here: its progress callback sleeps 1 s, as a descheduled client would)
// while answers arrive: their latency is dated by the kernel's receive time, not by when the
// client got around to reading them.
TEST(LoadGeneratorTest, LatencyIsDatedByTheKernelNotByAStalledClient) {
  Responder responder;
  LoadConfig config;
  config.target = responder.addr();
  config.requests = {Request(1, "x")};
  config.interval = absl::Milliseconds(5);
  config.duration = absl::Milliseconds(1300);
  config.timeout = absl::Seconds(1);
  config.max_retries = 0;
  bool stalled = false;
  config.progress = [&](uint64_t, uint64_t, uint64_t, uint64_t) {
    if (stalled) return;
    stalled = true;
    absl::SleepFor(absl::Seconds(1));  // the stall under test, not a wait
  };
  LoadExtras extras;
  absl::StatusOr<std::vector<ResponseRecord>> records = RunLoad(config, &extras);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_TRUE(stalled);
  int64_t worst = 0;
  for (const ResponseRecord& r : *records) {
    // The responder's own misbehaviour: 3 never answered, first attempts of multiples of 5 lost.
    if (r.request_id == 3 || r.request_id % 5 == 0) continue;
    ASSERT_GE(r.latency_ns, 0) << r.request_id;
    worst = std::max(worst, r.latency_ns);
  }
  // (Loopback answers take microseconds; half the stall leaves room for a loaded host.)
  EXPECT_LT(worst, 500'000'000) << "a latency included the client's 1 s stall";
}

TEST(LoadGeneratorTest, ClosedLoopKeepsNOutstanding) {
  Responder responder;
  LoadConfig config;
  config.target = responder.addr();
  config.requests = {Request(1, "a"), Request(2, "bb")};
  config.closed_loop = true;
  config.clients = 3;
  config.count = 40;
  config.timeout = absl::Milliseconds(30);
  config.max_retries = 2;
  LoadExtras extras;
  absl::StatusOr<std::vector<ResponseRecord>> records = RunLoad(config, &extras);
  ASSERT_TRUE(records.ok()) << records.status();
  ExpectMisbehaviourHandled(*records, extras, responder, config.requests);
  // When each request was sent, fewer than 3 earlier ones were still waiting for an answer.
  for (const ResponseRecord& r : *records) {
    int waiting = 0;
    for (const ResponseRecord& earlier : *records) {
      if (earlier.request_id >= r.request_id) break;
      const int64_t done = earlier.latency_ns >= 0 ? earlier.send_ns + earlier.latency_ns
                                                   : earlier.send_ns + 3 * 30'000'000;
      waiting += earlier.send_ns <= r.send_ns && r.send_ns < done ? 1 : 0;
    }
    EXPECT_LT(waiting, 3) << "request " << r.request_id;
  }
}

TEST(LoadGeneratorTest, StopEndsTheRunWithOutstandingUnanswered) {
  Responder responder;
  LoadConfig config;
  config.target = responder.addr();
  config.requests = {Request(1, "x")};
  config.clients = 1;
  config.interval = absl::Milliseconds(1);
  config.duration = absl::Seconds(60);
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    while (responder.seen().size() < 20) std::this_thread::yield();
    stop = true;
  });
  LoadExtras extras;
  absl::StatusOr<std::vector<ResponseRecord>> records = RunLoad(config, &extras, &stop);
  stopper.join();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_GE(records->size(), 20u);
  EXPECT_LT(records->size(), 60000u);
  EXPECT_EQ((*records)[2].latency_ns, -1);  // id 3 is never answered
}

TEST(LoadGeneratorTest, BadConfigurationsAreRefused) {
  LoadConfig config;
  EXPECT_FALSE(RunLoad(config, nullptr).ok());
  config.requests = {Request(1, "")};
  EXPECT_THAT(RunLoad(config, nullptr).status().message(), HasSubstr("count or a duration"));
}

}  // namespace
}  // namespace rehome::loadgen
