// tests/fuzz/qmp_client_fuzz.cc: libFuzzer target for the client side of QMP, what `rehome qmp`
// reads: a server's output (JSON stream framer with the client's limits, then
// ParseQmpServerMessage and the printing of replies and events), and the command line's
// JSON-ARGS (ParseQmpCliArguments, qmp-client/qmp_cli.h).
//
// Input: a mode byte, then either server output cut into chunks at fuzzed points, or one
// JSON-ARGS string. Checked: no memory error, UB or stack exhaustion; every classified message
// re-encodes (QmpResponseToJson / QmpEventToJson / QmpGreetingToJson) to JSON that classifies
// the same way; accepted JSON-ARGS are an object a request can carry.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"
#include "qmp-client/json_stream.h"
#include "qmp-client/qmp_cli.h"
#include "qmp-client/qmp_client.h"
#include "qmp-client/qmp_codec.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using rehome::fuzz::Check;

using Json = nlohmann::json;

Json Reencode(const rehome::QmpServerMessage& message) {
  if (const auto* g = std::get_if<rehome::QmpGreeting>(&message)) {
    return rehome::QmpGreetingToJson(*g);
  }
  if (const auto* r = std::get_if<rehome::QmpResponse>(&message)) {
    return rehome::QmpResponseToJson(*r);
  }
  return rehome::QmpEventToJson(std::get<rehome::QmpEvent>(message));
}

void FuzzServerOutput(FuzzedDataProvider& in) {
  rehome::JsonStreamFramer framer(rehome::QmpClientOptions().framing);
  while (in.remaining_bytes() > 0) {
    for (const absl::StatusOr<Json>& value :
         framer.Feed(in.ConsumeRandomLengthString(in.remaining_bytes()))) {
      if (!value.ok()) continue;
      absl::StatusOr<rehome::QmpServerMessage> message = rehome::ParseQmpServerMessage(*value);
      if (!message.ok()) continue;
      const Json json = Reencode(*message);
      // What `rehome qmp` prints, and what it would send back on the wire.
      (void)json.dump(-1, ' ', false, Json::error_handler_t::replace);
      (void)rehome::EncodeQmpMessage(json);
      absl::StatusOr<rehome::QmpServerMessage> again = rehome::ParseQmpServerMessage(json);
      Check(again.ok() && again->index() == message->index());
    }
  }
}

void FuzzArguments(FuzzedDataProvider& in) {
  const std::string text = in.ConsumeRemainingBytesAsString();
  absl::StatusOr<Json> args = rehome::ParseQmpCliArguments(text);
  if (!args.ok()) return;
  Check(args->is_object());
  rehome::QmpCommand command{"query-status", false, *args, Json(1)};
  const std::string encoded = rehome::EncodeQmpCommand(command);
  rehome::JsonStreamFramer framer(rehome::JsonStreamOptions{
      .max_value_bytes = std::size_t{64} << 20, .max_depth = rehome::kQmpMaxDepth});
  const std::vector<absl::StatusOr<Json>> values = framer.Feed(encoded);
  Check(values.size() == 1 && values[0].ok());  // a QEMU-limited server can read it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    FuzzServerOutput(in);
  } else {
    FuzzArguments(in);
  }
  return 0;
}
