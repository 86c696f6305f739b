// vmm/cli/guest_cmdline_test.cc: the host's reading of the guest command line.
#include "vmm/cli/guest_cmdline.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(GuestCmdlineTest, ReadsCounterKeys) {
  auto workload =
      ParseGuestWorkload("console=x workload=counter seed=7 steps=2500 report_every=1000");
  ASSERT_TRUE(workload.ok()) << workload.status();
  EXPECT_EQ(workload->name, "counter");
  EXPECT_EQ(workload->seed, 7u);
  EXPECT_EQ(workload->steps, 2500u);
  EXPECT_EQ(workload->report_every, 1000u);
  auto config = OracleConfigFor(*workload, 2);
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->cpus, 2u);
  EXPECT_EQ(config->seed, 7u);
  EXPECT_EQ(config->steps, 2500u);
  EXPECT_EQ(config->report_every, 1000u);
}

TEST(GuestCmdlineTest, DefaultsToIdleWithoutOracle) {
  auto workload = ParseGuestWorkload("");
  ASSERT_TRUE(workload.ok());
  EXPECT_EQ(workload->name, "idle");
  EXPECT_FALSE(OracleConfigFor(*workload, 1).has_value());
}

TEST(GuestCmdlineTest, RejectsBadNumbers) {
  EXPECT_THAT(ParseGuestWorkload("steps=abc").status().message(), ::testing::HasSubstr("steps"));
  EXPECT_FALSE(ParseGuestWorkload("seed=-1").ok());
  EXPECT_FALSE(ParseGuestWorkload("report_every=0").ok());
}

TEST(GuestCmdlineTest, AppendsCpusOnlyWhenAbsent) {
  EXPECT_EQ(*WithCpusKey("workload=idle", 2), "workload=idle cpus=2");
  EXPECT_EQ(*WithCpusKey("", 1), "cpus=1");
  EXPECT_EQ(*WithCpusKey("cpus=2 workload=idle", 2), "cpus=2 workload=idle");
  EXPECT_FALSE(WithCpusKey("cpus=3", 2).ok());
}

}  // namespace
}  // namespace rehome
