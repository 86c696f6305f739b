// vmm/exit_dispatcher.cc: DispatchExit.
#include "vmm/exit_dispatcher.h"

#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rehome {
namespace {

ExitOutcome Continue() { return ExitOutcome{}; }

ExitOutcome Outcome(ExitOutcome::Action action, std::string reason) {
  return ExitOutcome{action, 0, std::move(reason)};
}

ExitOutcome HandlePortIo(PortIoExit& io, Bus& bus) {
  if ((io.size != 1 && io.size != 2 && io.size != 4) || io.count == 0 ||
      io.data.size() != static_cast<uint64_t>(io.size) * io.count) {
    return Outcome(ExitOutcome::kFatal,
                   absl::StrFormat("malformed port I/O exit: port 0x%x size %u count %u with %u "
                                   "data bytes",
                                   io.port, io.size, io.count, io.data.size()));
  }
  for (uint32_t i = 0; i < io.count; ++i) {
    std::span<uint8_t> unit = io.data.subspan(static_cast<size_t>(i) * io.size, io.size);
    if (io.is_write) {
      bus.Write(BusSpace::kPio, io.port, unit);
    } else {
      bus.Read(BusSpace::kPio, io.port, unit);
    }
  }
  return Continue();
}

ExitOutcome HandleMmio(MmioExit& mmio, Bus& bus) {
  if (mmio.data.empty() || mmio.data.size() > 8) {
    return Outcome(ExitOutcome::kFatal,
                   absl::StrFormat("malformed MMIO exit: gpa 0x%x with %u data bytes", mmio.gpa,
                                   mmio.data.size()));
  }
  if (mmio.is_write) {
    bus.Write(BusSpace::kMmio, mmio.gpa, mmio.data);
  } else {
    bus.Read(BusSpace::kMmio, mmio.gpa, mmio.data);
  }
  return Continue();
}

ExitOutcome HandleSystemEvent(const SystemEventExit& event) {
  switch (event.type) {
    case SystemEventExit::Type::kShutdown:
      return Outcome(ExitOutcome::kShutdown, "guest requested shutdown (system event)");
    case SystemEventExit::Type::kReset:
      return Outcome(ExitOutcome::kReset, "guest requested reset (system event)");
    case SystemEventExit::Type::kCrash:
      return Outcome(ExitOutcome::kGuestCrash, "guest crashed (system event)");
    default:
      return Outcome(ExitOutcome::kFatal, absl::StrFormat("unsupported system event type %u",
                                                          static_cast<uint32_t>(event.type)));
  }
}

const char* InternalErrorName(uint32_t suberror) {
  switch (suberror) {  // KVM_INTERNAL_ERROR_* values
    case 1:
      return "instruction emulation failed";
    case 2:
      return "exception while delivering an exception";
    case 3:
      return "failed to deliver an event";
    case 4:
      return "unexpected exit reason";
    default:
      return "unknown suberror";
  }
}

ExitOutcome Handle(KvmExit& exit, Bus& bus) {
  return std::visit(
      [&bus](auto& e) -> ExitOutcome {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, PortIoExit>) {
          return HandlePortIo(e, bus);
        } else if constexpr (std::is_same_v<T, MmioExit>) {
          return HandleMmio(e, bus);
        } else if constexpr (std::is_same_v<T, HltExit> || std::is_same_v<T, InterruptedExit>) {
          return Continue();
        } else if constexpr (std::is_same_v<T, ShutdownExit>) {
          return Outcome(ExitOutcome::kGuestCrash, "triple fault");
        } else if constexpr (std::is_same_v<T, SystemEventExit>) {
          return HandleSystemEvent(e);
        } else if constexpr (std::is_same_v<T, InternalErrorExit>) {
          std::string reason = absl::StrFormat("KVM internal error, suberror %u (%s)", e.suberror,
                                               InternalErrorName(e.suberror));
          if (e.rip) absl::StrAppendFormat(&reason, " at rip 0x%x", *e.rip);
          if (e.ndata > 0) absl::StrAppend(&reason, "; data");
          for (uint32_t i = 0; i < e.ndata && i < e.data.size(); ++i) {
            absl::StrAppendFormat(&reason, " 0x%x", e.data[i]);
          }
          return Outcome(ExitOutcome::kFatal, reason);
        } else if constexpr (std::is_same_v<T, FailEntryExit>) {
          return Outcome(ExitOutcome::kFatal,
                         absl::StrFormat("KVM_RUN failed to enter the guest, hardware reason 0x%x",
                                         e.hardware_reason));
        } else {
          static_assert(std::is_same_v<T, UnknownExit>, "every KvmExit alternative is handled");
          return Outcome(ExitOutcome::kFatal,
                         absl::StrFormat("unhandled KVM exit reason %u", e.reason));
        }
      },
      exit);
}

}  // namespace

ExitOutcome DispatchExit(KvmExit& exit, Bus& bus, const VmRequests& requests) {
  ExitOutcome outcome = Handle(exit, bus);
  if (outcome.action != ExitOutcome::kContinue) return outcome;
  const std::optional<VmRequest> request = requests.Pending();
  if (!request.has_value()) return outcome;
  switch (request->kind) {
    case VmRequest::Kind::kExit:
      return ExitOutcome{
          ExitOutcome::kGuestExit, static_cast<int>(request->exit_value & 0xff),
          absl::StrFormat("guest wrote 0x%x to the debug-exit port", request->exit_value)};
    case VmRequest::Kind::kReset:
      return Outcome(ExitOutcome::kReset, "guest requested reset (port 0xcf9)");
    case VmRequest::Kind::kShutdown:
      return Outcome(ExitOutcome::kShutdown, "shutdown requested");
    case VmRequest::Kind::kPanic:
      return Outcome(
          ExitOutcome::kGuestCrash,
          absl::StrFormat("guest kernel panicked (pvpanic event 0x%x)", request->exit_value));
  }
  return outcome;
}

std::string_view ActionName(ExitOutcome::Action action) {
  switch (action) {
    case ExitOutcome::kContinue:
      return "continue";
    case ExitOutcome::kGuestExit:
      return "guest-exit";
    case ExitOutcome::kReset:
      return "reset";
    case ExitOutcome::kShutdown:
      return "shutdown";
    case ExitOutcome::kGuestCrash:
      return "guest-crash";
    case ExitOutcome::kFatal:
      return "fatal";
    case ExitOutcome::kCheckFailed:
      return "check-failed";
  }
  return "unknown";
}

}  // namespace rehome
