// vmm/domain/domain_xml_test.cc: ParseDomainXml / ParseDomainXmlFromFile on real libxml2 and
// real libvirt (test driver): every field, memory units, every rejected value, malformed XML,
// libvirt schema rejection, relative path resolution. Policy details: recovery_policy_xml_test.
#include "vmm/domain/domain_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace rehome {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTemplate[] = R"(<domain type='@TYPE@'>
  <name>@NAME@</name>
  @UUID@
  @MEMORY@
  @VCPU@
  <os>
    @OSTYPE@
    <kernel>@KERNEL@</kernel>
    @OSEXTRA@
  </os>
  @LIFECYCLE@
  <devices>@DEVICES@</devices>
  @METADATA@
</domain>
)";

// kTemplate with the defaults below overridden by `overrides`.
std::string MakeXml(std::map<std::string, std::string> overrides = {}) {
  std::map<std::string, std::string> values = {
      {"@TYPE@", "kvm"},
      {"@NAME@", "vm1"},
      {"@UUID@", ""},
      {"@MEMORY@", "<memory unit='MiB'>64</memory>"},
      {"@VCPU@", "<vcpu>2</vcpu>"},
      {"@OSTYPE@", "<type arch='x86_64'>hvm</type>"},
      {"@KERNEL@", "/boot/guest.elf"},
      {"@OSEXTRA@", ""},
      {"@LIFECYCLE@", ""},
      {"@DEVICES@", ""},
      {"@METADATA@", ""},
  };
  for (auto& [key, value] : overrides) values[key] = value;
  std::vector<std::pair<std::string, std::string>> replacements(values.begin(), values.end());
  return absl::StrReplaceAll(kTemplate, replacements);
}

// Expects InvalidArgument whose one-line message contains `expected`.
void ExpectRejected(const std::string& xml, const std::string& expected, bool validate = false) {
  absl::StatusOr<DomainConfig> config = ParseDomainXml(xml, validate);
  ASSERT_FALSE(config.ok()) << "accepted: " << xml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(expected));
  EXPECT_THAT(config.status().message(), Not(HasSubstr("\n")));
}

TEST(DomainXml, ReadsEveryField) {
  const std::string xml = MakeXml({
      {"@UUID@", "<uuid>3F0C2A8E-6D1B-4C52-9A47-0E5B7D9C1A01</uuid>"},
      {"@MEMORY@", "<memory unit='GiB'>1</memory><currentMemory unit='MiB'>512</currentMemory>"},
      {"@VCPU@", "<vcpu placement='static'>4</vcpu>"},
      {"@OSEXTRA@", "<initrd>/boot/initrd.img</initrd><cmdline> console=ttyS0 quiet </cmdline>"},
      {"@LIFECYCLE@",
       "<on_poweroff>restart</on_poweroff><on_reboot>destroy</on_reboot>"
       "<on_crash>restart</on_crash>"},
      {"@DEVICES@",
       "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
       "<source file='/img/root.img'/><target dev='vda' bus='virtio'/><readonly/></disk>"
       "<disk type='file' device='disk'><source file='/img/data.img'/>"
       "<target dev='vdb' bus='virtio'/></disk>"
       "<serial type='file'><source path='/var/log/s.log'/><target port='0'/></serial>"
       "<serial type='unix'><source mode='bind' path='/run/s.sock'/><target port='1'/></serial>"
       "<console type='pty'><target type='serial' port='0'/></console>"
       "<console type='stdio'><target type='virtio' port='1'/></console>"
       "<memballoon model='none'/>"},
  });
  absl::StatusOr<DomainConfig> config = ParseDomainXml(xml);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "vm1");
  EXPECT_EQ(config->uuid, "3f0c2a8e-6d1b-4c52-9a47-0e5b7d9c1a01");
  EXPECT_EQ(config->memory_bytes, uint64_t{1} << 30);  // currentMemory ignored
  EXPECT_EQ(config->vcpus, 4);
  EXPECT_EQ(config->kernel_path, "/boot/guest.elf");
  EXPECT_EQ(config->initrd_path, "/boot/initrd.img");
  EXPECT_EQ(config->cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(config->on_poweroff, LifecycleAction::kRestart);
  EXPECT_EQ(config->on_reboot, LifecycleAction::kDestroy);
  EXPECT_EQ(config->on_crash, LifecycleAction::kRestart);
  EXPECT_THAT(config->disks, ElementsAre(DiskConfig{"/img/root.img", "vda", true},
                                         DiskConfig{"/img/data.img", "vdb", false}));
  EXPECT_THAT(
      config->char_devices,
      ElementsAre(
          CharDeviceConfig{CharDeviceKind::kSerial, CharBackend::kFile, "/var/log/s.log", ""},
          CharDeviceConfig{CharDeviceKind::kSerial, CharBackend::kUnix, "/run/s.sock", ""},
          CharDeviceConfig{CharDeviceKind::kConsole, CharBackend::kPty, "", "serial"},
          CharDeviceConfig{CharDeviceKind::kConsole, CharBackend::kStdio, "", "virtio"}));
  EXPECT_TRUE(config->unsupported_devices.empty());  // <memballoon model='none'>: no device
  EXPECT_EQ(config->recovery, RecoveryPolicy{});
}

