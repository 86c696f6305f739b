// vmm/cli/input_pump.h: copies bytes from a file descriptor (stdin) to a sink (the guest's
// serial receiver) on its own thread until EOF, an error, or destruction. The destructor wakes
// the thread through an eventfd and joins it, so the pump never outlives its sink.
// Thread-safety: construct and destroy on one thread; the sink runs on the pump thread.
#ifndef REHOME_VMM_CLI_INPUT_PUMP_H_
#define REHOME_VMM_CLI_INPUT_PUMP_H_

#include <functional>
#include <memory>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace rehome {

class InputPump final {
 public:
  using Sink = std::function<void(std::string_view)>;

  // Starts pumping `fd` (not owned; must stay open while the pump lives).
  static absl::StatusOr<std::unique_ptr<InputPump>> Start(int fd, Sink sink);
  ~InputPump();
  InputPump(const InputPump&) = delete;
  InputPump& operator=(const InputPump&) = delete;

 private:
  InputPump(int fd, UniqueFd wake, Sink sink);
  void Loop();

  const int fd_;
  UniqueFd wake_;
  Sink sink_;
  std::thread thread_;
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_INPUT_PUMP_H_
