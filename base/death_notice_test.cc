#include "base/death_notice.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/death_notice_bell.h"
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

// A child process whose one thread claims `word`, then waits to be killed. The destructor
// kills and reaps it.
class ClaimingChild {
 public:
  explicit ClaimingChild(std::atomic<uint32_t>* word) {
    int ready[2];
    if (pipe(ready) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      if (!ClaimDeathNotice(word).ok()) _exit(1);
      (void)!write(ready[1], "x", 1);
      for (;;) pause();
    }
    char c;
    claimed_ = pid_ > 0 && read(ready[0], &c, 1) == 1;
    close(ready[0]);
    close(ready[1]);
  }
  ~ClaimingChild() {
    Kill();
    Reap();
  }
  bool claimed() const { return claimed_; }
  bool Kill() { return pid_ > 0 && kill(pid_, SIGKILL) == 0; }
  // The wait status; -1 once reaped or never started.
  int Reap() {
    int status = 0;
    if (pid_ <= 0 || waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  bool claimed_ = false;
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
  ClaimingChild child(word.get());
  ASSERT_TRUE(child.claimed());
  EXPECT_FALSE(DeathNoticed(*word.get()));
  ASSERT_TRUE(child.Kill());
  EXPECT_TRUE(AwaitWithDeadline(word.get()));
  const int status = child.Reap();
  EXPECT_TRUE(WIFSIGNALED(status));
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

// Whether thread `tid` of this process is asleep (state S).
bool Sleeping(pid_t tid) {
  if (tid == 0) return false;
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'S';
}

// Whether `fd` becomes readable within `timeout`.
bool Readable(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
}

TEST(DeathNoticeBell, RingsOnceTheOwnerDiesAndStaysRung) {
  SharedWord word;
  LivingOwner owner(word.get());
  ASSERT_TRUE(owner.claimed_ok());
  absl::StatusOr<DeathNoticeBell> bell = DeathNoticeBell::Start(word.get());
  ASSERT_TRUE(bell.ok()) << bell.status();
  EXPECT_FALSE(Readable(bell->fd(), absl::Milliseconds(30)));  // alive: silent
  EXPECT_FALSE(bell->rung());
  owner.End();
  EXPECT_TRUE(Readable(bell->fd(), kDeadline));
  EXPECT_TRUE(bell->rung());
  EXPECT_TRUE(Readable(bell->fd(), absl::ZeroDuration()));  // not drained
}

TEST(DeathNoticeBell, PassesTheKernelsSingleWakeUpOn) {
  // The kernel wakes one waiter at the owner's death; a second waiter (the fence) must not wait
  // for its timeout because the bell took that wake-up.
  SharedWord word;
  LivingOwner owner(word.get());
  ASSERT_TRUE(owner.claimed_ok());
  absl::StatusOr<DeathNoticeBell> bell = DeathNoticeBell::Start(word.get());
  ASSERT_TRUE(bell.ok()) << bell.status();
  std::atomic<bool> other_woke{false};
  std::atomic<pid_t> other_tid{0};
  std::thread other([&] {
    other_tid = static_cast<pid_t>(syscall(SYS_gettid));
    other_woke = AwaitDeathNotice(word.get(), absl::Seconds(30));
  });
  // The other waiter asleep in the futex (the bell, at a real-time priority, is woken first).
  const absl::Time deadline = absl::Now() + kDeadline;
  while (!Sleeping(other_tid.load()) && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(Sleeping(other_tid.load()));
  const absl::Time died = absl::Now();
  owner.End();
  other.join();  // 30 s if nobody passed the wake-up on
  EXPECT_LT(absl::Now() - died, absl::Seconds(10));
  EXPECT_TRUE(other_woke.load());
  EXPECT_TRUE(Readable(bell->fd(), kDeadline));
}

TEST(DeathNoticeBell, AKilledProcessRingsTheBellBeforeItIsReaped) {
  SharedWord word;
  ClaimingChild child(word.get());
  ASSERT_TRUE(child.claimed());
  absl::StatusOr<DeathNoticeBell> bell = DeathNoticeBell::Start(word.get());
  ASSERT_TRUE(bell.ok()) << bell.status();
  ASSERT_TRUE(child.Kill());
  EXPECT_TRUE(Readable(bell->fd(), kDeadline));  // not reaped yet
}

TEST(DeathNoticeBell, StopsPromptlyOnAnUnclaimedWordAndMoves) {
  SharedWord word;
  absl::StatusOr<DeathNoticeBell> bell = DeathNoticeBell::Start(word.get());
  ASSERT_TRUE(bell.ok()) << bell.status();
  DeathNoticeBell moved = std::move(*bell);
  EXPECT_FALSE(Readable(moved.fd(), absl::Milliseconds(30)));
  const absl::Time start = absl::Now();
  { DeathNoticeBell gone = std::move(moved); }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // joined, not stuck in a futex wait
}

}  // namespace
}  // namespace rehome
