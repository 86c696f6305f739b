// qmp-client/qmp_codec.h: QMP message types, their wire encoding and decoding (both sides).
//
// Contract: follows QEMU's docs/interop/qmp-spec and QEMU 7.2's behaviour. Every encoded message
// is one line of ASCII JSON (non-ASCII escaped as \uXXXX, invalid UTF-8 replaced by U+FFFD)
// terminated by CRLF. Command ids may be any JSON value and are echoed verbatim. Decoders
// return InvalidArgument for malformed messages; the command decoder uses QEMU's exact
// GenericError wording so a server can reply with the status message as "desc".
//
// Thread-safety: pure functions and plain value types; safe from any thread.
#ifndef REHOME_QMP_CLIENT_QMP_CODEC_H_
#define REHOME_QMP_CLIENT_QMP_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rehome {

// QEMU's error classes (QapiErrorClass); the wire carries them as strings.
inline constexpr std::string_view kQmpGenericError = "GenericError";
inline constexpr std::string_view kQmpCommandNotFound = "CommandNotFound";
inline constexpr std::string_view kQmpDeviceNotActive = "DeviceNotActive";
inline constexpr std::string_view kQmpDeviceNotFound = "DeviceNotFound";
inline constexpr std::string_view kQmpKvmMissingCap = "KVMMissingCap";

// QEMU's texts for protocol-level errors.
inline constexpr std::string_view kQmpExpectingNegotiation =
    "Expecting capabilities negotiation with 'qmp_capabilities'";
inline constexpr std::string_view kQmpNegotiationComplete =
    "Capabilities negotiation is already complete, command ignored";
inline constexpr std::string_view kQmpInputNotObject = "QMP input must be a JSON object";

struct QmpVersion {
  int major = 0;
  int minor = 0;
  int micro = 0;
  std::string package;
};

struct QmpGreeting {
  QmpVersion version;
  std::vector<std::string> capabilities;  // e.g. {"oob"}
};

struct QmpCommand {
  std::string name;
  bool oob = false;                         // sent as "exec-oob" instead of "execute"
  std::optional<nlohmann::json> arguments;  // an object when present
  std::optional<nlohmann::json> id;         // any JSON value, echoed in the reply
};

struct QmpError {
  std::string error_class;  // one of the kQmp* classes above
  std::string desc;
};

// A reply to a command: either "return" (value) or "error".
struct QmpResponse {
  std::optional<nlohmann::json> id;
  std::optional<nlohmann::json> value;  // set for success
  std::optional<QmpError> error;        // set for failure
  bool ok() const { return !error.has_value(); }
};

struct QmpTimestamp {
  int64_t seconds = 0;
  int64_t microseconds = 0;
};

struct QmpEvent {
  std::string name;
  std::optional<nlohmann::json> data;  // an object when present
  QmpTimestamp timestamp;
};

using QmpServerMessage = std::variant<QmpGreeting, QmpResponse, QmpEvent>;

// Current wall-clock time in QMP's timestamp form (like QEMU's g_get_real_time()).
QmpTimestamp QmpNow();

// ---- JSON builders (no CRLF) ----
nlohmann::json QmpGreetingToJson(const QmpGreeting& greeting);
nlohmann::json QmpCommandToJson(const QmpCommand& command);
nlohmann::json QmpResponseToJson(const QmpResponse& response);
nlohmann::json QmpEventToJson(const QmpEvent& event);

// Serialises one message as QMP puts it on the wire: ASCII JSON + "\r\n".
std::string EncodeQmpMessage(const nlohmann::json& message);
std::string EncodeQmpGreeting(const QmpGreeting& greeting);
std::string EncodeQmpCommand(const QmpCommand& command);
std::string EncodeQmpSuccess(const nlohmann::json& value, const std::optional<nlohmann::json>& id);
std::string EncodeQmpError(const QmpError& error, const std::optional<nlohmann::json>& id);
std::string EncodeQmpEvent(const QmpEvent& event);

// ---- Decoders ----
// Client side: classifies a server message (greeting, return/error reply, event).
absl::StatusOr<QmpServerMessage> ParseQmpServerMessage(const nlohmann::json& message);

// Server side: checks a request object exactly like QEMU 7.2's qmp_dispatch_check_obj() (members
// in sorted order); `allow_oob` is whether "exec-oob" is accepted. On error the status message is
// QEMU's desc ("QMP input must be a JSON object", "QMP input lacks member 'execute'", ...).
absl::StatusOr<QmpCommand> ParseQmpCommand(const nlohmann::json& request, bool allow_oob);

// Nesting depth of objects and arrays in `value` (a scalar is 0, {} and [] are 1); iterative, so
// safe on any value nlohmann can hold. QMP servers refuse requests nested deeper than
// kQmpMaxDepth (json_stream.h), and encoding a very deep value would exhaust the stack.
int JsonNestingDepth(const nlohmann::json& value);

// ---- Errors as absl::Status ----
// Builds a status that carries a QMP error class; QmpSession replies with that class and the
// status message as desc. Code: NotFound for CommandNotFound/DeviceNotFound, FailedPrecondition
// for DeviceNotActive, Unimplemented for KVMMissingCap, Unknown otherwise.
absl::Status QmpErrorStatus(std::string_view error_class, std::string_view desc);
absl::Status QmpErrorStatus(const QmpError& error);
// Inverse: the class carried by `status` (GenericError when it carries none) and its message.
QmpError QmpErrorFromStatus(const absl::Status& status);

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_CODEC_H_
