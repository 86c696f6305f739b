// tests/net_test.cc: virtio-net end to end on real KVM with the real guest and a real tap in a
// network namespace the test makes: ping and the netecho workload from the host in both modes;
// every frame exactly once, in order, while the active L1 is killed at random moments and at
// each deterministic fault point (before and after the commit of a notification, a garbage
// ring position, a self-reported failure, a hang); the same under verified execution while a
// replica diverges again and again; and hostile receive/transmit chains from the guest's
// virtio-bad mode, which reset the device and nothing else.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net_namespace.h"
#include "tests/poll_until.h"
#include "tests/subprocess.h"
#include "vmm/cli/machine.h"
#include "vmm/device_model.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using testing::PollUntil;

constexpr char kTap[] = "rhtap0";
constexpr uint16_t kPort = 7;

class NetTest : public ::testing::TestWithParam<MachineMode> {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this host";
    absl::StatusOr<std::unique_ptr<testing::ScopedNetNamespace>> ns =
        testing::ScopedNetNamespace::Enter(kTap);
    if (!ns.ok()) GTEST_SKIP() << ns.status().message();
    ns_ = std::move(*ns);
    serial_path_ = absl::StrCat(::testing::TempDir(), "/net-", getpid(), ".console");
  }
  void TearDown() override {
    machine_.reset();  // before the namespace: the tap and its L1s go first
    ns_.reset();
    unlink(serial_path_.c_str());
  }

  // Starts the guest (nullptr, with a failed expectation, when it cannot be made).
  Machine* Make(const std::string& workload) {
    MachineConfig config;
    config.mode = GetParam();
    config.split.l1_binary = testing::RehomeBinary();
    config.split.policy.max_failovers = 100000;
    config.split.policy.hang_timeout_ms = 200;
    config.split.policy.verify = verify_;
    config.kernel_path = testing::GuestElf();
    config.cmdline = absl::StrCat(workload, " ", VirtioMmioCmdline(false, false, true), " cpus=1");
    config.net = NetdevSpec{kTap};
    config.serial_output = UniqueFd(open(serial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    absl::StatusOr<std::unique_ptr<Machine>> machine = Machine::Create(std::move(config));
    EXPECT_TRUE(machine.ok()) << machine.status();
    if (!machine.ok()) return nullptr;
    machine_ = std::move(*machine);
    EXPECT_TRUE(machine_->Start().ok());
    return machine_.get();
  }

  std::string Console() const {
    std::ifstream in(serial_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Until the guest prints `line` (true), or stops or 60 s pass (false).
  bool AwaitConsole(const std::string& line) {
    return PollUntil(
               [&] {
                 return Console().find(line) != std::string::npos ||
                        machine_->WaitFor(absl::ZeroDuration()).has_value();
               },
               absl::Seconds(60)) &&
           Console().find(line) != std::string::npos;
  }

  // 8 datagrams kept in flight through the guest's echo (for up to 60 s) until Finish; stopped
  // when destroyed too (an assertion may end the test early).
  struct Traffic {
    std::unique_ptr<testing::EchoClient> client;
    absl::Status run;
    std::thread thread;
    ~Traffic() {
      if (client != nullptr) client->Stop();
      if (thread.joinable()) thread.join();
    }
    testing::EchoClient::Counters Finish() {
      client->Stop();
      thread.join();
      EXPECT_TRUE(run.ok()) << run;
      return client->counters();
    }
  };
  // nullptr, with a failed expectation, when the client cannot be made.
  static std::unique_ptr<Traffic> StartTraffic() {
    absl::StatusOr<std::unique_ptr<testing::EchoClient>> client =
        testing::EchoClient::Create(kPort);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    auto t = std::make_unique<Traffic>();
    t->client = std::move(*client);
    Traffic* raw = t.get();
    t->thread = std::thread([raw] { raw->run = raw->client->Run(0, 8, absl::Seconds(60)); });
    return t;
  }
  // Every datagram sent came back exactly once, in order, unchanged.
  static void ExpectEachOnce(const testing::EchoClient::Counters& c) {
    EXPECT_EQ(c.lost, 0u);
    EXPECT_EQ(c.duplicated, 0u);
    EXPECT_EQ(c.reordered, 0u);
    EXPECT_EQ(c.corrupted, 0u);
    EXPECT_EQ(c.echoed, c.sent);
  }

  std::unique_ptr<testing::ScopedNetNamespace> ns_;
  VerifyMode verify_ = VerifyMode::kNone;  // for Make
  std::unique_ptr<Machine> machine_;
  std::string serial_path_;
};

TEST_P(NetTest, HostPingsTheGuestAndItEchoesEveryDatagram) {
  ASSERT_NE(Make("workload=netecho steps=300"), nullptr);
  Machine& m = *machine_;
  ASSERT_TRUE(AwaitConsole("netecho serving udp port=7")) << Console();
  absl::StatusOr<testing::ProcessResult> ping = testing::RunProcess(
      {"/usr/bin/ping", "-c", "5", "-i", "0.2", "-W", "5", testing::kGuestIp}, absl::Seconds(60));
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->exit_code, 0) << ping->out << ping->err;
  EXPECT_THAT(ping->out, HasSubstr("5 received"));

  absl::StatusOr<std::unique_ptr<testing::EchoClient>> client = testing::EchoClient::Create(kPort);
  ASSERT_TRUE(client.ok()) << client.status();
  const uint64_t exits_before = m.Progress().exits_handled;
  EXPECT_TRUE((*client)->Run(300, 4, absl::Seconds(10)).ok()) << Console();
  EXPECT_EQ((*client)->counters().echoed, 300u);
  const uint64_t exits_during = m.Progress().exits_handled - exits_before;

  const MachineResult result = m.Wait();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  EXPECT_THAT(Console(), HasSubstr("netecho done steps=300"));
  EXPECT_THAT(Console(), HasSubstr("icmp=5"));
  EXPECT_THAT(Console(), HasSubstr("mac=52:54:00:12:34:56 ip=10.0.2.15"));
  const NetTap::Stats tap = m.net_tap()->stats();
  EXPECT_GE(tap.rx_frames, 305u);  // the datagrams, the pings and ARP
  EXPECT_GE(tap.tx_frames, 305u);
  EXPECT_EQ(tap.ring_errors, 0u);
  if (GetParam() == MachineMode::kSplit) {
    // Frames move through the rings and the device's notifications through its ioeventfd: 300
    // datagrams and their echoes cost no exit (the guest prints nothing meanwhile). Except when
    // the client stalls (a loaded CI host): after 100 ms without a frame the guest halts, and
    // its interrupt handler's register accesses on the next frame are exits (a few per wake;
    // irq_wakes counts the whole run, the pings' wakes too).
    const size_t at = Console().find("irq_wakes=");
    ASSERT_NE(at, std::string::npos) << Console();
    const uint64_t irq_wakes = std::strtoull(Console().c_str() + at + 10, nullptr, 10);
    EXPECT_LT(exits_during, 10u + 4 * irq_wakes) << "irq_wakes=" << irq_wakes;
  }
}

// An idle guest (no frame for 100 ms) halts; the device's interrupt, routed through the I/O APIC,
// ends the halt when the next frame comes, in split mode (the L1's irqfd) and monolithic mode
// (L0's KVM_IRQ_LINE) alike. Without it every idle answer waited for the next 4 ms timer tick.
TEST_P(NetTest, AnIdleGuestWakesOnTheDeviceInterrupt) {
  ASSERT_NE(Make("workload=netecho steps=3"), nullptr);
  ASSERT_TRUE(AwaitConsole("netecho serving udp port=7")) << Console();
  EXPECT_THAT(Console(), HasSubstr(absl::StrCat("ip=10.0.2.15 irq=", kVirtioFirstIrq)));
  absl::StatusOr<std::unique_ptr<testing::EchoClient>> client = testing::EchoClient::Create(kPort);
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 3; ++i) {
    // The stimulus, not a wait for a condition: 300 ms without traffic make the guest halt.
    absl::SleepFor(absl::Milliseconds(300));
    ASSERT_TRUE((*client)->Run(i + 1, 1, absl::Seconds(10)).ok()) << Console();
  }
  EXPECT_EQ((*client)->counters().echoed, 3u);
  const std::optional<MachineResult> result = machine_->WaitFor(absl::Seconds(60));
  ASSERT_TRUE(result.has_value()) << "the guest did not end after its 3 datagrams: " << Console();
  ASSERT_EQ(result->kind, MachineResult::Kind::kGuestExit) << result->reason;
  EXPECT_EQ(result->exit_status, 0) << Console();
  // Each of the three frames (or the ARP request before the first) found the guest halted and
  // woke it through the interrupt; one may land in the moment between a tick and the next halt.
  const std::string console = Console();
  const size_t at = console.find("irq_wakes=");
  ASSERT_NE(at, std::string::npos) << console;
  EXPECT_GE(std::atoi(console.c_str() + at + 10), 2) << console;
}

// The heart of it: a frame L0 took from the tap reaches the guest exactly once and in order, and
// a frame the guest sent leaves exactly once and in order, whatever the active L1 was doing when
// it failed. The client keeps 8 datagrams in flight, so failures land in every phase of the data
// path (frames waiting in the receive ring, delivered but uncommitted, committed but unpublished,
// replies in the transmit ring).
TEST_P(NetTest, EveryFrameExactlyOnceAcrossFailovers) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "failover needs split mode";
  ASSERT_NE(Make("workload=netecho steps=0"), nullptr);
  Machine& m = *machine_;
  ASSERT_TRUE(AwaitConsole("netecho serving")) << Console();
  std::unique_ptr<Traffic> traffic = StartTraffic();
  ASSERT_NE(traffic, nullptr);
  testing::EchoClient& client = *traffic->client;

  L1Supervisor& s = *m.supervisor();
  std::vector<std::string> faults(40, "kill");
  for (const char* kind : {"die-before-commit", "die-after-commit"})
    faults.insert(faults.end(), 10, kind);
  faults.insert(faults.end(), 5, "garbage");
  faults.insert(faults.end(), 3, "assert");
  faults.insert(faults.end(), 2, "hang");
  std::mt19937_64 random(42);
  std::shuffle(faults.begin(), faults.end(), random);
  uint64_t failovers = 0;
  for (const std::string& kind : faults) {
    ASSERT_TRUE(PollUntil([&] { return s.L1s().size() >= 2; }, absl::Seconds(60)));
    const uint64_t echoed = client.echoed();
    const uint64_t more = 1 + random() % 40;  // a random moment in the stream
    ASSERT_TRUE(PollUntil([&] { return client.echoed() >= echoed + more; }, absl::Seconds(60)))
        << "no traffic before fault " << failovers << " (" << kind << ")";
    ASSERT_TRUE(s.InjectFault("active", kind).ok());
    ++failovers;
    ASSERT_TRUE(PollUntil([&] { return s.failover_count() >= failovers; }, absl::Seconds(60)))
        << kind;
    ASSERT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
  }
  const uint64_t before_stop = client.echoed();
  EXPECT_TRUE(PollUntil([&] { return client.echoed() >= before_stop + 100; }, absl::Seconds(60)));
  ExpectEachOnce(traffic->Finish());
  EXPECT_EQ(s.failover_count(), faults.size());
  // Each garbage position was refused by L0 and answered with a failover.
  EXPECT_GE(m.net_tap()->stats().ring_errors, 5u);
  EXPECT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
}

