// qmp-client/qmp_session.h: server side of one QMP connection as a pure state machine (no I/O).
//
// Contract: the owner calls Start() once (queues the greeting), feeds every byte received from
// the client to Feed(), posts events with EmitEvent(), and writes whatever TakeOutput() returns
// to the client, in order. Behaviour matches QEMU 7.2's monitor: before 'qmp_capabilities' only
// that command exists and any other one is answered CommandNotFound "Expecting capabilities
// negotiation with 'qmp_capabilities'"; afterwards 'qmp_capabilities' is answered CommandNotFound
// "Capabilities negotiation is already complete, command ignored"; malformed input is answered
// GenericError with QEMU's desc (JSON parse errors never carry an id; request-shape errors echo
// the id when the request had one); 'exec-oob' is accepted only after the client enabled "oob"
// and only for commands the handler marks OOB-capable. Events emitted before negotiation are
// dropped, as QEMU does. Commands run synchronously, so replies come out in request order.
//
// Thread-safety: none; one owner drives a session. The handler is called from Feed() only.
#ifndef REHOME_QMP_CLIENT_QMP_SESSION_H_
#define REHOME_QMP_CLIENT_QMP_SESSION_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "qmp-client/json_stream.h"
#include "qmp-client/qmp_codec.h"

namespace rehome {

// What a QMP server exposes. Implementations report failures as absl::Status; use
// QmpErrorStatus() to choose the QMP error class (plain statuses become GenericError).
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  // Whether command `name` exists (otherwise the session answers CommandNotFound).
  virtual bool HasCommand(std::string_view name) const = 0;
  // Whether `name` may be run with "exec-oob".
  virtual bool AllowsOob(std::string_view name) const { return false; }
  // Runs `name`; `args` is always an object ({} when the request had no "arguments"). The value
  // becomes "return".
  virtual absl::StatusOr<nlohmann::json> Execute(std::string_view name,
                                                 const nlohmann::json& args) = 0;
};

struct QmpSessionOptions {
  QmpVersion version;
  // Capabilities offered in the greeting; QEMU knows only "oob".
  std::vector<std::string> capabilities = {"oob"};
  JsonStreamOptions framing;
  // Clock for event timestamps.
  std::function<QmpTimestamp()> clock = QmpNow;
};

class QmpSession final {
 public:
  // `handler` must outlive the session.
  QmpSession(CommandHandler* handler, QmpSessionOptions options);
  QmpSession(const QmpSession&) = delete;
  QmpSession& operator=(const QmpSession&) = delete;

  // Queues the greeting. Call once, before anything else is sent.
  void Start();
  // Processes client bytes (any chunking); queues the replies.
  void Feed(std::string_view bytes);
  // Queues an event if negotiation is complete; returns whether it was queued.
  bool EmitEvent(std::string_view name, std::optional<nlohmann::json> data = std::nullopt);
  // Returns and clears the queued output, one CRLF-terminated message per element.
  std::vector<std::string> TakeOutput();

  bool negotiated() const { return negotiated_; }
  bool oob_enabled() const { return oob_enabled_; }

 private:
  void HandleValue(const nlohmann::json& request);
  // Handles 'qmp_capabilities' before negotiation; returns the reply value or an error.
  absl::StatusOr<nlohmann::json> Negotiate(const nlohmann::json& args);
  void Reply(absl::StatusOr<nlohmann::json> result, const std::optional<nlohmann::json>& id);

  CommandHandler* handler_;
  QmpSessionOptions options_;
  JsonStreamFramer framer_;
  std::vector<std::string> output_;
  bool negotiated_ = false;
  bool oob_enabled_ = false;
};

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_SESSION_H_
