// recovery/exit_forwarding.cc: PostRequest, CopyResponse, LooksHung.
#include "recovery/exit_forwarding.h"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "recovery/proc_stats.h"

namespace rehome {

// Copies the used part of a request into the slot (the data buffer is large).
void PostRequest(ExitSlot& slot, const ExitRequest& request) {
  ExitRequest& dst = slot.request;
  dst.seq = request.seq;
  dst.vcpu = request.vcpu;
  dst.kind = request.kind;
  dst.is_write = request.is_write;
  dst.size = request.size;
  dst.count = request.count;
  dst.data_len = std::min(request.data_len, kExitDataMax);
  dst.addr = request.addr;
  dst.rip = request.rip;
  dst.rflags = request.rflags;
  dst.net_rx_limit = request.net_rx_limit;
  dst.avail_snapshot_count = std::min(request.avail_snapshot_count, kMaxAvailSnapshot);
  std::copy_n(request.avail_snapshot, dst.avail_snapshot_count, dst.avail_snapshot);
  const int cpu = sched_getcpu();
  dst.host_cpu = cpu < 0 ? ~0u : static_cast<uint32_t>(cpu);
  std::memcpy(dst.data, request.data, dst.data_len);
  slot.request_seq.store(request.seq, std::memory_order_release);
}

// Copies the used part of a response out of shared memory (the L1 may scribble on it later).
void CopyResponse(const ExitResponse& src, ExitResponse* dst) {
  dst->seq = src.seq;
  dst->action = src.action;
  dst->exit_status = src.exit_status;
  dst->data_len = src.data_len;
  dst->output_len = src.output_len;
  dst->output_stream = src.output_stream;
  dst->reason_len = src.reason_len;
  dst->crc = src.crc;
  std::memcpy(dst->data, src.data, std::min(dst->data_len, kExitDataMax));
  std::memcpy(dst->output, src.output, std::min(dst->output_len, kExitOutputMax));
  std::memcpy(dst->reason, src.reason, std::min(dst->reason_len, kExitReasonMax));
}

bool LooksHung(const L1Process& l1, int hang_timeout_ms, HangWatch* watch, std::string* why) {
  std::optional<uint64_t>* runtime_at_expiry = &watch->runtime_at_expiry;
  uint64_t* progress_at_expiry = &watch->progress_at_expiry;
  int* extensions = &watch->extensions;
  // An L1 that is stopped, sleeping or dead while an exit waits is hung. One that is runnable
  // may just not get a CPU on a loaded host, or be doing long legitimate work (verifying a
  // workload report) that it announces through work_progress: it is hung only if it burns CPU
  // time without answering or announcing progress, or stays starved or busy too long.
  constexpr int kMaxStarvedPeriods = 20;
  constexpr int kMaxBusyPeriods = 200;
  const std::optional<char> state = ProcessState(l1.pid());
  if (!state.has_value() || *state != 'R') {
    *why = absl::StrCat("L1 state ", state.has_value() ? std::string(1, *state) : "gone");
    return true;
  }
  const std::optional<uint64_t> runtime = MainThreadRuntimeNs(l1.pid());
  const uint64_t progress = l1.work_progress();
  const bool progressed = *extensions > 0 && progress != *progress_at_expiry;
  *progress_at_expiry = progress;
  if (!runtime.has_value() || *extensions >= kMaxBusyPeriods ||
      (!progressed && *extensions >= kMaxStarvedPeriods)) {
    *why = "runnable but starved or busy too long";
    return true;
  }
  const uint64_t budget_ns = static_cast<uint64_t>(hang_timeout_ms) * 500000;
  if (!progressed && runtime_at_expiry->has_value() &&
      *runtime - **runtime_at_expiry >= budget_ns) {
    *why = absl::StrCat("busy for ", (*runtime - **runtime_at_expiry) / 1000000,
                        " ms of CPU without answering");
    return true;
  }
  *runtime_at_expiry = runtime;
  ++*extensions;
  return false;
}

}  // namespace rehome
