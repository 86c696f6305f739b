// tests/rehome_child.h: the real `rehome run` binary as a child process for integration tests:
// RehomeChild (stdin /dev/null, stdout = guest serial and stderr into files in a scratch
// directory; SIGKILLed and reaped if still alive when destroyed), StartVm (a child serving QMP on
// DIR/qmp.sock, awaited with a deadline), and small fixtures (scratch directories, the example
// domain XML with the built guest). Thread-compatible: one test thread uses a child.
#ifndef REHOME_TESTS_REHOME_CHILD_H_
#define REHOME_TESTS_REHOME_CHILD_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace rehome::testing {

inline constexpr absl::Duration kStartTimeout = absl::Seconds(60);
inline constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

bool HaveKvm();

// A fresh directory under /tmp (short enough for sun_path), removed with its contents.
class ScratchDir final {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The rehome binary as a child: stdin /dev/null, stdout (guest serial) and stderr into files.
class RehomeChild final {
 public:
  // Runs `rehome ARGS...` with DIR/serial.log and DIR/stderr.log.
  static absl::StatusOr<std::unique_ptr<RehomeChild>> Start(std::vector<std::string> args,
                                                            const std::string& dir);
  ~RehomeChild();
  RehomeChild(const RehomeChild&) = delete;
  RehomeChild& operator=(const RehomeChild&) = delete;

  pid_t pid() const { return pid_; }

  // The exit code (128 + signal when killed) once the child has exited within `timeout`.
  absl::StatusOr<int> WaitExit(absl::Duration timeout);
  // After WaitExit: whether a signal killed the child (rather than it exiting by itself).
  bool killed_by_signal() const { return killed_by_signal_; }
  // Polls until `socket` accepts a connection; fails early when the child exits.
  absl::Status WaitForSocket(const std::string& socket, absl::Duration timeout);
  std::string Stderr() const;

 private:
  explicit RehomeChild(std::string stderr_path) : stderr_path_(std::move(stderr_path)) {}

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<int> exit_code_;
  bool killed_by_signal_ = false;
  const std::string stderr_path_;
};

// One `rehome run ... --qmp DIR/qmp.sock` (members die in reverse: the child before its dir).
struct RunningVm {
  ScratchDir dir;
  std::string socket;
  std::unique_ptr<RehomeChild> child;
};

// Starts `rehome run ARGS... --qmp DIR/qmp.sock` and waits (kStartTimeout) for the socket.
absl::StatusOr<std::unique_ptr<RunningVm>> StartVm(std::vector<std::string> args);

// examples/counter-split.xml with its kernel path replaced by the built guest and, when
// `recovery` is not empty, its <rehome:recovery> element replaced by `recovery`.
std::string CounterXml(const std::string& recovery = "");

// Writes `text` to `path`; returns `path`.
std::string WriteFile(const std::string& path, const std::string& text);

}  // namespace rehome::testing

#endif  // REHOME_TESTS_REHOME_CHILD_H_
