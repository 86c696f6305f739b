// qmp-client/qmp_server.cc: Boost.Asio implementation of QmpServer. See header.
//
// Everything except the Stop()/destructor handshake runs on the io thread: the client table, the
// sessions and the write queues are touched only there, so they need no lock. Each Client is
// owned by the table and by its in-flight callbacks (shared_ptr), and is erased on close.
#include "qmp-client/qmp_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "qmp-client/string_view_compat.h"

namespace rehome {

namespace asio = boost::asio;
using Json = nlohmann::json;
using UnixSocket = asio::local::stream_protocol::socket;

namespace {

// Actions registered by RunAfterReply() while a QmpServer feeds a session on this thread.
thread_local std::vector<std::function<void()>>* t_after_reply = nullptr;

struct Client {
  Client(UnixSocket s, CommandHandler* handler, const QmpSessionOptions& options, uint64_t n)
      : socket(std::move(s)), session(handler, options), id(n) {}

  UnixSocket socket;
  QmpSession session;
  const uint64_t id;
  std::array<char, 16384> read_buffer;
  std::deque<std::string> queue;  // not yet handed to async_write
  std::string inflight;           // being written
  std::size_t pending_bytes = 0;  // queue + inflight
  bool writing = false;
  bool closing = false;  // close once the output has drained
  bool closed = false;
  std::vector<std::function<void()>> after_flush;
};

// Creates, binds (mode 0600) and listens on a UNIX socket at `path`.
absl::StatusOr<UniqueFd> Listen(const std::string& path, struct stat* bound) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("QMP socket path '", path,
                                                   "' is empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("QMP socket path '", path, "' exists and is not a socket"));
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return LastErrnoStatus("socket(AF_UNIX)");
    const int rc = connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
      return absl::FailedPreconditionError(
          absl::StrCat("QMP socket '", path, "' is in use by a live server"));
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return LastErrnoStatus(absl::StrCat("unlink stale QMP socket ", path));
    }
  } else if (errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("lstat ", path));
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return LastErrnoStatus("socket(AF_UNIX)");
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return LastErrnoStatus(absl::StrCat("bind ", path));
  }
  // Nobody can connect before listen(), so tightening the mode here leaves no window.
  if (chmod(path.c_str(), 0600) != 0 || lstat(path.c_str(), bound) != 0) {
    absl::Status status = LastErrnoStatus(absl::StrCat("chmod ", path));
    unlink(path.c_str());
    return status;
  }
  if (listen(fd.get(), 16) != 0) {
    absl::Status status = LastErrnoStatus(absl::StrCat("listen ", path));
    unlink(path.c_str());
    return status;
  }
  return fd;
}

}  // namespace

QmpVersion RehomeQmpVersion() {
  return QmpVersion{kRehomeVersionMajor, kRehomeVersionMinor, kRehomeVersionMicro,
                    std::string(kRehomePackage)};
}

struct QmpServer::Impl {
  Impl(QmpServerOptions opts, std::shared_ptr<CommandHandler> h)
      : options(std::move(opts)),
        handler(std::move(h)),
        acceptor(io),
        work(asio::make_work_guard(io)),
        retry_timer(io),
        stop_timer(io) {
    if (!options.log) {
      options.log = [](std::string_view line) {
        std::fprintf(stderr, "qmp-server: %.*s\n", static_cast<int>(line.size()), line.data());
      };
    }
  }

