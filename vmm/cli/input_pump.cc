// vmm/cli/input_pump.cc: InputPump.
#include "vmm/cli/input_pump.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "base/errno_status.h"

namespace rehome {

absl::StatusOr<std::unique_ptr<InputPump>> InputPump::Start(int fd, Sink sink) {
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return LastErrnoStatus("eventfd");
  std::unique_ptr<InputPump> pump(new InputPump(fd, std::move(wake), std::move(sink)));
  pump->thread_ = std::thread([raw = pump.get()] { raw->Loop(); });
  return pump;
}

InputPump::InputPump(int fd, UniqueFd wake, Sink sink)
    : fd_(fd), wake_(std::move(wake)), sink_(std::move(sink)) {}

InputPump::~InputPump() {
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void InputPump::Loop() {
  char buffer[512];
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;  // EOF or error: no more input
    sink_(std::string_view(buffer, static_cast<size_t>(n)));
  }
}

}  // namespace rehome
