// tests/verified_qmp_test.cc: verified execution as an operator drives it over QMP, on the real
// `rehome run --verify ... --qmp` binary (real KVM, real replica L1 processes, a real UNIX
// socket): __org.rehome_query-verification, the DIVERGENCE / DIVERGENCE_RESOLVED events of a
// masked wrong replica, and __org.rehome_set-verification changing dual and triple on the running
// VM (the replicas follow, the change lasts across a system_reset), with its bad arguments and
// the changes it refuses. Each test starts its own rehome child and polls with deadlines.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qmp-client/qmp_client.h"
#include "qmp-client/vm_monitor.h"
#include "tests/qmp_test_helpers.h"
#include "tests/rehome_child.h"

namespace rehome {
namespace {

using Json = nlohmann::json;
using testing::Connect;
using testing::Error;
using testing::ErrorOf;
using testing::Exec;
using ::testing::HasSubstr;
using testing::HaveKvm;
using testing::KernelArgs;
using testing::PidsWithRole;
using testing::PollL1s;
using testing::StartVm;
using testing::StatusOf;
using testing::WaitEventNamed;

// The replicas that execute items (the active one is replica 0), standbys left out.
size_t Members(const Json& l1s) {
  return PidsWithRole(l1s, "active").size() + PidsWithRole(l1s, "replica").size();
}

std::vector<std::string> VerifiedArgs(const std::string& mode) {
  std::vector<std::string> args = KernelArgs();
  args.insert(args.end(), {"--verify", mode, "--hang-timeout-ms", "500"});
  return args;
}

TEST(VerifiedQmpTest, OperatorChangesDualAndTripleOnTheRunningVm) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(VerifiedArgs("dual"));
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
  ASSERT_NE(client, nullptr);
  Json l1s = PollL1s(*client, [](const Json& l1s) { return Members(l1s) == 2; });
  ASSERT_EQ(Members(l1s), 2u) << l1s.dump();
  Json v = Exec(*client, "__org.rehome_query-verification");
  EXPECT_EQ(v.value("mode", ""), "dual") << v.dump();
  EXPECT_EQ(v.value("divergences", -1), 0) << v.dump();

  // Bad arguments and refused changes leave the VM as it was.
  EXPECT_EQ(ErrorOf(*client, "__org.rehome_set-verification"),
            Error("GenericError", "Parameter 'mode' is missing"));
  EXPECT_EQ(ErrorOf(*client, "__org.rehome_set-verification", Json{{"mode", "quad"}}),
            Error("GenericError", "Parameter 'mode' does not accept value 'quad'"));
  EXPECT_EQ(ErrorOf(*client, "__org.rehome_set-verification", Json{{"mode", 3}}),
            Error("GenericError", "Invalid parameter type for 'mode', expected: string"));
  EXPECT_EQ(
      ErrorOf(*client, "__org.rehome_set-verification", Json{{"mode", "dual"}, {"now", true}}),
      Error("GenericError", "Parameter 'now' is unexpected"));
  const Json none = ErrorOf(*client, "__org.rehome_set-verification", Json{{"mode", "none"}});
  EXPECT_EQ(none.value("class", ""), "GenericError") << none.dump();
  EXPECT_THAT(none.value("desc", ""), HasSubstr("restart with --verify none"));
  EXPECT_EQ(Exec(*client, "__org.rehome_query-verification").value("mode", ""), "dual");

