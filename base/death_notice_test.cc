#include "base/death_notice.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

constexpr absl::Duration kDeadline = absl::Seconds(20);

// A word in a shared anonymous mapping (shared with children across fork).
class SharedWord {
 public:
  SharedWord() {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    word_ = new (p) std::atomic<uint32_t>(0);
  }
  ~SharedWord() { munmap(word_, 4096); }
  std::atomic<uint32_t>* get() { return word_; }

 private:
  std::atomic<uint32_t>* word_;
};

// A thread that claims `word` and lives until End().
class LivingOwner {
 public:
  explicit LivingOwner(std::atomic<uint32_t>* word)
      : thread_([this, word] {
          claimed_ok_ = ClaimDeathNotice(word).ok();
          claimed_.Notify();
          end_.WaitForNotification();
        }) {
    claimed_.WaitForNotification();
  }
  ~LivingOwner() { End(); }
  bool claimed_ok() const { return claimed_ok_; }
  void End() {
    if (!end_.HasBeenNotified()) end_.Notify();
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool claimed_ok_ = false;
  absl::Notification claimed_;
  absl::Notification end_;
  std::thread thread_;
};

bool AwaitWithDeadline(std::atomic<uint32_t>* word) {
  const absl::Time deadline = absl::Now() + kDeadline;
  while (absl::Now() < deadline) {
    if (AwaitDeathNotice(word, absl::Milliseconds(100))) return true;
  }
  return false;
}

TEST(DeathNotice, AThreadThatEndsIsNoticedWhileItsProcessLives) {
  SharedWord word;
  LivingOwner owner(word.get());
  ASSERT_TRUE(owner.claimed_ok());
  EXPECT_NE(word.get()->load(), 0u);  // the owner's thread id
  EXPECT_FALSE(DeathNoticed(*word.get()));
  EXPECT_FALSE(AwaitDeathNotice(word.get(), absl::Milliseconds(1)));  // alive: times out
  owner.End();
  EXPECT_TRUE(AwaitWithDeadline(word.get()));
}

TEST(DeathNotice, AKilledProcessIsNoticed) {
  SharedWord word;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!ClaimDeathNotice(word.get()).ok()) _exit(1);
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_FALSE(DeathNoticed(*word.get()));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  EXPECT_TRUE(AwaitWithDeadline(word.get()));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  close(ready[0]);
  close(ready[1]);
}

TEST(DeathNotice, AnUnclaimedWordIsNeverNoticed) {
  SharedWord word;
  EXPECT_FALSE(DeathNoticed(*word.get()));
  EXPECT_FALSE(AwaitDeathNotice(word.get(), absl::Milliseconds(1)));
  EXPECT_EQ(word.get()->load(), 0u);  // a waiter does not mark a word nobody claimed
}

TEST(DeathNotice, WakeReleasesEveryWaiter) {
  SharedWord word;
  LivingOwner owner(word.get());
  ASSERT_TRUE(owner.claimed_ok());
  std::atomic<int> returned{0};
  std::thread waiters[2];
  for (std::thread& w : waiters) {
    w = std::thread([&] {
      EXPECT_FALSE(AwaitDeathNotice(word.get(), absl::Hours(1)));
      returned.fetch_add(1);
    });
  }
  const absl::Time deadline = absl::Now() + kDeadline;
  while (returned.load() < 2 && absl::Now() < deadline) {
    WakeDeathNoticeWaiters(word.get());     // again: a waiter may not be asleep yet
    absl::SleepFor(absl::Milliseconds(1));  // poll interval, bounded by the deadline
  }
  EXPECT_EQ(returned.load(), 2);
  for (std::thread& w : waiters) w.join();
}

}  // namespace
}  // namespace rehome
