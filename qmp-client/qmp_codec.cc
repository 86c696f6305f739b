// qmp-client/qmp_codec.cc: QMP message encoding/decoding. See header.
#include "qmp-client/qmp_codec.h"

#include <sys/time.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "qmp-client/string_view_compat.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kErrorClassPayload = "type.rehome.org/qmp-error-class";

absl::Status Invalid(std::string_view what, const Json& message) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed QMP message (", ToAbsl(what), "): ", EncodeQmpMessage(message)));
}

// Reads an integer member; false if absent or not an integer.
bool GetInt(const Json& object, const char* key, int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

absl::StatusOr<QmpGreeting> ParseGreeting(const Json& message) {
  const Json& qmp = message["QMP"];
  if (!qmp.is_object()) return Invalid("QMP is not an object", message);
  auto version = qmp.find("version");
  if (version == qmp.end() || !version->is_object()) return Invalid("no version", message);
  auto qemu = version->find("qemu");
  if (qemu == version->end() || !qemu->is_object()) return Invalid("no version.qemu", message);
  QmpGreeting greeting;
  int64_t major, minor, micro;
  if (!GetInt(*qemu, "major", &major) || !GetInt(*qemu, "minor", &minor) ||
      !GetInt(*qemu, "micro", &micro)) {
    return Invalid("bad version numbers", message);
  }
  greeting.version.major = static_cast<int>(major);
  greeting.version.minor = static_cast<int>(minor);
  greeting.version.micro = static_cast<int>(micro);
  auto package = version->find("package");
  if (package != version->end()) {
    if (!package->is_string()) return Invalid("package is not a string", message);
    greeting.version.package = package->get<std::string>();
  }
  auto caps = qmp.find("capabilities");
  if (caps == qmp.end() || !caps->is_array()) return Invalid("no capabilities array", message);
  for (const Json& cap : *caps) {
    if (!cap.is_string()) return Invalid("capability is not a string", message);
    greeting.capabilities.push_back(cap.get<std::string>());
  }
  return greeting;
}

absl::StatusOr<QmpEvent> ParseEvent(const Json& message) {
  QmpEvent event;
  const Json& name = message["event"];
  if (!name.is_string()) return Invalid("event name is not a string", message);
  event.name = name.get<std::string>();
  if (auto data = message.find("data"); data != message.end()) event.data = *data;
  auto ts = message.find("timestamp");
  if (ts == message.end() || !ts->is_object() ||
      !GetInt(*ts, "seconds", &event.timestamp.seconds) ||
      !GetInt(*ts, "microseconds", &event.timestamp.microseconds)) {
    return Invalid("bad event timestamp", message);
  }
  return event;
}

absl::StatusOr<QmpResponse> ParseResponse(const Json& message) {
  QmpResponse response;
  if (auto id = message.find("id"); id != message.end()) response.id = *id;
  if (auto value = message.find("return"); value != message.end()) {
    response.value = *value;
    return response;
  }
  const Json& error = message["error"];
  if (!error.is_object()) return Invalid("error is not an object", message);
  auto cls = error.find("class");
  auto desc = error.find("desc");
  if (cls == error.end() || !cls->is_string() || desc == error.end() || !desc->is_string()) {
    return Invalid("error lacks class/desc", message);
  }
  response.error = QmpError{cls->get<std::string>(), desc->get<std::string>()};
  return response;
}

}  // namespace

QmpTimestamp QmpNow() {
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  return QmpTimestamp{static_cast<int64_t>(tv.tv_sec), static_cast<int64_t>(tv.tv_usec)};
}

Json QmpGreetingToJson(const QmpGreeting& greeting) {
  Json caps = Json::array();
  for (const std::string& cap : greeting.capabilities) caps.push_back(cap);
  return Json{{"QMP",
               {{"version",
                 {{"qemu",
                   {{"micro", greeting.version.micro},
                    {"minor", greeting.version.minor},
                    {"major", greeting.version.major}}},
                  {"package", greeting.version.package}}},
                {"capabilities", std::move(caps)}}}};
}

Json QmpCommandToJson(const QmpCommand& command) {
  Json json = Json::object();
  json[command.oob ? "exec-oob" : "execute"] = command.name;
  if (command.arguments) json["arguments"] = *command.arguments;
  if (command.id) json["id"] = *command.id;
  return json;
}

