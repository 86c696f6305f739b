// vmm/bus_test.cc: Bus registration rules, routing, unhandled accesses, concurrent use.
#include "vmm/bus.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

// Records accesses; reads return offset + i per byte.
class RecordingDevice final : public BusDevice {
 public:
  explicit RecordingDevice(std::string name, bool posted = false)
      : name_(std::move(name)), posted_(posted) {}
  bool writes_posted() const override { return posted_; }
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    absl::MutexLock lock(&mu_);
    ++reads_;
    last_offset_ = offset;
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(offset + i);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    absl::MutexLock lock(&mu_);
    ++writes_;
    last_offset_ = offset;
    written_.assign(data.begin(), data.end());
  }
  std::string name() const override { return name_; }

  int reads() const {
    absl::MutexLock lock(&mu_);
    return reads_;
  }
  int writes() const {
    absl::MutexLock lock(&mu_);
    return writes_;
  }
  uint64_t last_offset() const {
    absl::MutexLock lock(&mu_);
    return last_offset_;
  }
  std::vector<uint8_t> written() const {
    absl::MutexLock lock(&mu_);
    return written_;
  }

 private:
  const std::string name_;
  const bool posted_;
  mutable absl::Mutex mu_;
  int reads_ = 0, writes_ = 0;
  uint64_t last_offset_ = 0;
  std::vector<uint8_t> written_;
};

TEST(Bus, RejectsEmptyOverflowingOutOfSpaceAndNullRanges) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>("d");
  absl::Status s = bus.Register(BusSpace::kPio, 0x10, 0, dev);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("[0x10, +0x0)"));
  EXPECT_EQ(bus.Register(BusSpace::kMmio, ~uint64_t{0} - 3, 8, dev).code(),
            absl::StatusCode::kInvalidArgument);
  s = bus.Register(BusSpace::kPio, 0xfffe, 4, dev);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("0xffff"));
  EXPECT_EQ(bus.Register(BusSpace::kPio, 0x10, 1, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(bus.Register(BusSpace::kPio, 0xfffc, 4, dev).ok());  // the last ports are fine
  EXPECT_TRUE(bus.Register(BusSpace::kMmio, ~uint64_t{0} - 7, 8, dev).ok());
}

TEST(Bus, RejectsOverlapsButAllowsAdjacentRangesAndSeparateSpaces) {
  Bus bus;
  auto a = std::make_shared<RecordingDevice>("a");
  auto b = std::make_shared<RecordingDevice>("b");
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x3f8, 8, a).ok());
  absl::Status s = bus.Register(BusSpace::kPio, 0x3ff, 1, b);  // last byte of a
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("overlaps [0x3f8, +0x8) of 'a'"));
  EXPECT_EQ(bus.Register(BusSpace::kPio, 0x3f0, 9, b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bus.Register(BusSpace::kPio, 0x300, 0x200, b).code(),
            absl::StatusCode::kInvalidArgument);  // covers a entirely
  EXPECT_EQ(bus.Register(BusSpace::kPio, 0x3f8, 8, b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(bus.Register(BusSpace::kPio, 0x3f0, 8, b).ok());   // ends where a starts
  EXPECT_TRUE(bus.Register(BusSpace::kPio, 0x400, 1, b).ok());   // starts where a ends
  EXPECT_TRUE(bus.Register(BusSpace::kMmio, 0x3f8, 8, b).ok());  // other space
}

TEST(Bus, RoutesAccessesWithOffsetsAndLooksUpDevices) {
  Bus bus;
  auto pio = std::make_shared<RecordingDevice>("pio");
  auto mmio = std::make_shared<RecordingDevice>("mmio");
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x3f8, 8, pio).ok());
  ASSERT_TRUE(bus.Register(BusSpace::kMmio, 0xd0000000, 0x1000, mmio).ok());

  std::vector<uint8_t> buf(2);
  bus.Read(BusSpace::kPio, 0x3fa, buf);
  EXPECT_EQ(buf, (std::vector<uint8_t>{2, 3}));
  const std::vector<uint8_t> value = {0xaa, 0xbb, 0xcc, 0xdd};
  bus.Write(BusSpace::kMmio, 0xd0000ffc, value);
  EXPECT_EQ(mmio->written(), value);
  EXPECT_EQ(mmio->last_offset(), 0xffcu);
  EXPECT_EQ(pio->writes(), 0);

  uint64_t offset = 0;
  EXPECT_EQ(bus.Lookup(BusSpace::kPio, 0x3ff, 1, &offset), pio);
  EXPECT_EQ(offset, 7u);
  EXPECT_EQ(bus.Lookup(BusSpace::kPio, 0x3ff, 2, &offset), nullptr);  // straddles the end
  EXPECT_EQ(bus.Lookup(BusSpace::kPio, 0x3f7, 1, &offset), nullptr);
  EXPECT_EQ(bus.Lookup(BusSpace::kMmio, 0x3f8, 1, &offset), nullptr);  // other space
  EXPECT_EQ(bus.unhandled_reads(BusSpace::kPio) + bus.unhandled_writes(BusSpace::kMmio), 0u);
}

