// base/death_notice_bell.h: DeathNoticeBell turns a death notice (base/death_notice.h) into a
// file descriptor: a thread of its own waits on the word and makes an eventfd readable once the
// kernel marks it, so that a caller that already waits in poll() on other fds (an L1's response
// eventfds, its pidfd) also wakes the moment the L1's exit thread dies, before the process's
// teardown makes the pidfd readable.
//
// Once rung, the eventfd stays readable (it is never drained here; callers must not drain it
// either). The waiting thread runs at the lowest SCHED_FIFO priority where permitted (the notice
// is on the failover path) and passes the kernel's single wake-up on to other waiters.
// Move-only owner: the destructor stops and joins the thread; `word` must stay mapped until then.
// Thread-safety: fd() and rung() may be called from any thread.
#ifndef REHOME_BASE_DEATH_NOTICE_BELL_H_
#define REHOME_BASE_DEATH_NOTICE_BELL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace rehome {

class DeathNoticeBell final {
 public:
  // Starts watching `word` (claimed or not yet: an unclaimed word is looked at again every
  // few milliseconds). Errors: the eventfd cannot be created.
  static absl::StatusOr<DeathNoticeBell> Start(std::atomic<uint32_t>* word);

  DeathNoticeBell(DeathNoticeBell&&) noexcept = default;
  DeathNoticeBell& operator=(DeathNoticeBell&&) noexcept;
  ~DeathNoticeBell();

  // Readable (POLLIN) once the owner of the word died.
  int fd() const { return state_->eventfd.get(); }
  bool rung() const { return state_->rung.load(std::memory_order_acquire); }

 private:
  struct State {
    std::atomic<uint32_t>* word = nullptr;
    UniqueFd eventfd;
    std::atomic<bool> stopping{false};
    std::atomic<bool> rung{false};
  };
  explicit DeathNoticeBell(std::unique_ptr<State> state);
  void Stop();

  std::unique_ptr<State> state_;  // stable address for the thread
  std::thread thread_;
};

}  // namespace rehome

#endif  // REHOME_BASE_DEATH_NOTICE_BELL_H_