TEST(DomainXml, DevicesRehomeDoesNotEmulateAreListedForAWarning) {
  const std::string xml = MakeXml({
      {"@DEVICES@",
       "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
       "<controller type='usb' model='none'/>"
       "<interface type='network'><source network='default'/><model type='virtio'/></interface>"
       "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x00' "
       "slot='0x1f' function='0x0'/></source></hostdev>"
       "<filesystem type='mount'><source dir='/srv'/><target dir='srv'/></filesystem>"
       "<graphics type='vnc' port='-1'/>"
       "<input type='keyboard' bus='ps2'/>"
       "<memballoon model='virtio'/>"},
  });
  absl::StatusOr<DomainConfig> config = ParseDomainXml(xml);  // libvirt accepts all of them
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> described;
  for (const UnsupportedDevice& d : config->unsupported_devices) described.push_back(d.Describe());
  EXPECT_THAT(described, ElementsAre("<interface type='network'>", "<hostdev type='pci'>",
                                     "<filesystem type='mount'>", "<graphics type='vnc'>",
                                     "<input type='keyboard'>", "<memballoon model='virtio'>"));
  EXPECT_EQ(config->unsupported_devices[0], (UnsupportedDevice{"interface", "network", "type"}));
}

TEST(DomainXml, AbsentOptionalElementsTakeLibvirtDefaults) {
  absl::StatusOr<DomainConfig> config = ParseDomainXml(MakeXml({{"@VCPU@", ""}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->uuid, "");
  EXPECT_EQ(config->vcpus, 1);
  EXPECT_EQ(config->initrd_path, "");
  EXPECT_EQ(config->cmdline, "");
  EXPECT_EQ(config->on_poweroff, LifecycleAction::kDestroy);
  EXPECT_EQ(config->on_reboot, LifecycleAction::kRestart);
  EXPECT_EQ(config->on_crash, LifecycleAction::kDestroy);
  EXPECT_TRUE(config->disks.empty());
  EXPECT_TRUE(config->char_devices.empty());
  EXPECT_EQ(config->recovery, RecoveryPolicy{});
}

TEST(DomainXml, ScalesEveryLibvirtMemoryUnit) {
  const struct {
    const char* unit;
    uint64_t scale;
  } kUnits[] = {
      {"", 1024},
      {"b", 1},
      {"bytes", 1},
      {"byte", 1},
      {"KB", 1000},
      {"k", 1024},
      {"KiB", 1024},
      {"MB", 1000000},
      {"M", 1 << 20},
      {"MiB", 1 << 20},
      {"GB", 1000000000},
      {"G", 1 << 30},
      {"GiB", 1 << 30},
      {"TB", 1000000000000},
      {"T", uint64_t{1} << 40},
      {"TiB", uint64_t{1} << 40},
      {"mib", 1 << 20},
      {"PiB", uint64_t{1} << 50},
      {"EB", 1000000000000000000},
  };
  for (const auto& unit : kUnits) {
    absl::StatusOr<uint64_t> bytes = ScaleMemory(3, unit.unit);
    ASSERT_TRUE(bytes.ok()) << unit.unit << ": " << bytes.status();
    EXPECT_EQ(*bytes, 3 * unit.scale) << unit.unit;
  }
  EXPECT_EQ(ScaleMemory(1, "XB").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScaleMemory(1, "KiBB").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ScaleMemory(uint64_t{1} << 60, "KiB").status().message(), HasSubstr("overflow"));
}

TEST(DomainXml, MemoryElementHonoursUnitAttribute) {
  const struct {
    const char* memory;
    uint64_t bytes;
  } kCases[] = {
      {"<memory>65536</memory>", 64 << 20},
      {"<memory unit='KiB'>65536</memory>", 64 << 20},
      {"<memory unit='b'>67108864</memory>", 64 << 20},
      {"<memory unit='bytes'>67108864</memory>", 64 << 20},
      {"<memory unit='KB'>65536</memory>", 65536000},
      {"<memory unit='k'>65536</memory>", 64 << 20},
      {"<memory unit='MB'>4096</memory>", 4096000000},
      {"<memory unit='M'>64</memory>", 64 << 20},
      {"<memory unit='GB'>8</memory>", 8000000000},
      {"<memory unit='G'>2</memory>", uint64_t{2} << 30},
      {"<memory unit='TB'>1</memory>", 1000000000000},
      {"<memory unit='TiB'>1</memory>", uint64_t{1} << 40},
  };
  for (const auto& c : kCases) {
    absl::StatusOr<DomainConfig> config = ParseDomainXml(MakeXml({{"@MEMORY@", c.memory}}));
    ASSERT_TRUE(config.ok()) << c.memory << ": " << config.status();
    EXPECT_EQ(config->memory_bytes, c.bytes) << c.memory;
  }
}

TEST(DomainXml, RejectsBadMemory) {
  ExpectRejected(MakeXml({{"@MEMORY@", ""}}), "missing <memory>");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory>abc</memory>"}}), "not a non-negative integer");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory>-4</memory>"}}), "not a non-negative integer");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory unit='XB'>4</memory>"}}), "unknown unit \"XB\"");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory>0</memory>"}}), "must not be zero");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory>65537</memory>"}}), "4 KiB pages");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory unit='EiB'>100</memory>"}}), "overflows");
  ExpectRejected(MakeXml({{"@MEMORY@", "<memory>1</memory><memory>2</memory>"}}),
                 "more than one <memory>");
}

