// tests/rehome_child.cc: RehomeChild, StartVm and fixtures (see header).
#include "tests/rehome_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "qmp-client/testing/qemu_process.h"
#include "tests/subprocess.h"

extern char** environ;

namespace rehome::testing {

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }

ScratchDir::ScratchDir() {
  char name[] = "/tmp/rehome-test-XXXXXX";
  if (mkdtemp(name) != nullptr) path_ = name;
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

absl::StatusOr<std::unique_ptr<RehomeChild>> RehomeChild::Start(std::vector<std::string> args,
                                                                const std::string& dir) {
  args.insert(args.begin(), RehomeBinary());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  auto child = std::unique_ptr<RehomeChild>(new RehomeChild(dir + "/stderr.log"));
  const std::string serial = dir + "/serial.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, serial.c_str(), O_WRONLY | O_CREAT, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, child->stderr_path_.c_str(), O_WRONLY | O_CREAT,
                                   0644);
  const int rc = posix_spawn(&child->pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    child->pid_ = -1;
    return ErrnoToStatus(rc, absl::StrCat("posix_spawn ", args[0]));
  }
  child->pidfd_ = UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, child->pid_, 0)));
  if (!child->pidfd_.valid()) return LastErrnoStatus("pidfd_open");
  return child;
}

RehomeChild::~RehomeChild() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

absl::StatusOr<int> RehomeChild::WaitExit(absl::Duration timeout) {
  if (exit_code_.has_value()) return *exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    const int64_t left = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    const int ready = poll(&pfd, 1, static_cast<int>(left));
    if (ready > 0) break;
    if (ready < 0 && errno != EINTR) return LastErrnoStatus("poll pidfd");
    if (ready == 0) return absl::DeadlineExceededError("rehome is still running");
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  killed_by_signal_ = WIFSIGNALED(status);
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return *exit_code_;
}

absl::Status RehomeChild::WaitForSocket(const std::string& socket, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (ConnectUnix(socket).ok()) return absl::OkStatus();
    // The poll interval is spent waiting for the child's exit.
    if (absl::StatusOr<int> code = WaitExit(kPollInterval); code.ok()) {
      return absl::UnavailableError(
          absl::StrCat("rehome exited with status ", *code, " before serving QMP: ", Stderr()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no QMP socket at ", socket));
    }
  }
}

std::string RehomeChild::Stderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::unique_ptr<RunningVm>> StartVm(std::vector<std::string> args) {
  auto vm = std::make_unique<RunningVm>();
  if (vm->dir.path().empty()) return absl::InternalError("mkdtemp failed");
  vm->socket = vm->dir.path() + "/qmp.sock";
  args.insert(args.begin(), "run");
  args.insert(args.end(), {"--qmp", vm->socket});
  ASSIGN_OR_RETURN(vm->child, RehomeChild::Start(std::move(args), vm->dir.path()));
  RETURN_IF_ERROR(vm->child->WaitForSocket(vm->socket, kStartTimeout));
  return vm;
}

std::string CounterXml(const std::string& recovery) {
  const char* source = std::getenv("REHOME_SOURCE_DIR");
  std::ifstream in(std::string(source != nullptr ? source : ".") + "/examples/counter-split.xml");
  std::stringstream text;
  text << in.rdbuf();
  std::string xml = text.str();
  auto replace = [&xml](const std::string& open, const std::string& close, const std::string& by) {
    const size_t begin = xml.find(open);
    const size_t end = xml.find(close, begin);
    if (begin == std::string::npos || end == std::string::npos) return;
    xml.replace(begin, end + close.size() - begin, by);
  };
  replace("<kernel>", "</kernel>", absl::StrCat("<kernel>", GuestElf(), "</kernel>"));
  if (!recovery.empty()) replace("<rehome:recovery", "</rehome:recovery>", recovery);
  return xml;
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

}  // namespace rehome::testing
