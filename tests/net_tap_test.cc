// tests/net_tap_test.cc: L0's tap backend on real taps in a network namespace the test makes (no
// KVM needed): it attaches only to an existing, unused tap and says why not otherwise; its pump
// moves frames from the tap into the receive ring and from the transmit ring to the tap (seen on
// an AF_PACKET socket bound to the tap); impossible positions an L1 writes are refused and
// reported, never followed.
#include "vmm/cli/net_tap.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net_namespace.h"
#include "tests/poll_until.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using testing::PollUntil;

constexpr char kTap[] = "rhtap1";
constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE local experimental: the host ignores it

std::vector<uint8_t> TestFrame(uint8_t marker, size_t len = 100) {
  std::vector<uint8_t> f(len, marker);
  std::memset(f.data(), 0xff, 6);  // broadcast
  const uint8_t src[6] = {0x02, 0, 0, 0, 0, marker};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = kTestEtherType >> 8;
  f[13] = kTestEtherType & 0xff;
  return f;
}

class NetTapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::ScopedNetNamespace>> ns =
        testing::ScopedNetNamespace::Enter(kTap);
    if (!ns.ok()) GTEST_SKIP() << ns.status().message();
    ns_ = std::move(*ns);
  }
  void TearDown() override { ns_.reset(); }
  std::unique_ptr<testing::ScopedNetNamespace> ns_;
};