// Verified execution: a transmitted frame is an effect that leaves only once the replicas agree
// on it, and healthy replicas agree on every item although network input is posted while the
// vCPU runs and adds buffers to the queues (each item carries L0's snapshot of the queues'
// available indices, docs/failover.md): no divergence without a fault.
TEST_P(NetTest, VerifiedNetEchoesEveryDatagramOnce) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "verified execution needs split mode";
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(mode == VerifyMode::kDual ? "dual" : "triple");
    machine_.reset();
    verify_ = mode;
    ASSERT_NE(Make("workload=netecho steps=200"), nullptr);
    Machine& m = *machine_;
    ASSERT_TRUE(AwaitConsole("netecho serving")) << Console();
    absl::StatusOr<std::unique_ptr<testing::EchoClient>> client =
        testing::EchoClient::Create(kPort);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE((*client)->Run(200, 4, absl::Seconds(60)).ok()) << Console();
    const testing::EchoClient::Counters c = (*client)->counters();
    EXPECT_EQ(c.echoed, 200u);
    EXPECT_EQ(c.lost + c.duplicated + c.reordered + c.corrupted, 0u);
    const MachineResult result = m.Wait();
    ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
    EXPECT_EQ(result.exit_status, 0) << Console();
    EXPECT_GE(m.net_tap()->stats().tx_frames, 200u);  // every echo left, from agreed effects
    EXPECT_GT(m.supervisor()->verification().items, 200u);
    const VerificationStatus v = m.supervisor()->verification();
    EXPECT_EQ(v.divergences, 0u) << (v.last ? v.last->item + ": " + v.last->what : "");
  }
}

