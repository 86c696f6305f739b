// tests/fuzz/exit_response_fuzz.cc: libFuzzer target for L0's checks of what an L1 writes into
// the exit channel (kvm-l0/exit_channel.h): ValidateResponse on a response slot, and
// ReadPostedRanges / InPostedRange on the posted-write ranges in the channel header.
//
// Input: the request L0 forwarded (kind, direction, size, count), whether to give the response a
// correct CRC (a compromised L1 computes CRCs too), the raw bytes of the response slot, then the
// raw posted-range area of the header and accesses to look up. Checked: no memory error or UB;
// a response that validates has lengths within its buffers and the data length the exit needs;
// the committed form of a valid answer (CommittedAnswer, what the journal stores) validates
// again; every accepted posted range is well-formed and InPostedRange agrees with a direct
// interval check.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "kvm-l0/exit_channel.h"
#include "tests/fuzz/fuzz_util.h"
#include "vmm/l1/commit_record.h"

namespace {

using rehome::fuzz::Check;

using rehome::ExitChannelHeader;
using rehome::ExitRequest;
using rehome::ExitResponse;
using rehome::PostedRange;

void FuzzResponse(FuzzedDataProvider& in) {
  ExitRequest request;
  request.seq = in.ConsumeIntegralInRange<uint64_t>(1, 4);
  request.kind = in.PickValueInArray({uint32_t{ExitRequest::kPio}, uint32_t{ExitRequest::kMmio},
                                      uint32_t{ExitRequest::kConsoleInput}});
  request.is_write = in.ConsumeBool();
  request.size = in.PickValueInArray({1u, 2u, 4u, 8u});
  request.count = request.kind == ExitRequest::kPio ? in.ConsumeIntegralInRange(1u, 512u) : 1u;
  const bool fix_crc = in.ConsumeBool();

  auto response = std::make_unique<ExitResponse>();
  const std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(sizeof(ExitResponse));
  if (!raw.empty()) std::memcpy(response.get(), raw.data(), raw.size());
  if (fix_crc) response->crc = rehome::ResponseCrc(*response);

  if (!rehome::ValidateResponse(request, *response).ok()) return;
  Check(response->seq == request.seq);
  Check(response->data_len <= rehome::kExitDataMax);
  Check(response->output_len <= rehome::kExitOutputMax);
  Check(response->reason_len <= rehome::kExitReasonMax);
  Check(response->output_stream <= 1 && response->action <= ExitResponse::kLastAction);
  if (response->action == ExitResponse::kContinue && !request.is_write &&
      request.kind != ExitRequest::kConsoleInput) {
    Check(response->data_len == request.size * request.count);
  }
  // What L0 does with an accepted answer: copy out the data, the output and the reason.
  std::vector<uint8_t> data(response->data, response->data + response->data_len);
  std::vector<uint8_t> output(response->output, response->output + response->output_len);
  std::string reason(response->reason, response->reason_len);
  // The journal's form of the same answer validates too (a failover answers from it).
  const rehome::CommittedAnswer committed = rehome::CommittedAnswer::FromResponse(*response);
  auto again = std::make_unique<ExitResponse>();
  committed.ToResponse(again.get());
  Check(rehome::ValidateResponse(request, *again).ok());
}

void FuzzPostedRanges(FuzzedDataProvider& in) {
  auto storage = std::make_unique<ExitChannelHeader>();
  ExitChannelHeader& header = *storage;
  header.posted_range_count.store(in.ConsumeBool() ? in.ConsumeIntegral<uint32_t>()
                                                   : in.ConsumeIntegralInRange(0u, 9u));
  const std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(sizeof(header.posted_ranges));
  if (!raw.empty()) std::memcpy(header.posted_ranges, raw.data(), raw.size());
  const std::vector<PostedRange> ranges = rehome::ReadPostedRanges(header);
  Check(ranges.size() <= rehome::kMaxPostedRanges);
  for (const PostedRange& r : ranges) {
    Check(r.space == PostedRange::kPio || r.space == PostedRange::kMmio);
    Check(r.length != 0 && r.base + r.length - 1 >= r.base);
    if (r.space == PostedRange::kPio) Check(r.base + r.length <= 0x10000);
  }
  while (in.remaining_bytes() > 0) {
    const uint32_t kind = in.ConsumeIntegralInRange(0u, 3u);
    const uint64_t addr = in.ConsumeIntegral<uint64_t>();
    const uint64_t len = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 20);
    bool inside = false;
    for (const PostedRange& r : ranges) {
      const bool same = (kind == ExitRequest::kPio && r.space == PostedRange::kPio) ||
                        (kind == ExitRequest::kMmio && r.space == PostedRange::kMmio);
      // [addr, addr + len) within [base, base + length), computed in 128 bits.
      const unsigned __int128 end = static_cast<unsigned __int128>(addr) + len;
      inside = inside ||
               (same && addr >= r.base && end <= static_cast<unsigned __int128>(r.base) + r.length);
    }
    Check(rehome::InPostedRange(ranges, kind, addr, len) == inside);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    FuzzResponse(in);
  } else {
    FuzzPostedRanges(in);
  }
  return 0;
}