TEST_F(NetTapTest, AttachesOnlyToAnExistingUnusedTap) {
  EXPECT_EQ(NetTap::Open("rhnosuch0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(NetTap::Open("rhnosuch0").status().message()),
              HasSubstr("ip tuntap add dev rhnosuch0 mode tap"));
  EXPECT_EQ(NetTap::Open("lo").status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"", "a/b", "a-name-much-too-long-for-linux"}) {
    EXPECT_EQ(NetTap::Open(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::StatusOr<std::unique_ptr<NetTap>> tap = NetTap::Open(kTap);
  ASSERT_TRUE(tap.ok()) << tap.status();
  const absl::Status busy = NetTap::Open(kTap).status();
  EXPECT_EQ(busy.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(busy.message()), HasSubstr("in use"));
}

TEST_F(NetTapTest, AnUnprivilegedUserIsRefusedWithAReason) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);  // nobody
    const absl::Status s = NetTap::Open(kTap).status();
    _exit(s.code() == absl::StatusCode::kPermissionDenied ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) GTEST_SKIP() << "cannot become nobody";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(NetTapTest, PumpMovesFramesBothWaysAndRefusesImpossiblePositions) {
  absl::StatusOr<std::unique_ptr<NetTap>> opened = NetTap::Open(kTap);
  ASSERT_TRUE(opened.ok()) << opened.status();
  NetTap& tap = **opened;
  std::atomic<int> kicks{0};
  absl::Mutex mu;
  std::vector<std::string> errors;
  tap.Start([&] { kicks.fetch_add(1); },
            [&](const std::string& cause) {
              absl::MutexLock lock(&mu);
              errors.push_back(cause);
            });
  auto error_count = [&] {
    absl::MutexLock lock(&mu);
    return errors.size();
  };

  // The host's side of the tap.
  UniqueFd packet(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
  ASSERT_TRUE(packet.valid()) << strerror(errno);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(if_nametoindex(kTap));
  ASSERT_EQ(bind(packet.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);

  // Host -> guest: the frame lands in the receive ring (after whatever the host kernel sent on
  // its own, e.g. IPv6 router solicitations) and the device is kicked.
  const std::vector<uint8_t> in = TestFrame(0x41);
  ASSERT_EQ(send(packet.get(), in.data(), in.size(), 0), static_cast<ssize_t>(in.size()));
  FrameRing& rx = tap.rx_ring();
  uint64_t found = ~uint64_t{0};
  ASSERT_TRUE(PollUntil(
      [&] {
        std::vector<uint8_t> buf(kFrameMaxBytes);
        for (uint64_t pos = 0; pos < rx.published(); ++pos) {
          std::optional<size_t> n = rx.ReadAt(pos, buf);
          if (n.has_value() && *n == in.size() && std::memcmp(buf.data(), in.data(), *n) == 0) {
            found = pos;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(10)));
  EXPECT_GE(kicks.load(), 1);
  EXPECT_GE(tap.stats().rx_frames, 1u);

  // Guest -> host: a published transmit frame leaves through the tap once.
  const std::vector<uint8_t> out = TestFrame(0x42, 1514);
  FrameRing& tx = tap.tx_ring();
  ASSERT_TRUE(tx.WriteAt(0, out));
  tx.Publish(1);
  ASSERT_EQ(eventfd_write(tap.wake_fd(), 1), 0);
  int seen = 0;
  ASSERT_TRUE(PollUntil(
      [&] {
        std::vector<uint8_t> buf(2048);
        for (ssize_t n; (n = recv(packet.get(), buf.data(), buf.size(), 0)) > 0;) {
          if (static_cast<size_t>(n) == out.size() && std::memcmp(buf.data(), out.data(), n) == 0) {
            ++seen;
          }
        }
        return seen > 0 && tx.consumed() == 1;
      },
      absl::Seconds(10)));
  EXPECT_EQ(tap.stats().tx_frames, 1u);

  // An L1 publishing an impossible transmit position: refused, reported, reset.
  tx.Publish(1 + 10 * uint64_t{kFrameRingSlots});
  ASSERT_EQ(eventfd_write(tap.wake_fd(), 1), 0);
  ASSERT_TRUE(PollUntil([&] { return error_count() >= 1; }, absl::Seconds(10)));
  EXPECT_EQ(tx.published(), 1u);
  EXPECT_EQ(tap.stats().tx_frames, 1u);  // nothing sent for it
  // ... and a consumed position beyond what L0 published on the receive ring.
  rx.StoreConsumed(rx.published() + 7);
  ASSERT_TRUE(PollUntil([&] { return error_count() >= 2; }, absl::Seconds(10)));
  rx.StoreConsumed(found + 1);  // a trustworthy successor's value is accepted again
  tap.Stop();
  EXPECT_EQ(error_count(), 2u);  // each bad value reported once
  EXPECT_EQ(seen, 1);
}

// Verified execution: the frames the replicas agreed on leave through SendAgreed, each position
// once and in order (anything else is refused and not sent), and the agreed receive position
// frees slots only within what was received.
TEST_F(NetTapTest, AgreedFramesLeaveOnceInOrderAndPositionsAreChecked) {
  absl::StatusOr<std::unique_ptr<NetTap>> opened = NetTap::Open(kTap);
  ASSERT_TRUE(opened.ok()) << opened.status();
  NetTap& tap = **opened;
  UniqueFd packet(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
  ASSERT_TRUE(packet.valid()) << strerror(errno);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(if_nametoindex(kTap));
  ASSERT_EQ(bind(packet.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);

  const std::vector<uint8_t> first = TestFrame(0x51), second = TestFrame(0x52);
  EXPECT_FALSE(tap.SendAgreed(1, second));  // not the next position
  EXPECT_TRUE(tap.SendAgreed(0, first));
  EXPECT_FALSE(tap.SendAgreed(0, first));  // already sent
  EXPECT_TRUE(tap.SendAgreed(1, second));
  EXPECT_FALSE(tap.SendAgreed(2, std::vector<uint8_t>(kFrameMaxBytes + 1, 0)));
  std::vector<std::vector<uint8_t>> got;
  ASSERT_TRUE(PollUntil(
      [&] {
        std::vector<uint8_t> buf(2048);
        for (ssize_t n; (n = recv(packet.get(), buf.data(), buf.size(), 0)) > 0;) {
          if (n >= 14 && buf[12] == (kTestEtherType >> 8) && buf[13] == (kTestEtherType & 0xff)) {
            got.emplace_back(buf.begin(), buf.begin() + n);
          }
        }
        return got.size() >= 2;
      },
      absl::Seconds(10)));
  EXPECT_EQ(got, (std::vector<std::vector<uint8_t>>{first, second}));
  EXPECT_EQ(tap.stats().tx_frames, 2u);

  // Receive: nothing received yet beyond what the ring holds.
  FrameRing& rx = tap.rx_ring();
  const uint64_t produced = tap.rx_produced();
  EXPECT_EQ(produced, rx.published());
  EXPECT_FALSE(tap.AgreedConsumed(produced + 1));
  EXPECT_TRUE(tap.AgreedConsumed(produced));
  EXPECT_EQ(rx.consumed(), produced);
  if (produced > 0) {
    EXPECT_FALSE(tap.AgreedConsumed(produced - 1));  // backwards
  }
}

}  // namespace
}  // namespace rehome
