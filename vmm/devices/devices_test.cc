// vmm/devices/devices_test.cc: Serial8250, DebugExitPort, ResetPort, CounterReportPort, and the
// save -> encode -> decode -> restore round trip of each device's state.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "guest/abi/rehome_abi.h"
#include "vmm/devices/counter_report_port.h"
#include "vmm/devices/debug_exit_port.h"
#include "vmm/devices/power_off_port.h"
#include "vmm/devices/pvpanic_port.h"
#include "vmm/devices/reset_port.h"
#include "vmm/devices/serial8250.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

uint8_t In(BusDevice& d, uint64_t offset) {
  uint8_t b = 0;
  d.Read(offset, std::span(&b, 1));
  return b;
}
void Out(BusDevice& d, uint64_t offset, uint8_t value) { d.Write(offset, std::span(&value, 1)); }

class SerialTest : public ::testing::Test {
 protected:
  std::string out_;
  std::vector<bool> irqs_;
  Serial8250 serial_{[this](std::string_view s) { out_.append(s); },
                     [this](bool level) { irqs_.push_back(level); }};
};

TEST_F(SerialTest, TransmitsBytesAndAlwaysReportsThrEmpty) {
  for (char c : std::string("ok\n")) Out(serial_, 0, static_cast<uint8_t>(c));
  EXPECT_EQ(out_, "ok\n");
  EXPECT_EQ(In(serial_, 5), 0x60);  // THRE | TEMT, no data
  EXPECT_EQ(In(serial_, 6), 0xb0);  // DCD | DSR | CTS
  EXPECT_EQ(serial_.name(), "serial8250");
}

TEST_F(SerialTest, QueuedInputIsReadThroughRbrWithDataReady) {
  EXPECT_EQ(serial_.QueueInput("ab"), 2u);
  EXPECT_EQ(In(serial_, 5), 0x61);
  EXPECT_EQ(In(serial_, 0), 'a');
  EXPECT_EQ(In(serial_, 0), 'b');
  EXPECT_EQ(In(serial_, 5), 0x60);
  EXPECT_EQ(In(serial_, 0), 0);  // empty
}

TEST_F(SerialTest, InputBeyondTheLimitIsDroppedAndCounted) {
  const std::string big(Serial8250::kMaxQueuedInput + 10, 'x');
  EXPECT_EQ(serial_.QueueInput(big), Serial8250::kMaxQueuedInput);
  EXPECT_EQ(serial_.dropped_input(), 10u);
}

TEST_F(SerialTest, DivisorLatchIsSeparateFromThrAndIer) {
  Out(serial_, 3, 0x83);  // DLAB | 8N1
  Out(serial_, 0, 0x01);  // DLL
  Out(serial_, 1, 0x00);  // DLM
  EXPECT_EQ(out_, "");    // not transmitted
  EXPECT_EQ(In(serial_, 0), 0x01);
  EXPECT_EQ(In(serial_, 1), 0x00);
  Out(serial_, 3, 0x03);
  EXPECT_EQ(In(serial_, 3), 0x03);
  EXPECT_EQ(In(serial_, 1), 0x00);  // IER untouched
  Out(serial_, 7, 0x5a);
  EXPECT_EQ(In(serial_, 7), 0x5a);  // scratch
  Out(serial_, 5, 0x00);            // LSR is read-only
  EXPECT_EQ(In(serial_, 5), 0x60);
}

TEST_F(SerialTest, InterruptIdentificationAndIrqHook) {
  EXPECT_EQ(In(serial_, 2), 0x01);  // nothing pending
  Out(serial_, 2, 0x07);            // enable + clear FIFOs
  EXPECT_EQ(In(serial_, 2), 0xc1);  // FIFO bits
  Out(serial_, 1, 0x02);            // THRI: THR is empty, so it is pending at once
  EXPECT_EQ(irqs_, (std::vector<bool>{true}));
  EXPECT_EQ(In(serial_, 2), 0xc2);  // reading IIR acknowledges it
  EXPECT_EQ(irqs_, (std::vector<bool>{true, false}));
  EXPECT_EQ(In(serial_, 2), 0xc1);
  Out(serial_, 0, 'x');  // THR empties again
  EXPECT_EQ(In(serial_, 2), 0xc2);
  Out(serial_, 1, 0x01);  // RDI only
  serial_.QueueInput("z");
  EXPECT_EQ(In(serial_, 2), 0xc4);
  EXPECT_EQ(In(serial_, 0), 'z');
  EXPECT_EQ(In(serial_, 2), 0xc1);
  EXPECT_FALSE(irqs_.back());
}

