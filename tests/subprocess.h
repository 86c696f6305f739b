// tests/subprocess.h: runs a real child process for tests, capturing stdout and stderr, with a
// deadline after which the child is killed (SIGKILL) and reaped. Thread-compatible.
#ifndef REHOME_TESTS_SUBPROCESS_H_
#define REHOME_TESTS_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rehome::testing {

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `argv` and the current environment plus `extra_env` ("K=V").
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& extra_env = {});

// Paths from the build: the rehome binary and the guest image.
std::string RehomeBinary();
std::string GuestElf();

// Whether this is the ThreadSanitizer build, where every L1 starts and runs several times slower:
// tests that kill L1s on a fixed period lengthen it there so that each L1 gets to run at all.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// Whether this is a sanitizer build (ASan+UBSan or TSan), where guests and L1s run several times
// slower: the longest stress tests repeat their loop fewer times there (CI time). Every path the
// sanitizers check is the same; the normal build runs the full count.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace rehome::testing

#endif  // REHOME_TESTS_SUBPROCESS_H_
