// tests/qmp_integration_test.cc: the QMP monitor of the real `rehome run --qmp` binary, driven over
// real UNIX sockets while the guest runs on real KVM with split L1 processes: QMP conformance,
// reply shapes compared with a real QEMU 7.2, several clients (one of which never reads) during
// injected failovers, planned switchover, the recovery policy from --domain XML, bad domain XML
// inputs and 'quit'. Each test starts its own rehome child (RehomeChild below: SIGKILLed and
// reaped if still alive at the end) and polls, with deadlines, for every condition it awaits.
// Thread-safety: tests only; EventLog is thread-safe (fed by QmpClient's I/O thread).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "qmp-client/testing/qemu_process.h"
#include "tests/qmp_test_helpers.h"
#include "tests/rehome_child.h"
#include "tests/subprocess.h"

extern char** environ;

namespace rehome {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

using testing::Completions;
using testing::Connect;
using testing::CounterXml;
using testing::Error;
using testing::ErrorOf;
using testing::EventLog;
using testing::Exchange;
using testing::Exec;
using testing::HasStandby;
using testing::HaveKvm;
using testing::KernelArgs;
using testing::kEventTimeout;
using testing::kFailoverCompleted;
using testing::kPollInterval;
using testing::kReplyTimeout;
using testing::kStartTimeout;
using testing::PidsWithRole;
using testing::PollL1s;
using testing::RawConnect;
using testing::Recovery;
using testing::RehomeChild;
using testing::RunningVm;
using testing::ScratchDir;
using testing::StartVm;
using testing::StatusOf;
using testing::WaitEventNamed;
using testing::WriteFile;

// The shape of a value: objects keep their keys, arrays the shape of their first element,
// scalars become their type name (all integers are "integer").
Json Shape(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object: {
      Json shape = Json::object();
      for (auto it = value.begin(); it != value.end(); ++it) shape[it.key()] = Shape(it.value());
      return shape;
    }
    case Json::value_t::array:
      return value.empty() ? Json::array() : Json::array({Shape(value[0])});
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    default:
      return value.type_name();
  }
}

