// tests/host_signal_test.cc: SIGTERM, SIGINT and SIGHUP end the real `rehome run` cleanly, as
// QEMU does: a QMP client sees SHUTDOWN {"guest": false, "reason": "host-signal"}, the process
// exits with 128 + the signal number, the QMP socket file is removed and no L1 process is left
// (nor replica, under --verify).
// Every wait has a deadline.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "tests/poll_until.h"
#include "tests/qmp_test_helpers.h"
#include "tests/rehome_child.h"
#include "tests/subprocess.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(60);

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool ProcessGone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

std::vector<std::string> CounterArgs() {
  return {"--kernel",  testing::GuestElf(),        "--cpus",          "2",
          "--cmdline", "workload=counter steps=0", "--max-failovers", "1000"};
}

// Starts `rehome run ARGS` with QMP, waits until query-l1s satisfies `up` (the guest runs), sends
// `signal_number` and checks the clean stop: SHUTDOWN host-signal, exit 128 + N by itself, the
// socket removed, every L1 listed gone.
void ExpectCleanStopOnSignal(int signal_number, const std::vector<std::string>& args,
                             bool (*up)(const nlohmann::json&)) {
  absl::StatusOr<std::unique_ptr<testing::RunningVm>> vm = testing::StartVm(args);
  ASSERT_TRUE(vm.ok()) << vm.status();
  auto client = QmpClient::Connect((*vm)->socket);
  ASSERT_TRUE(client.ok()) << client.status();
  const nlohmann::json l1s = testing::PollL1s(**client, up);
  ASSERT_TRUE(up(l1s)) << l1s.dump();
  std::vector<int64_t> l1_pids;
  for (const char* role : {"active", "standby", "replica"}) {
    for (int64_t pid : testing::PidsWithRole(l1s, role)) l1_pids.push_back(pid);
  }

  ASSERT_EQ(kill((*vm)->child->pid(), signal_number), 0);
  absl::StatusOr<QmpEvent> event = (*client)->WaitEvent(kTimeout);
  while (event.ok() && event->name != "SHUTDOWN") event = (*client)->WaitEvent(kTimeout);
  ASSERT_TRUE(event.ok()) << event.status() << "\n" << (*vm)->child->Stderr();
  EXPECT_EQ(event->data, nlohmann::json::parse(R"({"guest": false, "reason": "host-signal"})"));

  absl::StatusOr<int> code = (*vm)->child->WaitExit(kTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + signal_number) << (*vm)->child->Stderr();
  EXPECT_FALSE((*vm)->child->killed_by_signal()) << "it must exit by itself, after cleaning up";
  EXPECT_THAT((*vm)->child->Stderr(), HasSubstr("SIG" + std::string(sigabbrev_np(signal_number)) +
                                                " received: guest stopped"));
  EXPECT_FALSE(Exists((*vm)->socket));
  for (int64_t pid : l1_pids) {
    EXPECT_TRUE(
        testing::PollUntil([pid] { return ProcessGone(static_cast<pid_t>(pid)); }, kTimeout))
        << "L1 pid " << pid << " outlived rehome";
  }
}

class HostSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(HostSignalTest, StopsCleanlyWithShutdownEventAndRemovesTheSocket) {
  if (!testing::HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  // The active L1 and its standby are up.
  ExpectCleanStopOnSignal(GetParam(), CounterArgs(), testing::HasStandby);
}

// Verified execution: the active L1 and its replica are stopped as cleanly.
TEST(HostSignal, VerifiedReplicasStopCleanlyToo) {
  if (!testing::HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  std::vector<std::string> args = CounterArgs();
  args.insert(args.end(), {"--verify", "dual"});
  ExpectCleanStopOnSignal(SIGTERM, args, [](const nlohmann::json& l1s) {
    return testing::PidsWithRole(l1s, "active").size() == 1 &&
           testing::PidsWithRole(l1s, "replica").size() == 1;
  });
}

INSTANTIATE_TEST_SUITE_P(Signals, HostSignalTest, ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

// Without a QMP monitor, and in monolithic mode, the stop is just as clean.
TEST(HostSignal, MonolithicWithoutQmpStopsWithTheSignalsExitCode) {
  if (!testing::HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  testing::ScratchDir dir;
  std::vector<std::string> args = CounterArgs();
  args.insert(args.begin(), "run");
  args.insert(args.end(), {"--mode", "monolithic"});
  absl::StatusOr<std::unique_ptr<testing::RehomeChild>> child =
      testing::RehomeChild::Start(args, dir.path());
  ASSERT_TRUE(child.ok()) << child.status();
  // Started once the guest's banner is on its serial output (stdout).
  const std::string serial = dir.path() + "/serial.log";
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        struct stat st;
        return stat(serial.c_str(), &st) == 0 && st.st_size > 0;
      },
      kTimeout))
      << (*child)->Stderr();
  ASSERT_EQ(kill((*child)->pid(), SIGTERM), 0);
  absl::StatusOr<int> code = (*child)->WaitExit(kTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGTERM) << (*child)->Stderr();
  EXPECT_FALSE((*child)->killed_by_signal());
  EXPECT_THAT((*child)->Stderr(), HasSubstr("SIGTERM received: guest stopped"));
}

}  // namespace
}  // namespace rehome
