// qmp-client/qmp_server.h: QMP monitor server on a UNIX stream socket (Boost.Asio inside).
//
// Contract: Start() binds a listening socket at `path` (a stale socket file there is removed; a
// live one — something accepts on it — is refused with FailedPrecondition; a path that exists and
// is not a socket is refused with InvalidArgument), makes it mode 0600 before listening and
// serves QMP on a private io_context thread until Stop()/destruction. Every client gets its own
// QmpSession (greeting, negotiation, framing, error replies) over one shared CommandHandler.
//
// Bounds: at most `max_clients` connections (extra ones are closed at once); each client's
// unsent output is bounded by `max_output_bytes` — a client that does not read (so its replies
// and events pile up) is dropped with a log line instead of stalling anyone; its input is
// bounded by the session's framer (JsonStreamOptions). Nothing on the io thread blocks except
// the handler itself.
//
// Handlers run on the io thread, one request at a time across all clients: a CommandHandler must
// not block for long (no waiting on the guest, no joining threads) and must never call Stop() or
// destroy the server. To act after a reply has been written (e.g. 'quit'), a handler calls
// RunAfterReply(): the action runs once everything queued for that client so far — including the
// reply being built — has been written to the socket (or the client is gone).
//
// Stop() closes the listener, gives clients up to `stop_flush_timeout` to receive what is
// already queued, closes them, joins the io thread and removes the socket file. Idempotent.
//
// Thread-safety: EmitEvent(), Stop(), client_count() and the destructor may be called from any
// thread except the io thread (i.e. not from a handler; EmitEvent() is fine there too).
#ifndef REHOME_QMP_CLIENT_QMP_SERVER_H_
#define REHOME_QMP_CLIENT_QMP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "qmp-client/qmp_session.h"

namespace rehome {

// The version rehome's QMP server reports (greeting and query-version).
inline constexpr int kRehomeVersionMajor = 0;
inline constexpr int kRehomeVersionMinor = 1;
inline constexpr int kRehomeVersionMicro = 0;
inline constexpr std::string_view kRehomePackage = "rehome-0.1.0";
QmpVersion RehomeQmpVersion();

struct QmpServerOptions {
  // Greeting version/capabilities, framing limits, event clock. Defaults to RehomeQmpVersion().
  QmpSessionOptions session = {.version = RehomeQmpVersion()};
  std::size_t max_clients = 32;
  // Unsent output per client past which a client that does not read is dropped. One message
  // alone may be larger (a reply echoing an id as large as a request may be) when nothing else
  // is unsent.
  std::size_t max_output_bytes = 1 << 20;
  absl::Duration stop_flush_timeout = absl::Seconds(1);
  // Receives one line per notable connection event (drops, refusals). Default: stderr.
  std::function<void(std::string_view)> log;
};

class QmpServer final {
 public:
  static absl::StatusOr<std::unique_ptr<QmpServer>> Start(std::string_view path,
                                                          std::shared_ptr<CommandHandler> handler,
                                                          QmpServerOptions options = {});
  ~QmpServer();
  QmpServer(const QmpServer&) = delete;
  QmpServer& operator=(const QmpServer&) = delete;

  // Broadcasts an event to every negotiated client. Returns at once (posts to the io thread).
  void EmitEvent(std::string_view name, std::optional<nlohmann::json> data = std::nullopt);

  // Closes everything and removes the socket file (see the contract above). Idempotent.
  void Stop();

  // Connected clients right now (for tests and diagnostics).
  std::size_t client_count() const;
  const std::string& path() const { return path_; }

  // From inside CommandHandler::Execute on a QmpServer io thread: runs `action` on the io thread
  // once the reply being built has been written (or the client disconnected). Elsewhere (e.g. a
  // handler driven by a bare QmpSession) runs `action` immediately.
  static void RunAfterReply(std::function<void()> action);

 private:
  struct Impl;
  QmpServer(std::string path, std::unique_ptr<Impl> impl);

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_SERVER_H_