TEST_F(SerialTest, LoopbackEchoesIntoTheReceiverAndMirrorsModemLines) {
  Out(serial_, 4, 0x1f);  // LOOP | OUT2 | OUT1 | RTS | DTR
  Out(serial_, 0, 0xae);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(In(serial_, 5) & 0x01, 0x01);
  EXPECT_EQ(In(serial_, 0), 0xae);
  EXPECT_EQ(In(serial_, 6), 0xf0);
  Out(serial_, 4, 0x10);
  EXPECT_EQ(In(serial_, 6), 0x00);
}

TEST_F(SerialTest, WideAccessesTouchConsecutiveRegisters) {
  std::vector<uint8_t> two(2, 0);
  serial_.Read(4, two);  // MCR, LSR
  EXPECT_EQ(two, (std::vector<uint8_t>{0x00, 0x60}));
}

TEST(Serial8250, WritesToAnOwnedFileDescriptor) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd read_end(fds[0]);
  Serial8250 serial{UniqueFd(fds[1])};
  Out(serial, 0, 'Q');
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'Q');
  read_end.Reset();  // now writes fail with EPIPE: counted, not fatal
  signal(SIGPIPE, SIG_IGN);
  Out(serial, 0, 'R');
  EXPECT_EQ(serial.output_errors(), 1u);
}

TEST(Serial8250, StateRoundTripsThroughItsEncoding) {
  std::string out;
  Serial8250 a([&out](std::string_view s) { out.append(s); });
  Out(a, 3, 0x83);
  Out(a, 0, 0x30);
  Out(a, 1, 0x01);
  Out(a, 3, 0x1b);
  Out(a, 1, 0x03);
  Out(a, 2, 0x01);
  Out(a, 4, 0x0b);
  Out(a, 7, 0x77);
  a.QueueInput("pending");
  EXPECT_EQ(In(a, 0), 'p');
  const Serial8250::State saved = a.SaveState();
  const std::vector<uint8_t> bytes = Serial8250::EncodeState(saved);
  auto decoded = Serial8250::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(Serial8250::EncodeState(*decoded), bytes);

  Serial8250 b([](std::string_view) {});
  ASSERT_TRUE(b.RestoreState(*decoded).ok());
  for (uint64_t reg = 1; reg < 8; ++reg) {
    if (reg == 2) continue;  // reading IIR has side effects
    EXPECT_EQ(In(b, reg), In(a, reg)) << reg;
  }
  Out(b, 3, 0x9b);
  EXPECT_EQ(In(b, 0), 0x30);  // DLL
  EXPECT_EQ(In(b, 1), 0x01);  // DLM
  Out(b, 3, 0x1b);
  std::string rest;
  while (In(b, 5) & 1) rest.push_back(static_cast<char>(In(b, 0)));
  EXPECT_EQ(rest, "ending");
}

TEST(Serial8250, DecodeRejectsDamagedState) {
  Serial8250::State s;
  s.input = "abc";
  std::vector<uint8_t> bytes = Serial8250::EncodeState(s);
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(Serial8250::DecodeState(std::span(bytes).first(len)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << len;
  }
  std::vector<uint8_t> bad_bool = bytes;
  bad_bool[8] = 2;  // thre_pending
  EXPECT_THAT(Serial8250::DecodeState(bad_bool).status().message(), HasSubstr("boolean"));
  std::vector<uint8_t> huge = bytes;
  huge[9] = huge[10] = huge[11] = huge[12] = 0xff;  // input length
  EXPECT_THAT(Serial8250::DecodeState(huge).status().message(), HasSubstr("too long"));
  Serial8250 serial([](std::string_view) {});
  s.input.assign(Serial8250::kMaxQueuedInput + 1, 'x');
  EXPECT_EQ(serial.RestoreState(s).code(), absl::StatusCode::kInvalidArgument);
}

TEST(DebugExitPort, WriteRecordsValueAndRequestsExit) {
  auto requests = std::make_shared<VmRequests>();
  DebugExitPort port(requests);
  EXPECT_EQ(In(port, 0), 0xff);
  EXPECT_FALSE(requests->Pending().has_value());
  const std::vector<uint8_t> v = {0x04, 0x00, 0x00, 0x00};
  port.Write(0, v);
  ASSERT_TRUE(requests->Pending().has_value());
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kExit);
  EXPECT_EQ(requests->Pending()->exit_value, 4u);
  EXPECT_EQ(DebugExitPort::ExitStatusOf(0x1ff), 0xff);
  const DebugExitPort::State s = port.SaveState();
  EXPECT_TRUE(s.written);
  EXPECT_EQ(s.value, 4u);
}

