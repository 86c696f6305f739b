// tests/fuzz/qmp_server_fuzz.cc: libFuzzer target for the server side of QMP: the JSON stream
// framer, the request checks, capability negotiation and command dispatch (QmpSession over a
// VmMonitor over a fake VM, as `rehome run --qmp` serves them; qmp-client/qmp_session.h).
//
// Input: the bytes a client sends, cut into chunks at fuzzed points (a value may span reads),
// with now and then an event the VM emits. Checked: no memory error or UB; every message the
// server writes is one line of ASCII JSON ending in CRLF, an object that is a greeting, a reply
// (with "return" or "error") or an event.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "nlohmann/json.hpp"
#include "qmp-client/qmp_server.h"
#include "qmp-client/qmp_session.h"
#include "qmp-client/testing/fake_vm_control.h"
#include "qmp-client/vm_monitor.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using rehome::fuzz::Check;

void CheckOutput(rehome::QmpSession& session) {
  for (const std::string& message : session.TakeOutput()) {
    Check(message.size() >= 2 && message.substr(message.size() - 2) == "\r\n");
    const std::string line = message.substr(0, message.size() - 2);
    for (char c : line) Check(c >= 0x20 && c < 0x7f);
    const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    Check(json.is_object());
    Check(json.contains("QMP") || json.contains("return") || json.contains("error") ||
          json.contains("event"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  auto vm = std::make_shared<rehome::testing::FakeVmControl>();
  rehome::VmMonitor monitor(vm);
  rehome::QmpSessionOptions options;
  options.version = rehome::RehomeQmpVersion();
  options.clock = [] { return rehome::QmpTimestamp{1700000000, 0}; };
  rehome::QmpSession session(&monitor, options);
  session.Start();
  CheckOutput(session);
  while (in.remaining_bytes() > 0) {
    if (in.ConsumeIntegralInRange(0, 15) == 0) {
      session.EmitEvent(rehome::kEventShutdown,
                        rehome::ShutdownEventData(rehome::ShutdownCause::kHostSignal));
    }
    session.Feed(in.ConsumeRandomLengthString(in.remaining_bytes()));
    CheckOutput(session);
  }
  return 0;
}
