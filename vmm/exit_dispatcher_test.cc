// vmm/exit_dispatcher_test.cc: DispatchExit with made-up exits of every kind.
#include "vmm/exit_dispatcher.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "guest/abi/rehome_abi.h"
#include "vmm/devices/debug_exit_port.h"
#include "vmm/devices/pvpanic_port.h"
#include "vmm/devices/reset_port.h"
#include "vmm/devices/serial8250.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

// Port 0x10 (4 ports) logs every access as (offset, width, first byte); reads return 0x40 + n.
class LogDevice final : public BusDevice {
 public:
  struct Access {
    bool write;
    uint64_t offset;
    size_t width;
    uint8_t first;
  };
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    for (auto& b : data) b = static_cast<uint8_t>(0x40 + log.size());
    log.push_back({false, offset, data.size(), data[0]});
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    log.push_back({true, offset, data.size(), data[0]});
  }
  std::string name() const override { return "log"; }
  std::vector<Access> log;
};

class ExitDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_.SetLogSink(nullptr);
    ASSERT_TRUE(bus_.Register(BusSpace::kPio, 0x10, 4, pio_).ok());
    ASSERT_TRUE(bus_.Register(BusSpace::kMmio, 0xd0000000, 0x100, mmio_).ok());
    ASSERT_TRUE(bus_.Register(BusSpace::kPio, abi::kDebugExitPort, DebugExitPort::kPortCount,
                              std::make_shared<DebugExitPort>(requests_))
                    .ok());
    ASSERT_TRUE(bus_.Register(BusSpace::kPio, abi::kResetPort, ResetPort::kPortCount,
                              std::make_shared<ResetPort>(requests_))
                    .ok());
    ASSERT_TRUE(bus_.Register(BusSpace::kPio, abi::kPvPanicPort, PvPanicPort::kPortCount,
                              std::make_shared<PvPanicPort>(requests_))
                    .ok());
  }
  ExitOutcome Dispatch(KvmExit exit) { return DispatchExit(exit, bus_, *requests_); }

  Bus bus_;
  std::shared_ptr<VmRequests> requests_ = std::make_shared<VmRequests>();
  std::shared_ptr<LogDevice> pio_ = std::make_shared<LogDevice>();
  std::shared_ptr<LogDevice> mmio_ = std::make_shared<LogDevice>();
};

TEST_F(ExitDispatcherTest, PortWriteReachesTheDeviceAndContinues) {
  std::vector<uint8_t> data = {0x12, 0x34};
  ExitOutcome out = Dispatch(PortIoExit{true, 0x11, 2, 1, data});
  EXPECT_EQ(out.action, ExitOutcome::kContinue);
  EXPECT_TRUE(out.reason.empty());
  ASSERT_EQ(pio_->log.size(), 1u);
  EXPECT_TRUE(pio_->log[0].write);
  EXPECT_EQ(pio_->log[0].offset, 1u);
  EXPECT_EQ(pio_->log[0].width, 2u);
  EXPECT_EQ(pio_->log[0].first, 0x12);
}

TEST_F(ExitDispatcherTest, PortReadFillsTheExitBuffer) {
  std::vector<uint8_t> data(4, 0);
  KvmExit exit = PortIoExit{false, 0x10, 4, 1, data};
  EXPECT_EQ(DispatchExit(exit, bus_, *requests_).action, ExitOutcome::kContinue);
  EXPECT_EQ(data, (std::vector<uint8_t>(4, 0x40)));
}

TEST_F(ExitDispatcherTest, RepPortIoIsCountAccessesOfSizeBytes) {
  std::vector<uint8_t> out = {1, 0, 2, 0, 3, 0};
  EXPECT_EQ(Dispatch(PortIoExit{true, 0x12, 2, 3, out}).action, ExitOutcome::kContinue);
  ASSERT_EQ(pio_->log.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pio_->log[i].offset, 2u);
    EXPECT_EQ(pio_->log[i].width, 2u);
    EXPECT_EQ(pio_->log[i].first, i + 1);
  }
  std::vector<uint8_t> in(3, 0);
  EXPECT_EQ(Dispatch(PortIoExit{false, 0x13, 1, 3, in}).action, ExitOutcome::kContinue);
  EXPECT_EQ(in, (std::vector<uint8_t>{0x43, 0x44, 0x45}));
}

TEST_F(ExitDispatcherTest, UnregisteredPortReadsAllOnesAndContinues) {
  std::vector<uint8_t> data(2, 0);
  EXPECT_EQ(Dispatch(PortIoExit{false, 0x80, 2, 1, data}).action, ExitOutcome::kContinue);
  EXPECT_EQ(data, (std::vector<uint8_t>{0xff, 0xff}));
  EXPECT_EQ(Dispatch(PortIoExit{true, 0x80, 2, 1, data}).action, ExitOutcome::kContinue);
  EXPECT_EQ(bus_.unhandled_writes(BusSpace::kPio), 1u);
}