TEST(DebugExitPort, StateRoundTripsThroughItsEncoding) {
  DebugExitPort a(nullptr);  // no request sink: only records
  Out(a, 1, 0x02);           // byte at offset 1: value 0x200
  const std::vector<uint8_t> bytes = DebugExitPort::EncodeState(a.SaveState());
  auto decoded = DebugExitPort::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  DebugExitPort b(nullptr);
  b.RestoreState(*decoded);
  EXPECT_TRUE(b.SaveState().written);
  EXPECT_EQ(b.SaveState().value, 0x200u);
  EXPECT_EQ(DebugExitPort::DecodeState(std::span(bytes).first(3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResetPort, OnlyResetValuesRequestAReset) {
  auto requests = std::make_shared<VmRequests>();
  ResetPort port(requests);
  Out(port, 0, 0x02);
  EXPECT_FALSE(requests->Pending().has_value());
  EXPECT_EQ(In(port, 0), 0x02);
  Out(port, 0, 0x0e);
  ASSERT_TRUE(requests->Pending().has_value());
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kReset);
  requests->Clear();
  Out(port, 0, abi::kResetValue);
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kReset);
}

TEST(PowerOffPort, OnlyAWordWithSleepEnablePowersOff) {
  auto requests = std::make_shared<VmRequests>();
  PowerOffPort port(requests);
  auto write_word = [&port](uint16_t value) {
    const uint8_t bytes[2] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
    port.Write(0, bytes);
  };
  write_word(0x1c00);  // a sleep type without SLP_EN: nothing happens
  EXPECT_FALSE(requests->Pending().has_value());
  uint8_t back[2] = {0xaa, 0xaa};
  Out(port, 1, 0x20);  // a byte write of the SLP_EN byte is not a power-off
  EXPECT_FALSE(requests->Pending().has_value());
  write_word(abi::kPowerOffValue);
  ASSERT_TRUE(requests->Pending().has_value());
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kShutdown);
  port.Read(0, back);
  EXPECT_EQ(back[0] | (back[1] << 8), 0);  // stateless: reads are 0
}

TEST(PowerOffPort, HardwareReducedSleepControlByteWithSlpEnPowersOff) {
  auto requests = std::make_shared<VmRequests>();
  PowerOffPort port(requests);
  Out(port, 0, 5 << 2);  // SLP_TYP 5 without SLP_EN
  EXPECT_FALSE(requests->Pending().has_value());
  Out(port, 1, 0x80);  // SLEEP_STATUS_REG: clearing WAK_STS does nothing
  EXPECT_FALSE(requests->Pending().has_value());
  Out(port, 0, (5 << 2) | PowerOffPort::kSleepControlEnable);  // what Linux writes for S5
  ASSERT_TRUE(requests->Pending().has_value());
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kShutdown);
}

TEST(PvPanicPort, AdvertisesPanickedOnlyAndPostsAPanicForThatBit) {
  auto requests = std::make_shared<VmRequests>();
  PvPanicPort port(requests);
  EXPECT_EQ(In(port, 0), abi::kPvPanicPanicked);  // what Linux's driver reads at probe
  Out(port, 0, 0x02);  // "crash kernel loaded" is not advertised: ignored
  Out(port, 0, 0x00);
  EXPECT_FALSE(requests->Pending().has_value());
  Out(port, 0, abi::kPvPanicPanicked);
  ASSERT_TRUE(requests->Pending().has_value());
  EXPECT_EQ(requests->Pending()->kind, VmRequest::Kind::kPanic);
  EXPECT_EQ(requests->Pending()->exit_value, abi::kPvPanicPanicked);
}