TEST(QmpIntegrationTest, ConformsToQmpBasics) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  const std::string& socket = (*vm)->socket;

  Json greeting;
  std::optional<testing::RawQmpPeer> raw = RawConnect(socket, &greeting);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(Shape(greeting), Json::parse(R"({"QMP": {"version": {"qemu": {"micro": "integer",
      "minor": "integer", "major": "integer"}, "package": "string"}, "capabilities": ["string"]}})"));
  EXPECT_EQ(greeting["QMP"]["capabilities"], Json::array({"oob"}));
  EXPECT_EQ(raw->raw().substr(raw->raw().size() - 2), "\r\n");
  // Before negotiation only qmp_capabilities exists, with QEMU's wording.
  std::vector<Json> replies = Exchange(*raw, R"({"execute": "query-status", "id": 1})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0],
            Json({{"id", 1}, {"error", Error("CommandNotFound", kQmpExpectingNegotiation)}}));
  replies = Exchange(*raw, R"({"execute": "qmp_capabilities", "id": 2})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], Json({{"id", 2}, {"return", Json::object()}}));
  replies = Exchange(*raw, R"({"execute": "qmp_capabilities", "id": 3})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["error"], Error("CommandNotFound", kQmpNegotiationComplete));
  replies = Exchange(*raw, R"({"execute": "no-such-command", "id": 4})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["error"],
            Error("CommandNotFound", "The command no-such-command has not been found"));
  // Garbage gets GenericErrors without an id; the connection keeps working (Exchange's sync).
  replies = Exchange(*raw, "\x01garbage {\"execute\"::}");
  ASSERT_FALSE(replies.empty());
  for (const Json& reply : replies) {
    EXPECT_FALSE(reply.contains("id")) << reply.dump();
    EXPECT_EQ(reply["error"]["class"], "GenericError") << reply.dump();
    EXPECT_THAT(reply["error"]["desc"].get<std::string>(), HasSubstr("JSON parse error"));
  }
  replies = Exchange(*raw, R"({"execute": "query-kvm", "id": 5})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["return"], Json({{"enabled", true}, {"present", true}}));

  std::unique_ptr<QmpClient> client = Connect(socket);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->greeting().version.package, "rehome-0.1.0");
  EXPECT_EQ(Exec(*client, "query-status"),
            Json({{"status", "running"}, {"singlestep", false}, {"running", true}}));
  EXPECT_EQ(Exec(*client, "stop"), Json::object());
  ASSERT_TRUE(WaitEventNamed(*client, "STOP").ok());
  EXPECT_EQ(Exec(*client, "query-status"),
            Json({{"status", "paused"}, {"singlestep", false}, {"running", false}}));
  EXPECT_EQ(Exec(*client, "cont"), Json::object());
  ASSERT_TRUE(WaitEventNamed(*client, "RESUME").ok());
  EXPECT_EQ(StatusOf(*client), "running");

  // Two vCPUs, each a real thread of the rehome process.
  const Json cpus = Exec(*client, "query-cpus-fast");
  ASSERT_EQ(cpus.size(), 2u) << cpus.dump();
  std::vector<int64_t> tids;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cpus[i]["cpu-index"], i);
    EXPECT_EQ(cpus[i]["target"], "x86_64");
    const int64_t tid = cpus[i]["thread-id"].get<int64_t>();
    EXPECT_GT(tid, 0);
    EXPECT_TRUE(std::filesystem::exists(absl::StrCat("/proc/", (*vm)->child->pid(), "/task/", tid)))
        << "thread " << tid << " is not a thread of rehome pid " << (*vm)->child->pid();
    tids.push_back(tid);
  }
  EXPECT_NE(tids[0], tids[1]);
  EXPECT_EQ(Exec(*client, "query-kvm"), Json({{"enabled", true}, {"present", true}}));
  EXPECT_EQ(Exec(*client, "query-name"), Json::object());  // --kernel runs have no name
  EXPECT_EQ(Exec(*client, "query-uuid"), Json({{"UUID", "00000000-0000-0000-0000-000000000000"}}));
  const Json version = Exec(*client, "query-version");
  EXPECT_EQ(Shape(version), Json::parse(R"({"qemu": {"micro": "integer", "minor": "integer",
      "major": "integer"}, "package": "string"})"));
  EXPECT_EQ(version["package"], "rehome-0.1.0");
  EXPECT_EQ(ErrorOf(*client, "no-such-command"),
            Error("CommandNotFound", "The command no-such-command has not been found"));
  // rehome's extension checks its arguments with QEMU's wording.
  EXPECT_EQ(ErrorOf(*client, "__org.rehome_inject-fault", Json{{"target", "active"}}),
            Error("GenericError", "Parameter 'kind' is missing"));
  EXPECT_EQ(ErrorOf(*client, "__org.rehome_inject-fault", Json{{"target", "x"}, {"kind", "kill"}}),
            Error("GenericError", "Parameter 'target' does not accept value 'x'"));
  EXPECT_EQ(ErrorOf(*client, "query-status", Json{{"verbose", true}}),
            Error("GenericError", "Parameter 'verbose' is unexpected"));
  EXPECT_EQ(StatusOf(*client), "running");
}

TEST(QmpIntegrationTest, ReplyShapesMatchQemu) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  ScratchDir xml_dir;
  const std::string xml = WriteFile(xml_dir.path() + "/counter.xml", CounterXml());
  auto vm = StartVm({"--domain", xml});
  ASSERT_TRUE(vm.ok()) << vm.status();
  // QEMU with the same name and two vCPUs, stopped (TCG would otherwise spin in the firmware).
  auto qemu = testing::QemuProcess::Start(
      1, kStartTimeout,
      {"-machine", "pc", "-accel", "tcg", "-smp", "2", "-m", "64", "-S", "-name", "counter-split"});
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  Json our_greeting, their_greeting;
  std::optional<testing::RawQmpPeer> ours = RawConnect((*vm)->socket, &our_greeting);
  std::optional<testing::RawQmpPeer> theirs = RawConnect((*qemu)->socket(), &their_greeting);
  ASSERT_TRUE(ours.has_value() && theirs.has_value());
  EXPECT_EQ(Shape(our_greeting), Shape(their_greeting));

  const std::vector<std::string> requests = {
      R"({"execute": "qmp_capabilities", "id": 0})",
      R"({"execute": "query-version", "id": 1})",
      R"({"execute": "query-status", "id": 2})",
      R"({"execute": "query-name", "id": 3})",
      R"({"execute": "query-uuid", "id": 4})",
      R"({"execute": "query-commands", "id": 5})",
      R"({"execute": "query-kvm", "id": 6})",
      R"({"execute": "query-cpus-fast", "id": 7})",
      R"({"execute": "no-such-command", "id": 8})",
      R"({"execute": "query-status", "arguments": {"verbose": true}, "id": 9})",
      R"({"execute": "stop", "arguments": {"force": 1}, "id": "s"})",
      R"({"execute": "cont", "arguments": [], "id": 10})",
      R"({"execute": 42, "id": 11})",
      R"([1, 2])",
      "garbage",
      R"({"execute"::})",
      "\x01\x02{\"a\": 1}",
  };
  for (const std::string& request : requests) {
    SCOPED_TRACE(request);
    const std::vector<Json> a = Exchange(*ours, request);
    const std::vector<Json> b = Exchange(*theirs, request);
    ASSERT_EQ(a.size(), b.size()) << Json(a).dump() << "\nqemu: " << Json(b).dump();
    for (size_t i = 0; i < a.size(); ++i) {
      SCOPED_TRACE("ours: " + a[i].dump() + "\nqemu: " + b[i].dump());
      EXPECT_EQ(Shape(a[i]), Shape(b[i]));
      EXPECT_EQ(a[i].value("id", Json()), b[i].value("id", Json()));
      if (b[i].contains("error")) {
        EXPECT_EQ(a[i]["error"], b[i]["error"]);
      }
    }
  }
  const std::vector<Json> name = Exchange(*ours, R"({"execute": "query-name", "id": 1})");
  ASSERT_EQ(name.size(), 1u);
  EXPECT_EQ(name[0]["return"], Json({{"name", "counter-split"}}));
}

