// qmp-client/qmp_cli.h: the `rehome qmp SOCKET [COMMAND [JSON-ARGS]]` command-line front end.
//
// Contract: argv[0] is the program name and is ignored; options and operands follow. With a
// COMMAND, runs it once and prints the whole reply as one JSON line on `out`. Without one,
// prints every event as one JSON line as it arrives until SIGINT/SIGTERM or the peer closes.
// Diagnostics go to `err` as one line (monitor mode also announces on `err` once it is connected
// and negotiated, i.e. from when on events are seen). Exit codes: 0 success (or monitoring ended),
// 1 connection or transport failure (incl. timeouts), 2 usage error or bad JSON-ARGS, 3 the server
// answered with a QMP error (the error reply is still printed on `out`).
//
// Thread-safety: call from one thread at a time. In monitor mode SIGINT and SIGTERM are blocked
// in the calling thread (and the client's I/O thread) for the duration of the call and consumed.
#ifndef REHOME_QMP_CLIENT_QMP_CLI_H_
#define REHOME_QMP_CLIENT_QMP_CLI_H_

#include <ostream>

namespace rehome {

int RunQmpCli(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_QMP_CLI_H_
