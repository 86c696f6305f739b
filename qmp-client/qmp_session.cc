// qmp-client/qmp_session.cc: QEMU-compatible server-side QMP state machine. See header.
#include "qmp-client/qmp_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kCapabilitiesCommand = "qmp_capabilities";
// Capability names QEMU 7.2's QMPCapability enum knows.
constexpr std::string_view kKnownCapabilities[] = {"oob"};

absl::Status Generic(std::string desc) { return QmpErrorStatus(kQmpGenericError, desc); }

}  // namespace

QmpSession::QmpSession(CommandHandler* handler, QmpSessionOptions options)
    : handler_(handler), options_(std::move(options)), framer_(options_.framing) {}

void QmpSession::Start() {
  output_.push_back(EncodeQmpGreeting(QmpGreeting{options_.version, options_.capabilities}));
}

void QmpSession::Feed(std::string_view bytes) {
  std::vector<absl::StatusOr<Json>> values;
  framer_.Feed(bytes, &values);
  for (absl::StatusOr<Json>& value : values) {
    if (!value.ok()) {
      // JSON-level errors never carry an id: the request could not be read.
      Reply(Generic(std::string(value.status().message())), std::nullopt);
      continue;
    }
    HandleValue(*value);
  }
}

bool QmpSession::EmitEvent(std::string_view name, std::optional<Json> data) {
  if (!negotiated_) return false;
  output_.push_back(EncodeQmpEvent(QmpEvent{std::string(name), std::move(data), options_.clock()}));
  return true;
}

std::vector<std::string> QmpSession::TakeOutput() { return std::exchange(output_, {}); }

void QmpSession::Reply(absl::StatusOr<Json> result, const std::optional<Json>& id) {
  if (result.ok()) {
    output_.push_back(EncodeQmpSuccess(*result, id));
  } else {
    output_.push_back(EncodeQmpError(QmpErrorFromStatus(result.status()), id));
  }
}

void QmpSession::HandleValue(const Json& request) {
  std::optional<Json> id;
  if (request.is_object()) {
    if (auto it = request.find("id"); it != request.end()) id = *it;
  }
  absl::StatusOr<QmpCommand> command = ParseQmpCommand(request, oob_enabled_);
  if (!command.ok()) {
    Reply(Generic(std::string(command.status().message())), id);
    return;
  }
  const Json args = command->arguments.value_or(Json::object());
  if (!negotiated_) {
    // Only 'qmp_capabilities' exists in this state.
    if (command->name != kCapabilitiesCommand) {
      Reply(QmpErrorStatus(kQmpCommandNotFound, kQmpExpectingNegotiation), id);
      return;
    }
    Reply(Negotiate(args), id);
    return;
  }
  const bool builtin = command->name == kCapabilitiesCommand;
  if (!builtin && !handler_->HasCommand(command->name)) {
    Reply(QmpErrorStatus(kQmpCommandNotFound,
                         absl::StrCat("The command ", command->name, " has not been found")),
          id);
    return;
  }
  if (command->oob && (builtin || !handler_->AllowsOob(command->name))) {
    Reply(Generic(absl::StrCat("The command ", command->name, " does not support OOB")), id);
    return;
  }
  if (builtin) {
    Reply(QmpErrorStatus(kQmpCommandNotFound, kQmpNegotiationComplete), id);
    return;
  }
  Reply(handler_->Execute(command->name, args), id);
}

absl::StatusOr<Json> QmpSession::Negotiate(const Json& args) {
  bool want_oob = false;
  if (auto enable = args.find("enable"); enable != args.end()) {
    if (!enable->is_array()) {
      return Generic("Invalid parameter type for 'enable', expected: array");
    }
    std::vector<std::string> requested;
    for (std::size_t i = 0; i < enable->size(); ++i) {
      const Json& cap = (*enable)[i];
      if (!cap.is_string()) {
        return Generic(
            absl::StrCat("Invalid parameter type for 'enable[", i, "]', expected: string"));
      }
      const std::string name = cap.get<std::string>();
      if (std::find(std::begin(kKnownCapabilities), std::end(kKnownCapabilities), name) ==
          std::end(kKnownCapabilities)) {
        // QEMU 7.2's enum visitor names the list element 'null' here.
        return Generic(absl::StrCat("Parameter 'null' does not accept value '", name, "'"));
      }
      requested.push_back(name);
    }
    for (const std::string& name : requested) {
      if (std::find(options_.capabilities.begin(), options_.capabilities.end(), name) ==
          options_.capabilities.end()) {
        return Generic(absl::StrCat("Capability '", name, "' not available"));
      }
      want_oob = want_oob || name == "oob";
    }
  }
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (it.key() != "enable")
      return Generic(absl::StrCat("Parameter '", it.key(), "' is unexpected"));
  }
  negotiated_ = true;
  oob_enabled_ = want_oob;
  return Json::object();
}

}  // namespace rehome