// A client that never reads: connected and negotiated, with its requests already sent.
UniqueFd SilentClient(const std::string& socket, int requests) {
  absl::StatusOr<UniqueFd> fd = testing::ConnectUnix(socket);
  EXPECT_TRUE(fd.ok()) << fd.status();
  if (!fd.ok()) return UniqueFd();
  std::string input = "{\"execute\":\"qmp_capabilities\"}\r\n";
  for (int i = 0; i < requests; ++i) input += "{\"execute\":\"query-commands\"}\r\n";
  std::string_view left = input;
  const absl::Time deadline = absl::Now() + kReplyTimeout;
  while (!left.empty() && absl::Now() < deadline) {
    pollfd pfd{fd->get(), POLLOUT, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = send(fd->get(), left.data(), left.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;  // the server closed it
    if (n > 0) left.remove_prefix(static_cast<size_t>(n));
  }
  return std::move(*fd);
}

// True when the peer closed `fd` (EOF or reset) within the deadline; what it sent is discarded.
bool DrainsToEof(int fd) {
  const absl::Time deadline = absl::Now() + kReplyTimeout;
  char buffer[65536];
  while (absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
  }
  return false;
}

TEST(QmpIntegrationTest, ConcurrentClientsSeeEveryFailover) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  const std::string& socket = (*vm)->socket;
  struct Watcher {
    EventLog log;
    std::unique_ptr<QmpClient> client;  // declared last: gone before the log it feeds
  };
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 4; ++i) {
    auto watcher = std::make_unique<Watcher>();
    watcher->client = Connect(socket);
    ASSERT_NE(watcher->client, nullptr);
    watcher->log.Attach(*watcher->client);
    watchers.push_back(std::move(watcher));
  }
  // Every client hears every event emitted from now on (the server stamps them when emitted).
  const absl::Time attached = absl::Now();
  // One silent client floods ~2 MiB of replies it never reads; another just never reads.
  UniqueFd flooder = SilentClient(socket, 4000);
  UniqueFd idle = SilentClient(socket, 0);
  QmpClient& first = *watchers[0]->client;
  const int64_t count_before = Exec(first, "__org.rehome_query-failovers")["count"].get<int64_t>();

  std::vector<int64_t> killed;
  for (int kill = 0; kill < 5; ++kill) {
    SCOPED_TRACE(absl::StrCat("kill #", kill + 1));
    QmpClient& client = *watchers[kill % watchers.size()]->client;
    const Json l1s = PollL1s(client, HasStandby);
    ASSERT_TRUE(HasStandby(l1s)) << l1s.dump();
    const int64_t active = PidsWithRole(l1s, "active")[0];
    EXPECT_EQ(
        Exec(client, "__org.rehome_inject-fault", Json{{"target", "active"}, {"kind", "kill"}}),
        Json::object());
    const bool recovered = watchers[0]->log.Await(
        [active](const std::vector<QmpEvent>& events) {
          bool started = false;
          for (const QmpEvent& e : events) {
            if (e.name == "__org.rehome_FAILOVER_STARTED" &&
                e.data->value("failed-pid", int64_t{-1}) == active) {
              started = true;
            } else if (started && e.name == kFailoverCompleted) {
              return true;
            }
          }
          return false;
        },
        kEventTimeout);
    ASSERT_TRUE(recovered) << (*vm)->child->Stderr();
    EXPECT_EQ(StatusOf(client), "running");
    killed.push_back(active);
  }

  // Every client received every FAILOVER_COMPLETED, in the same order.
  const std::vector<Json> reference = Completions(watchers[0]->log.Snapshot(), attached);
  EXPECT_GE(reference.size(), 5u);
  for (const auto& watcher : watchers) {
    ASSERT_TRUE(watcher->log.Await(
        [&](const std::vector<QmpEvent>& events) {
          return Completions(events, attached).size() >= reference.size();
        },
        kEventTimeout));
    std::vector<Json> seen = Completions(watcher->log.Snapshot(), attached);
    seen.resize(reference.size());
    EXPECT_EQ(Json(seen), Json(reference));
    for (const QmpEvent& e : watcher->log.Snapshot()) {
      EXPECT_NE(e.name, "__org.rehome_FAILOVER_FAILED") << e.data->dump();
    }
  }
  // The VM kept going: more failovers counted, still running, an active and a standby again.
  const Json failovers = Exec(first, "__org.rehome_query-failovers");
  EXPECT_GE(failovers["count"].get<int64_t>(), count_before + 5) << failovers.dump();
  EXPECT_EQ(failovers["limit-reached"], false);
  EXPECT_EQ(StatusOf(first), "running");
  const Json l1s = PollL1s(first, HasStandby);
  ASSERT_TRUE(HasStandby(l1s)) << l1s.dump();
  EXPECT_NE(PidsWithRole(l1s, "active")[0], PidsWithRole(l1s, "standby")[0]);
  for (const Json& l1 : l1s) {
    EXPECT_EQ(std::count(killed.begin(), killed.end(), l1["pid"].get<int64_t>()), 0) << l1.dump();
  }
  // The flooding client was dropped (QmpServer's output bound) instead of stalling anyone.
  EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("bytes of output unread"));
  EXPECT_TRUE(DrainsToEof(flooder.get()));
}

