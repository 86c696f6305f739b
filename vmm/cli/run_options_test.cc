// vmm/cli/run_options_test.cc: ParseRunOptions accepts every documented option and rejects bad
// values with a message naming the option.
#include "vmm/cli/run_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

TEST(RunOptionsTest, ParsesEveryOption) {
  auto options = ParseRunOptions({"--kernel", "k.elf", "--memory", "128", "--cpus=2", "--cmdline",
                                  "workload=counter steps=5", "--serial-file", "out.txt",
                                  "--rehome-interval-ms", "250", "--quiet", "--exit-stats"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->kernel, "k.elf");
  EXPECT_EQ(options->memory_mib, 128u);
  EXPECT_EQ(options->cpus, 2);
  EXPECT_EQ(options->cmdline, "workload=counter steps=5");
  EXPECT_EQ(options->serial_file, "out.txt");
  EXPECT_EQ(options->rehome_interval_ms, 250u);
  EXPECT_TRUE(options->quiet);
  EXPECT_TRUE(options->exit_stats);
}

TEST(RunOptionsTest, L1BinariesGoIntoThePolicy) {
  auto options = ParseRunOptions(
      {"--kernel", "k.elf", "--l1-binary", "/a/rehome", "--standby-l1-binary=/b/rehome"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->policy.l1_binary, "/a/rehome");
  EXPECT_EQ(options->policy.standby_l1_binary, "/b/rehome");
}

TEST(RunOptionsTest, VerifyModeGoesIntoThePolicy) {
  auto options = ParseRunOptions({"--kernel", "k.elf", "--verify", "triple"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->policy.verify, VerifyMode::kTriple);
  options = ParseRunOptions({"--kernel", "k.elf", "--verify=dual"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->policy.verify, VerifyMode::kDual);
  EXPECT_EQ(ParseRunOptions({"--kernel", "k.elf"})->policy.verify, VerifyMode::kNone);
  auto bad = ParseRunOptions({"--kernel", "k.elf", "--verify", "quad"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("--verify"));
}

TEST(RunOptionsTest, DefaultsApply) {
  auto options = ParseRunOptions({"--kernel", "k.elf"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->memory_mib, 64u);
  EXPECT_EQ(options->cpus, 1);
  EXPECT_EQ(options->rehome_interval_ms, 0u);
  EXPECT_FALSE(options->exit_stats);
}

TEST(RunOptionsTest, RejectsBadInput) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{}, "--kernel: required"},
      {{"--kernel", "k", "--memory", "0"}, "--memory"},
      {{"--kernel", "k", "--memory", "15"}, "--memory"},
      {{"--kernel", "k", "--memory", "99999999999"}, "--memory"},
      {{"--kernel", "k", "--memory", "-4"}, "--memory"},
      {{"--kernel", "k", "--memory", "lots"}, "--memory"},
      {{"--kernel", "k", "--cpus", "0"}, "--cpus"},
      {{"--kernel", "k", "--cpus", "100000"}, "--cpus"},
      {{"--kernel", "k", "--bogus", "1"}, "unknown option"},
      {{"--kernel"}, "missing value"},
      {{"--kernel", "k", "--exit-stats=no"}, "--exit-stats: takes no value, got 'no'"},
      {{"--kernel", "k", "--quiet=1"}, "--quiet: takes no value"},
  };
  for (const Case& c : cases) {
    auto options = ParseRunOptions(c.args);
    ASSERT_FALSE(options.ok()) << c.message;
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(options.status().message(), HasSubstr(c.message));
  }
}

TEST(RunOptionsTest, UsageListsOptionsAndExitCodes) {
  const std::string usage = RunUsage();
  for (const char* word : {"--kernel", "--memory", "--cpus", "--cmdline", "--serial-file",
                           "--rehome-interval-ms", "--quiet", "exit status"}) {
    EXPECT_THAT(usage, HasSubstr(word));
  }
}

}  // namespace
}  // namespace rehome
