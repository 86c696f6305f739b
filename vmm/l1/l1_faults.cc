// vmm/l1/l1_faults.cc: executing one exit in the device model, and the faults an L1 injects into
// itself (l1_faults.h).
#include "vmm/l1/l1_faults.h"

#include <cstring>
#include <utility>

namespace rehome {

CommittedAnswer ExecuteExit(DeviceModel& model, const ExitRequest& req, uint64_t seq,
                            std::string& serial_output, std::string& console_output) {
  CommittedAnswer answer;
  answer.seq = seq;
  if (req.kind == ExitRequest::kConsoleInput) {
    console_output.clear();
    if (req.data_len <= kExitDataMax) {
      model.QueueConsoleInput(
          std::string_view(reinterpret_cast<const char*>(req.data), req.data_len));
    }
    answer.output = console_output.substr(0, kExitOutputMax);
    answer.output_stream = 1;
    return answer;
  }
  if (req.kind == ExitRequest::kDeviceKick) {  // verified execution: more queued work
    (void)model.KickDisk();
    (void)model.KickConsole();
    return answer;
  }
  const uint64_t bytes = static_cast<uint64_t>(req.size) * req.count;
  const bool sane = req.size >= 1 && req.size <= 8 && req.count >= 1 && bytes <= kExitDataMax &&
                    (!req.is_write || req.data_len == bytes) &&
                    (req.kind == ExitRequest::kPio || req.kind == ExitRequest::kMmio);
  if (!sane) {
    answer.action = ExitResponse::kFatal;
    answer.reason = "malformed exit request from L0";
    return answer;
  }
  std::vector<uint8_t> buffer(bytes);
  if (req.is_write) std::memcpy(buffer.data(), req.data, bytes);
  KvmExit exit;
  if (req.kind == ExitRequest::kPio) {
    exit = PortIoExit{req.is_write != 0, static_cast<uint16_t>(req.addr),
                      static_cast<uint8_t>(req.size), req.count, std::span<uint8_t>(buffer)};
  } else {
    exit = MmioExit{req.is_write != 0, req.addr, std::span<uint8_t>(buffer)};
  }
  serial_output.clear();
  console_output.clear();
  const ExitOutcome outcome = model.Handle(exit);
  answer.action = static_cast<uint32_t>(outcome.action);  // same numbering as ExitResponse
  answer.exit_status = outcome.exit_status;
  answer.reason = outcome.reason.substr(0, kExitReasonMax);
  if (!req.is_write) answer.data.assign(reinterpret_cast<const char*>(buffer.data()), bytes);
  answer.output = serial_output.substr(0, kExitOutputMax);
  if (!console_output.empty()) {  // a transmit-queue notify: no COM1 output in the same exit
    answer.output = console_output.substr(0, kExitOutputMax);
    answer.output_stream = 1;
  }
  return answer;
}

L1Fault TakeArmedFault(L1Fault* pending, uint32_t* skip, const ExitRequest& req) {
  if (*pending == L1Fault::kNone) return L1Fault::kNone;
  if (*skip > 0) {
    --*skip;
    return L1Fault::kNone;
  }
  if (*pending == L1Fault::kWrongReadData &&
      (req.is_write != 0 || req.kind == ExitRequest::kConsoleInput)) {
    return L1Fault::kNone;
  }
  return std::exchange(*pending, L1Fault::kNone);
}

void ApplyAnswerFault(L1Fault fault, CommittedAnswer* answer) {
  if (fault == L1Fault::kFailAnswer) {  // a well-formed answer that ends the VM
    answer->action = ExitResponse::kCheckFailed;
    answer->data.clear();
    answer->reason = "injected check failure";
  } else if (fault == L1Fault::kWrongReadData && !answer->data.empty()) {
    answer->data[0] = static_cast<char>(answer->data[0] ^ 1);
  }
}

void CorruptDeviceState(DeviceModel& model) {
  std::vector<uint8_t> blob = model.SaveState();
  for (size_t back = 1; back <= blob.size() && back <= 4096; ++back) {
    blob[blob.size() - back] ^= 0x10;
    if (model.RestoreState(blob).ok()) return;
    blob[blob.size() - back] ^= 0x10;
  }
}

}  // namespace rehome