TEST(QmpIntegrationTest, SwitchoverPromotesTheStandby) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
  ASSERT_NE(client, nullptr);
  Json l1s = PollL1s(*client, HasStandby);
  ASSERT_TRUE(HasStandby(l1s)) << l1s.dump();
  const int64_t old_active = PidsWithRole(l1s, "active")[0];
  EXPECT_EQ(Exec(*client, "__org.rehome_switchover"), Json::object());
  l1s = PollL1s(*client, [old_active](const Json& l1s) {
    const std::vector<int64_t> active = PidsWithRole(l1s, "active");
    return active.size() == 1 && active[0] != old_active;
  });
  const std::vector<int64_t> active = PidsWithRole(l1s, "active");
  ASSERT_EQ(active.size(), 1u) << l1s.dump();
  EXPECT_NE(active[0], old_active);
  EXPECT_GT(active[0], 0);
  // rehome logs the planned switchover (no QMP event reports it).
  const absl::Time deadline = absl::Now() + kEventTimeout;
  while ((*vm)->child->Stderr().find("(switchover)") == std::string::npos &&
         absl::Now() < deadline) {
    absl::SleepFor(kPollInterval);  // poll interval, bounded by the deadline
  }
  EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("(switchover): L1 pid "));
  EXPECT_EQ(StatusOf(*client), "running");
}

