// qmp-client/qmp_server_test.cc: QmpServer on real UNIX sockets with VmMonitor over a fake VM:
// socket file handling, concurrent clients, event fan-out, bounds against slow/silent/malicious
// clients, disconnects, quit ordering, and the rehome-qmp binary against the server.
#include "qmp-client/qmp_server.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "qmp-client/testing/fake_vm_control.h"
#include "qmp-client/testing/qemu_process.h"
#include "qmp-client/vm_monitor.h"

extern char** environ;

namespace rehome {
namespace {

using Json = nlohmann::json;
using testing::FakeVmControl;
using testing::RawQmpPeer;

constexpr absl::Duration kTimeout = absl::Seconds(20);

// Polls `done` until it holds or the deadline passes.
template <typename F>
bool PollUntil(F done, absl::Duration timeout = kTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    poll(nullptr, 0, 2);  // yield between checks
  }
  return true;
}

class TempDir final {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rehome-qmps-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    EXPECT_EQ(system(cmd.c_str()), 0);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A server over VmMonitor + FakeVmControl, with log lines captured.
class ServerFixture : public ::testing::Test {
 protected:
  void StartServer(QmpServerOptions options = {}) {
    options.log = [this](std::string_view line) {
      absl::MutexLock lock(&log_mu_);
      log_.emplace_back(line);
    };
    auto server =
        QmpServer::Start(socket_path_, std::make_shared<VmMonitor>(vm_), std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  std::vector<std::string> Log() {
    absl::MutexLock lock(&log_mu_);
    return log_;
  }
  // A raw peer that has read the greeting and negotiated.
  RawQmpPeer NegotiatedPeer() {
    auto peer = RawQmpPeer::Connect(socket_path_);
    EXPECT_TRUE(peer.ok()) << peer.status();
    EXPECT_TRUE(peer->Send(R"({"execute":"qmp_capabilities","id":"neg"})").ok());
    auto values = peer->ReadUntil(
        [](const std::vector<Json>& v) { return !v.empty() && v.back().value("id", "") == "neg"; },
        kTimeout);
    EXPECT_TRUE(values.ok()) << values.status();
    return std::move(*peer);
  }

  TempDir dir_;
  std::string socket_path_ = dir_.File("qmp.sock");
  std::shared_ptr<FakeVmControl> vm_ = std::make_shared<FakeVmControl>();
  std::unique_ptr<QmpServer> server_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_;
};

// Reads values until one has the given id.
absl::StatusOr<std::vector<Json>> ReadReply(RawQmpPeer& peer, const Json& id) {
  return peer.ReadUntil(
      [&](const std::vector<Json>& v) {
        return !v.empty() && v.back().is_object() && v.back().contains("id") &&
               v.back()["id"] == id;
      },
      kTimeout);
}

TEST_F(ServerFixture, SocketIsPrivateAndRemovedOnStop) {
  StartServer();
  struct stat st;
  ASSERT_EQ(lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->path(), socket_path_);
  server_->Stop();
  server_->Stop();  // idempotent
  EXPECT_NE(lstat(socket_path_.c_str(), &st), 0);
}

TEST_F(ServerFixture, RefusesAPathThatIsNotASocket) {
  std::ofstream(socket_path_) << "precious";
  auto server = QmpServer::Start(socket_path_, std::make_shared<VmMonitor>(vm_));
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  std::string content;
  std::getline(std::ifstream(socket_path_), content);
  EXPECT_EQ(content, "precious");
}

TEST_F(ServerFixture, ReplacesAStaleSocketButRefusesALiveOne) {
  // A stale socket: bound, never listening, closed.
  {
    auto first = QmpServer::Start(socket_path_, std::make_shared<VmMonitor>(vm_));
    ASSERT_TRUE(first.ok());
    auto second = QmpServer::Start(socket_path_, std::make_shared<VmMonitor>(vm_));
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
    // Leave a stale file behind by hard-linking the live one away and back after stop.
    ASSERT_EQ(link(socket_path_.c_str(), dir_.File("keep").c_str()), 0);
  }
  ASSERT_EQ(rename(dir_.File("keep").c_str(), socket_path_.c_str()), 0);  // stale socket now
  StartServer();
  auto client = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Execute("query-status").ok());
}

TEST_F(ServerFixture, RefusesOverlongPath) {
  auto server =
      QmpServer::Start(dir_.File(std::string(200, 'x')), std::make_shared<VmMonitor>(vm_));
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerFixture, ManyConcurrentClientsEachNegotiateAndRunCommands) {
  StartServer();
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> failures(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([this, i, &failures] {
      auto client = QmpClient::Connect(socket_path_);
      if (!client.ok()) {
        failures[i] = client.status().ToString();
        return;
      }
      for (int round = 0; round < 20; ++round) {
        auto status = (*client)->Execute("query-status");
        if (!status.ok() || !(*status)["running"].is_boolean()) {
          failures[i] = status.ok() ? status->dump() : status.status().ToString();
          return;
        }
        auto version = (*client)->Execute("query-version");
        if (!version.ok() || (*version)["package"] != "rehome-0.1.0") {
          failures[i] = "query-version";
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(failures[i], "") << "client " << i;
}

TEST_F(ServerFixture, GreetingCarriesRehomeVersion) {
  StartServer();
  auto client = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(client.ok()) << client.status();
  const QmpGreeting& greeting = (*client)->greeting();
  EXPECT_EQ(greeting.version.package, "rehome-0.1.0");
  EXPECT_EQ(greeting.version.minor, 1);
  EXPECT_EQ(greeting.capabilities, std::vector<std::string>{"oob"});
}

TEST_F(ServerFixture, EventsReachNegotiatedClientsOnly) {
  StartServer();
  auto a = QmpClient::Connect(socket_path_);
  auto b = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(a.ok() && b.ok());
  auto raw = RawQmpPeer::Connect(socket_path_);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw->ReadUntil([](const std::vector<Json>& v) { return !v.empty(); }, kTimeout).ok());
  ASSERT_TRUE(PollUntil([&] { return server_->client_count() == 3; }));

  server_->EmitEvent(kEventStop);
  server_->EmitEvent(kEventShutdown, ShutdownEventData(ShutdownCause::kGuestShutdown));
  for (auto* client : {a->get(), b->get()}) {
    auto stop = client->WaitEvent(kTimeout);
    ASSERT_TRUE(stop.ok()) << stop.status();
    EXPECT_EQ(stop->name, "STOP");
    EXPECT_FALSE(stop->data.has_value());
    auto shutdown = client->WaitEvent(kTimeout);
    ASSERT_TRUE(shutdown.ok()) << shutdown.status();
    EXPECT_EQ(*shutdown->data, (Json{{"guest", true}, {"reason", "guest-shutdown"}}));
  }
  // The un-negotiated peer saw nothing: its next output is the reply to its negotiation.
  ASSERT_TRUE(raw->Send(R"({"execute":"qmp_capabilities","id":1})").ok());
  auto values = ReadReply(*raw, 1);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 1u) << Json(*values);
  EXPECT_TRUE((*values)[0].contains("return"));
}

TEST_F(ServerFixture, SilentClientIsDroppedWithoutStallingOthers) {
  QmpServerOptions options;
  options.max_output_bytes = 64 << 10;
  StartServer(options);
  // Negotiates, then never reads again.
  RawQmpPeer silent = NegotiatedPeer();
  int small = 4096;
  ASSERT_EQ(setsockopt(silent.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  auto reader = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::atomic<int> received{0};
  (*reader)->SetEventCallback([&received](const QmpEvent&) { ++received; });

  // ~2 MiB of events in all, far past the silent client's bound plus its socket buffer; sent in
  // bursts the reading client keeps up with. A burst (about 22 KiB) stays well below the bound even
  // if the io thread queues all of it before its first write completes.
  const Json data = {{"cause", std::string(1000, 'x')}, {"pid", 1}};
  constexpr int kBursts = 100;
  constexpr int kBurst = 20;
  for (int burst = 1; burst <= kBursts; ++burst) {
    for (int i = 0; i < kBurst; ++i) server_->EmitEvent(kEventL1Failed, data);
    ASSERT_TRUE(PollUntil([&] { return received == burst * kBurst; }))
        << "burst " << burst << ": reader got " << received << " events; clients "
        << server_->client_count() << "; log " << Json(Log());
  }
  ASSERT_TRUE(PollUntil([&] { return server_->client_count() == 1; }))
      << "silent client never dropped; clients " << server_->client_count() << " log "
      << Json(Log());
  // The reading client is unaffected: it keeps working and got every event.
  auto status = (*reader)->Execute("query-status");
  EXPECT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(Log().size(), 1u);
  EXPECT_NE(Log()[0].find("dropping client"), std::string::npos) << Log()[0];
}

TEST_F(ServerFixture, ClientThatNeverReadsRepliesIsDropped) {
  QmpServerOptions options;
  options.max_output_bytes = 32 << 10;
  StartServer(options);
  RawQmpPeer greedy = NegotiatedPeer();
  int small = 4096;
  ASSERT_EQ(setsockopt(greedy.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  std::string burst;
  for (int i = 0; i < 200; ++i) burst += R"({"execute":"query-commands"})";
  // Keep sending until the server drops us (send fails) — bounded by the deadline.
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline && greedy.Send(burst).ok() && server_->client_count() != 0) {
  }
  EXPECT_TRUE(PollUntil([&] { return server_->client_count() == 0; }));
}

TEST_F(ServerFixture, GarbageAndHugeInputGetErrorsNotCrashes) {
  StartServer();
  RawQmpPeer peer = NegotiatedPeer();
  ASSERT_TRUE(peer.Send("\x01\xfe{]]}\x80garbage\xff").ok());
  ASSERT_TRUE(peer.Send(R"({"execute":"query-name","id":"after-garbage"})").ok());
  auto values = ReadReply(peer, "after-garbage");
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_GE(values->size(), 2u);
  for (std::size_t i = 0; i + 1 < values->size(); ++i) {
    EXPECT_EQ((*values)[i]["error"]["class"], "GenericError") << (*values)[i];
  }
  // Past QEMU's limits (64 MiB of tokens, 1024 levels, 2^21 tokens): one id-less error each, and
  // the value is not buffered.
  std::string many = "[";
  for (int i = 0; i < (1 << 21); ++i) many += "1,";
  many += "1]";
  const std::vector<std::pair<std::string, std::string>> past_limits = {
      {R"({"execute":"query-name","arguments":{"x":")" + std::string(std::size_t{65} << 20, 'a') +
           R"("}})",
       "JSON token size limit exceeded"},
      {std::string(1025, '[') + std::string(1025, ']'), "JSON nesting depth limit exceeded"},
      {many, "JSON token count limit exceeded"},
  };
  for (const auto& [request, desc] : past_limits) {
    ASSERT_TRUE(peer.Send(request + R"({"execute":"query-name","id":"after"})").ok());
    values = ReadReply(peer, "after");
    ASSERT_TRUE(values.ok()) << values.status();
    ASSERT_EQ(values->size(), 2u) << Json(*values);
    EXPECT_EQ((*values)[0]["error"]["desc"], desc);
    EXPECT_FALSE((*values)[0].contains("id"));
  }
}

TEST_F(ServerFixture, LargeAndDeepRequestsWithinQemuLimitsAreAnsweredWithTheirId) {
  StartServer();
  RawQmpPeer peer = NegotiatedPeer();
  const std::string big_id(2 << 20, 'i');
  struct Case {
    std::string request;
    Json id;
    Json reply;  // "error" desc, or null for a success
  };
  const std::vector<Case> cases = {
      // 3 MiB of arguments.
      {R"({"execute":"query-name","arguments":{"x":")" + std::string(3 << 20, 'a') +
           R"("},"id":"big"})",
       "big", "Parameter 'x' is unexpected"},
      // {"execute":..., "arguments": {"x": [[...]]}}: 2 objects + 1022 arrays.
      {R"({"execute":"query-name","arguments":{"x":)" + std::string(1022, '[') +
           std::string(1022, ']') + R"(},"id":"deep"})",
       "deep", "Parameter 'x' is unexpected"},
      // A reply echoing an id larger than the output bound still goes out (one message alone).
      {R"({"execute":"query-name","id":")" + big_id + R"("})", big_id, nullptr},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(peer.Send(c.request).ok());
    auto values = ReadReply(peer, c.id);
    ASSERT_TRUE(values.ok()) << values.status();
    ASSERT_EQ(values->size(), 1u);
    if (c.reply.is_null()) {
      EXPECT_TRUE((*values)[0].contains("return"));
    } else {
      EXPECT_EQ((*values)[0]["error"]["desc"], c.reply);
    }
  }
}

TEST_F(ServerFixture, DisconnectsAndHalfOpenConnectionsAreClean) {
  StartServer();
  {
    // Connects and vanishes without reading anything.
    auto fd = testing::ConnectUnix(socket_path_);
    ASSERT_TRUE(fd.ok());
  }
  {
    // Vanishes in the middle of a value.
    RawQmpPeer peer = NegotiatedPeer();
    ASSERT_TRUE(peer.Send(R"({"execute":"query-st)").ok());
  }
  {
    // Half-closes after its requests: still gets every reply, then EOF.
    auto peer = RawQmpPeer::Connect(socket_path_);
    ASSERT_TRUE(peer.ok());
    ASSERT_TRUE(
        peer->Send(R"({"execute":"qmp_capabilities"}{"execute":"query-status","id":7})").ok());
    ASSERT_EQ(shutdown(peer->fd(), SHUT_WR), 0);
    auto values = ReadReply(*peer, 7);
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ((*values).back()["return"]["status"], "running");
    auto eof = peer->ReadUntil([](const std::vector<Json>&) { return false; }, kTimeout);
    EXPECT_EQ(eof.status().code(), absl::StatusCode::kUnavailable) << eof.status();
  }
  // An idle, connected-but-silent client does not block a working one.
  auto idle = testing::ConnectUnix(socket_path_);
  ASSERT_TRUE(idle.ok());
  auto client = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Execute("query-status").ok());
  EXPECT_TRUE(PollUntil([&] { return server_->client_count() == 2; }));
}

TEST_F(ServerFixture, ConnectionsPastTheLimitAreClosed) {
  QmpServerOptions options;
  options.max_clients = 2;
  StartServer(options);
  auto a = QmpClient::Connect(socket_path_);
  auto b = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = QmpClient::Connect(socket_path_, {.connect_timeout = absl::Seconds(10)});
  EXPECT_FALSE(c.ok());
  a->reset();
  ASSERT_TRUE(PollUntil([&] { return server_->client_count() == 1; }));
  auto d = QmpClient::Connect(socket_path_);
  EXPECT_TRUE(d.ok()) << d.status();
}

TEST_F(ServerFixture, QuitRepliesBeforeQuitting) {
  StartServer();
  vm_->set_emit([this](std::string_view name, std::optional<Json> data) {
    server_->EmitEvent(name, std::move(data));
  });
  RawQmpPeer peer = NegotiatedPeer();
  ASSERT_TRUE(peer.Send(R"({"execute":"quit","id":"q"})").ok());
  auto values = peer.ReadUntil(
      [](const std::vector<Json>& v) { return !v.empty() && v.back().contains("event"); },
      kTimeout);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 2u) << Json(*values);
  EXPECT_EQ((*values)[0], (Json{{"return", Json::object()}, {"id", "q"}}));
  EXPECT_EQ((*values)[1]["event"], "SHUTDOWN");
  EXPECT_EQ((*values)[1]["data"], (Json{{"guest", false}, {"reason", "host-qmp-quit"}}));
  EXPECT_EQ(vm_->calls(), std::vector<std::string>{"quit"});
}