// A replica made to diverge (wrong-state: its device state differs after an item) again and again
// while the guest echoes 8 datagrams in flight: it is outvoted (triple) or a third opinion
// settles it (dual), and from outside every datagram comes back exactly once, in order,
// unchanged.
TEST_P(NetTest, VerifiedNetEchoThroughDivergences) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "verified execution needs split mode";
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(mode == VerifyMode::kDual ? "dual" : "triple");
    machine_.reset();
    verify_ = mode;
    ASSERT_NE(Make("workload=netecho steps=0"), nullptr);
    Machine& m = *machine_;
    ASSERT_TRUE(AwaitConsole("netecho serving")) << Console();
    std::unique_ptr<Traffic> traffic = StartTraffic();
    ASSERT_NE(traffic, nullptr);
    testing::EchoClient* client = traffic->client.get();
    L1Supervisor& s = *m.supervisor();
    std::mt19937_64 random(7);
    constexpr uint64_t kDivergences = 6;
    for (uint64_t n = 1; n <= kDivergences; ++n) {
      const uint64_t echoed = client->echoed();
      ASSERT_TRUE(PollUntil([&] { return client->echoed() >= echoed + 10; }, absl::Seconds(60)))
          << "no traffic before divergence " << n << Console();
      const auto after = static_cast<uint32_t>(random() % 20);  // items: exits and frames
      // (A wrong state may also crash its replica before it is outvoted: caught either way.)
      auto caught = [&] { return s.verification().divergences + s.failover_count(); };
      // A fault armed in a replica that leaves the members first (resolving the previous
      // divergence) never fires: arm it again, a bounded number of times.
      const uint64_t before = caught();
      bool seen = false;
      for (int attempt = 0; attempt < 4 && !seen; ++attempt) {
        ASSERT_TRUE(s.InjectFault("active", "wrong-state", after).ok());
        seen = PollUntil([&] { return caught() > before; }, absl::Seconds(15));
      }
      ASSERT_TRUE(seen) << "divergence " << n << ": echoed " << client->echoed() << ", items "
                        << s.verification().items << ", L1s " << s.L1s().size() << " rx "
                        << m.net_tap()->stats().rx_frames << " tx "
                        << m.net_tap()->stats().tx_frames << " ring " << m.net_tap()->rx_produced()
                        << "/" << const_cast<NetTap*>(m.net_tap())->rx_ring().consumed()
                        << Console();
      ASSERT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
    }
    const uint64_t before_stop = client->echoed();
    EXPECT_TRUE(PollUntil([&] { return client->echoed() >= before_stop + 50; }, absl::Seconds(60)));
    const testing::EchoClient::Counters c = traffic->Finish();
    EXPECT_GT(c.echoed, 0u);
    ExpectEachOnce(c);
    EXPECT_GE(s.verification().divergences, 1u);
    if (s.verification().last.has_value()) {
      EXPECT_THAT(s.verification().last->what, HasSubstr("state"));
    }
    EXPECT_EQ(m.net_tap()->stats().ring_errors, 0u);
    EXPECT_GE(m.net_tap()->stats().tx_frames, c.echoed);
    EXPECT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
  }
}

