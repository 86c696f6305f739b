// tests/qmp_test_helpers.h: QMP client helpers for the integration tests that drive the real
// `rehome run --qmp` (qmp_integration_test, host_signal_test): connecting, raw exchanges, event
// logs and waits, L1 queries, all bounded by deadlines. Test-only; thread-compatible (EventLog
// is thread-safe: QmpClient's I/O thread feeds it).
#ifndef REHOME_TESTS_QMP_TEST_HELPERS_H_
#define REHOME_TESTS_QMP_TEST_HELPERS_H_

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "qmp-client/testing/qemu_process.h"
#include "tests/rehome_child.h"
#include "tests/subprocess.h"

namespace rehome::testing {

using Json = nlohmann::json;

inline constexpr absl::Duration kReplyTimeout = absl::Seconds(30);
inline constexpr absl::Duration kEventTimeout = absl::Seconds(60);
inline constexpr char kFailoverCompleted[] = "__org.rehome_FAILOVER_COMPLETED";

// The counter workload on 2 vCPUs, split L1s. On a loaded 2-core host the supervisor may declare
// spurious L1 hangs (see the report); a high limit keeps those from stopping the guest mid-test.
inline std::vector<std::string> KernelArgs() {
  return {"--kernel",        GuestElf(),
          "--cpus",          "2",
          "--cmdline",       "workload=counter steps=0 report_every=5000000",
          "--max-failovers", "1000"};
}

inline std::string Recovery(const std::string& hang_timeout_ms) {
  return absl::StrCat(
      R"(<rehome:recovery xmlns:rehome="https://rehome.dev/xmlns/domain/1.0" version="1" )"
      R"(mode="failover" standbys="2"><rehome:heartbeat period-ms="10"/>)"
      R"(<rehome:hang timeout-ms=")",
      hang_timeout_ms,
      R"("/><rehome:limit failovers="5" window-s="30"/><rehome:l1-sandbox level="off"/>)"
      R"(</rehome:recovery>)");
}

