// bench/death_notice/death_notice_bench.cc: how much sooner L0 learns of a killed L1 from its
// death notice (base/death_notice.h) than from its pidfd, as a function of the memory the L1 has
// touched. Each round starts a child that maps a memfd of --mib MiB (MAP_SHARED, as an L1 maps
// guest RAM), touches every page of it (as an L1 that served I/O into all of RAM would have),
// starts a second thread (an L1's heartbeat thread) and claims a death notice word in a shared
// page from its main thread; then the parent SIGKILLs it and records, on one real-time waiter
// thread each, when the notice is marked and when the pidfd becomes readable.
// Usage: rehome-death-notice-bench [--mib N ...] [--rounds R]   (docs/benchmarks.md, section 18)
// Prints one line per size: medians and maxima in microseconds.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "base/death_notice.h"

namespace {

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

void Realtime() {
  const sched_param fifo{.sched_priority = 1};
  (void)sched_setscheduler(0, SCHED_FIFO, &fifo);  // best effort: not root, no real time
}

struct Round {
  int64_t notice_us;
  int64_t pidfd_us;
};

// One kill of a child that touched `bytes` of a memfd; nullopt-like {-1,-1} on a setup failure.
Round OneRound(int memfd, size_t bytes) {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return {-1, -1};
  auto* word = new (page) std::atomic<uint32_t>(0);
  int ready[2];
  if (pipe(ready) != 0) return {-1, -1};
  const pid_t child = fork();
  if (child == 0) {
    auto* ram = static_cast<volatile char*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0));
    if (ram == MAP_FAILED) _exit(1);
    for (size_t i = 0; i < bytes; i += 4096) ram[i] = 1;
    std::thread heartbeat([] {
      for (;;) usleep(10000);
    });
    heartbeat.detach();
    if (!rehome::ClaimDeathNotice(word).ok()) _exit(1);
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  char c;
  const bool started = read(ready[0], &c, 1) == 1;
  close(ready[0]);
  close(ready[1]);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  std::atomic<int64_t> notice_ns{0};
  std::atomic<int64_t> pidfd_ns{0};
  std::thread notice_waiter([&] {
    Realtime();
    while (!rehome::AwaitDeathNotice(word, absl::Seconds(1))) {
    }
    notice_ns = NowNs();
  });
  std::thread pidfd_waiter([&] {
    Realtime();
    pollfd p{pidfd, POLLIN, 0};
    while (poll(&p, 1, -1) != 1) {
    }
    pidfd_ns = NowNs();
  });
  usleep(20000);  // both waiters asleep
  const int64_t killed = NowNs();
  kill(child, SIGKILL);
  notice_waiter.join();
  pidfd_waiter.join();
  waitpid(child, nullptr, 0);
  close(pidfd);
  munmap(page, 4096);
  if (!started) return {-1, -1};
  return {(notice_ns - killed) / 1000, (pidfd_ns - killed) / 1000};
}

int64_t Median(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> mibs;
  int rounds = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mib" && i + 1 < argc) {
      mibs.push_back(std::strtoull(argv[++i], nullptr, 10));
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--mib N ...] [--rounds R]\n", argv[0]);
      return 2;
    }
  }
  if (mibs.empty()) mibs = {0, 64, 256, 1024};
  std::printf("%8s %7s %18s %18s\n", "MiB", "rounds", "notice p50/max us", "pidfd p50/max us");
  for (size_t mib : mibs) {
    const size_t bytes = std::max<size_t>(mib << 20, 4096);
    const int memfd = static_cast<int>(syscall(SYS_memfd_create, "ram", 0));
    if (memfd < 0 || ftruncate(memfd, static_cast<off_t>(bytes)) != 0) {
      std::fprintf(stderr, "death-notice-bench: memfd of %zu MiB: %s\n", mib, strerror(errno));
      return 1;
    }
    std::vector<int64_t> notice, pidfd;
    for (int r = 0; r < rounds; ++r) {
      const Round round = OneRound(memfd, bytes);
      if (round.notice_us < 0) {
        std::fprintf(stderr, "death-notice-bench: a child failed to start\n");
        return 1;
      }
      notice.push_back(round.notice_us);
      pidfd.push_back(round.pidfd_us);
    }
    close(memfd);
    std::printf("%8zu %7d %9ld / %-7ld %9ld / %-7ld\n", mib, rounds, Median(notice),
                *std::max_element(notice.begin(), notice.end()), Median(pidfd),
                *std::max_element(pidfd.begin(), pidfd.end()));
    std::fflush(stdout);
  }
  return 0;
}
