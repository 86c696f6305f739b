// vmm/domain/examples_test.cc: every examples/*.xml passes libvirt's own validator
// (virt-xml-validate, a real process) and ParseDomainXmlFromFile.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/domain/domain_xml.h"

namespace rehome {
namespace {

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `argv` to completion, capturing its output.
ProcessResult RunProcess(const std::vector<std::string>& argv) {
  ProcessResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return result;
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(write_end.get(), STDOUT_FILENO);
    dup2(write_end.get(), STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return result;
  write_end = UniqueFd(-1);
  char buffer[4096];
  ssize_t n;
  while ((n = read(read_end.get(), buffer, sizeof(buffer))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) result.output.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ExamplesDir() {
  const char* source = std::getenv("REHOME_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/examples";
}

bool HaveValidator() { return RunProcess({"virt-xml-validate", "--help"}).exit_code != 127; }

TEST(Examples, EveryExampleValidatesWithVirtXmlValidateAndParses) {
  if (!HaveValidator()) GTEST_SKIP() << "virt-xml-validate not installed (libvirt-clients)";
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(ExamplesDir())) {
    if (entry.path().extension() == ".xml") files.push_back(entry.path().string());
  }
  ASSERT_GE(files.size(), 2u) << "no examples under " << ExamplesDir();
  for (const std::string& file : files) {
    ProcessResult validated = RunProcess({"virt-xml-validate", file, "domain"});
    EXPECT_EQ(validated.exit_code, 0) << file << ":\n" << validated.output;
    absl::StatusOr<DomainConfig> config = ParseDomainXmlFromFile(file);
    EXPECT_TRUE(config.ok()) << file << ": " << config.status();
  }
}

TEST(Examples, ValidatorRunnerSeesFailures) {
  if (!HaveValidator()) GTEST_SKIP() << "virt-xml-validate not installed (libvirt-clients)";
  char path[] = "/tmp/rehome-bad-domain-XXXXXX";
  UniqueFd fd(mkstemp(path));
  ASSERT_TRUE(fd.valid());
  const std::string bad = "<domain type='kvm'><name>x</name><vcpu>abc</vcpu></domain>";
  ASSERT_EQ(write(fd.get(), bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ProcessResult validated = RunProcess({"virt-xml-validate", path, "domain"});
  unlink(path);
  EXPECT_NE(validated.exit_code, 0) << validated.output;
}

TEST(Examples, CounterSplitIsTwoVcpusOnSixtyFourMiBWithFailover) {
  absl::StatusOr<DomainConfig> config =
      ParseDomainXmlFromFile(ExamplesDir() + "/counter-split.xml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "counter-split");
  EXPECT_EQ(config->vcpus, 2);
  EXPECT_EQ(config->memory_bytes, uint64_t{64} << 20);
  EXPECT_THAT(config->kernel_path, ::testing::EndsWith("build/guest/rehome-guest.elf"));
  EXPECT_EQ(config->cmdline, "workload=counter steps=0");
  ASSERT_EQ(config->char_devices.size(), 1u);
  EXPECT_EQ(config->char_devices[0].kind, CharDeviceKind::kConsole);
  EXPECT_EQ(config->char_devices[0].backend, CharBackend::kPty);
  EXPECT_EQ(config->recovery, RecoveryPolicy{});  // the example spells out the defaults
}

TEST(Examples, BlkFailoverHasOneVirtioDiskAndTwoStandbys) {
  absl::StatusOr<DomainConfig> config = ParseDomainXmlFromFile(ExamplesDir() + "/blk-failover.xml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->disks.size(), 1u);
  EXPECT_EQ(config->disks[0].target_dev, "vda");
  EXPECT_FALSE(config->disks[0].read_only);
  EXPECT_EQ(config->recovery.mode, RecoveryMode::kFailover);
  EXPECT_EQ(config->recovery.standbys, 2);
  EXPECT_EQ(config->recovery.heartbeat_period_ms, 20);
  EXPECT_EQ(config->recovery.hang_timeout_ms, 200);
}

}  // namespace
}  // namespace rehome