// Verified execution across replica failures: replicas are killed (or die inside an item, or
// hang) at random moments while 8 datagrams are in flight; each is fenced and replaced, and every
// datagram still comes back exactly once, in order, unchanged. Afterwards no dead replica is
// listed as a member (a replica that agreed on an item and died before the item ended used to
// stay a member, and the monitor thread, polling its always-readable pidfd, spun at real-time
// priority and starved the surviving replica for seconds).
TEST_P(NetTest, VerifiedNetEveryFrameOnceAcrossReplicaFailures) {
  if (GetParam() != MachineMode::kSplit) GTEST_SKIP() << "verified execution needs split mode";
  for (VerifyMode mode : {VerifyMode::kDual, VerifyMode::kTriple}) {
    SCOPED_TRACE(mode == VerifyMode::kDual ? "dual" : "triple");
    machine_.reset();
    verify_ = mode;
    ASSERT_NE(Make("workload=netecho steps=0"), nullptr);
    Machine& m = *machine_;
    ASSERT_TRUE(AwaitConsole("netecho serving")) << Console();
    std::unique_ptr<Traffic> traffic = StartTraffic();
    ASSERT_NE(traffic, nullptr);
    testing::EchoClient* client = traffic->client.get();
    L1Supervisor& s = *m.supervisor();
    std::vector<std::string> faults(12, "kill");
    faults.insert(faults.end(), 3, "die-before-commit");
    faults.insert(faults.end(), 3, "die-after-commit");
    faults.insert(faults.end(), 2, "hang");
    std::mt19937_64 random(11);
    std::shuffle(faults.begin(), faults.end(), random);
    uint64_t failovers = 0;
    for (const std::string& kind : faults) {
      const uint64_t echoed = client->echoed();
      const uint64_t more = 1 + random() % 30;  // a random moment in the stream
      ASSERT_TRUE(PollUntil([&] { return client->echoed() >= echoed + more; }, absl::Seconds(60)))
          << "no traffic before fault " << failovers << " (" << kind << ")" << Console();
      const std::string target = random() % 2 == 0 ? "active" : "replica-1";
      if (!s.InjectFault(target, kind).ok()) continue;  // between a fence and its replacement
      ++failovers;
      ASSERT_TRUE(PollUntil([&] { return s.failover_count() >= failovers; }, absl::Seconds(60)))
          << kind << " in " << target;
      ASSERT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
    }
    EXPECT_GE(failovers, 10u);
    const uint64_t before_stop = client->echoed();
    EXPECT_TRUE(PollUntil([&] { return client->echoed() >= before_stop + 50; }, absl::Seconds(60)));
    for (const L1Info& l1 : s.L1s()) {
      EXPECT_EQ(kill(l1.pid, 0), 0) << l1.role << " pid " << l1.pid << " is listed but gone";
    }
    ExpectEachOnce(traffic->Finish());
    EXPECT_EQ(m.net_tap()->stats().ring_errors, 0u);
    EXPECT_FALSE(m.WaitFor(absl::ZeroDuration()).has_value()) << Console();
  }
}

