// qmp-client/vm_monitor_test.cc: VmMonitor's commands, argument checks and event builders, over
// a fake VM (the handler is driven directly and through a real QmpSession).
#include "qmp-client/vm_monitor.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "qmp-client/qmp_codec.h"
#include "qmp-client/qmp_session.h"
#include "qmp-client/testing/fake_vm_control.h"

namespace rehome {
namespace {

using Json = nlohmann::json;
using testing::FakeVmControl;

class VmMonitorTest : public ::testing::Test {
 protected:
  absl::StatusOr<Json> Run(std::string_view name, Json args = Json::object()) {
    EXPECT_TRUE(monitor_.HasCommand(name)) << name;
    return monitor_.Execute(name, args);
  }
  // The QMP error a failing command turns into.
  QmpError ErrorOf(std::string_view name, Json args) {
    absl::StatusOr<Json> result = Run(name, std::move(args));
    EXPECT_FALSE(result.ok()) << name;
    return QmpErrorFromStatus(result.status());
  }

  std::shared_ptr<FakeVmControl> vm_ = std::make_shared<FakeVmControl>();
  VmMonitor monitor_{vm_};
};

TEST_F(VmMonitorTest, QueryCommandsReplyWithQemuShapes) {
  EXPECT_EQ(*Run("query-version"), (Json{{"qemu", {{"major", 0}, {"minor", 1}, {"micro", 0}}},
                                         {"package", "rehome-0.1.0"}}));
  EXPECT_EQ(*Run("query-name"), Json::object());
  vm_->set_name("guest1");
  EXPECT_EQ(*Run("query-name"), (Json{{"name", "guest1"}}));
  EXPECT_EQ(*Run("query-uuid"), (Json{{"UUID", "00000000-0000-0000-0000-000000000000"}}));
  EXPECT_EQ(*Run("query-kvm"), (Json{{"enabled", true}, {"present", true}}));
  EXPECT_EQ(*Run("query-status"),
            (Json{{"status", "running"}, {"singlestep", false}, {"running", true}}));
  vm_->set_state(RunState::kGuestPanicked);
  EXPECT_EQ(*Run("query-status"),
            (Json{{"status", "guest-panicked"}, {"singlestep", false}, {"running", false}}));
  Json cpus = *Run("query-cpus-fast");
  ASSERT_EQ(cpus.size(), 2u);
  EXPECT_EQ(cpus[1], (Json{{"cpu-index", 1},
                           {"qom-path", "/machine/unattached/device[1]"},
                           {"thread-id", 4243},
                           {"props", {{"core-id", 1}, {"socket-id", 0}, {"thread-id", 0}}},
                           {"target", "x86_64"}}));
}

TEST_F(VmMonitorTest, QueryCommandsListsEveryCommand) {
  Json list = *Run("query-commands");
  std::vector<std::string> names;
  for (const Json& entry : list) {
    EXPECT_EQ(entry.size(), 1u);
    names.push_back(entry["name"].get<std::string>());
  }
  EXPECT_EQ(names, VmMonitor::CommandNames());
  for (const std::string& name : names) {
    if (name != "qmp_capabilities") {
      EXPECT_TRUE(monitor_.HasCommand(name)) << name;
    }
  }
  EXPECT_FALSE(monitor_.HasCommand("qmp_capabilities"));  // the session answers it
  EXPECT_FALSE(monitor_.HasCommand("query-pci"));
}

TEST_F(VmMonitorTest, ActionsCallTheVm) {
  EXPECT_EQ(*Run("stop"), Json::object());
  EXPECT_EQ(vm_->State(), RunState::kPaused);
  EXPECT_EQ(*Run("cont"), Json::object());
  EXPECT_EQ(*Run("system_reset"), Json::object());
  EXPECT_EQ(*Run("system_powerdown"), Json::object());
  EXPECT_EQ(*Run("__org.rehome_switchover"), Json::object());
  EXPECT_EQ(*Run("__org.rehome_switchover", {{"binary", "/a"}, {"standby-binary", "/b"}}),
            Json::object());
  EXPECT_EQ(*Run("__org.rehome_inject-fault", {{"target", "standby"}, {"kind", "hang"}}),
            Json::object());
  EXPECT_EQ(vm_->calls(),
            (std::vector<std::string>{"stop", "cont", "system_reset", "system_powerdown",
                                      "switchover", "switchover binary=/a standby-binary=/b",
                                      "inject-fault standby hang"}));
  EXPECT_EQ((*Run("__org.rehome_query-l1s"))[1]["role"], "standby");
  EXPECT_EQ(*Run("__org.rehome_query-failovers"), (Json{{"count", 0}, {"last", nullptr}}));
  EXPECT_TRUE(Run("__org.rehome_query-recovery-policy")->is_object());
  EXPECT_EQ(*Run("__org.rehome_query-unsupported-devices"), Json::array());  // the default
}

TEST_F(VmMonitorTest, VmFailuresBecomeGenericErrors) {
  vm_->set_failure(absl::FailedPreconditionError("Resetting the Virtual Machine is required"));
  QmpError error = ErrorOf("cont", Json::object());
  EXPECT_EQ(error.error_class, "GenericError");
  EXPECT_EQ(error.desc, "Resetting the Virtual Machine is required");
  vm_->set_failure(QmpErrorStatus(kQmpDeviceNotActive, "no standby"));
  EXPECT_EQ(ErrorOf("__org.rehome_switchover", Json::object()).error_class, "DeviceNotActive");
}

TEST_F(VmMonitorTest, ArgumentErrorsUseQemuWording) {
  EXPECT_EQ(ErrorOf("query-status", {{"x", 1}}).desc, "Parameter 'x' is unexpected");
  EXPECT_EQ(ErrorOf("stop", {{"force", true}}).desc, "Parameter 'force' is unexpected");
  EXPECT_EQ(ErrorOf("__org.rehome_switchover", {{"binary", 7}}).desc,
            "Invalid parameter type for 'binary', expected: string");
  EXPECT_EQ(ErrorOf("__org.rehome_switchover", {{"bin", "/a"}}).desc,
            "Parameter 'bin' is unexpected");
  const std::string_view fault = "__org.rehome_inject-fault";
  EXPECT_EQ(ErrorOf(fault, Json::object()).desc, "Parameter 'target' is missing");
  EXPECT_EQ(ErrorOf(fault, {{"target", "active"}}).desc, "Parameter 'kind' is missing");
  EXPECT_EQ(ErrorOf(fault, {{"target", 1}, {"kind", "kill"}}).desc,
            "Invalid parameter type for 'target', expected: string");
  EXPECT_EQ(ErrorOf(fault, {{"target", "active"}, {"kind", nullptr}}).desc,
            "Invalid parameter type for 'kind', expected: string");
  EXPECT_EQ(ErrorOf(fault, {{"target", "both"}, {"kind", "kill"}}).desc,
            "Parameter 'target' does not accept value 'both'");
  EXPECT_EQ(ErrorOf(fault, {{"target", "active"}, {"kind", "kill"}, {"when", 1}}).desc,
            "Parameter 'when' is unexpected");
  EXPECT_EQ(ErrorOf(fault, {{"target", "active"}, {"kind", "kill"}, {"when", 1}}).error_class,
            "GenericError");
  EXPECT_TRUE(vm_->calls().empty());
}

TEST_F(VmMonitorTest, QuitOutsideAServerRunsAtOnce) {
  EXPECT_EQ(*Run("quit"), Json::object());
  EXPECT_EQ(vm_->calls(), std::vector<std::string>{"quit"});
}

TEST_F(VmMonitorTest, WorksBehindASession) {
  QmpSession session(&monitor_, QmpSessionOptions{});
  session.Start();
  session.Feed(R"({"execute":"qmp_capabilities"}{"execute":"query-nope","id":1})"
               R"({"execute":"__org.rehome_query-l1s","id":2})");
  std::vector<std::string> out = session.TakeOutput();
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(Json::parse(out[2])["error"]["desc"], "The command query-nope has not been found");
  EXPECT_EQ(Json::parse(out[3])["return"].size(), 2u);
}

TEST(VmMonitorEvents, DataHasQemuShapes) {
  EXPECT_EQ(ShutdownEventData(ShutdownCause::kHostQmpQuit),
            (Json{{"guest", false}, {"reason", "host-qmp-quit"}}));
  EXPECT_EQ(ShutdownEventData(ShutdownCause::kGuestShutdown),
            (Json{{"guest", true}, {"reason", "guest-shutdown"}}));
  EXPECT_EQ(ResetEventData(ShutdownCause::kHostQmpSystemReset),
            (Json{{"guest", false}, {"reason", "host-qmp-system-reset"}}));
  EXPECT_EQ(ResetEventData(ShutdownCause::kGuestReset),
            (Json{{"guest", true}, {"reason", "guest-reset"}}));
  EXPECT_EQ(GuestPanickedEventData(GuestPanicAction::kPoweroff), (Json{{"action", "poweroff"}}));
  EXPECT_EQ(L1FailedEventData("killed", 12), (Json{{"cause", "killed"}, {"pid", 12}}));
  EXPECT_EQ(FailoverStartedEventData("hang", 12), (Json{{"cause", "hang"}, {"failed-pid", 12}}));
  EXPECT_EQ(
      FailoverCompletedEventData(
          13, absl::Microseconds(1500),
          {{"detect", absl::Microseconds(500)}, {"restore", absl::Milliseconds(1)}}),
      (Json{{"pid", 13}, {"downtime-us", 1500}, {"phases", {{"detect", 500}, {"restore", 1000}}}}));
  EXPECT_EQ(FailoverCompletedEventData(13, absl::Microseconds(1500), {},
                                       absl::FromUnixMicros(1796186852770425))["detected-at-us"],
            1796186852770425);
  EXPECT_EQ(FailoverFailedEventData("killed", "no standby"),
            (Json{{"cause", "killed"}, {"error", "no standby"}}));
  EXPECT_EQ(StandbyReadyEventData(14), (Json{{"pid", 14}}));
  EXPECT_EQ(RunStateName(RunState::kPrelaunch), "prelaunch");
  EXPECT_EQ(RunStateName(RunState::kInternalError), "internal-error");
}

}  // namespace
}  // namespace rehome
