// tests/bad_input_test.cc: bad inputs a new user gives the real `rehome run` binary (issue 12):
// FIFOs as kernel or disk, disk images of the wrong size or kind, an unknown option, a domain XML
// with a huge comment or 65 vCPUs: each gets one line on stderr naming the culprit and exit 64,
// at once (never a hang: every run has a deadline and must not time out). Devices a domain asks
// for that rehome does not emulate are named in one warning line and over QMP.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "tests/rehome_child.h"
#include "tests/subprocess.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using testing::ProcessResult;

// `rehome run ARGS...`, which must end within the deadline.
ProcessResult RunRehome(std::vector<std::string> args) {
  args.insert(args.begin(), {testing::RehomeBinary(), "run"});
  absl::StatusOr<ProcessResult> result = testing::RunProcess(args, absl::Seconds(60));
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  EXPECT_FALSE(result->timed_out) << "rehome run hung: " << result->err;
  return *result;
}

// Exit 64 and exactly one line on stderr, containing every `needles` entry.
void ExpectUsageError(const ProcessResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const std::string& needle : needles) EXPECT_THAT(r.err, HasSubstr(needle));
}

// The example domain with `devices` added to its <devices> and `vcpu` vCPUs.
std::string Domain(const std::string& devices, const std::string& vcpu = "2") {
  std::string xml = testing::CounterXml();
  xml.replace(xml.find("<devices>"), 9, "<devices>" + devices);
  const size_t begin = xml.find("<vcpu>");
  xml.replace(begin, xml.find("</vcpu>") - begin, "<vcpu>" + vcpu);
  return xml;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Fifo(const std::string& name) const {
    EXPECT_EQ(mkfifo(Path(name).c_str(), 0600), 0);
    return Path(name);
  }
  std::string File(const std::string& name, size_t bytes) const {
    return testing::WriteFile(Path(name), std::string(bytes, '\0'));
  }

  testing::ScratchDir dir_;
};

TEST_F(BadInputTest, KernelThatIsAFifoIsRefusedNotWaitedOn) {
  const std::string fifo = Fifo("kernel");
  ExpectUsageError(RunRehome({"--kernel", fifo}), {"kernel '" + fifo + "': is a FIFO"});
  std::string xml = testing::CounterXml();
  const size_t begin = xml.find("<kernel>");
  xml.replace(begin, xml.find("</kernel>") - begin, "<kernel>" + fifo);
  const std::string domain = testing::WriteFile(Path("fifo-kernel.xml"), xml);
  ExpectUsageError(RunRehome({"--domain", domain}), {"kernel '" + fifo + "': is a FIFO"});
  // The domain file itself.
  ExpectUsageError(RunRehome({"--domain", Fifo("domain.xml")}), {"domain XML", "is a FIFO"});
}

TEST_F(BadInputTest, DiskImagesThatCannotBeADiskAreUsageErrorsNamingTheFile) {
  const std::string kernel = testing::GuestElf();
  struct Case {
    std::string disk;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {File("empty.img", 0), "is empty"},
      {File("odd.img", 1000), "its 1000 bytes are not a whole number of 512-byte sectors"},
      {"/dev/null", "is a character device, not a regular file"},
      {Fifo("disk.fifo"), "is a FIFO, not a regular file"},
      {dir_.path(), "is a directory, not a regular file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.disk);
    ExpectUsageError(RunRehome({"--kernel", kernel, "--disk", c.disk}),
                     {"disk image '" + c.disk + "'", c.problem});
    const std::string disk = absl::StrCat("<disk type='file' device='disk'><source file='", c.disk,
                                          "'/><target dev='vda' bus='virtio'/></disk>");
    ExpectUsageError(RunRehome({"--domain", testing::WriteFile(Path("disk.xml"), Domain(disk))}),
                     {"disk image '" + c.disk + "'", c.problem});
  }
}

TEST_F(BadInputTest, UnknownOptionIsNamedNotTheArgumentAfterIt) {
  ExpectUsageError(RunRehome({"--kernel", testing::GuestElf(), "--bogus", "--cmdline", "x"}),
                   {"unknown option '--bogus'"});
  const ProcessResult r = RunRehome({"--kernel", testing::GuestElf(), "--bogus", "--cmdline", "x"});
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("--cmdline")));
}

TEST_F(BadInputTest, DomainWithAHugeCommentGetsOneLine) {
  std::string xml = testing::CounterXml();
  xml.insert(xml.find("<name>"), "<!--" + std::string(11 << 20, 'c') + "-->");
  ExpectUsageError(RunRehome({"--domain", testing::WriteFile(Path("comment.xml"), xml)}),
                   {"malformed XML"});
}

TEST_F(BadInputTest, DomainVcpusStopAt64LikeTheCpusOption) {
  ExpectUsageError(RunRehome({"--domain", testing::WriteFile(Path("vcpu.xml"), Domain("", "65"))}),
                   {"<vcpu>65</vcpu>", "between 1 and 64"});
  ExpectUsageError(RunRehome({"--kernel", testing::GuestElf(), "--cpus", "65"}), {"--cpus"});
}

TEST_F(BadInputTest, DevicesRehomeDoesNotEmulateAreWarnedAboutAndListedOverQmp) {
  if (!testing::HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  const std::string devices =
      "<interface type='network'><source network='default'/><model type='virtio'/></interface>"
      "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x00' "
      "slot='0x1f' function='0x0'/></source></hostdev>"
      "<filesystem type='mount'><source dir='/srv'/><target dir='srv'/></filesystem>"
      "<graphics type='vnc' port='-1'/>";
  const std::string domain = testing::WriteFile(Path("devices.xml"), Domain(devices));
  absl::StatusOr<std::unique_ptr<testing::RunningVm>> vm = testing::StartVm({"--domain", domain});
  ASSERT_TRUE(vm.ok()) << vm.status();
  auto client = QmpClient::Connect((*vm)->socket);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<nlohmann::json> listed =
      (*client)->Execute("__org.rehome_query-unsupported-devices");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, nlohmann::json::parse(R"([{"element":"interface","type":"network"},
      {"element":"hostdev","type":"pci"},{"element":"filesystem","type":"mount"},
      {"element":"graphics","type":"vnc"}])"));
  const std::string err = (*vm)->child->Stderr();
  const std::string warning =
      absl::StrCat("rehome: warning: ", domain,
                   ": rehome does not emulate <interface type='network'>, <hostdev type='pci'>, "
                   "<filesystem type='mount'>, <graphics type='vnc'>; the guest will not see "
                   "them\n");
  EXPECT_THAT(err, HasSubstr(warning));
  ASSERT_TRUE((*client)->Execute("quit").ok());
  absl::StatusOr<int> code = (*vm)->child->WaitExit(absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << (*vm)->child->Stderr();
}

}  // namespace
}  // namespace rehome