TEST(QmpIntegrationTest, RecoveryPolicyComesFromDomainXml) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  ScratchDir xml_dir;
  const std::string xml = WriteFile(xml_dir.path() + "/policy.xml", CounterXml(Recovery("80")));
  auto vm = StartVm({"--domain", xml});
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Exec(*client, "__org.rehome_query-recovery-policy"), Json({{"mode", "failover"},
                                                                       {"split", true},
                                                                       {"standbys", 2},
                                                                       {"heartbeat-period-ms", 10},
                                                                       {"hang-timeout-ms", 80},
                                                                       {"max-failovers", 5},
                                                                       {"failover-window-s", 30},
                                                                       {"l1-binary", ""},
                                                                       {"standby-l1-binary", ""},
                                                                       {"l1-sandbox", "off"},
                                                                       {"verify", "none"}}));
  EXPECT_EQ(Exec(*client, "query-name"), Json({{"name", "counter-split"}}));
  EXPECT_EQ(Exec(*client, "query-uuid"), Json({{"UUID", "3f0c2a8e-6d1b-4c52-9a47-0e5b7d9c1a01"}}));
  EXPECT_EQ(Exec(*client, "query-cpus-fast").size(), 2u);
  // The policy is applied, not only reported: two standbys come up beside the active L1.
  const Json l1s = PollL1s(*client, [](const Json& l1s) {
    return PidsWithRole(l1s, "active").size() == 1 && PidsWithRole(l1s, "standby").size() == 2;
  });
  std::vector<int64_t> pids = PidsWithRole(l1s, "standby");
  ASSERT_EQ(pids.size(), 2u) << l1s.dump();
  pids.push_back(PidsWithRole(l1s, "active").at(0));
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(std::unique(pids.begin(), pids.end()), pids.end()) << l1s.dump();
}

TEST(QmpIntegrationTest, BadDomainXmlIsAUsageError) {
  // Every case is rejected before a VM exists: no KVM needed.
  ScratchDir dir;
  auto expect_usage_error = [](std::vector<std::string> args, const std::string& needle) {
    args.insert(args.begin(), {testing::RehomeBinary(), "run"});
    absl::StatusOr<testing::ProcessResult> r = testing::RunProcess(args, absl::Seconds(120));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 64) << r->err;
    EXPECT_THAT(r->err, HasSubstr(needle));
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  };
  const std::string good = WriteFile(dir.path() + "/good.xml", CounterXml());
  expect_usage_error(
      {"--domain", WriteFile(dir.path() + "/malformed.xml", "<domain type='kvm'><name>x</name>")},
      "malformed XML");
  expect_usage_error(
      {"--domain", WriteFile(dir.path() + "/bad-policy.xml", CounterXml(Recovery("abc")))},
      "<rehome:hang timeout-ms=\"abc\">: not an integer");
  expect_usage_error({"--domain", dir.path() + "/missing.xml"}, "No such file");
  expect_usage_error({"--domain", good, "--kernel", testing::GuestElf()},
                     "--kernel: conflicts with --domain");
}

// Occurrences of `needle` in the guest's serial output so far (one banner per boot).
size_t CountInSerial(const RunningVm& vm, const std::string& needle) {
  std::ifstream in(vm.dir.path() + "/serial.log");
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  size_t count = 0;
  for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

bool PollSerial(const RunningVm& vm, const std::string& needle, size_t count) {
  const absl::Time deadline = absl::Now() + kEventTimeout;
  while (CountInSerial(vm, needle) < count) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(kPollInterval);  // poll interval, bounded by the deadline
  }
  return true;
}

constexpr char kBanner[] = "rehome-guest: cpus=";

// Sends `quit` and expects its empty reply and rehome to exit 0.
void QuitAndExpectExitZero(QmpClient& client, RunningVm& vm) {
  EXPECT_EQ(Exec(client, "quit"), Json::object());
  absl::StatusOr<int> code = vm.child->WaitExit(kStartTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << vm.child->Stderr();
}

// system_reset boots the guest again in a new VM; the monitor and its clients stay, see RESET,
// and drive the new boot (its L1s included).
TEST(QmpIntegrationTest, SystemResetRebootsTheGuestAndKeepsTheMonitor) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollSerial(**vm, kBanner, 1));
  const Json before = PollL1s(*client, HasStandby);
  ASSERT_TRUE(HasStandby(before)) << before.dump();
  EXPECT_EQ(Exec(*client, "system_reset"), Json::object());
  absl::StatusOr<QmpEvent> reset = WaitEventNamed(*client, "RESET");
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_EQ(*reset->data, Json({{"guest", false}, {"reason", "host-qmp-system-reset"}}));
  ASSERT_TRUE(PollSerial(**vm, kBanner, 2)) << (*vm)->child->Stderr();
  EXPECT_EQ(StatusOf(*client), "running");
  // The new boot has its own L1s, and the monitor reports them.
  const Json after = PollL1s(*client, [&before](const Json& l1s) {
    return HasStandby(l1s) && PidsWithRole(l1s, "active") != PidsWithRole(before, "active");
  });
  EXPECT_NE(PidsWithRole(after, "active"), PidsWithRole(before, "active")) << after.dump();
  EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("system_reset over QMP: booting the guest again"));
  QuitAndExpectExitZero(*client, **vm);
}