TEST_F(ExitDispatcherTest, MalformedPortIoIsFatal) {
  std::vector<uint8_t> data(8, 0);
  const PortIoExit bad[] = {
      {true, 0x10, 3, 1, std::span(data).first(3)},   // size 3
      {true, 0x10, 0, 1, std::span(data).first(0)},   // size 0
      {true, 0x10, 1, 0, std::span(data).first(0)},   // count 0
      {true, 0x10, 4, 2, std::span(data).first(4)},   // buffer too short for count
      {false, 0x10, 2, 1, std::span(data).first(8)},  // buffer too long
  };
  for (const PortIoExit& io : bad) {
    ExitOutcome out = Dispatch(io);
    EXPECT_EQ(out.action, ExitOutcome::kFatal);
    EXPECT_THAT(out.reason, HasSubstr("malformed port I/O exit"));
  }
  EXPECT_TRUE(pio_->log.empty());
}

TEST_F(ExitDispatcherTest, MmioGoesToTheMmioSpace) {
  std::vector<uint8_t> w = {9, 8, 7, 6, 5, 4, 3, 2};
  EXPECT_EQ(Dispatch(MmioExit{true, 0xd0000010, w}).action, ExitOutcome::kContinue);
  ASSERT_EQ(mmio_->log.size(), 1u);
  EXPECT_EQ(mmio_->log[0].offset, 0x10u);
  EXPECT_EQ(mmio_->log[0].width, 8u);
  std::vector<uint8_t> r(4, 0);
  EXPECT_EQ(Dispatch(MmioExit{false, 0xd00000fc, r}).action, ExitOutcome::kContinue);
  EXPECT_EQ(r, (std::vector<uint8_t>(4, 0x41)));
  EXPECT_EQ(Dispatch(MmioExit{false, 0xd00000fe, r}).action, ExitOutcome::kContinue);
  EXPECT_EQ(r, (std::vector<uint8_t>(4, 0xff)));  // straddles the end: unhandled
  EXPECT_EQ(Dispatch(MmioExit{false, 0x10, r}).action, ExitOutcome::kContinue);  // no port
  EXPECT_EQ(pio_->log.size(), 0u);
}

TEST_F(ExitDispatcherTest, MalformedMmioIsFatal) {
  std::vector<uint8_t> data(9, 0);
  EXPECT_EQ(Dispatch(MmioExit{true, 0xd0000000, std::span(data)}).action, ExitOutcome::kFatal);
  EXPECT_EQ(Dispatch(MmioExit{true, 0xd0000000, std::span(data).first(0)}).action,
            ExitOutcome::kFatal);
  EXPECT_TRUE(mmio_->log.empty());
}

TEST_F(ExitDispatcherTest, DebugExitWriteEndsTheGuestWithTheLowByteAsStatus) {
  std::vector<uint8_t> data = {0x03, 0x01, 0, 0};  // 0x103: status 3
  ExitOutcome out = Dispatch(PortIoExit{true, abi::kDebugExitPort, 4, 1, data});
  EXPECT_EQ(out.action, ExitOutcome::kGuestExit);
  EXPECT_EQ(out.exit_status, 3);
  EXPECT_THAT(out.reason, HasSubstr("0x103"));
  // Any vCPU that exits afterwards sees the same outcome, whatever its exit.
  out = Dispatch(HltExit{});
  EXPECT_EQ(out.action, ExitOutcome::kGuestExit);
  EXPECT_EQ(out.exit_status, 3);
  EXPECT_EQ(Dispatch(InterruptedExit{}).action, ExitOutcome::kGuestExit);
  // A later write does not change the first request.
  std::vector<uint8_t> zero = {0};
  EXPECT_EQ(Dispatch(PortIoExit{true, abi::kDebugExitPort, 1, 1, zero}).exit_status, 3);
}

TEST_F(ExitDispatcherTest, ByteWriteToDebugExitWorksToo) {
  std::vector<uint8_t> data = {0};
  ExitOutcome out = Dispatch(PortIoExit{true, abi::kDebugExitPort, 1, 1, data});
  EXPECT_EQ(out.action, ExitOutcome::kGuestExit);
  EXPECT_EQ(out.exit_status, 0);
}

TEST_F(ExitDispatcherTest, ResetPortRequestsResetOnlyForResetValues) {
  std::vector<uint8_t> data = {0x02};
  EXPECT_EQ(Dispatch(PortIoExit{true, abi::kResetPort, 1, 1, data}).action, ExitOutcome::kContinue);
  for (uint8_t v : {abi::kResetValue, uint8_t{0x0e}}) {
    requests_->Clear();
    data = {v};
    ExitOutcome out = Dispatch(PortIoExit{true, abi::kResetPort, 1, 1, data});
    EXPECT_EQ(out.action, ExitOutcome::kReset);
    EXPECT_THAT(out.reason, HasSubstr("0xcf9"));
  }
}

