// vmm/domain/recovery_policy_xml_test.cc: <rehome:recovery> in a domain's <metadata>, read
// through ParseDomainXml: namespace matching by URI, defaults, every invalid value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "recovery/policy/recovery_policy.h"
#include "vmm/domain/domain_xml.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

constexpr char kNs[] = "https://rehome.dev/xmlns/domain/1.0";

std::string DomainWithMetadata(const std::string& metadata) {
  return absl::StrCat(
      "<domain type='kvm'><name>vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
      "<os><type arch='x86_64'>hvm</type><kernel>/k.elf</kernel></os>",
      metadata, "</domain>");
}

// <metadata> holding a <rehome:recovery> with `attrs` and `children`.
std::string Policy(const std::string& attrs, const std::string& children = "") {
  return DomainWithMetadata(absl::StrCat("<metadata><rehome:recovery xmlns:rehome='", kNs, "' ",
                                         attrs, ">", children, "</rehome:recovery></metadata>"));
}

absl::StatusOr<RecoveryPolicy> Read(const std::string& xml, bool validate = false) {
  absl::StatusOr<DomainConfig> config = ParseDomainXml(xml, validate);
  if (!config.ok()) return config.status();
  return config->recovery;
}

void ExpectRejected(const std::string& xml, const std::string& expected) {
  absl::StatusOr<RecoveryPolicy> policy = Read(xml);
  ASSERT_FALSE(policy.ok()) << "accepted: " << xml;
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr(expected));
}

TEST(RecoveryPolicyXml, ReadsEveryAttributeAndLibvirtAcceptsIt) {
  const std::string xml = Policy("version='1' mode='restart' standbys='3'",
                                 "<rehome:heartbeat period-ms='25'/><rehome:hang timeout-ms='400'/>"
                                 "<rehome:limit failovers='7' window-s='120'/>"
                                 "<rehome:l1-sandbox level='strict'/>");
  absl::StatusOr<RecoveryPolicy> policy = Read(xml, /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->mode, RecoveryMode::kRestart);
  EXPECT_EQ(policy->standbys, 3);
  EXPECT_EQ(policy->heartbeat_period_ms, 25);
  EXPECT_EQ(policy->hang_timeout_ms, 400);
  EXPECT_EQ(policy->max_failovers, 7);
  EXPECT_EQ(policy->failover_window_s, 120);
  EXPECT_EQ(policy->l1_sandbox, L1SandboxLevel::kStrict);
  EXPECT_EQ(Read(Policy("version='1'", "<rehome:l1-sandbox level='off'/>"))->l1_sandbox,
            L1SandboxLevel::kOff);
}

TEST(RecoveryPolicyXml, L1BinariesForDesignDiversity) {
  absl::StatusOr<RecoveryPolicy> policy = Read(
      Policy("version='1'", "<rehome:l1 binary='/opt/a/rehome' standby-binary='/opt/b/rehome'/>"),
      /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->l1_binary, "/opt/a/rehome");
  EXPECT_EQ(policy->standby_l1_binary, "/opt/b/rehome");
  EXPECT_THAT(policy->ToString(), HasSubstr("l1=/opt/a/rehome standby-l1=/opt/b/rehome"));
  policy = Read(Policy("version='1'", "<rehome:l1 standby-binary='/opt/b/rehome'/>"));
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->l1_binary, "");
  ExpectRejected(Policy("version='1'", "<rehome:l1 binary=''/>"),
                 "<rehome:l1 binary=\"\">: must name a file");
  ExpectRejected(Policy("version='1'", "<rehome:l1 path='/x'/>"), "unknown attribute");
}

TEST(RecoveryPolicyXml, VerifiedExecutionMode) {
  for (const auto& [name, mode] :
       {std::pair{"none", VerifyMode::kNone}, std::pair{"dual", VerifyMode::kDual},
        std::pair{"triple", VerifyMode::kTriple}}) {
    absl::StatusOr<RecoveryPolicy> policy =
        Read(Policy("version='1'", absl::StrCat("<rehome:verify mode='", name, "'/>")),
             /*validate=*/true);
    ASSERT_TRUE(policy.ok()) << policy.status();
    EXPECT_EQ(policy->verify, mode);
  }
  EXPECT_EQ(Read(Policy("version='1'", "<rehome:verify/>"))->verify, VerifyMode::kNone);
  ExpectRejected(Policy("version='1'", "<rehome:verify mode='quad'/>"),
                 "<rehome:verify mode=\"quad\">: must be none, dual or triple");
  ExpectRejected(Policy("version='1'", "<rehome:verify level='2'/>"), "unknown attribute");
  ExpectRejected(Policy("version='1'", "<rehome:verify mode='dual'/><rehome:verify mode='dual'/>"),
                 "appears more than once");
  ExpectRejected(Policy("version='1' mode='restart'", "<rehome:verify mode='triple'/>"),
                 "verified execution needs mode=\"failover\"");
}

