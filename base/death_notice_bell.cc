#include "base/death_notice_bell.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "absl/time/time.h"
#include "base/death_notice.h"
#include "base/errno_status.h"
#include "base/scoped_realtime.h"

namespace rehome {
namespace {

// How often an unclaimed word (or a stop without a wake) is looked at again.
constexpr absl::Duration kRecheck = absl::Milliseconds(20);

void Watch(std::atomic<uint32_t>* word, int eventfd, const std::atomic<bool>& stopping,
           std::atomic<bool>& rung) {
  const ScopedRealtime realtime;
  while (!stopping.load(std::memory_order_acquire)) {
    if (!AwaitDeathNotice(word, kRecheck)) continue;
    rung.store(true, std::memory_order_release);
    const uint64_t one = 1;
    (void)!write(eventfd, &one, sizeof(one));
    WakeDeathNoticeWaiters(word);  // the kernel woke only one waiter: maybe this one
    return;
  }
}

}  // namespace

absl::StatusOr<DeathNoticeBell> DeathNoticeBell::Start(std::atomic<uint32_t>* word) {
  auto state = std::make_unique<State>();
  state->word = word;
  state->eventfd.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state->eventfd.valid()) return LastErrnoStatus("eventfd for a death notice bell");
  return DeathNoticeBell(std::move(state));
}

DeathNoticeBell::DeathNoticeBell(std::unique_ptr<State> state)
    : state_(std::move(state)),
      thread_([s = state_.get()] { Watch(s->word, s->eventfd.get(), s->stopping, s->rung); }) {}

DeathNoticeBell& DeathNoticeBell::operator=(DeathNoticeBell&& other) noexcept {
  if (this != &other) {
    Stop();
    state_ = std::move(other.state_);
    thread_ = std::move(other.thread_);
  }
  return *this;
}

DeathNoticeBell::~DeathNoticeBell() { Stop(); }

void DeathNoticeBell::Stop() {
  if (!thread_.joinable()) return;
  state_->stopping.store(true, std::memory_order_release);
  WakeDeathNoticeWaiters(state_->word);
  thread_.join();
}

}  // namespace rehome
