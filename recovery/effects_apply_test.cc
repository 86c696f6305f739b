// recovery/effects_apply_test.cc: L0 applying agreed effects to real guest memory, a real image
// file (memfd) and interrupt lines, and refusing every entry that points outside them.
#include "recovery/effects_apply.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/guest_memory_view.h"

namespace rehome {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EffectsApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = memfd_create("effects-apply-test-disk", MFD_CLOEXEC);
    ASSERT_GE(disk_, 0);
    ASSERT_EQ(ftruncate(disk_, kDiskBytes), 0);
    sink_.ram = &view_;
    sink_.disk_fd = disk_;
    sink_.raise_irq = [this](uint32_t line) {
      if (line != kLine) return false;
      raised_.push_back(line);
      return true;
    };
    sink_.console_output = [this](std::string_view bytes) { console_ += bytes; };
  }
  void TearDown() override { close(disk_); }

  Effect Entry(EffectType type, uint64_t addr, const std::string& data = "") {
    stored_.push_back(std::vector<uint8_t>(data.begin(), data.end()));
    return Effect{type, addr, stored_.back()};
  }
  std::string DiskAt(uint64_t offset, size_t n) {
    std::string out(n, '\0');
    EXPECT_EQ(pread(disk_, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    return out;
  }

  static constexpr uint64_t kRamBase = 0x1000;
  static constexpr uint64_t kDiskBytes = 4096;
  static constexpr uint32_t kLine = 5;
  std::vector<uint8_t> ram_ = std::vector<uint8_t>(4096);
  FlatGuestMemoryView view_{ram_, kRamBase};
  int disk_ = -1;
  VerifiedEffectsSink sink_;
  std::vector<uint32_t> raised_;
  std::string console_;
  // The entries' bytes (a moved vector keeps its buffer, so the spans stay valid).
  std::vector<std::vector<uint8_t>> stored_;
};

TEST_F(EffectsApplyTest, AppliesEveryKindInOrder) {
  Effects effects;
  effects.entries = {Entry(EffectType::kRamWrite, kRamBase + 16, "done"),
                     Entry(EffectType::kDiskWrite, 512, "sector"), Entry(EffectType::kDiskFlush, 0),
                     Entry(EffectType::kIrq, kLine), Entry(EffectType::kConsoleOut, 0, "hello"),
                     // Read by the supervisor: nothing to do, counted as applied.
                     Entry(EffectType::kAvailWatch, kRamBase + 2)};
  const ApplyResult result = ApplyEffects(effects, sink_, kDiskBytes);
  EXPECT_EQ(result.applied, 6u);
  EXPECT_EQ(result.refused, 0u);
  EXPECT_TRUE(result.first_refusal.empty());
  EXPECT_FALSE(result.disk_error);
  EXPECT_EQ(std::string(ram_.begin() + 16, ram_.begin() + 20), "done");
  EXPECT_EQ(DiskAt(512, 6), "sector");
  EXPECT_THAT(raised_, ElementsAre(kLine));
  EXPECT_EQ(console_, "hello");
}

TEST_F(EffectsApplyTest, EntriesOutsideRamImageOrLinesAreRefusedAndNothingIsWritten) {
  const std::vector<uint8_t> ram_before = ram_;
  Effects effects;
  effects.entries = {
      Entry(EffectType::kRamWrite, kRamBase - 1, "xx"),                // starts below RAM
      Entry(EffectType::kRamWrite, kRamBase + 4095, "xx"),             // runs past its end
      Entry(EffectType::kRamWrite, ~uint64_t{0}, "x"),                 // wraps around
      Entry(EffectType::kDiskWrite, kDiskBytes - 1, "xx"),             // runs past the image
      Entry(EffectType::kDiskWrite, ~uint64_t{0} - 1, "xx"),           // wraps around
      Entry(EffectType::kIrq, kLine + 1),                              // no such line
      Entry(EffectType::kIrq, uint64_t{kLine} + (uint64_t{1} << 32)),  // truncates to kLine
  };
  const ApplyResult result = ApplyEffects(effects, sink_, kDiskBytes);
  EXPECT_EQ(result.applied, 0u);
  EXPECT_EQ(result.refused, effects.entries.size());
  EXPECT_THAT(result.first_refusal, HasSubstr("outside guest RAM"));
  EXPECT_EQ(ram_, ram_before);
  EXPECT_TRUE(raised_.empty());
  struct stat st {};
  ASSERT_EQ(fstat(disk_, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kDiskBytes);
  EXPECT_EQ(DiskAt(kDiskBytes - 1, 1), std::string(1, '\0'));
}

TEST_F(EffectsApplyTest, WithoutADiskOrIrqfdsThoseEntriesAreRefused) {
  sink_.disk_fd = -1;
  sink_.raise_irq = nullptr;
  Effects effects;
  effects.entries = {Entry(EffectType::kDiskWrite, 0, "x"), Entry(EffectType::kDiskFlush, 0),
                     Entry(EffectType::kIrq, kLine)};
  const ApplyResult result = ApplyEffects(effects, sink_, kDiskBytes);
  EXPECT_EQ(result.applied, 0u);
  EXPECT_EQ(result.refused, 3u);
  EXPECT_THAT(result.first_refusal, HasSubstr("outside the image"));
}

}  // namespace
}  // namespace rehome