Json QmpResponseToJson(const QmpResponse& response) {
  Json json = Json::object();
  if (response.error) {
    json["error"] = {{"class", response.error->error_class}, {"desc", response.error->desc}};
  } else {
    json["return"] = response.value ? *response.value : Json::object();
  }
  if (response.id) json["id"] = *response.id;
  return json;
}

Json QmpEventToJson(const QmpEvent& event) {
  Json json = {
      {"event", event.name},
      {"timestamp",
       {{"seconds", event.timestamp.seconds}, {"microseconds", event.timestamp.microseconds}}}};
  if (event.data) json["data"] = *event.data;
  return json;
}

std::string EncodeQmpMessage(const Json& message) {
  std::string text = message.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  text += "\r\n";
  return text;
}

std::string EncodeQmpGreeting(const QmpGreeting& greeting) {
  return EncodeQmpMessage(QmpGreetingToJson(greeting));
}

std::string EncodeQmpCommand(const QmpCommand& command) {
  return EncodeQmpMessage(QmpCommandToJson(command));
}

std::string EncodeQmpSuccess(const Json& value, const std::optional<Json>& id) {
  return EncodeQmpMessage(QmpResponseToJson(QmpResponse{id, value, std::nullopt}));
}

std::string EncodeQmpError(const QmpError& error, const std::optional<Json>& id) {
  return EncodeQmpMessage(QmpResponseToJson(QmpResponse{id, std::nullopt, error}));
}

std::string EncodeQmpEvent(const QmpEvent& event) {
  return EncodeQmpMessage(QmpEventToJson(event));
}

absl::StatusOr<QmpServerMessage> ParseQmpServerMessage(const Json& message) {
  if (!message.is_object()) return Invalid("not an object", message);
  if (message.contains("QMP")) return ParseGreeting(message);
  if (message.contains("event")) return ParseEvent(message);
  if (message.contains("return") || message.contains("error")) return ParseResponse(message);
  return Invalid("unknown kind", message);
}

absl::StatusOr<QmpCommand> ParseQmpCommand(const Json& request, bool allow_oob) {
  if (!request.is_object()) return absl::InvalidArgumentError(ToAbsl(kQmpInputNotObject));
  QmpCommand command;
  bool has_exec_key = false;
  for (auto it = request.begin(); it != request.end(); ++it) {
    const std::string& key = it.key();
    if (key == "execute" || (key == "exec-oob" && allow_oob)) {
      if (!it->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("QMP input member '", key, "' must be a string"));
      }
      if (has_exec_key) {
        return absl::InvalidArgumentError("QMP input member 'execute' clashes with 'exec-oob'");
      }
      has_exec_key = true;
      command.name = it->get<std::string>();
      command.oob = key == "exec-oob";
    } else if (key == "arguments") {
      if (!it->is_object()) {
        return absl::InvalidArgumentError("QMP input member 'arguments' must be an object");
      }
      command.arguments = *it;
    } else if (key == "id") {
      command.id = *it;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("QMP input member '", key, "' is unexpected"));
    }
  }
  if (!has_exec_key) return absl::InvalidArgumentError("QMP input lacks member 'execute'");
  return command;
}

int JsonNestingDepth(const Json& value) {
  int deepest = 0;
  std::vector<std::pair<const Json*, int>> stack = {{&value, 0}};
  while (!stack.empty()) {
    const auto [json, depth] = stack.back();
    stack.pop_back();
    if (!json->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const Json& child : *json) stack.emplace_back(&child, depth + 1);
  }
  return deepest;
}

absl::Status QmpErrorStatus(std::string_view error_class, std::string_view desc) {
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (error_class == kQmpCommandNotFound || error_class == kQmpDeviceNotFound) {
    code = absl::StatusCode::kNotFound;
  } else if (error_class == kQmpDeviceNotActive) {
    code = absl::StatusCode::kFailedPrecondition;
  } else if (error_class == kQmpKvmMissingCap) {
    code = absl::StatusCode::kUnimplemented;
  }
  absl::Status status(code, ToAbsl(desc));
  status.SetPayload(ToAbsl(kErrorClassPayload), absl::Cord(ToAbsl(error_class)));
  return status;
}

absl::Status QmpErrorStatus(const QmpError& error) {
  return QmpErrorStatus(error.error_class, error.desc);
}

QmpError QmpErrorFromStatus(const absl::Status& status) {
  QmpError error{std::string(kQmpGenericError), std::string(status.message())};
  if (auto payload = status.GetPayload(ToAbsl(kErrorClassPayload))) {
    error.error_class = std::string(*payload);
  }
  return error;
}

}  // namespace rehome