TEST(Bus, PostedWriteRangesListOnlyDevicesThatAllowThem) {
  Bus bus;
  auto posted = std::make_shared<RecordingDevice>("posted", true);
  auto plain = std::make_shared<RecordingDevice>("plain");
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x7e8, 1, posted).ok());
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x3f8, 8, plain).ok());
  ASSERT_TRUE(bus.Register(BusSpace::kMmio, 0xd0000000, 0x200, posted).ok());
  const std::vector<PostedWriteRange> ranges = bus.PostedWriteRanges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].space, BusSpace::kPio);
  EXPECT_EQ(ranges[0].base, 0x7e8u);
  EXPECT_EQ(ranges[0].len, 1u);
  EXPECT_EQ(ranges[1].space, BusSpace::kMmio);
  EXPECT_EQ(ranges[1].base, 0xd0000000u);
  EXPECT_EQ(ranges[1].len, 0x200u);
  EXPECT_TRUE(Bus().PostedWriteRanges().empty());
}

TEST(Bus, UnhandledAccessesReadAllOnesDropWritesAndAreCounted) {
  Bus bus;
  std::vector<std::string> log;
  bus.SetLogSink([&log](std::string_view line) { log.emplace_back(line); });
  auto dev = std::make_shared<RecordingDevice>("d");
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x3f8, 8, dev).ok());

  std::vector<uint8_t> buf = {1, 2, 3, 4};
  bus.Read(BusSpace::kPio, 0x80, buf);
  EXPECT_EQ(buf, (std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff}));
  buf = {1, 2, 3, 4};
  bus.Read(BusSpace::kPio, 0x3fe, buf);  // straddles the device's end: unhandled
  EXPECT_EQ(buf, (std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff}));
  bus.Write(BusSpace::kPio, 0x3fe, buf);
  bus.Write(BusSpace::kMmio, 0x1000, buf);
  EXPECT_EQ(dev->reads() + dev->writes(), 0);
  EXPECT_EQ(bus.unhandled_reads(BusSpace::kPio), 2u);
  EXPECT_EQ(bus.unhandled_writes(BusSpace::kPio), 1u);
  EXPECT_EQ(bus.unhandled_writes(BusSpace::kMmio), 1u);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_THAT(log[0], HasSubstr("unhandled 4-byte port read at 0x80"));
  EXPECT_THAT(log[3], HasSubstr("mmio write at 0x1000"));
}

TEST(Bus, LogOfUnhandledAccessesIsRateLimited) {
  Bus bus;
  int lines = 0;
  bus.SetLogSink([&lines](std::string_view) { ++lines; });
  const std::vector<uint8_t> byte = {0};
  for (int i = 0; i < 100000; ++i) bus.Write(BusSpace::kPio, 0x80, byte);
  EXPECT_EQ(bus.unhandled_writes(BusSpace::kPio), 100000u);
  // The first 8, then 16, 32, ..., 65536.
  EXPECT_EQ(lines, 8 + 13);
}

TEST(Bus, ConcurrentAccessesFromManyThreadsAreAllDelivered) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>("d");
  ASSERT_TRUE(bus.Register(BusSpace::kPio, 0x10, 4, dev).ok());
  bus.SetLogSink(nullptr);
  constexpr int kThreads = 4, kIters = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&bus] {
      std::vector<uint8_t> b(1);
      for (int i = 0; i < kIters; ++i) {
        bus.Write(BusSpace::kPio, 0x11, b);
        bus.Read(BusSpace::kPio, 0x20, b);  // unhandled
      }
    });
  }
  // Registration while accesses run is safe too.
  auto other = std::make_shared<RecordingDevice>("other");
  EXPECT_TRUE(bus.Register(BusSpace::kPio, 0x100, 1, other).ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(dev->writes(), kThreads * kIters);
  EXPECT_EQ(bus.unhandled_reads(BusSpace::kPio), uint64_t{kThreads * kIters});
}

}  // namespace
}  // namespace rehome