TEST(DomainXml, RejectsBadIdentityAndVcpus) {
  ExpectRejected(MakeXml({{"@TYPE@", "qemu"}}), "<domain type=\"qemu\">: rehome runs only");
  ExpectRejected(MakeXml({{"@NAME@", ""}}), "missing <name>");
  ExpectRejected(MakeXml({{"@NAME@", "a/b"}}), "must not contain '/'");
  ExpectRejected(MakeXml({{"@UUID@", "<uuid>1234</uuid>"}}), "<uuid>1234</uuid>: not a UUID");
  ExpectRejected(MakeXml({{"@UUID@", "<uuid>3f0c2a8e-6d1b-4c52-9a47-0e5b7d9c1a0g</uuid>"}}),
                 "not a UUID");
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>0</vcpu>"}}), "<vcpu>0</vcpu>: must be an integer");
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>256</vcpu>"}}), "between 1 and 64");
  // --cpus stops at 64: so does <vcpu> (libvirt itself accepts more).
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>65</vcpu>"}}),
                 "<vcpu>65</vcpu>: must be an integer "
                 "between 1 and 64");
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>255</vcpu>"}}), "between 1 and 64");
  absl::StatusOr<DomainConfig> most = ParseDomainXml(MakeXml({{"@VCPU@", "<vcpu>64</vcpu>"}}));
  ASSERT_TRUE(most.ok()) << most.status();
  EXPECT_EQ(most->vcpus, 64);
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>abc</vcpu>"}}), "<vcpu>abc</vcpu>");
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu current='1'>2</vcpu>"}}), "hot-plug");
}

