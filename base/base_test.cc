#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "base/cpu_avoidance.h"
#include "base/errno_status.h"
#include "base/mapped_region.h"
#include "base/periodic_tick.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

// On a thread of its own (its affinity changes): where it runs, what MoveOff makes of it.
TEST(CpuAvoidance, MovesOffBusyCpusOnlyWhereOthersAreAllowed) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  std::vector<int> cpus;
  for (int c = 0; c < 32; ++c) {
    if (CPU_ISSET(c, &all)) cpus.push_back(c);
  }
  if (cpus.size() < 2)
    GTEST_SKIP() << "needs 2 CPUs among 0..31, this process may use " << cpus.size();
  std::thread([&] {
    CpuAvoidance avoidance;
    EXPECT_FALSE(avoidance.MoveOff(0));  // unknown: stays
    uint32_t every = 0;
    for (int c : cpus) every |= 1u << c;
    if (every != ~0u) EXPECT_FALSE(avoidance.MoveOff(~every));  // busy CPUs it may not use
    EXPECT_FALSE(avoidance.MoveOff(every));  // nowhere else to go
    // The scheduler may migrate the thread between sched_getcpu() and MoveOff's own look; a
    // MoveOff that found it elsewhere changes nothing, so ask again.
    int here = -1;
    bool moved = false;
    for (int attempt = 0; attempt < 1000 && !moved; ++attempt) {
      here = sched_getcpu();
      moved = avoidance.MoveOff(1u << here);
    }
    ASSERT_TRUE(moved);
    EXPECT_NE(sched_getcpu(), here);  // sched_setaffinity migrates the caller at once
    cpu_set_t now;
    ASSERT_EQ(sched_getaffinity(0, sizeof(now), &now), 0);
    EXPECT_FALSE(CPU_ISSET(here, &now));
    EXPECT_EQ(CPU_COUNT(&now), static_cast<int>(cpus.size()) - 1);
    // At most once per interval, whatever the mask says now.
    EXPECT_FALSE(avoidance.MoveOff(1u << sched_getcpu()));
  }).join();
}

TEST(ErrnoStatus, MapsCommonErrnosToFixedCodes) {
  EXPECT_EQ(ErrnoToStatus(ENOENT, "open x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatus(EINVAL, "ioctl").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoToStatus(EPERM, "ioctl").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatus(EIO, "read").code(), absl::StatusCode::kInternal);
  EXPECT_NE(ErrnoToStatus(ENOENT, "open /nope").message().find("open /nope"), std::string::npos);
}

TEST(RegularFile, RefusesFifoDirectoryAndDevicesWithoutBlocking) {
  char tmpl[] = "/tmp/rehome-regular-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Nobody writes to the FIFO: a plain open() would block here forever.
  for (int flags : {O_RDONLY, O_RDWR}) {
    absl::StatusOr<UniqueFd> opened = OpenRegularFile(fifo, flags, "kernel");
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(opened.status().message(), "kernel '" + fifo + "': is a FIFO, not a regular file");
  }
  for (int flags : {O_RDONLY, O_RDWR}) {
    absl::StatusOr<UniqueFd> opened = OpenRegularFile(dir, flags, "disk image");
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(opened.status().message(),
              "disk image '" + dir + "': is a directory, not a regular file");
  }
  EXPECT_EQ(OpenRegularFile("/dev/null", O_RDWR, "disk image").status().message(),
            "disk image '/dev/null': is a character device, not a regular file");
  EXPECT_EQ(OpenRegularFile(dir + "/missing", O_RDONLY, "kernel").status().code(),
            absl::StatusCode::kNotFound);
  const std::string file = dir + "/file";
  UniqueFd(open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  absl::StatusOr<UniqueFd> opened = OpenRegularFile(file, O_RDWR, "disk image");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(fcntl(opened->get(), F_GETFL) & (O_NONBLOCK | O_ACCMODE), O_RDWR);
  EXPECT_NE(fcntl(opened->get(), F_GETFD) & FD_CLOEXEC, 0);
  unlink(file.c_str());
  unlink(fifo.c_str());
  rmdir(dir.c_str());
}

TEST(UniqueFd, ClosesOnDestructionAndMoveNullsSource) {
  int raw = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(MappedRegion, MapsAndMoveNullsSource) {
  auto region = MappedRegion::Map(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_TRUE(region.ok()) << region.status();
  region->bytes()[0] = 7;
  MappedRegion moved = std::move(*region);
  EXPECT_FALSE(region->valid());
  EXPECT_EQ(moved.bytes()[0], 7);
  auto bad = MappedRegion::Map(4096, PROT_READ, MAP_SHARED, /*fd=*/12345, 0);
  EXPECT_FALSE(bad.ok());
}

absl::StatusOr<int> Half(int v) {
  if (v % 2) return absl::InvalidArgumentError("odd");
  return v / 2;
}
absl::Status Quarter(int v, int* out) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(*out, Half(h));
  return absl::OkStatus();
}

TEST(PeriodicTick, WakesOnMultiplesOfThePeriod) {
  EXPECT_EQ(NanosToNextTick(0, 10), 10);  // strictly after: a tick never repeats
  EXPECT_EQ(NanosToNextTick(1, 10), 9);
  EXPECT_EQ(NanosToNextTick(19, 10), 1);
  EXPECT_EQ(NanosToNextTick(20, 10), 10);
  EXPECT_EQ(NanosToNextTick(123456789, 0), 0);
  // Periods that divide one another share their ticks: 10 ms and 50 ms meet every 50 ms.
  const int64_t now = 1234567890123;
  EXPECT_EQ((now + NanosToNextTick(now, 50000000)) % 10000000, 0);
  const timespec left = TimeToNextTick(10000000);
  EXPECT_EQ(left.tv_sec, 0);
  EXPECT_GT(left.tv_nsec, 0);
  EXPECT_LE(left.tv_nsec, 10000000);
}

TEST(StatusMacros, PropagateErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rehome