  // ---- io thread ----
  void Accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, UnixSocket socket) {
      if (stopping) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        // E.g. EMFILE: retry later instead of spinning.
        options.log(absl::StrCat("accept failed: ", ec.message()));
        retry_timer.expires_after(std::chrono::milliseconds(100));
        retry_timer.async_wait([this](const boost::system::error_code& wait_ec) {
          if (!wait_ec && !stopping) Accept();
        });
        return;
      }
      if (clients.size() >= options.max_clients) {
        options.log(absl::StrCat("refusing a client: already ", clients.size(), " connected"));
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        auto client =
            std::make_shared<Client>(std::move(socket), handler.get(), options.session, next_id++);
        clients.emplace(client->id, client);
        count.store(clients.size());
        client->session.Start();
        Flush(client);
        StartRead(client);
      }
      Accept();
    });
  }

  void StartRead(const std::shared_ptr<Client>& client) {
    client->socket.async_read_some(
        asio::buffer(client->read_buffer),
        [this, client](const boost::system::error_code& ec, std::size_t n) {
          if (client->closed) return;
          if (ec) {
            // EOF: the client may have half-closed after its last request; let replies drain.
            if (ec == asio::error::eof) {
              CloseWhenDrained(client);
            } else {
              Close(client, "");
            }
            return;
          }
          std::vector<std::function<void()>> actions;
          t_after_reply = &actions;
          try {
            client->session.Feed(std::string_view(client->read_buffer.data(), n));
          } catch (const std::exception& e) {
            // Safety net: a throwing handler (e.g. a JSON type error) must not kill the io thread.
            t_after_reply = nullptr;
            Close(client, absl::StrCat("dropping client ", client->id,
                                       ": command handler threw: ", e.what()));
            return;
          }
          t_after_reply = nullptr;
          for (auto& action : actions) client->after_flush.push_back(std::move(action));
          Flush(client);
          if (client->closed) return;
          if (client->queue.empty() && !client->writing) RunAfterFlush(client);
          if (!client->closing) StartRead(client);
        });
  }

  // Moves the session's output into the write queue, enforcing the bound.
  void Flush(const std::shared_ptr<Client>& client) {
    if (client->closed) return;
    for (std::string& message : client->session.TakeOutput()) {
      if (client->pending_bytes != 0 &&
          client->pending_bytes + message.size() > options.max_output_bytes) {
        Close(client, absl::StrCat("dropping client ", client->id, ": more than ",
                                   options.max_output_bytes, " bytes of output unread"));
        return;
      }
      client->pending_bytes += message.size();
      client->queue.push_back(std::move(message));
    }
    DoWrite(client);
  }

  void DoWrite(const std::shared_ptr<Client>& client) {
    if (client->writing || client->queue.empty() || client->closed) return;
    client->inflight.clear();
    while (!client->queue.empty()) {
      client->inflight += client->queue.front();
      client->queue.pop_front();
    }
    client->writing = true;
    asio::async_write(client->socket, asio::buffer(client->inflight),
                      [this, client](const boost::system::error_code& ec, std::size_t) {
                        client->writing = false;
                        if (client->closed) return;
                        if (ec) {
                          Close(client, "");
                          return;
                        }
                        client->pending_bytes -= client->inflight.size();
                        client->inflight.clear();
                        if (!client->queue.empty()) {
                          DoWrite(client);
                          return;
                        }
                        RunAfterFlush(client);
                        if (client->closing) Close(client, "");
                      });
  }

  void RunAfterFlush(const std::shared_ptr<Client>& client) {
    std::vector<std::function<void()>> actions = std::exchange(client->after_flush, {});
    for (auto& action : actions) action();
  }

  void CloseWhenDrained(const std::shared_ptr<Client>& client) {
    client->closing = true;
    if (!client->writing && client->queue.empty()) Close(client, "");
  }

  void Close(const std::shared_ptr<Client>& client, std::string_view reason) {
    if (client->closed) return;
    client->closed = true;
    if (!reason.empty()) options.log(reason);
    boost::system::error_code ignored;
    client->socket.close(ignored);
    client->queue.clear();
    clients.erase(client->id);
    count.store(clients.size());
    RunAfterFlush(client);
    if (stopping && clients.empty()) stop_timer.cancel();
  }

  void Broadcast(const std::string& name, const std::optional<Json>& data) {
    if (stopping) return;
    std::vector<std::shared_ptr<Client>> targets;
    for (auto& [id, client] : clients) targets.push_back(client);
    for (const std::shared_ptr<Client>& client : targets) {
      if (client->session.EmitEvent(name, data)) Flush(client);
    }
  }

  void BeginStop() {
    if (stopping) return;
    stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    retry_timer.cancel();
    std::vector<std::shared_ptr<Client>> all;
    for (auto& [id, client] : clients) all.push_back(client);
    for (const std::shared_ptr<Client>& client : all) {
      client->socket.shutdown(UnixSocket::shutdown_receive, ignored);
      CloseWhenDrained(client);
    }
    work.reset();
    if (clients.empty()) return;
    stop_timer.expires_after(absl::ToChronoNanoseconds(options.stop_flush_timeout));
    stop_timer.async_wait([this](const boost::system::error_code&) {
      std::vector<std::shared_ptr<Client>> left;
      for (auto& [id, client] : clients) left.push_back(client);
      for (const std::shared_ptr<Client>& client : left) {
        Close(client, absl::StrCat("closing client ", client->id, " with unsent output"));
      }
    });
  }

  QmpServerOptions options;
  std::shared_ptr<CommandHandler> handler;
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::steady_timer retry_timer;
  asio::steady_timer stop_timer;
  std::thread thread;
  // io thread only.
  std::map<uint64_t, std::shared_ptr<Client>> clients;
  uint64_t next_id = 1;
  bool stopping = false;
  // Any thread.
  std::atomic<std::size_t> count{0};
  struct stat bound {};  // identity of the socket file we created
  absl::Mutex stop_mu;
  bool stopped ABSL_GUARDED_BY(stop_mu) = false;
};

