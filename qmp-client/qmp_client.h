// qmp-client/qmp_client.h: synchronous QMP client over a UNIX socket (Boost.Asio inside).
//
// Contract: Connect() connects (bounded by connect_timeout), reads the greeting and, unless told
// not to, negotiates with 'qmp_capabilities'. Execute() sends one command with the next integer
// id and waits for the reply carrying that id; replies are matched by id, so several threads may
// have commands in flight at once. Events go to the callback (if set) and to a bounded queue
// read by WaitEvent() (oldest dropped when full). Errors: connect failure or peer closed ->
// Unavailable; no reply/greeting/event in time -> DeadlineExceeded (a late reply is discarded);
// malformed server output -> InvalidArgument (connect only; later garbage is skipped); a socket
// path longer than a UNIX socket address holds, or arguments nested deeper than a QMP request
// may be (kQmpMaxDepth) -> InvalidArgument; a QMP error reply -> the status from
// QmpErrorStatus() (class kept as payload, desc as message). An error reply without an id (the
// server could not read a request: QEMU sends JSON-level errors so) answers the oldest request
// still waiting, since a server answers one connection's requests in order.
// An io_context runs on a private thread for the client's lifetime.
//
// Thread-safety: all public methods are thread-safe, except that Close()/the destructor must not
// be called from the event callback. The event callback runs on the client's I/O thread and must
// not block for long nor call Execute() (that would deadlock the I/O thread).
#ifndef REHOME_QMP_CLIENT_QMP_CLIENT_H_
#define REHOME_QMP_CLIENT_QMP_CLIENT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "qmp-client/json_stream.h"
#include "qmp-client/qmp_codec.h"

namespace rehome {

struct QmpClientOptions {
  // Bounds connect + greeting + negotiation together.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Send 'qmp_capabilities' after the greeting.
  bool negotiate = true;
  // Capabilities to enable during negotiation (e.g. {"oob"}).
  std::vector<std::string> enable;
  std::size_t max_queued_events = 1024;
  // Server output limits: QEMU's (query-qmp-schema replies are large).
  JsonStreamOptions framing;
};

class QmpClient final {
 public:
  static absl::StatusOr<std::unique_ptr<QmpClient>> Connect(std::string_view socket_path,
                                                            QmpClientOptions options = {});
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // The server's greeting (valid after Connect()).
  const QmpGreeting& greeting() const;

  // Runs `name` and returns its "return" value; a QMP error becomes QmpErrorStatus(class, desc).
  absl::StatusOr<nlohmann::json> Execute(std::string_view name,
                                         std::optional<nlohmann::json> args = std::nullopt,
                                         absl::Duration timeout = absl::Seconds(30));
  // Same, but hands back the whole reply (success or QMP error); only transport errors fail.
  absl::StatusOr<QmpResponse> ExecuteRaw(std::string_view name,
                                         std::optional<nlohmann::json> args = std::nullopt,
                                         absl::Duration timeout = absl::Seconds(30),
                                         bool oob = false);

  // Pops the oldest queued event, waiting up to `timeout`.
  absl::StatusOr<QmpEvent> WaitEvent(absl::Duration timeout);
  // Called on the I/O thread for every event (in addition to queueing). Pass {} to clear.
  void SetEventCallback(std::function<void(const QmpEvent&)> callback);

  // Closes the connection and stops the I/O thread; idempotent. Pending calls get Unavailable.
  void Close();
  // Why the connection is gone (OK while it is up).
  absl::Status connection_status() const;

 private:
  struct Impl;
  explicit QmpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_CLIENT_H_