inline std::unique_ptr<QmpClient> Connect(const std::string& socket, bool negotiate = true) {
  QmpClientOptions options;
  options.connect_timeout = kReplyTimeout;
  options.negotiate = negotiate;
  absl::StatusOr<std::unique_ptr<QmpClient>> client = QmpClient::Connect(socket, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

// Raw peer, past the greeting (returned in `greeting` when asked).
inline std::optional<RawQmpPeer> RawConnect(const std::string& socket, Json* greeting = nullptr) {
  absl::StatusOr<RawQmpPeer> peer = RawQmpPeer::Connect(socket);
  EXPECT_TRUE(peer.ok()) << peer.status();
  if (!peer.ok()) return std::nullopt;
  auto values =
      peer->ReadUntil([](const std::vector<Json>& v) { return !v.empty(); }, kReplyTimeout);
  EXPECT_TRUE(values.ok()) << values.status();
  if (!values.ok()) return std::nullopt;
  if (greeting != nullptr) *greeting = (*values)[0];
  return std::move(*peer);
}

// Sends `bytes` followed by a query-name with id "sync"; returns every non-event value that came
// back before the sync reply (events are skipped: rehome may fail over at any time).
inline std::vector<Json> Exchange(RawQmpPeer& peer, const std::string& bytes) {
  EXPECT_TRUE(peer.Send(bytes + "\r\n{\"execute\":\"query-name\",\"id\":\"sync\"}\r\n").ok());
  auto values = peer.ReadUntil(
      [](const std::vector<Json>& v) {
        return std::any_of(v.begin(), v.end(), [](const Json& value) {
          return !value.contains("event") && value.value("id", Json()) == "sync";
        });
      },
      kReplyTimeout);
  EXPECT_TRUE(values.ok()) << values.status();
  std::vector<Json> replies;
  if (!values.ok()) return replies;
  for (const Json& value : *values) {
    if (!value.contains("event") && value.value("id", Json()) != "sync") replies.push_back(value);
  }
  return replies;
}

// Events seen by one client, in arrival order.
class EventLog final {
 public:
  void Attach(QmpClient& client) {
    client.SetEventCallback([this](const QmpEvent& event) {
      absl::MutexLock lock(&mu_);
      events_.push_back(event);
    });
  }
  template <typename Pred>
  bool Await(Pred pred, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() { return pred(events_); };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::vector<QmpEvent> Snapshot() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<QmpEvent> events_ ABSL_GUARDED_BY(mu_);
};

// FAILOVER_COMPLETED events stamped at or after `since`, as (new pid, downtime) pairs.
inline std::vector<Json> Completions(const std::vector<QmpEvent>& events, absl::Time since) {
  std::vector<Json> out;
  for (const QmpEvent& e : events) {
    const absl::Time stamp =
        absl::FromUnixMicros(e.timestamp.seconds * 1000000 + e.timestamp.microseconds);
    if (e.name == kFailoverCompleted && stamp >= since) {
      out.push_back({e.data->at("pid"), e.data->at("downtime-us")});
    }
  }
  return out;
}

inline absl::StatusOr<QmpEvent> WaitEventNamed(QmpClient& client, std::string_view name) {
  const absl::Time deadline = absl::Now() + kEventTimeout;
  for (;;) {
    ASSIGN_OR_RETURN(QmpEvent event, client.WaitEvent(deadline - absl::Now()));
    if (event.name == name) return event;
  }
}

inline std::vector<int64_t> PidsWithRole(const Json& l1s, std::string_view role) {
  std::vector<int64_t> pids;
  if (!l1s.is_array()) return pids;
  for (const Json& l1 : l1s) {
    if (l1.value("role", "") == role) pids.push_back(l1.value("pid", int64_t{-1}));
  }
  return pids;
}

// Polls query-l1s until `want(reply)` holds or the deadline passes; returns the last reply.
template <typename Want>
Json PollL1s(QmpClient& client, Want want) {
  const absl::Time deadline = absl::Now() + kEventTimeout;
  Json last;
  for (;;) {
    absl::StatusOr<Json> l1s = client.Execute("__org.rehome_query-l1s");
    if (l1s.ok()) last = *l1s;
    if ((l1s.ok() && want(last)) || absl::Now() > deadline) return last;
    absl::SleepFor(kPollInterval);  // poll interval, bounded by the deadline
  }
}

inline bool HasStandby(const Json& l1s) {
  return PidsWithRole(l1s, "active").size() == 1 && !PidsWithRole(l1s, "standby").empty();
}

inline std::string StatusOf(QmpClient& client) {
  absl::StatusOr<Json> status = client.Execute("query-status");
  return status.ok() ? status->value("status", "?") : std::string(status.status().message());
}

inline Json Exec(QmpClient& client, std::string_view name,
                 std::optional<Json> args = std::nullopt) {
  absl::StatusOr<Json> result = client.Execute(name, std::move(args), kReplyTimeout);
  EXPECT_TRUE(result.ok()) << name << ": " << result.status();
  return result.ok() ? *result : Json();
}

// The error of a command expected to fail, as {"class": ..., "desc": ...}.
inline Json ErrorOf(QmpClient& client, std::string_view name,
                    std::optional<Json> args = std::nullopt) {
  absl::StatusOr<QmpResponse> reply = client.ExecuteRaw(name, std::move(args), kReplyTimeout);
  EXPECT_TRUE(reply.ok()) << name << ": " << reply.status();
  if (!reply.ok() || !reply->error.has_value()) return Json();
  return Json{{"class", reply->error->error_class}, {"desc", reply->error->desc}};
}

inline Json Error(std::string_view error_class, std::string_view desc) {
  return Json{{"class", std::string(error_class)}, {"desc", std::string(desc)}};
}

}  // namespace rehome::testing

#endif  // REHOME_TESTS_QMP_TEST_HELPERS_H_
