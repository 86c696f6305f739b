// vmm/device_model_test.cc: the device model's save -> encode -> decode -> restore round trip
// (what a standby L1 does), exercised through real exits, and the oracle checks it adds.
#include "vmm/device_model.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "guest/abi/rehome_abi.h"
#include "guest/workloads/counter_chain.h"

namespace rehome {
namespace {

struct Rig {
  std::vector<uint8_t> ram = std::vector<uint8_t>(1 << 20);
  FlatGuestMemoryView view{std::span<uint8_t>(ram)};
  std::string console;
  std::unique_ptr<DeviceModel> model;

  explicit Rig(uint64_t steps) {
    DeviceModelConfig config;
    config.oracle = CounterOracle::Config{1, 3, steps, 1000};
    config.serial_output = [this](std::string_view b) { console.append(b); };
    model = *DeviceModel::Create(std::move(config), view);
  }
  ExitOutcome Out(uint16_t port, std::vector<uint8_t> bytes) {
    KvmExit exit =
        PortIoExit{true, port, static_cast<uint8_t>(bytes.size()), 1, std::span<uint8_t>(bytes)};
    return model->Handle(exit);
  }
  // Writes the report the real guest would write after `step` steps, then reports it.
  ExitOutcome Report(uint64_t step, bool final) {
    counter::ChainState chain;
    counter::Init(&chain, 0, 3);
    while (chain.step < step) counter::Step(&chain);
    abi::CounterReport r{
        abi::kCounterReportMagic, 0, step, {}, final ? abi::kCounterReportFinal : 0, 0};
    counter::Digest(&chain, r.digest);
    std::memcpy(ram.data() + 0x1000, &r, sizeof(r));
    return Out(abi::kCounterReportPort, {0x00, 0x10, 0x00, 0x00});
  }
};

TEST(DeviceModelTest, StateRoundTripContinuesExactly) {
  Rig a(3000);
  ASSERT_EQ(a.Out(abi::kCom1Port, {'h'}).action, ExitOutcome::kContinue);
  ASSERT_EQ(a.Report(1000, false).action, ExitOutcome::kContinue);
  ASSERT_EQ(a.Out(abi::kPioBenchPort, {1}).action, ExitOutcome::kContinue);
  const std::vector<uint8_t> saved = a.model->SaveState();
  std::vector<uint8_t> reused(100000, 0x55);  // SaveStateInto replaces, never appends
  a.model->SaveStateInto(&reused);
  EXPECT_EQ(reused, saved);

  Rig b(3000);  // the standby: a fresh model, restored
  ASSERT_TRUE(b.model->RestoreState(saved).ok());
  EXPECT_EQ(b.model->SaveState(), saved);
  EXPECT_EQ(b.model->pio_bench_writes(), 1u);
  EXPECT_EQ(b.model->oracle()->verified_reports(), 1u);
  // It continues where `a` stopped: the next report verifies, a repeated one would not.
  EXPECT_EQ(b.Report(2000, false).action, ExitOutcome::kContinue);
  EXPECT_EQ(b.Report(3000, true).action, ExitOutcome::kContinue);
  EXPECT_EQ(b.Out(abi::kDebugExitPort, {0, 0, 0, 0}).action, ExitOutcome::kGuestExit);
}

TEST(DeviceModelTest, RepeatedReportAfterRestoreIsCaught) {
  Rig a(0);
  ASSERT_EQ(a.Report(1000, false).action, ExitOutcome::kContinue);
  Rig b(0);
  ASSERT_TRUE(b.model->RestoreState(a.model->SaveState()).ok());
  EXPECT_EQ(b.Report(1000, false).action, ExitOutcome::kCheckFailed);
}

TEST(DeviceModelTest, SuccessBeforeTheFinalReportIsAFailedCheck) {
  Rig a(3000);
  ASSERT_EQ(a.Report(1000, false).action, ExitOutcome::kContinue);
  EXPECT_EQ(a.Out(abi::kDebugExitPort, {0, 0, 0, 0}).action, ExitOutcome::kCheckFailed);
}

TEST(DeviceModelTest, MalformedStateIsRefusedAndChangesNothing) {
  Rig a(0);
  ASSERT_EQ(a.Report(1000, false).action, ExitOutcome::kContinue);
  const std::vector<uint8_t> before = a.model->SaveState();
  std::vector<uint8_t> bad = before;
  bad.resize(bad.size() / 2);
  EXPECT_FALSE(a.model->RestoreState(bad).ok());
  EXPECT_FALSE(a.model->RestoreState(std::vector<uint8_t>{9, 9, 9}).ok());
  EXPECT_EQ(a.model->SaveState(), before);
}

// A network backend with no traffic: the device's state alone is under test here.
class IdleNetBackend final : public virtio::NetBackend {
 public:
  std::optional<size_t> ReadRx(uint64_t, std::span<uint8_t>) override { return std::nullopt; }
  void RxDone(uint64_t) override {}
  bool TxRoom(uint64_t) override { return true; }
  void WriteTx(uint64_t, std::span<const uint8_t>) override {}
};

std::unique_ptr<DeviceModel> NetModel(const FlatGuestMemoryView& view, bool net, uint8_t mac_end) {
  DeviceModelConfig config;
  if (net) {
    config.net_backend = std::make_shared<IdleNetBackend>();
    config.net_mac = {0x52, 0x54, 0x00, 0x12, 0x34, mac_end};
  }
  return *DeviceModel::Create(std::move(config), view);
}

TEST(DeviceModelTest, NetworkDeviceTravelsInTheStateAndMustMatch) {
  std::vector<uint8_t> ram(1 << 20);
  FlatGuestMemoryView view{std::span<uint8_t>(ram)};
  std::unique_ptr<DeviceModel> a = NetModel(view, true, 0x56);
  ASSERT_TRUE(a->has_net());
  EXPECT_FALSE(a->KickNet());  // no driver yet: nothing to do
  const std::vector<uint8_t> saved = a->SaveState();
  std::unique_ptr<DeviceModel> b = NetModel(view, true, 0x56);
  ASSERT_TRUE(b->RestoreState(saved).ok());
  EXPECT_EQ(b->SaveState(), saved);
  EXPECT_THAT(std::string(NetModel(view, false, 0)->RestoreState(saved).message()),
              ::testing::HasSubstr("network device presence"));
  EXPECT_THAT(std::string(NetModel(view, true, 0x57)->RestoreState(saved).message()),
              ::testing::HasSubstr("another MAC"));
  // The device order on the bus and the guest's command line: disk, console, network.
  EXPECT_EQ(VirtioMmioCmdline(false, false, true), "virtio_mmio.device=512@0xd0000000:5");
  EXPECT_EQ(VirtioMmioCmdline(true, true, true),
            "virtio_mmio.device=512@0xd0000000:5 virtio_mmio.device=512@0xd0000200:6 "
            "virtio_mmio.device=512@0xd0000400:7");
  EXPECT_EQ(VirtioDeviceIndices(true, false, true).net, 1);
}

}  // namespace
}  // namespace rehome