TEST(DomainXml, RejectsUnsupportedOs) {
  ExpectRejected(MakeXml({{"@OSTYPE@", "<type>linux</type>"}}), "only hvm guests");
  ExpectRejected(MakeXml({{"@OSTYPE@", "<type arch='i686'>hvm</type>"}}), "only x86_64");
  ExpectRejected(MakeXml({{"@OSTYPE@", ""}}), "missing <type>hvm</type>");
  ExpectRejected(MakeXml({{"@KERNEL@", ""}}), "missing <kernel>");
}

TEST(DomainXml, LifecycleActionsOutsideDestroyRestartPreserveAreRejected) {
  for (const char* element : {"on_poweroff", "on_reboot", "on_crash"}) {
    for (const char* action : {"rename-restart", "coredump-destroy", "coredump-restart"}) {
      const std::string tag = absl::StrCat("<", element, ">", action, "</", element, ">");
      ExpectRejected(MakeXml({{"@LIFECYCLE@", tag}}),
                     absl::StrCat(tag,
                                  ": not supported by rehome (supported: destroy, restart, "
                                  "preserve)"));
    }
  }
  ExpectRejected(MakeXml({{"@LIFECYCLE@", "<on_crash>explode</on_crash>"}}), "unknown action");
}

TEST(DomainXml, PreserveIsAcceptedForEveryLifecycleEvent) {
  auto config =
      ParseDomainXml(MakeXml({{"@LIFECYCLE@",
                               "<on_poweroff>preserve</on_poweroff><on_reboot>preserve</on_reboot>"
                               "<on_crash>preserve</on_crash>"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->on_poweroff, LifecycleAction::kPreserve);
  EXPECT_EQ(config->on_reboot, LifecycleAction::kPreserve);
  EXPECT_EQ(config->on_crash, LifecycleAction::kPreserve);
  EXPECT_EQ(LifecycleActionName(LifecycleAction::kPreserve), "preserve");
}

TEST(DomainXml, RejectsUnsupportedDisks) {
  auto disk = [](const std::string& body, const std::string& attrs = "type='file' device='disk'") {
    return MakeXml({{"@DEVICES@", absl::StrCat("<disk ", attrs, ">", body, "</disk>")}});
  };
  const std::string ok_body = "<source file='/d.img'/><target dev='vda' bus='virtio'/>";
  ExpectRejected(disk("<source file='/d.img'/><target dev='sda' bus='scsi'/>"),
                 "<target bus=\"scsi\">: rehome supports only bus=\"virtio\"");
  ExpectRejected(disk("<source file='/d.img'/><target dev='hda' bus='ide'/>"), "bus=\"ide\"");
  ExpectRejected(disk("<source file='/d.img'/><target dev='sda'/>"), "set bus=\"virtio\"");
  ExpectRejected(disk(ok_body, "type='block' device='disk'"), "only type=\"file\" disks");
  ExpectRejected(disk(ok_body, "type='file' device='cdrom'"), "only device=\"disk\" disks");
  ExpectRejected(disk("<target dev='vda' bus='virtio'/>"), "missing <source file=...>");
  ExpectRejected(disk("<source file='/d.img'/>"), "missing <target dev=...>");
  ExpectRejected(disk("<driver name='qemu' type='qcow2'/>" + ok_body), "only raw images");
  ExpectRejected(
      MakeXml({{"@DEVICES@", "<disk type='file' device='disk'>" + ok_body +
                                 "</disk><disk type='file' device='disk'>" + ok_body + "</disk>"}}),
      "target used by two disks");
  // A "vd" name implies virtio, as in libvirt.
  absl::StatusOr<DomainConfig> config =
      ParseDomainXml(disk("<source file='/d.img'/><target dev='vdc'/>"), false);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->disks.at(0).target_dev, "vdc");
  EXPECT_FALSE(config->disks.at(0).direct);
  // libvirt cache modes: none / directsync mean O_DIRECT; default / writeback the page cache.
  for (const auto& [cache, direct] : std::vector<std::pair<std::string, bool>>{
           {"none", true}, {"directsync", true}, {"writeback", false}, {"default", false}}) {
    config = ParseDomainXml(
        disk("<driver name='qemu' type='raw' cache='" + cache + "'/>" + ok_body), false);
    ASSERT_TRUE(config.ok()) << cache << ": " << config.status();
    EXPECT_EQ(config->disks.at(0).direct, direct) << cache;
  }
  ExpectRejected(disk("<driver name='qemu' type='raw' cache='unsafe'/>" + ok_body),
                 "<driver cache=\"unsafe\">: supported cache modes: default, writeback, none, "
                 "directsync");
}

TEST(DomainXml, RejectsUnsupportedCharDevices) {
  ExpectRejected(MakeXml({{"@DEVICES@",
                           "<serial type='tcp'><source mode='bind' host='127.0.0.1' "
                           "service='4555'/></serial>"}}),
                 "<serial type=\"tcp\">: rehome supports only type pty, file, unix or stdio");
  ExpectRejected(MakeXml({{"@DEVICES@", "<console type='file'/>"}}), "needs <source path=...>");
  ExpectRejected(MakeXml({{"@DEVICES@", "<serial type='unix'/>"}}), "needs <source path=...>");
  ExpectRejected(MakeXml({{"@DEVICES@", "<serial/>"}}), "<serial>: missing attribute type");
}

// Found by domain_xml_fuzz (corpus crash-multiline-name): a value quoted in an error may hold
// newlines; the error must still be one line (and a long value is cut).
TEST(DomainXml, ErrorsQuotingTheDocumentStayOneLine) {
  ExpectRejected(MakeXml({{"@NAME@", "a/b\nsecond line"}}),
                 "domain XML: <name>a/b\\nsecond line</name>: must not contain '/'");
  ExpectRejected(MakeXml({{"@VCPU@", "<vcpu>1\n2</vcpu>"}}), "<vcpu>1\\n2</vcpu>");
  ExpectRejected(MakeXml({{"@NAME@", "x/" + std::string(1000, 'n')}}), "nnn...: must not");
}

TEST(DomainXml, HugeCommentIsOneLineAndNothingOnStderr) {
  // Over libxml2's 10 MB text limit: libxml2 prints its raw, multi-line error to stderr unless
  // told not to.
  std::string xml = MakeXml();
  xml.insert(xml.find("<name>"), "<!--" + std::string(11 << 20, 'c') + "-->");
  for (bool validate : {false, true}) {
    ::testing::internal::CaptureStderr();
    absl::StatusOr<DomainConfig> config = ParseDomainXml(xml, validate);
    const std::string printed = ::testing::internal::GetCapturedStderr();
    ASSERT_FALSE(config.ok());
    EXPECT_THAT(config.status().message(), HasSubstr("malformed XML: line "));
    EXPECT_THAT(config.status().message(), Not(HasSubstr("\n")));
    EXPECT_EQ(printed, "");
  }
}

TEST(DomainXml, MalformedXmlIsAClearError) {
  for (const char* text : {"", "not xml at all", "<domain type='kvm'><name>x</domain>",
                           "<domain type='kvm'><name>x</name>", "<?xml version='1.0'?>",
                           "<domain type='kvm'>\xff\xfe</domain>"}) {
    absl::StatusOr<DomainConfig> config = ParseDomainXml(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(config.status().message(), HasSubstr("malformed XML")) << text;
    EXPECT_THAT(config.status().message(), Not(HasSubstr("\n")));
  }
  EXPECT_THAT(ParseDomainXml("<domain>\n<name>x</nam>\n</domain>").status().message(),
              HasSubstr("line 2"));
  // Entities are neither expanded nor allowed: no DOCTYPE at all.
  const std::string laughs =
      "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY a 'aaaaaaaaaa'>"
      "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]><domain type='kvm'><name>&b;</name>"
      "</domain>";
  EXPECT_THAT(ParseDomainXml(laughs).status().message(), HasSubstr("DOCTYPE is not allowed"));
  ExpectRejected("<vm type='kvm'/>", "the root element must be <domain>");
  ExpectRejected("<x:domain xmlns:x='urn:x' type='kvm'/>", "the root element must be <domain>");
}

TEST(DomainXml, LibvirtSchemaRejectsWhatItsSchemaForbids) {
  const std::string xml = MakeXml({{"@VCPU@", "<vcpu>abc</vcpu>"}});
  absl::StatusOr<DomainConfig> config = ParseDomainXml(xml, /*validate_with_libvirt=*/true);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("libvirt rejected the domain"));
  EXPECT_THAT(config.status().message(), HasSubstr("schema"));
  EXPECT_THAT(config.status().message(), Not(HasSubstr("\n")));
  // An element libvirt does not know at all.
  ExpectRejected(MakeXml({{"@METADATA@", "<bogus/>"}}), "libvirt rejected the domain", true);
  // Without libvirt, rehome's own check still names the problem.
  ExpectRejected(xml, "<vcpu>abc</vcpu>: must be an integer", false);
}

TEST(DomainXml, LibvirtValidationIsPrivateToEachCall) {
  // test:///default predefines a domain "test"; our validation must not collide with it.
  absl::StatusOr<DomainConfig> config = ParseDomainXml(MakeXml({{"@NAME@", "test"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&results, i] {
      for (int j = 0; j < 5; ++j) {
        absl::StatusOr<DomainConfig> c = ParseDomainXml(MakeXml({{"@NAME@", "same-name"}}));
        if (!c.ok()) results[i] = c.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : results) EXPECT_TRUE(status.ok()) << status;
}

class DomainXmlFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/rehome-domain-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(DomainXmlFile, MissingFileIsNotFound) {
  absl::StatusOr<DomainConfig> config = ParseDomainXmlFromFile(dir_ + "/absent.xml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("absent.xml"));
  EXPECT_THAT(config.status().message(), Not(HasSubstr("\n")));
}

TEST_F(DomainXmlFile, RelativePathsResolveAgainstTheFilesDirectory) {
  const std::string xml = MakeXml({
      {"@KERNEL@", "../guest/k.elf"},
      {"@OSEXTRA@", "<initrd>initrd.img</initrd>"},
      {"@DEVICES@",
       "<disk type='file' device='disk'><source file='images/d.img'/>"
       "<target dev='vda' bus='virtio'/></disk>"
       "<serial type='file'><source path='s.log'/></serial>"},
  });
  std::filesystem::create_directory(dir_ + "/conf");
  const std::string path = Write("conf/vm.xml", xml);
  absl::StatusOr<DomainConfig> config = ParseDomainXmlFromFile(path);  // libvirt validated
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kernel_path, dir_ + "/guest/k.elf");
  EXPECT_EQ(config->initrd_path, dir_ + "/conf/initrd.img");
  EXPECT_EQ(config->disks.at(0).source_file, dir_ + "/conf/images/d.img");
  EXPECT_EQ(config->char_devices.at(0).path, dir_ + "/conf/s.log");
  // From a string there is no directory: relative paths come back as written.
  absl::StatusOr<DomainConfig> from_string = ParseDomainXml(xml);
  ASSERT_TRUE(from_string.ok()) << from_string.status();
  EXPECT_EQ(from_string->kernel_path, "../guest/k.elf");
  EXPECT_EQ(from_string->disks.at(0).source_file, "images/d.img");
}

}  // namespace
}  // namespace rehome
