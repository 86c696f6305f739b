// qmp-client/testing/qemu_process.cc: see header.
#include "qmp-client/testing/qemu_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

extern char** environ;

namespace rehome::testing {

std::string FindQemu() {
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/qemu-system-x86_64");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return LastErrnoStatus("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return LastErrnoStatus(absl::StrCat("connect ", path));
  }
  return fd;
}

bool UnixSocketIsListening(const std::string& path) {
  // Columns: Num RefCount Protocol Flags Type St Inode Path; Flags has __SO_ACCEPTCON
  // (0x10000) on a listening socket.
  constexpr unsigned long kAcceptCon = 0x10000;
  std::ifstream table("/proc/net/unix");
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string num, refcount, protocol, flags, type, state, inode, socket_path;
    if (!(fields >> num >> refcount >> protocol >> flags >> type >> state >> inode >>
          socket_path)) {
      continue;  // unnamed socket
    }
    // strtoul, not stoul: an odd line must not throw; it just does not match.
    if (socket_path == path && (std::strtoul(flags.c_str(), nullptr, 16) & kAcceptCon) != 0) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::unique_ptr<QemuProcess>> QemuProcess::Start(int qmp_sockets,
                                                                absl::Duration timeout,
                                                                std::vector<std::string> machine) {
  const std::string qemu = FindQemu();
  if (qemu.empty()) return absl::NotFoundError("qemu-system-x86_64 not found on PATH");
  auto process = std::unique_ptr<QemuProcess>(new QemuProcess());
  char dir_template[] = "/tmp/rehome-qmp-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return LastErrnoStatus("mkdtemp");
  process->dir_ = dir_template;

  if (machine.empty()) machine = {"-machine", "none"};
  std::vector<std::string> args = {qemu};
  args.insert(args.end(), machine.begin(), machine.end());
  for (const char* arg : {"-nodefaults", "-nographic", "-monitor", "none", "-serial", "none"}) {
    args.push_back(arg);
  }
  for (int i = 0; i < qmp_sockets; ++i) {
    process->sockets_.push_back(absl::StrCat(process->dir_, "/qmp", i, ".sock"));
    args.push_back("-qmp");
    args.push_back(absl::StrCat("unix:", process->sockets_.back(), ",server=on,wait=off"));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const std::string log = process->dir_ + "/qemu.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc = posix_spawn(&process->pid_, qemu.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    process->pid_ = -1;
    return ErrnoToStatus(rc, "posix_spawn qemu");
  }

  // Poll until every socket listens (QEMU binds and listens during start-up). No probe
  // connection: see UnixSocketIsListening.
  const absl::Time deadline = absl::Now() + timeout;
  for (const std::string& socket : process->sockets_) {
    for (;;) {
      if (UnixSocketIsListening(socket)) break;
      int status;
      if (waitpid(process->pid_, &status, WNOHANG) == process->pid_) {
        process->pid_ = -1;
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        return absl::InternalError(absl::StrCat("qemu exited during start-up: ", text.str()));
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat("qemu did not create ", socket));
      }
      absl::SleepFor(absl::Milliseconds(5));  // poll interval, bounded by the deadline above
    }
  }
  return process;
}

void QemuProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

QemuProcess::~QemuProcess() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::StatusOr<RawQmpPeer> RawQmpPeer::Connect(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  return RawQmpPeer(std::move(fd));
}

absl::Status RawQmpPeer::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("send");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status RawQmpPeer::ReadSome(std::vector<nlohmann::json>* values, absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("peer sent nothing more");
  pollfd pfd{fd_.get(), POLLIN, 0};
  const int ready = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  if (ready < 0) return errno == EINTR ? absl::OkStatus() : LastErrnoStatus("poll");
  if (ready == 0) return absl::DeadlineExceededError("peer sent nothing more");
  char buffer[65536];
  const ssize_t n = read(fd_.get(), buffer, sizeof(buffer));
  if (n < 0) return errno == EINTR ? absl::OkStatus() : LastErrnoStatus("read");
  if (n == 0) return absl::UnavailableError("peer closed");
  raw_.append(buffer, static_cast<size_t>(n));
  for (absl::StatusOr<nlohmann::json>& value : framer_.Feed(std::string_view(buffer, n))) {
    if (value.ok()) values->push_back(std::move(*value));
  }
  return absl::OkStatus();
}

}  // namespace rehome::testing
