// tests/net_namespace.cc: ScopedNetNamespace and EchoClient.
#include "tests/net_namespace.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "tests/subprocess.h"

namespace rehome::testing {
namespace {

constexpr uint64_t kMagic = 0x6f686365656d6f68ull;  // "homeecho"

const char* IpTool() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return nullptr;
}

size_t DatagramLength(uint64_t seq) { return 16 + (seq * 2654435761u) % 1200; }

void FillDatagram(uint64_t seq, std::vector<uint8_t>* out) {
  out->resize(DatagramLength(seq));
  std::memcpy(out->data(), &seq, 8);
  std::memcpy(out->data() + 8, &kMagic, 8);
  for (size_t i = 16; i < out->size(); ++i) (*out)[i] = static_cast<uint8_t>(seq * 31 + i * 7);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScopedNetNamespace>> ScopedNetNamespace::Enter(
    const std::string& tap) {
  if (IpTool() == nullptr) return absl::UnavailableError("the ip tool (iproute2) is missing");
  if (access("/dev/net/tun", R_OK | W_OK) != 0) {
    return absl::UnavailableError("/dev/net/tun is missing or not accessible");
  }
  UniqueFd original(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original.valid()) return LastErrnoStatus("open /proc/thread-self/ns/net");
  if (unshare(CLONE_NEWNET) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create a network namespace: ", strerror(errno)));
  }
  std::unique_ptr<ScopedNetNamespace> ns(new ScopedNetNamespace(std::move(original)));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"link", "set", "lo", "up"},
        std::vector<std::string>{"tuntap", "add", "dev", tap, "mode", "tap"},
        std::vector<std::string>{"addr", "add", absl::StrCat(kHostIp, "/24"), "dev", tap},
        std::vector<std::string>{"link", "set", tap, "up"}}) {
    if (absl::Status s = ns->Ip(args); !s.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot set up a tap: ", s.message()));
    }
  }
  return ns;
}

ScopedNetNamespace::~ScopedNetNamespace() { (void)setns(original_.get(), CLONE_NEWNET); }

absl::Status ScopedNetNamespace::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {IpTool()};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ProcessResult> r = RunProcess(argv, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip ", absl::StrJoin(args, " "), ": ", r->err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EchoClient>> EchoClient::Create(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return LastErrnoStatus("socket");
  sockaddr_in guest{};
  guest.sin_family = AF_INET;
  guest.sin_port = htons(port);
  inet_pton(AF_INET, kGuestIp, &guest.sin_addr);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&guest), sizeof(guest)) != 0) {
    return LastErrnoStatus("connect");
  }
  return std::unique_ptr<EchoClient>(new EchoClient(std::move(fd)));
}

EchoClient::Counters EchoClient::counters() const {
  Counters c;
  c.sent = sent_.load();
  c.echoed = echoed_.load();
  c.lost = lost_.load();
  c.duplicated = duplicated_.load();
  c.reordered = reordered_.load();
  c.corrupted = corrupted_.load();
  return c;
}

absl::Status EchoClient::Run(uint64_t count, int window, absl::Duration timeout) {
  uint64_t next_send = echoed_.load() + 1;
  uint64_t next_echo = next_send;
  std::deque<absl::Time> sent_at;  // of the outstanding datagrams, oldest first
  std::vector<uint8_t> out, in(2048), want;
  absl::Status first_anomaly;
  auto anomaly = [&](std::atomic<uint64_t>& counter, std::string what) {
    counter.fetch_add(1);
    if (first_anomaly.ok()) first_anomaly = absl::DataLossError(what);
  };
  for (;;) {
    const bool stopping = stop_.load() || (count != 0 && next_send > count);
    while (!stopping && next_send - next_echo < static_cast<uint64_t>(window)) {
      FillDatagram(next_send, &out);
      if (send(fd_.get(), out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) {
        return LastErrnoStatus(absl::StrCat("send of datagram ", next_send));
      }
      sent_.fetch_add(1);
      sent_at.push_back(absl::Now());
      ++next_send;
      if (count != 0 && next_send > count) break;
    }
    if (next_echo == next_send && stopping) return first_anomaly;
    if (!sent_at.empty() && absl::Now() - sent_at.front() > timeout) {
      lost_.fetch_add(next_send - next_echo);
      return absl::DeadlineExceededError(absl::StrCat("datagram ", next_echo, " not echoed within ",
                                                      absl::FormatDuration(timeout), " (",
                                                      next_send - next_echo, " outstanding)"));
    }
    pollfd p{fd_.get(), POLLIN, 0};
    (void)poll(&p, 1, 10);
    for (;;) {
      const ssize_t n = recv(fd_.get(), in.data(), in.size(), 0);
      if (n < 0) break;
      uint64_t seq = 0, magic = 0;
      if (n >= 16) {
        std::memcpy(&seq, in.data(), 8);
        std::memcpy(&magic, in.data() + 8, 8);
      }
      if (n < 16 || magic != kMagic) {
        anomaly(corrupted_, absl::StrCat("an echo of ", n, " bytes without the magic"));
        continue;
      }
      if (seq < next_echo) {
        anomaly(duplicated_, absl::StrCat("datagram ", seq, " echoed again"));
        continue;
      }
      if (seq > next_echo || seq >= next_send) {
        anomaly(reordered_, absl::StrCat("datagram ", seq, " echoed while ", next_echo,
                                         " was still outstanding"));
        continue;
      }
      FillDatagram(seq, &want);
      if (static_cast<size_t>(n) != want.size() ||
          std::memcmp(in.data(), want.data(), want.size()) != 0) {
        anomaly(corrupted_, absl::StrCat("datagram ", seq, " came back changed"));
      }
      ++next_echo;
      sent_at.pop_front();
      echoed_.fetch_add(1);
    }
  }
}

}  // namespace rehome::testing
