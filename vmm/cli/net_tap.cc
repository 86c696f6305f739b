// vmm/cli/net_tap.cc: NetTap.
#include "vmm/cli/net_tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/cpu_avoidance.h"
#include "base/errno_status.h"
#include "base/scoped_realtime.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr size_t kReadBuffer = 65536;  // a tap hands over one frame per read, at most 64 KiB

}  // namespace

absl::StatusOr<std::unique_ptr<NetTap>> NetTap::Open(const std::string& ifname) {
  const std::string what = absl::StrCat("--netdev ifname=", ifname);
  if (ifname.empty() || ifname.size() >= IFNAMSIZ ||
      ifname.find_first_of("/: \t\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not an interface name (1..", IFNAMSIZ - 1, " characters)"));
  }
  // TUNSETIFF would create a missing tap: rehome attaches to existing ones only.
  if (if_nametoindex(ifname.c_str()) == 0) {
    return absl::NotFoundError(absl::StrCat(what,
                                            ": no such network interface (create the tap "
                                            "first: ip tuntap add dev ",
                                            ifname, " mode tap)"));
  }
  UniqueFd tap(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (!tap.valid()) {
    const int e = errno;
    if (e == EACCES || e == EPERM) {
      return absl::PermissionDeniedError(
          absl::StrCat(what, ": no permission to open /dev/net/tun"));
    }
    return ErrnoToStatus(e, absl::StrCat(what, ": /dev/net/tun"));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (ioctl(tap.get(), TUNSETIFF, &ifr) != 0) {
    const int e = errno;
    switch (e) {
      case EPERM:
      case EACCES:
        return absl::PermissionDeniedError(absl::StrCat(
            what,
            ": no permission to attach to the tap (needs CAP_NET_ADMIN, or a tap made for "
            "this user: ip tuntap add dev ",
            ifname, " mode tap user USER)"));
      case EINVAL:
        return absl::InvalidArgumentError(absl::StrCat(what, ": not a (single-queue) tap device"));
      case EBUSY:
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": the tap is in use by another process"));
      default:
        return ErrnoToStatus(e, absl::StrCat(what, ": TUNSETIFF"));
    }
  }
  ASSIGN_OR_RETURN(FrameRing rx, FrameRing::Create("rehome-net-rx"));
  ASSIGN_OR_RETURN(FrameRing tx, FrameRing::Create("rehome-net-tx"));
  UniqueFd kick(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!kick.valid() || !wake.valid() || !stop.valid()) return LastErrnoStatus("eventfd");
  return std::unique_ptr<NetTap>(new NetTap(ifname, std::move(tap), std::move(rx), std::move(tx),
                                            std::move(kick), std::move(wake), std::move(stop)));
}

NetTap::NetTap(std::string ifname, UniqueFd tap, FrameRing rx, FrameRing tx, UniqueFd kick,
               UniqueFd wake, UniqueFd stop)
    : ifname_(std::move(ifname)),
      tap_(std::move(tap)),
      rx_ring_(std::move(rx)),
      tx_ring_(std::move(tx)),
      kick_(std::move(kick)),
      wake_(std::move(wake)),
      stop_(std::move(stop)),
      rx_buffer_(kReadBuffer) {
  absl::MutexLock lock(&tx_mu_);
  tx_buffer_.resize(kFrameMaxBytes);
}

NetTap::~NetTap() { Stop(); }

void NetTap::Start(std::function<void()> kick,
                   std::function<void(const std::string&)> on_ring_error, bool rekick_waiting) {
  on_kick_ = std::move(kick);
  on_ring_error_ = std::move(on_ring_error);
  rekick_waiting_ = rekick_waiting;
  thread_ = std::thread([this] { Loop(); });
}

void NetTap::Stop() {
  if (!thread_.joinable()) return;
  (void)eventfd_write(stop_.get(), 1);
  thread_.join();
}

NetTap::Stats NetTap::stats() const {
  Stats s;
  s.rx_frames = rx_frames_.load(std::memory_order_relaxed);
  s.rx_oversize = rx_oversize_.load(std::memory_order_relaxed);
  s.tx_frames = tx_frames_.load(std::memory_order_relaxed);
  s.tx_errors = tx_errors_.load(std::memory_order_relaxed);
  s.tx_malformed = tx_malformed_.load(std::memory_order_relaxed);
  s.ring_errors = ring_errors_.load(std::memory_order_relaxed);
  return s;
}

