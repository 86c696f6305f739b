// recovery/l1_spawn_test.cc: SpawnChild with a shell as the child: the fds it gets (exactly the
// ones asked for, even when the parent's are not close-on-exec), the pid namespace (pid 1 inside,
// the host pid outside), the pidfd, its scheduling (normal priority, nice 5, whatever spawned it),
// and an exec failure reported with its cause.
#include "recovery/l1_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

// Runs `script` under bash (dash cannot name fd 100) with fd 100 the write end of a pipe; returns
// what it wrote there.
std::string RunShell(const std::string& script, bool new_pid_namespace, pid_t* pid,
                     std::vector<int> cpus = {}) {
  int out[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnRequest request;
  request.binary = "/bin/bash";
  request.argv = {"bash", "-c", script};
  request.fds = {{out[1], 100}};
  request.new_pid_namespace = new_pid_namespace;
  request.cpus = std::move(cpus);
  absl::StatusOr<SpawnedChild> child = SpawnChild(request);
  close(out[1]);
  std::string text;
  if (!child.ok()) {
    close(out[0]);
    return absl::StrCat("spawn failed: ", child.status().message());
  }
  *pid = child->pid;
  char buffer[256];
  for (ssize_t n; (n = read(out[0], buffer, sizeof(buffer))) > 0;) text.append(buffer, n);
  close(out[0]);
  siginfo_t info{};
  EXPECT_EQ(waitid(P_PIDFD, static_cast<id_t>(child->pidfd.get()), &info, WEXITED), 0);
  EXPECT_EQ(info.si_pid, child->pid);
  return text;
}

TEST(SpawnChildTest, ChildGetsOnlyTheFdsItIsGiven) {
  const int leaky = open("/dev/null", O_RDONLY);  // not close-on-exec
  ASSERT_GE(leaky, 3);
  pid_t pid = 0;
  const std::string out =
      RunShell(absl::StrCat("for fd in 0 1 2 ", leaky,
                            " 100; do [ -e /proc/self/fd/$fd ] && echo -n \"$fd \"; "
                            "done >&100; readlink /proc/self/fd/0 >&100"),
               false, &pid);
  close(leaky);
  EXPECT_EQ(out, "0 1 2 100 /dev/null\n");
}

TEST(SpawnChildTest, NewPidNamespaceMakesItPidOneInside) {
  if (geteuid() != 0) GTEST_SKIP() << "a pid namespace needs CAP_SYS_ADMIN";
  pid_t pid = 0;
  // (The shell reads its own status: `read` runs in it, /proc/self is the shell.)
  const std::string out = RunShell(
      "echo $$ >&100; while read -r k v; do [ \"$k\" = NSpid: ] && echo \"$v\" >&100; done "
      "</proc/self/status",
      true, &pid);
  ASSERT_GT(pid, 0);
  // The shell is pid 1 in its namespace; /proc (the host's) names it by the host pid too.
  EXPECT_THAT(out, ::testing::StartsWith("1\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(pid, "\t1")));
}

// Spawned from a real-time thread (a failover thread), the child still starts at normal
// priority and nice 5: a new standby must not take the CPUs from the vCPUs and the active L1.
TEST(SpawnChildTest, ChildStartsAtNormalPriorityAndNiceFive) {
  const sched_param fifo{.sched_priority = 1};
  const bool raised = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo) == 0;
  pid_t pid = 0;
  // /proc/self/stat of the shell: fields 19 (nice) and 41 (policy), after the ") " of comm.
  const std::string out = RunShell(
      "read -r line </proc/self/stat; set -- ${line##*) }; shift 16; n=$1; shift 22; "
      "echo \"$n $1\" >&100",
      false, &pid);
  const sched_param other{.sched_priority = 0};
  if (raised) pthread_setschedparam(pthread_self(), SCHED_OTHER, &other);
  if (!raised) GTEST_SKIP() << "SCHED_FIFO not permitted here: nothing to drop";
  EXPECT_EQ(out, "5 0\n");  // nice 5, SCHED_OTHER
}

TEST(SpawnChildTest, ExecFailureIsReportedWithItsCause) {
  SpawnRequest request;
  request.binary = "/nonexistent/rehome";
  request.argv = {"rehome"};
  absl::StatusOr<SpawnedChild> child = SpawnChild(request);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(child.status().message(), HasSubstr("starting /nonexistent/rehome: execve"));
}

TEST(SpawnChildTest, TargetsMustLieAboveEverySource) {
  SpawnRequest request;
  request.binary = "/bin/true";
  request.argv = {"true"};
  request.fds = {{50, 10}};
  EXPECT_EQ(SpawnChild(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpawnChildTest, ChildStartsOnTheCpusAskedForAndTheCallerKeepsItsOwn) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  int last = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &before)) last = cpu;
  }
  ASSERT_GE(last, 0);
  pid_t pid = 0;
  const std::string out = RunShell("grep Cpus_allowed_list /proc/self/status | tr -d ' \\t' >&100",
                                   false, &pid, {last});
  EXPECT_EQ(out, absl::StrCat("Cpus_allowed_list:", last, "\n"));
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
}

}  // namespace
}  // namespace rehome