TEST_F(ServerFixture, StopClosesClientsAndFlushesQueuedOutput) {
  StartServer();
  auto client = QmpClient::Connect(socket_path_);
  ASSERT_TRUE(client.ok());
  server_->EmitEvent(kEventStandbyReady, StandbyReadyEventData(77));
  server_->Stop();
  auto event = (*client)->WaitEvent(kTimeout);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->name, "__org.rehome_STANDBY_READY");
  EXPECT_TRUE(PollUntil([&] { return !(*client)->connection_status().ok(); }));
  EXPECT_EQ(server_->client_count(), 0u);
  struct stat st;
  EXPECT_NE(lstat(socket_path_.c_str(), &st), 0);
}

// Runs the real rehome-qmp binary; returns {exit code, stdout}.
std::pair<int, std::string> RunBinary(std::vector<std::string> args) {
  std::string binary = REHOME_QMP_BINARY;
  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(out[0], buffer, sizeof(buffer))) > 0) text.append(buffer, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

TEST_F(ServerFixture, RehomeQmpBinaryTalksToTheServer) {
  StartServer();
  vm_->set_name("demo");
  auto [code, out] = RunBinary({socket_path_, "query-name"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Json::parse(out), (Json{{"return", {{"name", "demo"}}}}));
  std::tie(code, out) = RunBinary({socket_path_, "stop"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(vm_->calls(), std::vector<std::string>{"stop"});
  std::tie(code, out) =
      RunBinary({socket_path_, "__org.rehome_inject-fault", R"({"target":"active"})"});
  EXPECT_EQ(code, 3);
  EXPECT_EQ(Json::parse(out)["error"]["desc"], "Parameter 'kind' is missing");
  std::tie(code, out) = RunBinary({socket_path_, "__org.rehome_query-l1s"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(Json::parse(out)["return"][0]["role"], "active");
}

}  // namespace
}  // namespace rehome
