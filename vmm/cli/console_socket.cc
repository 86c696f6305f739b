// vmm/cli/console_socket.cc: ConsoleSocket.
#include "vmm/cli/console_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/cpu_avoidance.h"
#include "base/errno_status.h"

namespace rehome {

absl::StatusOr<std::unique_ptr<ConsoleSocket>> ConsoleSocket::Listen(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--console-socket ", path, ": bad path"));
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--console-socket ", path, ": exists and is not a socket"));
    }
    unlink(path.c_str());
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return LastErrnoStatus("socket");
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return LastErrnoStatus(absl::StrCat("--console-socket ", path));
  }
  chmod(path.c_str(), 0600);
  if (listen(listener.get(), 4) != 0) return LastErrnoStatus("listen");
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return LastErrnoStatus("eventfd");
  return std::unique_ptr<ConsoleSocket>(
      new ConsoleSocket(path, std::move(listener), std::move(wake)));
}

ConsoleSocket::ConsoleSocket(std::string path, UniqueFd listener, UniqueFd wake)
    : path_(std::move(path)), listener_(std::move(listener)), wake_(std::move(wake)) {}

ConsoleSocket::~ConsoleSocket() {
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  unlink(path_.c_str());
}

void ConsoleSocket::Start(InputSink sink) {
  sink_ = std::move(sink);
  thread_ = std::thread([this] { Loop(); });
}

void ConsoleSocket::Write(std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  pending_.append(bytes);
  if (pending_.size() > kMaxBuffered) {
    const size_t excess = pending_.size() - kMaxBuffered;
    pending_.erase(0, excess);
    dropped_ += excess;
  }
  FlushLocked();
}

void ConsoleSocket::FlushLocked() {
  while (client_.valid() && !pending_.empty()) {
    const ssize_t n = send(client_.get(), pending_.data(), pending_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // the client is slow; the loop flushes on POLLOUT
    if (n <= 0) {
      client_.Reset();  // gone; keep the bytes for the next client
      return;
    }
    pending_.erase(0, static_cast<size_t>(n));
  }
}

uint64_t ConsoleSocket::dropped_output() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void ConsoleSocket::Loop() {
  char buffer[4096];
  CpuAvoidance avoidance;
  for (;;) {
    if (busy_cpus_) (void)avoidance.MoveOff(busy_cpus_());
    int client_fd;
    bool want_out;
    {
      absl::MutexLock lock(&mu_);
      client_fd = client_.get();
      want_out = client_.valid() && !pending_.empty();
    }
    pollfd fds[3] = {{wake_.get(), POLLIN, 0},
                     {listener_.get(), POLLIN, 0},
                     {client_fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0}};
    if (poll(fds, client_fd >= 0 ? 3 : 2, 100) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) return;
    if (fds[1].revents & POLLIN) {
      UniqueFd accepted(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (accepted.valid()) {
        absl::MutexLock lock(&mu_);
        client_ = std::move(accepted);
        FlushLocked();
      }
      continue;
    }
    if (client_fd < 0) continue;
    if (fds[2].revents & POLLOUT) {
      absl::MutexLock lock(&mu_);
      FlushLocked();
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = read(client_fd, buffer, sizeof(buffer));
      if (n > 0) {
        if (sink_) sink_(std::string_view(buffer, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        absl::MutexLock lock(&mu_);
        if (client_.get() == client_fd) client_.Reset();
      }
    }
  }
}

}  // namespace rehome