TEST(RecoveryPolicyXml, NestedMode) {
  absl::StatusOr<RecoveryPolicy> policy =
      Read(Policy("version='1'",
                  "<rehome:nested l1-kernel='/img/vmlinuz' l1-initrd='/img/l1.cpio.gz' "
                  "l1-memory-mib='512'/>"),
           /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->nested_l1_kernel, "/img/vmlinuz");
  EXPECT_EQ(policy->nested_l1_initrd, "/img/l1.cpio.gz");
  EXPECT_EQ(policy->nested_l1_memory_mib, 512);
  EXPECT_EQ(Read(Policy("version='1'", "<rehome:nested l1-kernel='k' l1-initrd='i'/>"))
                ->nested_l1_memory_mib,
            320);
  EXPECT_TRUE(RecoveryPolicy{}.nested_l1_kernel.empty());
  ExpectRejected(Policy("version='1'", "<rehome:nested l1-kernel='k'/>"),
                 "missing attribute l1-initrd");
  ExpectRejected(Policy("version='1'", "<rehome:nested l1-kernel='' l1-initrd='i'/>"),
                 "<rehome:nested l1-kernel=\"\">: must name a file");
  ExpectRejected(Policy("version='1'",
                        "<rehome:nested l1-kernel='k' l1-initrd='i' "
                        "l1-memory-mib='64'/>"),
                 "<rehome:nested l1-memory-mib=\"64\">: must be between 128 and 16384");
  ExpectRejected(Policy("version='1'", "<rehome:nested l1-kernel='k' l1-initrd='i' vcpus='2'/>"),
                 "unknown attribute");
  ExpectRejected(Policy("version='1'",
                        "<rehome:nested l1-kernel='k' l1-initrd='i'/>"
                        "<rehome:verify mode='dual'/>"),
                 "nested mode has no verified execution");
}

TEST(RecoveryPolicyXml, AbsentPartsTakeDefaults) {
  EXPECT_EQ(Read(DomainWithMetadata("")).value(), RecoveryPolicy{});
  EXPECT_EQ(Read(DomainWithMetadata("<metadata/>")).value(), RecoveryPolicy{});
  EXPECT_EQ(Read(Policy("version='1'")).value(), RecoveryPolicy{});
  RecoveryPolicy expected;
  expected.hang_timeout_ms = 90;
  EXPECT_EQ(Read(Policy("version='1'", "<rehome:hang timeout-ms='90'/>")).value(), expected);
}

TEST(RecoveryPolicyXml, MatchedByNamespaceUriNotPrefix) {
  // Another prefix bound to our URI is ours.
  const std::string foo = DomainWithMetadata(
      absl::StrCat("<metadata><foo:recovery xmlns:foo='", kNs,
                   "' version='1' mode='none' standbys='0'><foo:heartbeat period-ms='5'/>"
                   "</foo:recovery></metadata>"));
  absl::StatusOr<RecoveryPolicy> policy = Read(foo, /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->mode, RecoveryMode::kNone);
  EXPECT_EQ(policy->heartbeat_period_ms, 5);
  // The default namespace works too.
  const std::string unprefixed = DomainWithMetadata(
      absl::StrCat("<metadata><recovery xmlns='", kNs, "' version='1' standbys='2'/></metadata>"));
  ASSERT_TRUE(Read(unprefixed).ok());
  EXPECT_EQ(Read(unprefixed)->standbys, 2);
  // Our prefix bound to another URI is someone else's element: ignored, defaults apply.
  const std::string other = DomainWithMetadata(
      "<metadata><rehome:recovery xmlns:rehome='https://example.com/not-rehome' version='9' "
      "mode='bogus'><rehome:whatever/></rehome:recovery></metadata>");
  policy = Read(other, /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(*policy, RecoveryPolicy{});
  // Foreign elements beside ours, inside ours, and foreign attributes are ignored.
  const std::string mixed = DomainWithMetadata(
      absl::StrCat("<metadata><app:info xmlns:app='urn:app'/><rehome:recovery xmlns:rehome='", kNs,
                   "' xmlns:app='urn:app' app:note='x' version='1' standbys='2'><app:extra/>"
                   "</rehome:recovery></metadata>"));
  policy = Read(mixed, /*validate=*/true);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->standbys, 2);
}

