// qmp-client/qmp_cli.h: the `rehome qmp SOCKET [COMMAND [JSON-ARGS]]` command-line front end.
//
// Contract: argv[0] is the program name and is ignored; options and operands follow. With a
// COMMAND, runs it once and prints the whole reply as one JSON line on `out`. Without one,
// prints every event as one JSON line as it arrives until SIGINT/SIGTERM or the peer closes.
// Diagnostics go to `err` as one line (monitor mode also announces on `err` once it is connected
// and negotiated, i.e. from when on events are seen). Exit codes: 0 success (or monitoring ended),
// 1 connection or transport failure (incl. timeouts), 2 usage error (bad JSON-ARGS, a SOCKET path
// too long for a UNIX socket address), 3 the server answered with a QMP error (the error reply is
// still printed on `out`; an error without an id answers the command too).
//
// Thread-safety: call from one thread at a time. In monitor mode SIGINT and SIGTERM are blocked
// in the calling thread (and the client's I/O thread) for the duration of the call and consumed.
#ifndef REHOME_QMP_CLIENT_QMP_CLI_H_
#define REHOME_QMP_CLIENT_QMP_CLI_H_

#include <ostream>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rehome {

int RunQmpCli(int argc, char** argv, std::ostream& out, std::ostream& err);

// JSON-ARGS as `rehome qmp` takes it: a JSON object (RFC 8259) nested less deeply than a QMP
// request may be (kQmpMaxDepth counts the request object too). InvalidArgument with a one-line
// message otherwise. Never recurses, whatever the input.
absl::StatusOr<nlohmann::json> ParseQmpCliArguments(std::string_view text);

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_CLI_H_
