// qmp-client/qmp_cli.cc: `rehome qmp` implementation. See header.
#include "qmp-client/qmp_cli.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "qmp-client/qmp_client.h"
#include "qmp-client/qmp_codec.h"
#include "qmp-client/string_view_compat.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitConnection = 1;
constexpr int kExitUsage = 2;
constexpr int kExitQmpError = 3;

constexpr std::string_view kUsage =
    "Usage: rehome qmp [OPTIONS] SOCKET [COMMAND [JSON-ARGS]]\n"
    "Talks QMP to the monitor socket SOCKET (rehome L0 or QEMU).\n"
    "  With COMMAND: runs it (JSON-ARGS is a JSON object of arguments) and prints the reply.\n"
    "  Without COMMAND: prints events as they arrive until SIGINT/SIGTERM or the peer closes.\n"
    "Options:\n"
    "  --timeout=SECONDS  connect and reply timeout (default 10)\n"
    "  --pretty           indent the printed JSON\n"
    "  -h, --help         show this help\n"
    "Exit status: 0 ok, 1 connection failure or timeout, 2 usage error (bad JSON-ARGS, a\n"
    "SOCKET path too long for a UNIX socket), 3 the command failed (the error reply is printed,\n"
    "also when the server could not read the request and its error carries no id).\n";

struct CliArgs {
  bool help = false;
  bool pretty = false;
  double timeout_s = 10;
  std::vector<std::string> operands;
};

// Returns an error message, or "" on success.
std::string ParseArgs(int argc, char** argv, CliArgs* args) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && (arg == "-h" || arg == "--help")) {
      args->help = true;
    } else if (!options_done && arg == "--pretty") {
      args->pretty = true;
    } else if (!options_done && arg.substr(0, 10) == "--timeout=") {
      if (!absl::SimpleAtod(ToAbsl(arg.substr(10)), &args->timeout_s) || !(args->timeout_s > 0)) {
        return absl::StrCat("bad --timeout value '", ToAbsl(arg.substr(10)), "'");
      }
    } else if (!options_done && arg.size() > 1 && arg[0] == '-' && args->operands.empty()) {
      return absl::StrCat("unknown option '", ToAbsl(arg), "'");
    } else {
      args->operands.emplace_back(arg);
    }
  }
  if (args->help) return "";
  if (args->operands.empty()) return "missing SOCKET";
  if (args->operands.size() > 3) return "too many arguments";
  return "";
}

// A client-side failure's exit code: bad input (a socket path too long, arguments too deep) is a
// usage error, anything else a connection failure.
int ExitCodeFor(const absl::Status& status) {
  return absl::IsInvalidArgument(status) ? kExitUsage : kExitConnection;
}

std::string Dump(const Json& json, bool pretty) {
  return json.dump(pretty ? 2 : -1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

// Blocks SIGINT/SIGTERM in the calling thread for its lifetime; threads started meanwhile
// inherit the mask, so the signals stay pending until consumed by Pending().
class ScopedSignalBlock final {
 public:
  ScopedSignalBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~ScopedSignalBlock() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  ScopedSignalBlock(const ScopedSignalBlock&) = delete;
  ScopedSignalBlock& operator=(const ScopedSignalBlock&) = delete;

  // Consumes a pending SIGINT/SIGTERM; returns whether there was one.
  bool Pending() {
    struct timespec zero = {0, 0};
    return sigtimedwait(&set_, nullptr, &zero) > 0;
  }

 private:
  sigset_t set_;
  sigset_t old_;
};

int MonitorEvents(const std::string& socket, const QmpClientOptions& options, bool pretty,
                  std::ostream& out, std::ostream& err) {
  ScopedSignalBlock signals;
  absl::StatusOr<std::unique_ptr<QmpClient>> client = QmpClient::Connect(socket, options);
  if (!client.ok()) {
    err << "rehome qmp: " << client.status().message() << "\n";
    return ExitCodeFor(client.status());
  }
  err << "rehome qmp: connected to " << socket << ", printing events until SIGINT/SIGTERM"
      << std::endl;
  for (;;) {
    if (signals.Pending()) return kExitOk;
    // A short wait bounds the reaction time to signals; events print as soon as they arrive.
    absl::StatusOr<QmpEvent> event = (*client)->WaitEvent(absl::Milliseconds(100));
    if (event.ok()) {
      out << Dump(QmpEventToJson(*event), pretty) << std::endl;
    } else if (absl::IsUnavailable(event.status())) {
      return kExitOk;  // peer closed
    }
  }
}

}  // namespace

absl::StatusOr<Json> ParseQmpCliArguments(std::string_view text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    std::string shown(text.substr(0, 80));
    if (text.size() > shown.size()) shown += "...";
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // one line
    }
    return absl::InvalidArgumentError(
        absl::StrCat("JSON-ARGS must be a JSON object, got: ", ToAbsl(shown)));
  }
  if (const int depth = JsonNestingDepth(parsed); depth >= kQmpMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON-ARGS is nested ", depth, " levels deep; a QMP request holds at most ",
                     kQmpMaxDepth, " levels, the request object included"));
  }
  return parsed;
}

int RunQmpCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CliArgs args;
  if (std::string error = ParseArgs(argc, argv, &args); !error.empty()) {
    err << "rehome qmp: " << error << " (try --help)\n";
    return kExitUsage;
  }
  if (args.help) {
    out << kUsage;
    return kExitOk;
  }
  std::optional<Json> command_args;
  if (args.operands.size() == 3) {
    absl::StatusOr<Json> parsed = ParseQmpCliArguments(args.operands[2]);
    if (!parsed.ok()) {
      err << "rehome qmp: " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    command_args = std::move(*parsed);
  }
  const absl::Duration timeout = absl::Seconds(args.timeout_s);
  QmpClientOptions options;
  options.connect_timeout = timeout;
  if (args.operands.size() == 1) {
    return MonitorEvents(args.operands[0], options, args.pretty, out, err);
  }
  absl::StatusOr<std::unique_ptr<QmpClient>> client = QmpClient::Connect(args.operands[0], options);
  if (!client.ok()) {
    err << "rehome qmp: " << client.status().message() << "\n";
    return ExitCodeFor(client.status());
  }
  absl::StatusOr<QmpResponse> reply =
      (*client)->ExecuteRaw(args.operands[1], std::move(command_args), timeout);
  if (!reply.ok()) {
    err << "rehome qmp: " << reply.status().message() << "\n";
    return ExitCodeFor(reply.status());
  }
  reply->id.reset();  // the id is the client's bookkeeping, not part of the answer
  out << Dump(QmpResponseToJson(*reply), args.pretty) << std::endl;
  return reply->ok() ? kExitOk : kExitQmpError;
}

}  // namespace rehome