void NetTap::Loop() {
  // Frames wait for this thread in both directions: it must not queue behind vCPU threads for a
  // CPU (as L0's monitor thread and the L1s, it runs SCHED_FIFO when permitted). It sleeps in
  // poll almost all the time.
  ScopedRealtime realtime;
  CpuAvoidance avoidance;
  for (;;) {
    if (busy_cpus_) avoidance.MoveOff(busy_cpus_());
    const bool room = RxFree() > 0;
    // Verified execution: a replica that found frames but no receive buffer enables the guest's
    // notifications and looks again, but its writes reach guest RAM only once the replicas
    // agreed, so a buffer the guest posted meanwhile may come without a notification. Frames
    // that wait are therefore offered again every millisecond until they are taken.
    const bool waiting = rekick_waiting_ && rx_produced_ != rx_floor_;
    pollfd fds[3] = {{tap_.get(), static_cast<short>(room ? POLLIN : 0), 0},
                     {wake_.get(), POLLIN, 0},
                     {stop_.get(), POLLIN, 0}};
    // The receive ring's slots come free when the L1 publishes its committed position, which it
    // does not signal: with the ring full, look again after 1 ms. Otherwise the timeout only
    // bounds how late frames published without a signal (an L1 killed between publishing and
    // signalling) reach the tap.
    (void)poll(fds, 3, room && !waiting ? 50 : 1);
    if ((fds[2].revents & POLLIN) != 0) return;
    if ((fds[1].revents & POLLIN) != 0) {
      eventfd_t ignored;
      (void)eventfd_read(wake_.get(), &ignored);
    }
    const bool freed = DrainTx();
    std::string tx_error;
    {
      absl::MutexLock lock(&tx_mu_);
      tx_error.swap(tx_error_);
    }
    if (!tx_error.empty()) RingError(absl::DataLossError(tx_error));
    const bool added = (fds[0].revents & POLLIN) != 0 && ReadTap();
    if (!added && !freed && !(waiting && (fds[1].revents | fds[0].revents) == 0)) continue;
    if (on_kick_) {
      on_kick_();
    } else {
      (void)eventfd_write(kick_.get(), 1);
    }
  }
}

void NetTap::RingError(const absl::Status& status) {
  ring_errors_.fetch_add(1, std::memory_order_relaxed);
  const std::string cause = absl::StrCat("virtio-net: ", status.message());
  std::fprintf(stderr, "rehome: %s\n", cause.c_str());
  if (on_ring_error_) on_ring_error_(cause);
}

uint64_t NetTap::RxFree() {
  absl::StatusOr<uint64_t> consumed = rx_ring_.CheckedConsumed(rx_floor_, rx_produced_);
  if (consumed.ok()) {
    rx_floor_ = *consumed;
  } else if (const uint64_t raw = rx_ring_.consumed(); raw != rx_bad_consumed_) {
    rx_bad_consumed_ = raw;  // reported once per bad value: a successor stores a good one
    RingError(consumed.status());
  }
  return FrameRing::FreeAt(rx_produced_, rx_floor_);
}

bool NetTap::ReadTap() {
  bool added = false;
  while (RxFree() > 0) {
    const ssize_t n = read(tap_.get(), rx_buffer_.data(), rx_buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more now
    const auto frame = std::span<const uint8_t>(rx_buffer_.data(), static_cast<size_t>(n));
    if (frame.size() > kFrameMaxBytes || !rx_ring_.WriteAt(rx_produced_, frame, rx_floor_)) {
      rx_oversize_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    rx_ring_.StorePublished(++rx_produced_);
    rx_frames_.fetch_add(1, std::memory_order_relaxed);
    added = true;
  }
  return added;
}

bool NetTap::SendAgreed(uint64_t pos, std::span<const uint8_t> frame) {
  absl::MutexLock lock(&tx_mu_);
  if (pos != agreed_sent_ || frame.empty() || frame.size() > kFrameMaxBytes) return false;
  ++agreed_sent_;
  ssize_t written;
  do {
    written = write(tap_.get(), frame.data(), frame.size());
  } while (written < 0 && errno == EINTR);
  if (written == static_cast<ssize_t>(frame.size())) {
    tx_frames_.fetch_add(1, std::memory_order_relaxed);
  } else {
    tx_errors_.fetch_add(1, std::memory_order_relaxed);  // lost, as on a wire
  }
  return true;
}

bool NetTap::AgreedConsumed(uint64_t pos) {
  // Only L0 writes this position in verified execution (its replicas never write the ring); the
  // pump reads it with its own checks (RxFree).
  if (pos < rx_ring_.consumed() || pos > rx_ring_.published()) return false;
  rx_ring_.StoreConsumed(pos);
  return true;
}

bool NetTap::DrainTx() {
  absl::MutexLock lock(&tx_mu_);
  absl::StatusOr<uint64_t> published = tx_ring_.CheckedPublished(tx_sent_);
  if (!published.ok()) {
    // An L1 published an impossible position: take nothing from it (the pump reports it). A
    // successor republishes the committed position, which is valid again.
    tx_error_ = std::string(published.status().message());
    return false;
  }
  const bool was_full = *published - tx_sent_ == kFrameRingSlots;
  if (*published == tx_sent_) return false;
  for (; tx_sent_ < *published; ++tx_sent_) {
    const std::optional<size_t> n = tx_ring_.ReadAt(tx_sent_, tx_buffer_, *published);
    if (!n.has_value() || *n == 0) {
      tx_malformed_.fetch_add(1, std::memory_order_relaxed);
      tx_error_ = absl::StrCat("frame ring: transmit slot ", tx_sent_, " has an impossible length");
      continue;
    }
    ssize_t written;
    do {
      written = write(tap_.get(), tx_buffer_.data(), *n);
    } while (written < 0 && errno == EINTR);
    // A tap accepts a frame whole or not at all; a failed write loses it, as a wire would.
    if (written == static_cast<ssize_t>(*n)) {
      tx_frames_.fetch_add(1, std::memory_order_relaxed);
    } else {
      tx_errors_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  tx_ring_.StoreConsumed(tx_sent_);
  return was_full;
}

}  // namespace rehome