// A guest that resets itself boots again (on_reboot=restart, libvirt's default) with RESET
// events; one that powers off under on_poweroff=preserve stays for the operator, whose
// system_reset boots it again.
TEST(QmpIntegrationTest, GuestRebootAndPowerOffFollowLifecycleActions) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  {
    auto vm =
        StartVm({"--kernel", testing::GuestElf(), "--cpus", "2", "--cmdline", "workload=reboot"});
    ASSERT_TRUE(vm.ok()) << vm.status();
    std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
    ASSERT_NE(client, nullptr);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<QmpEvent> reset = WaitEventNamed(*client, "RESET");
      ASSERT_TRUE(reset.ok()) << reset.status() << (*vm)->child->Stderr();
      EXPECT_EQ(*reset->data, Json({{"guest", true}, {"reason", "guest-reset"}}));
    }
    EXPECT_GE(CountInSerial(**vm, kBanner), 3u);
    EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("on_reboot=restart: booting the guest again"));
    QuitAndExpectExitZero(*client, **vm);
  }
  {
    auto vm = StartVm({"--kernel", testing::GuestElf(), "--cmdline", "workload=poweroff",
                       "--on-poweroff", "preserve"});
    ASSERT_TRUE(vm.ok()) << vm.status();
    std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
    ASSERT_NE(client, nullptr);
    absl::StatusOr<QmpEvent> off = WaitEventNamed(*client, "SHUTDOWN");
    ASSERT_TRUE(off.ok()) << off.status() << (*vm)->child->Stderr();
    EXPECT_EQ(*off->data, Json({{"guest", true}, {"reason", "guest-shutdown"}}));
    EXPECT_EQ(StatusOf(*client), "shutdown");
    EXPECT_EQ(CountInSerial(**vm, kBanner), 1u);
    EXPECT_EQ(Exec(*client, "system_reset"), Json::object());
    ASSERT_TRUE(WaitEventNamed(*client, "RESET").ok());
    absl::StatusOr<QmpEvent> again = WaitEventNamed(*client, "SHUTDOWN");  // the second boot's
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(CountInSerial(**vm, kBanner), 2u);
    QuitAndExpectExitZero(*client, **vm);
  }
}

TEST(QmpIntegrationTest, QuitRepliesThenShutsDownAndExitsZero) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> other = Connect((*vm)->socket);
  ASSERT_NE(other, nullptr);
  std::optional<testing::RawQmpPeer> raw = RawConnect((*vm)->socket);
  ASSERT_TRUE(raw.has_value());
  ASSERT_EQ(Exchange(*raw, R"({"execute": "qmp_capabilities", "id": 0})").size(), 1u);
  ASSERT_TRUE(raw->Send("{\"execute\": \"quit\", \"id\": \"q\"}\r\n").ok());
  auto is_shutdown = [](const Json& v) { return v.value("event", "") == "SHUTDOWN"; };
  auto values = raw->ReadUntil(
      [&](const std::vector<Json>& v) { return std::any_of(v.begin(), v.end(), is_shutdown); },
      kEventTimeout);
  ASSERT_TRUE(values.ok()) << values.status();
  const auto reply = std::find_if(values->begin(), values->end(), [](const Json& v) {
    return !v.contains("event") && v.value("id", Json()) == "q";
  });
  const auto shutdown = std::find_if(values->begin(), values->end(), is_shutdown);
  ASSERT_NE(reply, values->end());
  EXPECT_LT(reply - values->begin(), shutdown - values->begin());
  EXPECT_EQ((*reply)["return"], Json::object());
  EXPECT_EQ((*shutdown)["data"], Json({{"guest", false}, {"reason", "host-qmp-quit"}}));
  EXPECT_TRUE(WaitEventNamed(*other, "SHUTDOWN").ok());

  absl::StatusOr<int> code = (*vm)->child->WaitExit(kStartTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << (*vm)->child->Stderr();
  EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("quit requested over QMP"));
  EXPECT_FALSE(std::filesystem::exists((*vm)->socket));
  auto rest = raw->ReadUntil([](const std::vector<Json>&) { return false; }, kReplyTimeout);
  EXPECT_TRUE(absl::IsUnavailable(rest.status())) << rest.status();
}

}  // namespace
}  // namespace rehome