  // Triple: a third replica joins at the agreed state, and outvotes a wrong one.
  EXPECT_EQ(Exec(*client, "__org.rehome_set-verification", Json{{"mode", "triple"}}),
            Json::object());
  EXPECT_EQ(Exec(*client, "__org.rehome_query-verification").value("mode", ""), "triple");
  EXPECT_EQ(Exec(*client, "__org.rehome_query-recovery-policy").value("verify", ""), "triple");
  l1s = PollL1s(*client, [](const Json& l1s) { return Members(l1s) == 3; });
  ASSERT_EQ(Members(l1s), 3u) << l1s.dump();
  EXPECT_EQ(Exec(*client, "__org.rehome_inject-fault",
                 Json{{"target", "replica-2"}, {"kind", "wrong-state"}, {"after", 3}}),
            Json::object());
  absl::StatusOr<QmpEvent> resolved = WaitEventNamed(*client, kEventDivergenceResolved);
  ASSERT_TRUE(resolved.ok()) << resolved.status() << (*vm)->child->Stderr();
  EXPECT_THAT(resolved->data->value("resolution", ""), HasSubstr("majority of 2 of 3"));
  EXPECT_EQ(resolved->data->at("outvoted").size(), 1u) << resolved->data->dump();
  v = Exec(*client, "__org.rehome_query-verification");
  EXPECT_EQ(v.value("divergences", -1), 1) << v.dump();
  EXPECT_EQ(StatusOf(*client), "running");

  // The mode lasts across a reboot: the next boot's machine starts three replicas.
  const std::vector<int64_t> old_active =
      PidsWithRole(PollL1s(*client, [](const Json& l1s) { return Members(l1s) == 3; }), "active");
  EXPECT_EQ(Exec(*client, "system_reset"), Json::object());
  ASSERT_TRUE(WaitEventNamed(*client, "RESET").ok());
  auto new_boot = [&old_active](const Json& l1s) {
    const std::vector<int64_t> active = PidsWithRole(l1s, "active");
    return active.size() == 1 && active != old_active && Members(l1s) >= 2;
  };
  l1s = PollL1s(*client, [&](const Json& l1s) { return new_boot(l1s) && Members(l1s) == 3; });
  EXPECT_TRUE(new_boot(l1s)) << l1s.dump();
  EXPECT_EQ(Members(l1s), 3u) << l1s.dump();

  // Back to dual: the extra replica leaves at the next item.
  EXPECT_EQ(Exec(*client, "__org.rehome_set-verification", Json{{"mode", "dual"}}), Json::object());
  l1s = PollL1s(*client, [](const Json& l1s) { return Members(l1s) == 2; });
  EXPECT_EQ(Members(l1s), 2u) << l1s.dump();
  EXPECT_EQ(Exec(*client, "__org.rehome_query-verification").value("mode", ""), "dual");
  EXPECT_EQ(StatusOf(*client), "running");
  EXPECT_EQ(Exec(*client, "quit"), Json::object());
  absl::StatusOr<int> code = (*vm)->child->WaitExit(testing::kStartTimeout);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << (*vm)->child->Stderr();
}

TEST(VerifiedQmpTest, AnUnverifiedVmRefusesToStartVerifyingLive) {
  if (!HaveKvm()) GTEST_SKIP() << "no usable /dev/kvm on this host";
  auto vm = StartVm(KernelArgs());
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::unique_ptr<QmpClient> client = Connect((*vm)->socket);
  ASSERT_NE(client, nullptr);
  const Json l1s = PollL1s(*client, testing::HasStandby);  // the machine is up
  ASSERT_TRUE(testing::HasStandby(l1s)) << l1s.dump();
  EXPECT_EQ(Exec(*client, "__org.rehome_query-verification"),
            Json({{"mode", "none"}, {"items", 0}, {"divergences", 0}, {"last", nullptr}}));
  const Json dual = ErrorOf(*client, "__org.rehome_set-verification", Json{{"mode", "dual"}});
  EXPECT_EQ(dual.value("class", ""), "GenericError") << dual.dump();
  EXPECT_THAT(dual.value("desc", ""), HasSubstr("restart with --verify dual or triple"));
  EXPECT_EQ(Exec(*client, "__org.rehome_set-verification", Json{{"mode", "none"}}),
            Json::object());  // already so
  EXPECT_EQ(Exec(*client, "__org.rehome_query-recovery-policy").value("verify", ""), "none");
  EXPECT_EQ(StatusOf(*client), "running");
}

}  // namespace
}  // namespace rehome
