// qmp-client/qmp_client_test.cc: QmpClient against real QEMU and against QmpSession served on a
// real UNIX socket (timeouts, late replies, peer close).
#include "qmp-client/qmp_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/synchronization/notification.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_session.h"
#include "qmp-client/testing/qemu_process.h"

namespace rehome {
namespace {

using Json = nlohmann::json;
using testing::QemuProcess;

#define REQUIRE_QEMU()                                     \
  if (testing::FindQemu().empty()) {                       \
    GTEST_SKIP() << "qemu-system-x86_64 is not installed"; \
  }

std::unique_ptr<QemuProcess> StartQemu(int sockets = 1) {
  auto qemu = QemuProcess::Start(sockets);
  EXPECT_TRUE(qemu.ok()) << qemu.status();
  return qemu.ok() ? std::move(*qemu) : nullptr;
}

TEST(QmpClientQemu, NegotiatesAndRunsQueries) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto client = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_GE((*client)->greeting().version.major, 2);
  EXPECT_FALSE((*client)->greeting().version.package.empty());

  auto version = (*client)->Execute("query-version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ((*version)["qemu"]["major"], (*client)->greeting().version.major);

  auto status = (*client)->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE((*status)["status"].is_string());
  EXPECT_TRUE((*status)["running"].is_boolean());

  auto commands = (*client)->Execute("query-commands");
  ASSERT_TRUE(commands.ok()) << commands.status();
  ASSERT_TRUE(commands->is_array());
  bool found = false;
  for (const Json& command : *commands) found = found || command["name"] == "query-status";
  EXPECT_TRUE(found);
}

TEST(QmpClientQemu, UnknownCommandIsCommandNotFound) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto client = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(client.ok()) << client.status();
  auto result = (*client)->Execute("no-such-command");
  EXPECT_TRUE(absl::IsNotFound(result.status())) << result.status();
  EXPECT_EQ(QmpErrorFromStatus(result.status()).error_class, "CommandNotFound");
  auto raw = (*client)->ExecuteRaw("no-such-command");
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_FALSE(raw->ok());
  EXPECT_EQ(raw->error->desc, "The command no-such-command has not been found");
  // Bad arguments: GenericError from QEMU's argument checking.
  result = (*client)->Execute("query-status", Json{{"bogus", 1}});
  EXPECT_EQ(QmpErrorFromStatus(result.status()).desc, "Parameter 'bogus' is unexpected");
}

TEST(QmpClientQemu, StopEmitsStopEventToQueueAndCallback) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto client = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<int> stops{0};
  (*client)->SetEventCallback([&](const QmpEvent& event) {
    if (event.name == "STOP") ++stops;
  });
  ASSERT_TRUE((*client)->Execute("stop").ok());
  // A client that connects while QEMU is still starting also gets the start-up RESUME.
  auto event = (*client)->WaitEvent(absl::Seconds(10));
  if (event.ok() && event->name == "RESUME") event = (*client)->WaitEvent(absl::Seconds(10));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->name, "STOP");
  EXPECT_GT(event->timestamp.seconds, 0);
  EXPECT_EQ(stops.load(), 1);  // the callback runs before the event is handed out
  auto status = (*client)->Execute("query-status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["running"], false);
}

TEST(QmpClientQemu, ConcurrentCommandsAreMatchedById) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto client = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const bool version = (t + i) % 2 == 0;
        auto result = (*client)->Execute(version ? "query-version" : "query-status");
        if (!result.ok() || result->contains("qemu") != version) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(QmpClientQemu, GreetingTimesOutWhileQemuServesAnotherClient) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto first = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(first.ok()) << first.status();
  QmpClientOptions options;
  options.connect_timeout = absl::Milliseconds(300);
  auto second = QmpClient::Connect(qemu->socket(), options);
  EXPECT_TRUE(absl::IsDeadlineExceeded(second.status())) << second.status();
}

