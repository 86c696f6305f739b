// bench/loadgen/load_generator.cc: see load_generator.h.
#include "bench/loadgen/load_generator.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "guest/net/service_protocol.h"

namespace rehome::loadgen {
namespace {

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t NowNs() { return ClockNs(CLOCK_MONOTONIC); }

// The kernel's receive time of the datagram `msg` carries (SO_TIMESTAMPNS, CLOCK_REALTIME) on
// CLOCK_MONOTONIC; `now` (CLOCK_MONOTONIC, read after the receive) when there is none.
int64_t ArrivalNs(const msghdr& msg, int64_t now) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      const int64_t realtime = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
      const int64_t arrival = realtime - (ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_MONOTONIC));
      return std::min(arrival, now);
    }
  }
  return now;
}

struct Pending {
  uint32_t attempt = 0;  // sends so far - 1
};

struct Deadline {
  int64_t at;
  uint64_t id;
  uint32_t attempt;
  bool operator>(const Deadline& other) const { return at > other.at; }
};

}  // namespace

absl::StatusOr<std::vector<ResponseRecord>> RunLoad(const LoadConfig& config, LoadExtras* extras,
                                                    const std::atomic<bool>* stop) {
  if (config.requests.empty()) return absl::InvalidArgumentError("no requests");
  if (config.clients == 0) return absl::InvalidArgumentError("clients must be at least 1");
  if (config.count == 0 && config.duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("give a request count or a duration");
  }
  prctl(PR_SET_TIMERSLACK, 1);  // sub-millisecond schedules
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return LastErrnoStatus("socket");
  if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&config.target),
              sizeof(config.target)) != 0) {
    return LastErrnoStatus("connect");
  }
  const int buffer = 4 << 20;
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  const int on = 1;
  setsockopt(sock.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));  // else: user-space time

  std::vector<ResponseRecord> records;
  std::unordered_map<uint64_t, Pending> pending;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines;
  const int64_t timeout_ns = absl::ToInt64Nanoseconds(config.timeout);
  const int64_t period_ns =
      config.closed_loop ? 0 : absl::ToInt64Nanoseconds(config.interval) / config.clients;
  const int64_t start = NowNs();
  const int64_t send_until = config.duration == absl::InfiniteDuration()
                                 ? INT64_MAX
                                 : start + absl::ToInt64Nanoseconds(config.duration);
  bool sending = true;
  int64_t next_progress = start + 1'000'000'000;
  uint64_t answered = 0, retries = 0;
  std::string datagram;

  auto send = [&](uint64_t id, int64_t now) -> absl::Status {
    const std::string& request = config.requests[(id - 1) % config.requests.size()];
    datagram = request;
    std::memcpy(datagram.data() + 8, &id, sizeof(id));
    if (::send(sock.get(), datagram.data(), datagram.size(), 0) < 0 && errno != EAGAIN &&
        errno != ENOBUFS && errno != ECONNREFUSED && errno != EHOSTUNREACH) {
      return LastErrnoStatus("send");  // a lost send is a retry later, like a lost datagram
    }
    deadlines.push({now + timeout_ns, id, pending[id].attempt});
    return absl::OkStatus();
  };
  auto send_new = [&](int64_t now) -> absl::Status {
    ResponseRecord r;
    r.request_id = records.size() + 1;
    r.record_index = static_cast<uint32_t>(records.size() % config.requests.size());
    r.send_ns = now;
    records.push_back(std::move(r));
    pending[records.back().request_id] = Pending{};
    return send(records.back().request_id, now);
  };

  char buf[2048];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  for (;;) {
    int64_t now = NowNs();
    const bool stopping = stop != nullptr && stop->load(std::memory_order_relaxed);
    if (sending &&
        (stopping || now >= send_until || (config.count != 0 && records.size() >= config.count))) {
      sending = false;
    }
    if (stopping || (!sending && pending.empty())) break;
    // New sends due now.
    if (sending) {
      if (config.closed_loop) {
        while (pending.size() < config.clients &&
               (config.count == 0 || records.size() < config.count)) {
          if (absl::Status s = send_new(now); !s.ok()) return s;
        }
      } else {
        for (;;) {
          const int64_t due = start + static_cast<int64_t>(records.size()) * period_ns;
          if (due > now || due >= send_until ||
              (config.count != 0 && records.size() >= config.count)) {
            break;
          }
          if (now - due > 1'000'000 && extras != nullptr) ++extras->late_sends;
          if (absl::Status s = send_new(now); !s.ok()) return s;
        }
      }
    }
    // Retries and give-ups due now.
    while (!deadlines.empty() && deadlines.top().at <= now) {
      const Deadline d = deadlines.top();
      deadlines.pop();
      auto it = pending.find(d.id);
      if (it == pending.end() || it->second.attempt != d.attempt) continue;  // answered/resent
      ResponseRecord& r = records[d.id - 1];
      if (r.retries >= config.max_retries) {
        pending.erase(it);  // given up: latency stays -1
        continue;
      }
      ++r.retries;
      ++retries;
      ++it->second.attempt;
      if (absl::Status s = send(d.id, now); !s.ok()) return s;
    }
    if (config.progress && now >= next_progress) {
      config.progress(records.size(), answered, retries, pending.size());
      next_progress = now + 1'000'000'000;
    }
    // Wait for an answer or the next due time.
    int64_t wake = next_progress;
    if (!deadlines.empty()) wake = std::min(wake, deadlines.top().at);
    if (sending && !config.closed_loop) {
      wake = std::min(wake, start + static_cast<int64_t>(records.size()) * period_ns);
    }
    if (stop != nullptr) wake = std::min(wake, now + 100'000'000);
    const int64_t wait = std::max<int64_t>(0, wake - now);
    const timespec ts{static_cast<time_t>(wait / 1'000'000'000),
                      static_cast<long>(wait % 1'000'000'000)};
    pollfd fd{sock.get(), POLLIN, 0};
    if (ppoll(&fd, 1, &ts, nullptr) < 0 && errno != EINTR) return LastErrnoStatus("ppoll");
    if ((fd.revents & POLLIN) == 0) continue;
    for (;;) {
      iovec iov{buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      const ssize_t n = recvmsg(sock.get(), &msg, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        if (errno == ECONNREFUSED) continue;  // an ICMP error for an earlier send
        return LastErrnoStatus("recv");
      }
      now = NowNs();
      const int64_t arrival = ArrivalNs(msg, now);
      service::Header h;
      if (static_cast<size_t>(n) < sizeof(h)) {
        if (extras != nullptr) ++extras->malformed;
        continue;
      }
      std::memcpy(&h, buf, sizeof(h));
      if (h.magic != service::kResponseMagic) {
        if (extras != nullptr) ++extras->malformed;
        continue;
      }
      auto it = pending.find(h.request_id);
      if (it == pending.end()) {
        if (extras != nullptr) {
          const bool known = h.request_id >= 1 && h.request_id <= records.size();
          ++(known ? extras->duplicates : extras->stray);
        }
        continue;
      }
      ResponseRecord& r = records[h.request_id - 1];
      r.latency_ns = std::max<int64_t>(0, arrival - r.send_ns);
      r.status = h.kind;
      r.body.assign(buf + sizeof(h), static_cast<size_t>(n) - sizeof(h));
      pending.erase(it);
      ++answered;
    }
  }
  return records;
}

}  // namespace rehome::loadgen
