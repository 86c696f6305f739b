// vmm/cli/nested_options_test.cc: `rehome run --mode nested` options: parsed, defaulted and
// validated; bad values get a message naming the option.
#include "vmm/cli/nested_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/cli/run_options.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

TEST(NestedOptionsTest, ParsesEveryOption) {
  auto options = ParseRunOptions({"--kernel",
                                  "g.elf",
                                  "--mode",
                                  "nested",
                                  "--l1-kernel",
                                  "vmlinuz",
                                  "--l1-initrd",
                                  "l1.cpio.gz",
                                  "--l1-memory",
                                  "512",
                                  "--l1-console-dir",
                                  "/tmp/l1",
                                  "--l1-hang-timeout-ms",
                                  "900",
                                  "--nested-fault",
                                  "mixed",
                                  "--nested-fault-every-ms",
                                  "1500",
                                  "--nested-faults",
                                  "20",
                                  "--nested-fault-seed",
                                  "18446744073709551615",
                                  "--l1-exit-tracking",
                                  "off"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->nested);
  EXPECT_FALSE(options->split);
  const NestedOptions& n = options->nested_options;
  EXPECT_EQ(n.l1_kernel, "vmlinuz");
  EXPECT_EQ(n.l1_initrd, "l1.cpio.gz");
  EXPECT_EQ(n.l1_memory_mib, 512u);
  EXPECT_EQ(n.l1_console_dir, "/tmp/l1");
  EXPECT_EQ(n.hang_timeout_ms, 900u);
  EXPECT_EQ(n.fault, "mixed");
  EXPECT_EQ(n.fault_every_ms, 1500u);
  EXPECT_EQ(n.faults, 20u);
  EXPECT_EQ(n.fault_seed, UINT64_MAX);
  EXPECT_FALSE(n.exit_tracking);
}

TEST(NestedOptionsTest, DefaultsApply) {
  auto options = ParseRunOptions(
      {"--kernel", "g.elf", "--mode", "nested", "--l1-kernel", "k", "--l1-initrd", "i"});
  ASSERT_TRUE(options.ok()) << options.status();
  const NestedOptions& n = options->nested_options;
  EXPECT_EQ(n.l1_memory_mib, 320u);
  EXPECT_EQ(n.hang_timeout_ms, 3000u);
  EXPECT_TRUE(n.fault.empty());
  EXPECT_EQ(n.faults, 0u);
  EXPECT_EQ(n.fault_seed, 0u);
  EXPECT_TRUE(n.exit_tracking);
}

TEST(NestedOptionsTest, EveryFaultKindParses) {
  for (const char* kind :
       {"kill", "panic", "hang", "crash", "crash-in-exit", "die-in-exit", "mixed", "register"}) {
    NestedOptions n;
    const std::optional<absl::Status> parsed = ParseNestedOption("--nested-fault", kind, &n);
    ASSERT_TRUE(parsed.has_value()) << kind;
    EXPECT_TRUE(parsed->ok()) << kind << ": " << *parsed;
    EXPECT_EQ(n.fault, kind);
  }
}

TEST(NestedOptionsTest, NotANestedOptionIsLeftAlone) {
  NestedOptions n;
  EXPECT_FALSE(ParseNestedOption("--memory", "64", &n).has_value());
}

TEST(NestedOptionsTest, RejectsBadInput) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<std::string> base{"--kernel", "g.elf", "--mode", "nested"};
  const Case cases[] = {
      {{}, "needs --l1-kernel and --l1-initrd"},
      {{"--l1-kernel", "k"}, "needs --l1-kernel and --l1-initrd"},
      {{"--l1-kernel", "k", "--l1-initrd", "i", "--l1-memory", "64"}, "--l1-memory"},
      {{"--l1-kernel", "k", "--l1-initrd", "i", "--l1-hang-timeout-ms", "x"},
       "--l1-hang-timeout-ms"},
      {{"--l1-kernel", "k", "--l1-initrd", "i", "--nested-fault", "melt"}, "--nested-fault"},
      {{"--l1-kernel", "k", "--l1-initrd", "i", "--nested-fault-every-ms", "0"},
       "--nested-fault-every-ms"},
      {{"--l1-kernel", "k", "--l1-initrd", "i", "--l1-exit-tracking", "maybe"},
       "--l1-exit-tracking"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto options = ParseRunOptions(args);
    ASSERT_FALSE(options.ok()) << c.message;
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(options.status().message(), HasSubstr(c.message));
  }
  // A fault needs nested mode.
  auto split = ParseRunOptions({"--kernel", "g.elf", "--nested-fault", "kill"});
  ASSERT_FALSE(split.ok());
  EXPECT_THAT(split.status().message(), HasSubstr("needs --mode nested"));
}

}  // namespace
}  // namespace rehome