TEST(RecoveryPolicyXml, NonIntegersNameElementAndAttribute) {
  ExpectRejected(Policy("version='1'", "<rehome:hang timeout-ms='abc'/>"),
                 "recovery policy: <rehome:hang timeout-ms=\"abc\">: not an integer");
  ExpectRejected(Policy("version='1'", "<rehome:heartbeat period-ms='1.5'/>"),
                 "recovery policy: <rehome:heartbeat period-ms=\"1.5\">: not an integer");
  ExpectRejected(Policy("version='1'", "<rehome:limit failovers=' 3'/>"),
                 "<rehome:limit failovers=\" 3\">: not an integer");
  ExpectRejected(Policy("version='1'", "<rehome:limit window-s=''/>"),
                 "<rehome:limit window-s=\"\">: not an integer");
  ExpectRejected(Policy("version='1' standbys='one'"),
                 "<rehome:recovery standbys=\"one\">: not an integer");
  ExpectRejected(Policy("version='1' standbys='99999999999'"), "out of range");
  // The prefix in the message is the one the document uses.
  ExpectRejected(DomainWithMetadata(absl::StrCat("<metadata><foo:recovery xmlns:foo='", kNs,
                                                 "' version='1'><foo:hang timeout-ms='x'/>"
                                                 "</foo:recovery></metadata>")),
                 "<foo:hang timeout-ms=\"x\">: not an integer");
}

TEST(RecoveryPolicyXml, RejectsEachOutOfRangeValue) {
  ExpectRejected(Policy("version='1' mode='fast'"),
                 "<rehome:recovery mode=\"fast\">: must be failover, restart or none");
  ExpectRejected(Policy("version='1' standbys='5'"), "standbys=\"5\">: must be between 0 and 4");
  ExpectRejected(Policy("version='1' standbys='-1'"), "standbys=\"-1\"");
  ExpectRejected(Policy("version='1' mode='failover' standbys='0'"), "at least 1 standby");
  ExpectRejected(Policy("version='1'", "<rehome:heartbeat period-ms='0'/>"),
                 "<rehome:heartbeat period-ms=\"0\">");
  ExpectRejected(Policy("version='1'",
                        "<rehome:heartbeat period-ms='10001'/><rehome:hang timeout-ms='60000'/>"),
                 "<rehome:heartbeat period-ms=\"10001\">");
  ExpectRejected(Policy("version='1'", "<rehome:hang timeout-ms='10'/>"),
                 "<rehome:hang timeout-ms=\"10\">: must be greater than the heartbeat");
  ExpectRejected(Policy("version='1'", "<rehome:hang timeout-ms='60001'/>"), "at most 60000");
  ExpectRejected(Policy("version='1'", "<rehome:limit failovers='0'/>"),
                 "<rehome:limit failovers=\"0\">: must be at least 1");
  ExpectRejected(Policy("version='1'", "<rehome:limit window-s='0'/>"),
                 "<rehome:limit window-s=\"0\">: must be at least 1");
  ExpectRejected(Policy("version='1'", "<rehome:l1-sandbox level='partial'/>"),
                 "<rehome:l1-sandbox level=\"partial\">: must be strict, best-effort or off");
  ExpectRejected(Policy("version='1'", "<rehome:l1-sandbox/>"),
                 "<rehome:l1-sandbox>: missing attribute level");
}

TEST(RecoveryPolicyXml, RejectsUnknownVersionsNamesAndRepeats) {
  ExpectRejected(Policy("version='2'"), "<rehome:recovery version=\"2\">: unsupported version");
  ExpectRejected(Policy(""), "<rehome:recovery>: missing attribute version");
  ExpectRejected(Policy("version='1' colour='red'"),
                 "<rehome:recovery colour=\"red\">: unknown attribute");
  ExpectRejected(Policy("version='1'", "<rehome:hang timeout-ms='90' grace='1'/>"),
                 "<rehome:hang grace=\"1\">: unknown attribute");
  ExpectRejected(Policy("version='1'", "<rehome:watchdog/>"), "<rehome:watchdog>: unknown element");
  ExpectRejected(Policy("version='1'", "<rehome:hang/><rehome:hang/>"),
                 "<rehome:hang>: appears more than once");
  const std::string two = absl::StrCat("<rehome:recovery xmlns:rehome='", kNs, "' version='1'/>");
  ExpectRejected(DomainWithMetadata("<metadata>" + two + two + "</metadata>"),
                 "appears more than once");
  ExpectRejected(DomainWithMetadata(
                     absl::StrCat("<metadata><rehome:other xmlns:rehome='", kNs, "'/></metadata>")),
                 "<rehome:other>: unknown element");
}

}  // namespace
}  // namespace rehome