TEST_F(ExitDispatcherTest, PvPanicWriteEndsTheVmAsAGuestCrash) {
  std::vector<uint8_t> data = {0};
  EXPECT_EQ(Dispatch(PortIoExit{false, abi::kPvPanicPort, 1, 1, data}).action,
            ExitOutcome::kContinue);
  EXPECT_EQ(data[0], abi::kPvPanicPanicked);
  data = {abi::kPvPanicPanicked};
  const ExitOutcome out = Dispatch(PortIoExit{true, abi::kPvPanicPort, 1, 1, data});
  EXPECT_EQ(out.action, ExitOutcome::kGuestCrash);
  EXPECT_THAT(out.reason, HasSubstr("panicked (pvpanic"));
}

TEST_F(ExitDispatcherTest, ShutdownRequestFromTheHostStopsTheVcpu) {
  requests_->RequestShutdown();
  EXPECT_EQ(Dispatch(InterruptedExit{}).action, ExitOutcome::kShutdown);
}

TEST_F(ExitDispatcherTest, HltAndInterruptedContinue) {
  EXPECT_EQ(Dispatch(HltExit{}).action, ExitOutcome::kContinue);
  EXPECT_EQ(Dispatch(InterruptedExit{}).action, ExitOutcome::kContinue);
}

TEST_F(ExitDispatcherTest, TripleFaultIsAGuestCrash) {
  ExitOutcome out = Dispatch(ShutdownExit{});
  EXPECT_EQ(out.action, ExitOutcome::kGuestCrash);
  EXPECT_EQ(out.reason, "triple fault");
}

TEST_F(ExitDispatcherTest, SystemEventsAreMapped) {
  using T = SystemEventExit::Type;
  EXPECT_EQ(Dispatch(SystemEventExit{T::kShutdown}).action, ExitOutcome::kShutdown);
  EXPECT_EQ(Dispatch(SystemEventExit{T::kReset}).action, ExitOutcome::kReset);
  EXPECT_EQ(Dispatch(SystemEventExit{T::kCrash}).action, ExitOutcome::kGuestCrash);
  ExitOutcome out = Dispatch(SystemEventExit{T::kOther});
  EXPECT_EQ(out.action, ExitOutcome::kFatal);
  EXPECT_THAT(out.reason, HasSubstr("system event"));
}

TEST_F(ExitDispatcherTest, KvmFailuresAreFatalWithDetails) {
  ExitOutcome out = Dispatch(InternalErrorExit{1});
  EXPECT_EQ(out.action, ExitOutcome::kFatal);
  EXPECT_THAT(out.reason, HasSubstr("suberror 1 (instruction emulation failed)"));
  out = Dispatch(InternalErrorExit{77});
  EXPECT_THAT(out.reason, HasSubstr("suberror 77"));
  // Where KVM gave the RIP and its diagnostic words, the reason carries them (the first thing
  // anyone debugging an emulation failure asks for).
  out = Dispatch(InternalErrorExit{1, 0xfff0, {0x0, 0x1000}, 2});
  EXPECT_THAT(out.reason, HasSubstr("at rip 0xfff0; data 0x0 0x1000"));
  out = Dispatch(FailEntryExit{0x80000021});
  EXPECT_EQ(out.action, ExitOutcome::kFatal);
  EXPECT_THAT(out.reason, HasSubstr("0x80000021"));
  out = Dispatch(UnknownExit{42});
  EXPECT_EQ(out.action, ExitOutcome::kFatal);
  EXPECT_THAT(out.reason, HasSubstr("reason 42"));
}

TEST_F(ExitDispatcherTest, FatalAndCrashOutcomesTakePrecedenceOverPendingRequests) {
  requests_->RequestExit(0);
  EXPECT_EQ(Dispatch(ShutdownExit{}).action, ExitOutcome::kGuestCrash);
  EXPECT_EQ(Dispatch(UnknownExit{1}).action, ExitOutcome::kFatal);
}

TEST_F(ExitDispatcherTest, SerialOutputThroughPortExits) {
  std::string out;
  ASSERT_TRUE(
      bus_.Register(BusSpace::kPio, abi::kCom1Port, Serial8250::kPortCount,
                    std::make_shared<Serial8250>([&out](std::string_view s) { out.append(s); }))
          .ok());
  std::vector<uint8_t> text = {'h', 'i', '\n'};
  EXPECT_EQ(Dispatch(PortIoExit{true, abi::kCom1Port, 1, 3, text}).action,
            ExitOutcome::kContinue);  // rep outsb
  EXPECT_EQ(out, "hi\n");
}

TEST(ExitOutcomeNames, EveryActionHasAName) {
  EXPECT_EQ(ActionName(ExitOutcome::kContinue), "continue");
  EXPECT_EQ(ActionName(ExitOutcome::kGuestExit), "guest-exit");
  EXPECT_EQ(ActionName(ExitOutcome::kReset), "reset");
  EXPECT_EQ(ActionName(ExitOutcome::kShutdown), "shutdown");
  EXPECT_EQ(ActionName(ExitOutcome::kGuestCrash), "guest-crash");
  EXPECT_EQ(ActionName(ExitOutcome::kFatal), "fatal");
}

}  // namespace
}  // namespace rehome
