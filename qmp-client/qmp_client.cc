// qmp-client/qmp_client.cc: Boost.Asio implementation of QmpClient. See header.
//
// All socket operations run on the I/O thread; the mutex guards the state shared with callers
// (greeting, pending replies, event queue, connection status).
#include "qmp-client/qmp_client.h"

#include <sys/un.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "qmp-client/string_view_compat.h"

namespace rehome {

namespace asio = boost::asio;
using Json = nlohmann::json;
using UnixSocket = asio::local::stream_protocol::socket;

struct QmpClient::Impl {
  explicit Impl(QmpClientOptions opts)
      : options(std::move(opts)),
        socket(io),
        work(asio::make_work_guard(io)),
        framer(options.framing) {}

  // ---- I/O thread ----
  void StartRead() {
    socket.async_read_some(
        asio::buffer(read_buffer), [this](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            Fail(absl::UnavailableError(ec == asio::error::eof
                                            ? std::string("QMP peer closed the connection")
                                            : absl::StrCat("QMP read failed: ", ec.message())));
            return;
          }
          std::vector<absl::StatusOr<Json>> values;
          framer.Feed(std::string_view(read_buffer.data(), n), &values);
          for (const absl::StatusOr<Json>& value : values) {
            if (value.ok()) HandleMessage(*value);
          }
          StartRead();
        });
  }

  void HandleMessage(const Json& message) {
    absl::StatusOr<QmpServerMessage> parsed = ParseQmpServerMessage(message);
    if (!parsed.ok()) return;  // not ours to fix; skip like garbage
    if (auto* greeting_msg = std::get_if<QmpGreeting>(&*parsed)) {
      absl::MutexLock lock(&mu);
      if (!greeting) greeting = std::move(*greeting_msg);
      cv.SignalAll();
      return;
    }
    if (auto* response = std::get_if<QmpResponse>(&*parsed)) {
      absl::MutexLock lock(&mu);
      auto it = pending.end();
      if (!response->id.has_value() && !response->ok()) {
        // The server could not read a request (JSON-level errors carry no id). It answers one
        // connection's requests in order, so this answers the oldest one still waiting.
        it = std::find_if(pending.begin(), pending.end(),
                          [](const auto& entry) { return !entry.second.has_value(); });
      } else if (response->id.has_value() && response->id->is_number_integer()) {
        it = pending.find(response->id->get<int64_t>());
      }
      if (it == pending.end() || it->second.has_value()) return;  // not ours, or timed out
      it->second = std::move(*response);
      cv.SignalAll();
      return;
    }
    QmpEvent& event = std::get<QmpEvent>(*parsed);
    std::function<void(const QmpEvent&)> callback;
    {
      absl::MutexLock lock(&mu);
      callback = event_callback;
      if (events.size() >= options.max_queued_events) events.pop_front();
      events.push_back(event);
      cv.SignalAll();
    }
    if (callback) callback(event);
  }

  void QueueWrite(std::string message) {
    asio::post(io, [this, message = std::move(message)]() mutable {
      write_queue.push_back(std::move(message));
      if (write_queue.size() == 1) DoWrite();
    });
  }

  void DoWrite() {
    asio::async_write(
        socket, asio::buffer(write_queue.front()),
        [this](const boost::system::error_code& ec, std::size_t) {
          if (ec) {
            Fail(absl::UnavailableError(absl::StrCat("QMP write failed: ", ec.message())));
            return;
          }
          write_queue.pop_front();
          if (!write_queue.empty()) DoWrite();
        });
  }

  void Fail(absl::Status status) {
    boost::system::error_code ignored;
    socket.close(ignored);
    write_queue.clear();
    absl::MutexLock lock(&mu);
    if (connection.ok()) connection = std::move(status);
    cv.SignalAll();
  }

  // ---- caller threads ----
  // Waits until `ready()` holds or the connection fails or `deadline` passes. Requires mu.
  template <typename Pred>
  absl::Status WaitLocked(Pred ready, absl::Time deadline, std::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!ready()) {
      if (!connection.ok()) return connection;
      if (cv.WaitWithDeadline(&mu, deadline) && !ready()) {
        if (!connection.ok()) return connection;
        return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ", ToAbsl(what)));
      }
    }
    return absl::OkStatus();
  }

  QmpClientOptions options;
  asio::io_context io;
  UnixSocket socket;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  // I/O thread only.
  JsonStreamFramer framer;
  std::array<char, 65536> read_buffer;
  std::deque<std::string> write_queue;

  mutable absl::Mutex mu;
  absl::CondVar cv;
  bool connected ABSL_GUARDED_BY(mu) = false;
  absl::Status connection ABSL_GUARDED_BY(mu);
  std::optional<QmpGreeting> greeting ABSL_GUARDED_BY(mu);
  int64_t next_id ABSL_GUARDED_BY(mu) = 1;
  std::map<int64_t, std::optional<QmpResponse>> pending ABSL_GUARDED_BY(mu);
  std::deque<QmpEvent> events ABSL_GUARDED_BY(mu);
  std::function<void(const QmpEvent&)> event_callback ABSL_GUARDED_BY(mu);
  bool closed = false;  // Close() ran; only touched by Close() under close_mu
  absl::Mutex close_mu;
};