TEST(QmpClientQemu, KilledPeerMakesCallsUnavailable) {
  REQUIRE_QEMU();
  auto qemu = StartQemu();
  ASSERT_NE(qemu, nullptr);
  auto client = QmpClient::Connect(qemu->socket());
  ASSERT_TRUE(client.ok()) << client.status();
  qemu->Kill();
  auto event = (*client)->WaitEvent(absl::Seconds(10));  // woken by the close, not the timeout
  EXPECT_TRUE(absl::IsUnavailable(event.status())) << event.status();
  EXPECT_TRUE(absl::IsUnavailable((*client)->Execute("query-status").status()));
  EXPECT_TRUE(absl::IsUnavailable((*client)->connection_status()));
}

TEST(QmpClient, MissingSocketIsUnavailable) {
  auto client = QmpClient::Connect("/nonexistent/rehome-qmp.sock");
  EXPECT_TRUE(absl::IsUnavailable(client.status())) << client.status();
}

// Serves one connection with a QmpSession on a real listening UNIX socket.
class SessionServer final : public CommandHandler {
 public:
  SessionServer() {
    char dir[] = "/tmp/rehome-qmp-srv-XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/qmp.sock";
    listener_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(path_.size(), sizeof(addr.sun_path));
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listener_.get(), 1), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SessionServer() override {
    ReleaseSlow();
    DropConnection();
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  SessionServer(const SessionServer&) = delete;
  SessionServer& operator=(const SessionServer&) = delete;

  const std::string& path() const { return path_; }
  void ReleaseSlow() {
    if (!release_slow_.HasBeenNotified()) release_slow_.Notify();
  }
  void DropConnection() {
    shutdown(listener_.get(), SHUT_RDWR);
    int fd = connection_fd_.load();
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  }

  bool HasCommand(std::string_view name) const override { return name == "echo" || name == "slow"; }
  absl::StatusOr<Json> Execute(std::string_view name, const Json& args) override {
    if (name == "slow") release_slow_.WaitForNotification();
    return args;
  }

 private:
  void Serve() {
    UniqueFd connection(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection) return;
    connection_fd_ = connection.get();
    QmpSession session(this, QmpSessionOptions{});
    session.Start();
    char buffer[4096];
    for (;;) {
      for (const std::string& out : session.TakeOutput()) {
        if (send(connection.get(), out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
      }
      ssize_t n = read(connection.get(), buffer, sizeof(buffer));
      if (n <= 0) break;
      session.Feed(std::string_view(buffer, static_cast<size_t>(n)));
    }
    connection_fd_ = -1;
  }

  std::string dir_;
  std::string path_;
  UniqueFd listener_;
  std::atomic<int> connection_fd_{-1};
  absl::Notification release_slow_;
  std::thread thread_;
};

TEST(QmpClient, TalksToQmpSessionOverARealSocket) {
  SessionServer server;
  auto client = QmpClient::Connect(server.path());
  ASSERT_TRUE(client.ok()) << client.status();
  auto result = (*client)->Execute("echo", Json{{"x", Json::array({1, "two"})}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, Json({{"x", Json::array({1, "two"})}}));
  EXPECT_TRUE(absl::IsNotFound((*client)->Execute("missing").status()));
}

TEST(QmpClient, ReplyTimeoutIsDeadlineExceededAndLateReplyIsDiscarded) {
  SessionServer server;
  auto client = QmpClient::Connect(server.path());
  ASSERT_TRUE(client.ok()) << client.status();
  auto slow = (*client)->Execute("slow", Json{{"n", 1}}, absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(slow.status())) << slow.status();
  server.ReleaseSlow();  // the late reply to "slow" now arrives and must not be mistaken
  auto echo = (*client)->Execute("echo", Json{{"n", 2}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, Json({{"n", 2}}));
}

TEST(QmpClient, PeerClosingFailsPendingCallWithUnavailable) {
  SessionServer server;
  auto client = QmpClient::Connect(server.path());
  ASSERT_TRUE(client.ok()) << client.status();
  std::thread closer([&] {
    // Close once the call is in flight; the call must not wait for its 60 s timeout.
    server.DropConnection();
  });
  auto result = (*client)->Execute("slow", std::nullopt, absl::Seconds(60));
  closer.join();
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
}

}  // namespace
}  // namespace rehome
