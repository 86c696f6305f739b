// qmp-client/qmp_cli_test.cc: `rehome qmp` in-process against real QEMU, and the rehome-qmp
// binary as a real process in event-monitor mode (signals, peer close).
#include "qmp-client/qmp_cli.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "qmp-client/qmp_client.h"
#include "qmp-client/qmp_server.h"
#include "qmp-client/testing/fake_vm_control.h"
#include "qmp-client/testing/qemu_process.h"
#include "qmp-client/vm_monitor.h"

extern char** environ;

namespace rehome {
namespace {

using Json = nlohmann::json;

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

CliResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), "rehome-qmp");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  const int code = RunQmpCli(static_cast<int>(args.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(QmpCli, HelpListsOptions) {
  CliResult r = RunCli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Usage: rehome qmp"), std::string::npos);
  EXPECT_NE(r.out.find("--timeout"), std::string::npos);
}

TEST(QmpCli, UsageErrorsExitTwoWithOneLine) {
  CliResult r = RunCli({});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(Lines(r.err), 1);
  r = RunCli({"--bogus", "sock"});
  EXPECT_EQ(r.code, 2);
  r = RunCli({"/nonexistent.sock", "query-status", "{not json"});
  EXPECT_EQ(r.code, 2);  // checked before connecting
  EXPECT_EQ(Lines(r.err), 1);
  EXPECT_NE(r.err.find("JSON-ARGS"), std::string::npos);
  r = RunCli({"/nonexistent.sock", "query-status", "[1]"});
  EXPECT_EQ(r.code, 2);
}

TEST(QmpCli, SocketPathTooLongForUnixSocketIsAUsageError) {
  const std::string path = "/tmp/" + std::string(200, 'x') + ".sock";
  CliResult r = RunCli({path, "query-status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("at most 107"), std::string::npos) << r.err;
  r = RunCli({path});  // event monitor mode
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

// {"x": [[...]]}: an object holding `levels` - 1 nested arrays.
std::string NestedArguments(int levels) {
  return R"({"x":)" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
}

TEST(QmpCli, ArgumentsNestedDeeperThanQmpAllowsAreRefusedWithoutCrashing) {
  CliResult r = RunCli({"/nonexistent.sock", "query-status", NestedArguments(60000)});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(Lines(r.err), 1);
  EXPECT_NE(r.err.find("nested 60000 levels"), std::string::npos) << r.err;
  r = RunCli({"/nonexistent.sock", "query-status", NestedArguments(1024)});
  EXPECT_EQ(r.code, 2);
  r = RunCli({"/nonexistent.sock", "query-status", NestedArguments(1023)});
  EXPECT_EQ(r.code, 1) << r.err;  // accepted; then the connection fails
}

TEST(QmpCli, ErrorWithoutIdFromRehomeServerEndsTheCommand) {
  char tmpl[] = "/tmp/rehome-qmpcli-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  QmpServerOptions options;
  options.session.framing.max_depth = 8;  // so that a small request is past the server's limit
  auto server = QmpServer::Start(
      dir + "/qmp.sock", std::make_shared<VmMonitor>(std::make_shared<testing::FakeVmControl>()),
      options);
  ASSERT_TRUE(server.ok()) << server.status();
  // The server cannot read the request and answers without an id: that is the command's answer
  // (exit 3), not a time-out (exit 1).
  CliResult r = RunCli({"--timeout=60", (*server)->path(), "query-status", NestedArguments(10)});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(Json::parse(r.out)["error"]["desc"], "JSON nesting depth limit exceeded");
  // The connection stays usable: the next command is answered normally.
  r = RunCli({(*server)->path(), "query-status"});
  EXPECT_EQ(r.code, 0) << r.err;
  (*server)->Stop();
  rmdir(dir.c_str());
}

// 1024 levels, the request object included, is within QEMU's limit: an ordinary error. (An id-less
// error from QEMU itself needs a request past its limits, which the CLI refuses to send or
// which QEMU takes minutes to read: it reads its monitor socket one byte per main-loop turn.)
TEST(QmpCli, ArgumentsAtTheQmpDepthLimitReachQemu) {
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto qemu = testing::QemuProcess::Start();
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  CliResult r = RunCli({(*qemu)->socket(), "query-status", NestedArguments(1023)});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(Json::parse(r.out)["error"]["desc"], "Parameter 'x' is unexpected");
}

TEST(QmpCli, ConnectionFailureExitsOne) {
  CliResult r = RunCli({"/nonexistent/rehome.sock", "query-status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Lines(r.err), 1);
  EXPECT_TRUE(r.out.empty());
}

TEST(QmpCli, RunsCommandsAgainstQemu) {
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto qemu = testing::QemuProcess::Start();
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  CliResult r = RunCli({(*qemu)->socket(), "query-status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), 1);
  Json reply = Json::parse(r.out);
  EXPECT_TRUE(reply["return"]["status"].is_string());

  r = RunCli({(*qemu)->socket(), "query-status", R"({"bogus":1})"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(Json::parse(r.out)["error"]["desc"], "Parameter 'bogus' is unexpected");

  r = RunCli({"--timeout=5", (*qemu)->socket(), "no-such-command", "{}"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(Json::parse(r.out)["error"]["class"], "CommandNotFound");
}

// The rehome-qmp binary in monitor mode, with stdout/stderr on pipes.
class MonitorProcess final {
 public:
  explicit MonitorProcess(const std::string& socket) {
    EXPECT_EQ(pipe(out_), 0);
    EXPECT_EQ(pipe(err_), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_[1], 2);
    std::string binary = REHOME_QMP_BINARY;
    std::string sock = socket;
    char* argv[] = {binary.data(), sock.data(), nullptr};
    EXPECT_EQ(posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out_[1]);
    close(err_[1]);
  }
  ~MonitorProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_[0]);
    close(err_[0]);
  }
  MonitorProcess(const MonitorProcess&) = delete;
  MonitorProcess& operator=(const MonitorProcess&) = delete;

  // Reads from stdout (or stderr) until `needle` shows up or the deadline passes.
  bool WaitFor(bool from_stderr, const std::string& needle, absl::Duration timeout) {
    std::string& text = from_stderr ? err_text_ : out_text_;
    const int fd = from_stderr ? err_[0] : out_[0];
    const absl::Time deadline = absl::Now() + timeout;
    while (text.find(needle) == std::string::npos) {
      const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) return false;
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      char buffer[4096];
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) return false;
      text.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  // Waits for the process to exit; returns its exit status or -1.
  int Wait() {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_text_; }

 private:
  pid_t pid_ = -1;
  int out_[2] = {-1, -1};
  int err_[2] = {-1, -1};
  std::string out_text_;
  std::string err_text_;
};

TEST(QmpCliMonitor, PrintsEventsUntilSigterm) {
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto qemu = testing::QemuProcess::Start(/*qmp_sockets=*/2);
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  MonitorProcess monitor((*qemu)->socket(0));
  ASSERT_TRUE(monitor.WaitFor(/*from_stderr=*/true, "connected", absl::Seconds(20)));
  auto control = QmpClient::Connect((*qemu)->socket(1));
  ASSERT_TRUE(control.ok()) << control.status();
  ASSERT_TRUE((*control)->Execute("stop").ok());
  ASSERT_TRUE(monitor.WaitFor(false, "\"STOP\"", absl::Seconds(20))) << monitor.out();
  ASSERT_TRUE((*control)->Execute("cont").ok());
  ASSERT_TRUE(monitor.WaitFor(false, "\"RESUME\"", absl::Seconds(20))) << monitor.out();
  Json stop = Json::parse(monitor.out().substr(0, monitor.out().find('\n')));
  EXPECT_EQ(stop["event"], "STOP");
  EXPECT_TRUE(stop["timestamp"]["seconds"].is_number_integer());
  kill(monitor.pid(), SIGTERM);
  EXPECT_EQ(monitor.Wait(), 0);
}

TEST(QmpCliMonitor, ExitsWhenThePeerCloses) {
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto qemu = testing::QemuProcess::Start();
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  MonitorProcess monitor((*qemu)->socket());
  ASSERT_TRUE(monitor.WaitFor(/*from_stderr=*/true, "connected", absl::Seconds(20)));
  (*qemu)->Kill();
  EXPECT_EQ(monitor.Wait(), 0);
}

}  // namespace
}  // namespace rehome