QmpClient::QmpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

QmpClient::~QmpClient() { Close(); }

absl::StatusOr<std::unique_ptr<QmpClient>> QmpClient::Connect(std::string_view socket_path,
                                                              QmpClientOptions options) {
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "QMP socket path ", ToAbsl(socket_path), " is ", socket_path.size(),
        " bytes long; a UNIX socket path has at most ", sizeof(sockaddr_un::sun_path) - 1));
  }
  const bool negotiate = options.negotiate;
  const std::vector<std::string> enable = options.enable;
  auto client = std::unique_ptr<QmpClient>(new QmpClient(std::make_unique<Impl>(options)));
  Impl* impl = client->impl_.get();
  impl->thread = std::thread([impl] { impl->io.run(); });

  const std::string path(socket_path);
  asio::post(impl->io, [impl, path] {
    impl->socket.async_connect(asio::local::stream_protocol::endpoint(path),
                               [impl, path](const boost::system::error_code& ec) {
                                 if (ec) {
                                   impl->Fail(absl::UnavailableError(absl::StrCat(
                                       "cannot connect to QMP socket ", path, ": ", ec.message())));
                                   return;
                                 }
                                 {
                                   absl::MutexLock lock(&impl->mu);
                                   impl->connected = true;
                                   impl->cv.SignalAll();
                                 }
                                 impl->StartRead();
                               });
  });
  {
    absl::MutexLock lock(&impl->mu);
    RETURN_IF_ERROR(impl->WaitLocked(
        [impl]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl->mu) { return impl->connected; }, deadline,
        absl::StrCat("connection to ", path)));
    RETURN_IF_ERROR(impl->WaitLocked(
        [impl]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl->mu) { return impl->greeting.has_value(); },
        deadline, "the QMP greeting"));
  }
  if (negotiate) {
    std::optional<Json> args;
    if (!enable.empty()) args = Json{{"enable", enable}};
    RETURN_IF_ERROR(
        client->Execute("qmp_capabilities", std::move(args), deadline - absl::Now()).status());
  }
  return client;
}

const QmpGreeting& QmpClient::greeting() const {
  absl::MutexLock lock(&impl_->mu);
  return *impl_->greeting;  // set before Connect() returns, never changed afterwards
}

absl::StatusOr<QmpResponse> QmpClient::ExecuteRaw(std::string_view name, std::optional<Json> args,
                                                  absl::Duration timeout, bool oob) {
  const absl::Time deadline = absl::Now() + timeout;
  if (args.has_value() && JsonNestingDepth(*args) >= kQmpMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("arguments of '", ToAbsl(name), "' are nested ", JsonNestingDepth(*args),
                     " levels deep; a QMP request holds at most ", kQmpMaxDepth,
                     " levels, the request object included"));
  }
  QmpCommand command{std::string(name), oob, std::move(args), std::nullopt};
  int64_t id;
  {
    absl::MutexLock lock(&impl_->mu);
    if (!impl_->connection.ok()) return impl_->connection;
    id = impl_->next_id++;
    impl_->pending.emplace(id, std::nullopt);
  }
  command.id = id;
  impl_->QueueWrite(EncodeQmpCommand(command));
  absl::MutexLock lock(&impl_->mu);
  absl::Status waited = impl_->WaitLocked(
      [this, id]()
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) { return impl_->pending[id].has_value(); },
      deadline, absl::StrCat("the reply to '", ToAbsl(name), "'"));
  std::optional<QmpResponse> response = std::move(impl_->pending[id]);
  impl_->pending.erase(id);
  RETURN_IF_ERROR(waited);
  return std::move(*response);
}

absl::StatusOr<Json> QmpClient::Execute(std::string_view name, std::optional<Json> args,
                                        absl::Duration timeout) {
  ASSIGN_OR_RETURN(QmpResponse response, ExecuteRaw(name, std::move(args), timeout));
  if (response.error) return QmpErrorStatus(*response.error);
  return std::move(*response.value);
}

absl::StatusOr<QmpEvent> QmpClient::WaitEvent(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&impl_->mu);
  // Queued events are delivered even after the peer closed.
  if (impl_->events.empty()) {
    RETURN_IF_ERROR(impl_->WaitLocked(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) { return !impl_->events.empty(); },
        deadline, "a QMP event"));
  }
  QmpEvent event = std::move(impl_->events.front());
  impl_->events.pop_front();
  return event;
}

void QmpClient::SetEventCallback(std::function<void(const QmpEvent&)> callback) {
  absl::MutexLock lock(&impl_->mu);
  impl_->event_callback = std::move(callback);
}

void QmpClient::Close() {
  absl::MutexLock close_lock(&impl_->close_mu);
  if (impl_->closed) return;
  impl_->closed = true;
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    impl->Fail(absl::UnavailableError("QMP client closed"));
    impl->work.reset();
  });
  if (impl->thread.joinable()) impl->thread.join();
}

absl::Status QmpClient::connection_status() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->connection;
}

}  // namespace rehome