QmpServer::QmpServer(std::string path, std::unique_ptr<Impl> impl)
    : path_(std::move(path)), impl_(std::move(impl)) {}

QmpServer::~QmpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<QmpServer>> QmpServer::Start(std::string_view path,
                                                            std::shared_ptr<CommandHandler> handler,
                                                            QmpServerOptions options) {
  if (handler == nullptr) return absl::InvalidArgumentError("QmpServer needs a CommandHandler");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  const std::string socket_path(path);
  ASSIGN_OR_RETURN(UniqueFd fd, Listen(socket_path, &impl->bound));
  boost::system::error_code ec;
  impl->acceptor.assign(asio::local::stream_protocol(), fd.get(), ec);
  if (ec) {
    unlink(socket_path.c_str());
    return absl::InternalError(absl::StrCat("cannot adopt QMP listener: ", ec.message()));
  }
  fd.Release();  // the acceptor owns it now
  Impl* raw = impl.get();
  raw->Accept();
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<QmpServer>(new QmpServer(socket_path, std::move(impl)));
}

void QmpServer::EmitEvent(std::string_view name, std::optional<Json> data) {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl, name = std::string(name), data = std::move(data)] {
    impl->Broadcast(name, data);
  });
}

void QmpServer::Stop() {
  if (std::this_thread::get_id() == impl_->thread.get_id()) {
    // From a handler: joining ourselves would deadlock. Begin the shutdown; a later Stop() or the
    // destructor (from another thread) finishes it.
    impl_->options.log("Stop() called on the io thread; finish it from another thread");
    asio::post(impl_->io, [impl = impl_.get()] { impl->BeginStop(); });
    return;
  }
  absl::MutexLock lock(&impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] { impl->BeginStop(); });
  if (impl->thread.joinable()) impl->thread.join();
  // Remove the socket file only if it is still the one we bound.
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == impl->bound.st_dev &&
      st.st_ino == impl->bound.st_ino) {
    unlink(path_.c_str());
  }
}

std::size_t QmpServer::client_count() const { return impl_->count.load(); }

void QmpServer::RunAfterReply(std::function<void()> action) {
  if (t_after_reply != nullptr) {
    t_after_reply->push_back(std::move(action));
  } else {
    action();
  }
}

}  // namespace rehome