TEST(FlatGuestMemoryView, BoundsChecksEveryRange) {
  std::vector<uint8_t> buf(0x1000);
  FlatGuestMemoryView view(buf, 0x10000);
  EXPECT_EQ(view.HostAddress(0x10000, 0x1000), buf.data());
  EXPECT_EQ(view.HostAddress(0x10ff8, 8), buf.data() + 0xff8);
  EXPECT_EQ(view.HostAddress(0x10ff8, 9), nullptr);
  EXPECT_EQ(view.HostAddress(0xffff, 1), nullptr);
  EXPECT_EQ(view.HostAddress(0x11000, 1), nullptr);
  EXPECT_EQ(view.HostAddress(0x10001, ~uint64_t{0}), nullptr);
  EXPECT_EQ(view.HostAddress(~uint64_t{0}, 2), nullptr);
}

TEST(VmRequests, FirstRequestWinsUntilCleared) {
  VmRequests r;
  EXPECT_TRUE(r.RequestReset());
  EXPECT_FALSE(r.RequestExit(1));
  EXPECT_EQ(r.Pending()->kind, VmRequest::Kind::kReset);
  r.Clear();
  EXPECT_TRUE(r.RequestExit(0xffffffff));
  EXPECT_EQ(r.Pending()->exit_value, 0xffffffffu);
}

class CounterReportPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto oracle = CounterOracle::Create({2, 3, 0, 100});
    ASSERT_TRUE(oracle.ok());
    oracle_ = std::move(oracle).value();
  }
  abi::CounterReport GoodReport(uint32_t vcpu, uint64_t step) {
    auto chain = std::make_unique<counter::ChainState>();
    counter::Init(chain.get(), vcpu, 3);
    while (chain->step < step) counter::Step(chain.get());
    abi::CounterReport r{};
    r.magic = abi::kCounterReportMagic;
    r.vcpu = vcpu;
    r.step = step;
    counter::Digest(chain.get(), r.digest);
    return r;
  }

  std::vector<uint8_t> ram_ = std::vector<uint8_t>(64 * 1024);
  FlatGuestMemoryView memory_{ram_};
  std::shared_ptr<CounterOracle> oracle_;
};

TEST_F(CounterReportPortTest, ReadsTheReportFromGuestMemoryAndFeedsTheOracle) {
  CounterReportPort port(memory_, oracle_);
  const abi::CounterReport r = GoodReport(1, 100);
  std::memcpy(ram_.data() + 0x1000, &r, sizeof(r));
  const uint32_t gpa = 0x1000;
  port.Write(0, std::span(reinterpret_cast<const uint8_t*>(&gpa), 4));
  EXPECT_EQ(oracle_->verified_reports(), 1u);
  EXPECT_EQ(oracle_->verified_steps(1), 100u);
  EXPECT_FALSE(oracle_->violation().has_value());
  EXPECT_EQ(In(port, 0), 0xff);
}

TEST_F(CounterReportPortTest, GarbageAccessesAreViolationsNotCrashes) {
  CounterReportPort port(memory_, oracle_);
  auto write_gpa = [&port](uint32_t gpa) {
    port.Write(0, std::span(reinterpret_cast<const uint8_t*>(&gpa), 4));
  };
  write_gpa(0xffffffc0);  // outside RAM
  EXPECT_EQ(*oracle_->violation(), "counter report at GPA 0xffffffc0 is outside guest RAM");
  write_gpa(static_cast<uint32_t>(ram_.size()) - 32);       // straddles the end (and unaligned)
  write_gpa(static_cast<uint32_t>(ram_.size()) - 64 + 64);  // just past the end
  write_gpa(0x1004);                                        // unaligned
  write_gpa(0x2000);                                        // zeroed memory: bad magic
  Out(port, 0, 0x10);                                       // byte write
  Out(port, 1, 0x10);                                       // wrong offset
  EXPECT_EQ(oracle_->violation_count(), 7u);
  EXPECT_EQ(oracle_->verified_reports(), 0u);
}

}  // namespace
}  // namespace rehome