TEST_P(NetTest, HostileChainsResetTheDeviceAndNothingElse) {
  // The guest answers nothing in this mode: a static neighbour entry lets the host's datagrams
  // (which the receive cases need) reach it.
  ASSERT_TRUE(ns_->Ip({"neigh", "replace", testing::kGuestIp, "lladdr", "52:54:00:12:34:56", "dev",
                       kTap, "nud", "permanent"})
                  .ok());
  ASSERT_NE(Make("workload=virtio-bad"), nullptr);
  Machine& m = *machine_;
  std::atomic<bool> done{false};
  std::thread traffic([&] {
    // Unanswered datagrams, one per 5 ms, until the guest is done.
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in guest{};
    guest.sin_family = AF_INET;
    guest.sin_port = htons(9);
    inet_pton(AF_INET, testing::kGuestIp, &guest.sin_addr);
    const char payload[64] = "for the receive cases";
    while (!done.load()) {
      (void)sendto(fd.get(), payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&guest),
                   sizeof(guest));
      pollfd idle{fd.get(), 0, 0};
      (void)poll(&idle, 1, 5);  // the pace (nothing to wait for)
    }
  });
  const MachineResult result = m.Wait();
  done.store(true);
  traffic.join();
  ASSERT_EQ(result.kind, MachineResult::Kind::kGuestExit) << result.reason;
  EXPECT_EQ(result.exit_status, 0) << Console();
  const std::string console = Console();
  for (const char* c : {"case=net-tx-loop needs_reset=1", "case=net-tx-bad-addr needs_reset=1",
                        "case=net-tx-oversize needs_reset=1", "case=net-rx-bad-addr needs_reset=1",
                        "case=net-rx-small needs_reset=1"}) {
    EXPECT_THAT(console, HasSubstr(c));
  }
  EXPECT_THAT(console, HasSubstr("virtio-bad done cases=5"));
  if (m.supervisor() != nullptr) {
    EXPECT_EQ(m.supervisor()->failover_count(), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, NetTest,
                         ::testing::Values(MachineMode::kMonolithic, MachineMode::kSplit),
                         [](const auto& info) {
                           return info.param == MachineMode::kSplit ? "Split" : "Monolithic";
                         });

}  // namespace
}  // namespace rehome
