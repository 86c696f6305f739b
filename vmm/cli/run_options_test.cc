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
                                  "--rehome-interval-ms", "250", "--quiet", "--exit-stats",
                                  "--l1-sandbox", "strict"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->kernel, "k.elf");
  EXPECT_EQ(options->memory_mib, 128u);
  EXPECT_EQ(options->cpus, 2);
  EXPECT_EQ(options->cmdline, "workload=counter steps=5");
  EXPECT_EQ(options->serial_file, "out.txt");
  EXPECT_EQ(options->rehome_interval_ms, 250u);
  EXPECT_TRUE(options->quiet);
  EXPECT_TRUE(options->exit_stats);
  EXPECT_EQ(options->policy.l1_sandbox, L1SandboxLevel::kStrict);
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
  EXPECT_EQ(options->policy.l1_sandbox, L1SandboxLevel::kBestEffort);
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
      {{"--kernel", "k", "--bogus", "1"}, "unknown option '--bogus'"},
      // An unknown option is named itself, not the argument after it.
      {{"--kernel", "X", "--bogus", "--cmdline", "y"}, "unknown option '--bogus'"},
      {{"--kernel", "X", "--bogus"}, "unknown option '--bogus'"},
      {{"--kernel", "X", "--bogus=1"}, "unknown option '--bogus'"},
      {{"--kernel", "X", "stray"}, "unexpected argument 'stray'"},
      {{"--kernel"}, "missing value"},
      {{"--kernel", "k", "--exit-stats=no"}, "--exit-stats: takes no value, got 'no'"},
      {{"--kernel", "k", "--quiet=1"}, "--quiet: takes no value"},
      {{"--kernel", "k", "--l1-sandbox", "on"},
       "--l1-sandbox: expected strict, best-effort or off, got 'on'"},
      {{"--domain", "d.xml", "--l1-sandbox=off"}, "--l1-sandbox: conflicts with --domain"},
  };
  for (const Case& c : cases) {
    auto options = ParseRunOptions(c.args);
    ASSERT_FALSE(options.ok()) << c.message;
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(options.status().message(), HasSubstr(c.message));
  }
}

// Options are recognised before their value is taken (so that an unknown one is named): every
// option the usage lists must be known to that check too.
TEST(RunOptionsTest, EveryOptionInTheUsageIsKnown) {
  const std::string usage = RunUsage();
  int seen = 0;
  for (size_t at = usage.find("  --"); at != std::string::npos; at = usage.find("  --", at + 1)) {
    const size_t end = usage.find_first_of(" \n", at + 2);
    const std::string option = usage.substr(at + 2, end - at - 2);
    if (option == "--help") continue;
    ++seen;
    absl::StatusOr<RunOptions> parsed = ParseRunOptions({"--kernel", "k", option, "1"});
    if (!parsed.ok()) {
      EXPECT_THAT(parsed.status().message(), ::testing::Not(HasSubstr("unknown option"))) << option;
    }
  }
  EXPECT_GT(seen, 25);
}

TEST(RunOptionsTest, UsageListsOptionsAndExitCodes) {
  const std::string usage = RunUsage();
  for (const char* word : {"--kernel", "--memory", "--cpus", "--cmdline", "--serial-file",
                           "--rehome-interval-ms", "--quiet", "--l1-sandbox", "exit status"}) {
    EXPECT_THAT(usage, HasSubstr(word));
  }
}

}  // namespace
}  // namespace rehome
