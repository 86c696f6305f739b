// guest/workloads/oltp_workload.cc: the `oltp` workload (see io_workloads.h, docs/guest-abi.md,
// docs/service-protocol.md "oltp" and docs/oltp-format.md): vCPU 0 opens the TPC-C database on
// the first virtio-blk device (recovering it from its write-ahead log), brings up the first
// virtio-net device and serves TPC-C's five transactions on UDP port kOltpPort: New-Order,
// Payment, Order-Status, Delivery and Stock-Level, each executed against the on-disk tables
// through the page cache of oltp_wal.h and answered only after its commit record is on the disk.
// A request id already recorded is answered from the record, never applied twice; a malformed
// request gets status 1 and changes nothing. Money is integer cents, rates 1/10000 units; no
// floating point. CPL3, vCPU 0 only.
#include "guest/kernel/serial.h"
#include "guest/net/net_stack.h"
#include "guest/net/service_protocol.h"
#include "guest/virtio/virtio_blk.h"
#include "guest/workloads/io_workloads.h"
#include "guest/workloads/oltp_tables.h"
#include "guest/workloads/oltp_wal.h"

extern "C" uint8_t __image_end[];  // guest.ld: the end of the loaded image and its .bss

namespace rehome::guest {
namespace {

namespace svc = rehome::service;
using namespace oltp;  // NOLINT: the table and field names of this workload

VirtioBlk disk;
Store store;
uint8_t resp[kMaxResponse];
uint32_t distinct_items[kMaxOrderLines * 20];

struct Counts {
  uint64_t by_kind[6];
  uint64_t ok, not_found, aborted, failed, malformed, repeats;
};
Counts counts;

// Status of a transaction body: kUdpStop-like fatal is store.fatal().
struct Outcome {
  uint16_t status;
  uint32_t len;  // response body bytes in resp
  bool record;   // logged and recorded (ok, not found, aborted)
};

Outcome Malformed() { return {svc::kMalformed, 0, false}; }

const Layout& L() { return store.layout(); }
uint64_t CustomerIndex(uint32_t d, uint32_t c) {
  return uint64_t{d - 1} * L().customers_per_district + (c - 1);
}
uint64_t OrderSlot(uint32_t d, uint32_t o) { return uint64_t{d - 1} * L().orders_cap + (o - 1); }
bool ValidDistrict(uint32_t d) { return d >= 1 && d <= L().districts; }
bool ValidCustomer(uint32_t c) { return c >= 1 && c <= L().customers_per_district; }

// TPC-C's customer selection by last name: the one at position ceil(n/2) among the district's
// customers with that last name, sorted by first name (the index is sorted by last, first).
// 0 when there is none.
uint32_t CustomerByName(uint32_t d, const uint8_t* last) {
  const uint32_t n = L().customers_per_district;
  const uint64_t base = uint64_t{d - 1} * n;
  uint32_t first = 0, matches = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const uint8_t* e = store.Read(kNameIndex, base + k);
    if (memcmp(e + ni::kLast, last, kNameLen) == 0) {
      if (matches++ == 0) first = k;
    } else if (matches != 0) {
      break;
    }
  }
  if (matches == 0) return 0;
  return Ld16(store.Read(kNameIndex, base + first + (matches - 1) / 2) + ni::kCId);
}

bool Contains(const uint8_t* s, uint32_t n, const char* word, uint32_t wn) {
  for (uint32_t i = 0; i + wn <= n; ++i) {
    if (memcmp(s + i, word, wn) == 0) return true;
  }
  return false;
}

// Appends the decimal digits of v and a space to out (at most `room` bytes); returns the length.
uint32_t PutDec(uint8_t* out, uint32_t room, int64_t v) {
  char tmp[24];
  uint32_t n = 0;
  const bool neg = v < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-v) : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (neg) tmp[n++] = '-';
  uint32_t w = 0;
  while (n > 0 && w < room) out[w++] = static_cast<uint8_t>(tmp[--n]);
  if (w < room) out[w++] = ' ';
  return w;
}

// ---- New-Order (TPC-C clause 2.4) ----
Outcome NewOrder(uint64_t id, const uint8_t* b, uint32_t len) {
  if (len < kNewOrderReqHead) return Malformed();
  const uint32_t w = Ld32(b), d = Ld32(b + 4), c = Ld32(b + 8), cnt = Ld32(b + 12);
  if (w != 1 || !ValidDistrict(d) || !ValidCustomer(c) || cnt < 5 || cnt > kMaxOrderLines ||
      len != kNewOrderReqHead + cnt * kNewOrderReqLine) {
    return Malformed();
  }
  const uint8_t* lines = b + kNewOrderReqHead;
  bool unused_item = false;
  for (uint32_t i = 0; i < cnt; ++i) {
    const uint8_t* l = lines + i * kNewOrderReqLine;
    const uint32_t item = Ld32(l), supply = Ld32(l + 4), qty = Ld32(l + 8);
    if (supply != 1 || qty < 1 || qty > 10) return Malformed();
    if (item == 0 || item > L().items) unused_item = true;
  }
  const uint8_t* wr = store.Read(kWarehouse, 0);
  const uint8_t* dr = store.Read(kDistrict, d - 1);
  const uint8_t* cr = store.Read(kCustomer, CustomerIndex(d, c));
  const uint32_t o_id = Ld32(dr + di::kNextOId);
  memset(resp, 0, kNewOrderRespHead);
  St32(resp + 0, o_id);
  St32(resp + 8, Ld32(cr + cu::kDiscount));
  St32(resp + 12, Ld32(wr + wh::kTax));
  St32(resp + 16, Ld32(dr + di::kTax));
  memcpy(resp + 20, cr + cu::kCredit, 2);
  St64(resp + 24, id);
  memcpy(resp + 40, cr + cu::kLast, kNameLen);
  // TPC-C's 1% rollback: an unused item number. Nothing has been changed yet.
  if (unused_item) return {svc::kAborted, kNewOrderRespHead, true};
  if (o_id < 1 || o_id > L().orders_cap) return {svc::kFailed, 0, false};  // out of capacity
  const uint32_t discount = Ld32(cr + cu::kDiscount);
  const uint32_t taxes = Ld32(wr + wh::kTax) + Ld32(dr + di::kTax);
  St32(store.Write(kDistrict, d - 1) + di::kNextOId, o_id + 1);
  St32(store.Write(kCustomer, CustomerIndex(d, c)) + cu::kLastOId, o_id);
  const uint64_t slot = OrderSlot(d, o_id);
  uint8_t* o = store.Write(kOrder, slot);
  memset(o, 0, kRecordSize[kOrder]);
  St32(o + od::kId, o_id);
  St32(o + od::kDId, d);
  St32(o + od::kWId, 1);
  St32(o + od::kCId, c);
  St32(o + od::kOlCnt, cnt);
  St32(o + od::kAllLocal, 1);
  St64(o + od::kEntryD, id);
  St64(o + od::kRequestId, id);
  uint8_t* n = store.Write(kNewOrder, slot);
  St32(n + no::kOId, o_id);
  St32(n + no::kDId, d);
  St32(n + no::kWId, 1);
  St32(n + no::kPresent, 1);
  int64_t sum = 0;
  for (uint32_t i = 0; i < cnt; ++i) {
    const uint8_t* l = lines + i * kNewOrderReqLine;
    const uint32_t item = Ld32(l), qty = Ld32(l + 8);
    const uint8_t* ir = store.Read(kItem, item - 1);
    uint8_t* s = store.Write(kStock, item - 1);
    int32_t s_qty = static_cast<int32_t>(Ld32(s + st::kQuantity));
    s_qty = s_qty >= static_cast<int32_t>(qty) + 10 ? s_qty - static_cast<int32_t>(qty)
                                                    : s_qty - static_cast<int32_t>(qty) + 91;
    St32(s + st::kQuantity, static_cast<uint32_t>(s_qty));
    StI64(s + st::kYtd, LdI64(s + st::kYtd) + qty);
    St32(s + st::kOrderCnt, Ld32(s + st::kOrderCnt) + 1);
    const int64_t price = LdI64(ir + it::kPrice);
    const int64_t amount = price * qty;
    sum += amount;
    uint8_t* olr = store.Write(kOrderLine, slot * kMaxOrderLines + i);
    memset(olr, 0, kRecordSize[kOrderLine]);
    St32(olr + ol::kOId, o_id);
    St32(olr + ol::kDId, d);
    St32(olr + ol::kWId, 1);
    St32(olr + ol::kNumber, i + 1);
    St32(olr + ol::kIId, item);
    St32(olr + ol::kSupplyWId, 1);
    St32(olr + ol::kQuantity, qty);
    StI64(olr + ol::kAmount, amount);
    memcpy(olr + ol::kDistInfo, s + st::kDist, 8);
    const bool brand = Contains(ir + it::kData, it::kDataLen, "ORIGINAL", 8) &&
                       Contains(s + st::kData, st::kDataLen, "ORIGINAL", 8);
    uint8_t* rl = resp + kNewOrderRespHead + i * kNewOrderRespLine;
    St32(rl + 0, item);
    St32(rl + 4, static_cast<uint32_t>(s_qty));
    StI64(rl + 8, amount);
    St32(rl + 16, static_cast<uint32_t>(price));
    rl[20] = static_cast<uint8_t>(qty);
    rl[21] = brand ? 'B' : 'G';
    St16(rl + 22, 0);
  }
  const int64_t total = sum * (10000 - discount) * (10000 + taxes) / 100000000;
  St32(resp + 4, cnt);
  StI64(resp + 32, total);
  return {svc::kOk, kNewOrderRespHead + cnt * kNewOrderRespLine, true};
}

// ---- Payment (clause 2.5) ----
Outcome Payment(uint64_t id, const uint8_t* b, uint32_t len) {
  if (len != kPaymentReqSize) return Malformed();
  const uint32_t w = Ld32(b), d = Ld32(b + 4), cw = Ld32(b + 8), cd = Ld32(b + 12);
  const uint32_t by_name = Ld32(b + 16);
  uint32_t c = Ld32(b + 20);
  const int64_t amount = LdI64(b + 24);
  if (w != 1 || cw != 1 || !ValidDistrict(d) || !ValidDistrict(cd) || by_name > 1 ||
      (by_name == 0 && !ValidCustomer(c)) || amount < 100 || amount > 500000) {
    return Malformed();
  }
  if (by_name) {
    c = CustomerByName(cd, b + 32);
    if (c == 0) return {svc::kNotFound, 0, true};
  }
  const uint8_t* wr0 = store.Read(kWarehouse, 0);
  const uint64_t h = Ld64(wr0 + wh::kHCount);
  if (h >= L().region[kHistory].capacity) return {svc::kFailed, 0, false};
  uint8_t* wr = store.Write(kWarehouse, 0);
  StI64(wr + wh::kYtd, LdI64(wr + wh::kYtd) + amount);
  St64(wr + wh::kHCount, h + 1);
  uint8_t* dr = store.Write(kDistrict, d - 1);
  StI64(dr + di::kYtd, LdI64(dr + di::kYtd) + amount);
  uint8_t* cr = store.Write(kCustomer, CustomerIndex(cd, c));
  StI64(cr + cu::kBalance, LdI64(cr + cu::kBalance) - amount);
  StI64(cr + cu::kYtdPayment, LdI64(cr + cu::kYtdPayment) + amount);
  St32(cr + cu::kPaymentCnt, Ld32(cr + cu::kPaymentCnt) + 1);
  if (cr[cu::kCredit] == 'B' && cr[cu::kCredit + 1] == 'C') {
    // Bad credit: C_DATA = "C_ID C_D_ID C_W_ID D_ID W_ID H_AMOUNT " + old C_DATA, truncated.
    uint8_t data[cu::kDataLen];
    uint32_t k = 0;
    const int64_t fields[6] = {c, cd, 1, d, 1, amount};
    for (int64_t v : fields) k += PutDec(data + k, cu::kDataLen - k, v);
    memcpy(data + k, cr + cu::kData, cu::kDataLen - k);
    memcpy(cr + cu::kData, data, cu::kDataLen);
  }
  uint8_t* hr = store.Write(kHistory, h);
  memset(hr, 0, kRecordSize[kHistory]);
  St32(hr + hi::kCId, c);
  St32(hr + hi::kCDId, cd);
  St32(hr + hi::kCWId, 1);
  St32(hr + hi::kDId, d);
  St32(hr + hi::kWId, 1);
  St64(hr + hi::kDate, id);
  StI64(hr + hi::kAmount, amount);
  St64(hr + hi::kRequestId, id);
  memcpy(hr + hi::kData, wr + wh::kName, 6);  // H_DATA = W_NAME + 4 spaces + D_NAME, short
  memset(hr + hi::kData + 6, ' ', 4);
  memcpy(hr + hi::kData + 10, dr + di::kName, 6);
  memset(resp, 0, kPaymentRespSize);
  St32(resp + 0, c);
  St32(resp + 4, Ld32(cr + cu::kPaymentCnt));
  StI64(resp + 8, LdI64(cr + cu::kBalance));
  StI64(resp + 16, LdI64(cr + cu::kYtdPayment));
  StI64(resp + 24, LdI64(cr + cu::kCreditLim));
  St32(resp + 32, Ld32(cr + cu::kDiscount));
  memcpy(resp + 36, cr + cu::kCredit, 2);
  memcpy(resp + 40, cr + cu::kLast, kNameLen);
  memcpy(resp + 56, cr + cu::kFirst, kNameLen);
  return {svc::kOk, kPaymentRespSize, true};
}

// ---- Order-Status (clause 2.6; read-only) ----
Outcome OrderStatus(const uint8_t* b, uint32_t len) {
  if (len != kOrderStatusReqSize) return Malformed();
  const uint32_t w = Ld32(b), d = Ld32(b + 4), by_name = Ld32(b + 8);
  uint32_t c = Ld32(b + 12);
  if (w != 1 || !ValidDistrict(d) || by_name > 1 || (by_name == 0 && !ValidCustomer(c))) {
    return Malformed();
  }
  if (by_name) {
    c = CustomerByName(d, b + 16);
    if (c == 0) return {svc::kNotFound, 0, true};
  }
  const uint8_t* cr = store.Read(kCustomer, CustomerIndex(d, c));
  const uint32_t o_id = Ld32(cr + cu::kLastOId);  // the customer's most recent order
  if (o_id < 1 || o_id > L().orders_cap) return {svc::kNotFound, 0, true};
  const uint64_t slot = OrderSlot(d, o_id);
  const uint8_t* o = store.Read(kOrder, slot);
  uint32_t cnt = Ld32(o + od::kOlCnt);
  if (cnt > kMaxOrderLines) cnt = kMaxOrderLines;
  memset(resp, 0, kOrderStatusRespHead);
  St32(resp + 0, c);
  St32(resp + 4, o_id);
  St32(resp + 8, Ld32(o + od::kCarrier));
  St32(resp + 12, cnt);
  StI64(resp + 16, LdI64(cr + cu::kBalance));
  St64(resp + 24, Ld64(o + od::kEntryD));
  memcpy(resp + 32, cr + cu::kFirst, kNameLen);
  memcpy(resp + 48, cr + cu::kLast, kNameLen);
  for (uint32_t i = 0; i < cnt; ++i) {
    const uint8_t* l = store.Read(kOrderLine, slot * kMaxOrderLines + i);
    uint8_t* rl = resp + kOrderStatusRespHead + i * kOrderStatusRespLine;
    St32(rl + 0, Ld32(l + ol::kIId));
    St32(rl + 4, Ld32(l + ol::kQuantity));
    StI64(rl + 8, LdI64(l + ol::kAmount));
    St64(rl + 16, Ld64(l + ol::kDeliveryD));
  }
  return {svc::kOk, kOrderStatusRespHead + cnt * kOrderStatusRespLine, true};
}

// ---- Delivery (clause 2.7; all districts in one transaction) ----
Outcome Delivery(uint64_t id, const uint8_t* b, uint32_t len) {
  if (len != kDeliveryReqSize) return Malformed();
  const uint32_t w = Ld32(b), carrier = Ld32(b + 4);
  if (w != 1 || carrier < 1 || carrier > 10) return Malformed();
  memset(resp, 0, kDeliveryRespSize);
  St32(resp, carrier);
  for (uint32_t d = 1; d <= L().districts; ++d) {
    const uint8_t* dr = store.Read(kDistrict, d - 1);
    const uint32_t head = Ld32(dr + di::kNoHead);
    if (head >= Ld32(dr + di::kNextOId) || head < 1 || head > L().orders_cap) continue;
    const uint64_t slot = OrderSlot(d, head);
    if (Ld32(store.Read(kNewOrder, slot) + no::kPresent) != 1) continue;  // (checker flags it)
    St32(store.Write(kNewOrder, slot) + no::kPresent, 0);
    St32(store.Write(kDistrict, d - 1) + di::kNoHead, head + 1);
    uint8_t* o = store.Write(kOrder, slot);
    St32(o + od::kCarrier, carrier);
    uint32_t cnt = Ld32(o + od::kOlCnt);
    if (cnt > kMaxOrderLines) cnt = kMaxOrderLines;
    int64_t sum = 0;
    for (uint32_t i = 0; i < cnt; ++i) {
      uint8_t* l = store.Write(kOrderLine, slot * kMaxOrderLines + i);
      St64(l + ol::kDeliveryD, id);
      sum += LdI64(l + ol::kAmount);
    }
    const uint32_t c = Ld32(o + od::kCId);
    if (ValidCustomer(c)) {
      uint8_t* cr = store.Write(kCustomer, CustomerIndex(d, c));
      StI64(cr + cu::kBalance, LdI64(cr + cu::kBalance) + sum);
      St32(cr + cu::kDeliveryCnt, Ld32(cr + cu::kDeliveryCnt) + 1);
    }
    St32(resp + 4 * d, head);
  }
  return {svc::kOk, kDeliveryRespSize, true};
}

// ---- Stock-Level (clause 2.8; read-only) ----
Outcome StockLevel(const uint8_t* b, uint32_t len) {
  if (len != kStockLevelReqSize) return Malformed();
  const uint32_t w = Ld32(b), d = Ld32(b + 4), threshold = Ld32(b + 8);
  if (w != 1 || !ValidDistrict(d) || threshold < 10 || threshold > 20) return Malformed();
  const uint32_t next = Ld32(store.Read(kDistrict, d - 1) + di::kNextOId);
  uint32_t n = 0;
  for (uint32_t o = next > 20 ? next - 20 : 1; o < next && o <= L().orders_cap; ++o) {
    const uint64_t slot = OrderSlot(d, o);
    uint32_t cnt = Ld32(store.Read(kOrder, slot) + od::kOlCnt);
    if (cnt > kMaxOrderLines) cnt = kMaxOrderLines;
    for (uint32_t i = 0; i < cnt; ++i) {
      const uint32_t item = Ld32(store.Read(kOrderLine, slot * kMaxOrderLines + i) + ol::kIId);
      bool seen = false;
      for (uint32_t k = 0; k < n && !seen; ++k) seen = distinct_items[k] == item;
      if (!seen) distinct_items[n++] = item;
    }
  }
  uint32_t low = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t item = distinct_items[k];
    if (item < 1 || item > L().items) continue;
    const int32_t q = static_cast<int32_t>(Ld32(store.Read(kStock, item - 1) + st::kQuantity));
    if (q < static_cast<int32_t>(threshold)) ++low;
  }
  St32(resp, low);
  St32(resp + 4, next);
  return {svc::kOk, kStockLevelRespSize, true};
}

uint32_t Reply(uint8_t* reply, uint64_t id, uint16_t status, const uint8_t* body, uint32_t len) {
  St32(reply, svc::kResponseMagic);
  St16(reply + 4, svc::kVersion);
  St16(reply + 6, status);
  St64(reply + 8, id);
  memcpy(reply + sizeof(svc::Header), body, len);
  return sizeof(svc::Header) + len;
}

uint32_t Handle(void*, const UdpRequest& req, uint8_t* reply, uint32_t max) {
  if (store.fatal()) return kUdpStop;
  if (max < sizeof(svc::Header) + kMaxResponse) return 0;
  if (req.len < sizeof(svc::Header)) {
    ++counts.malformed;
    return Reply(reply, 0, svc::kMalformed, nullptr, 0);
  }
  const uint8_t* h = req.data;
  const uint64_t id = Ld64(h + 8);
  const uint16_t kind = Ld16(h + 6);
  if (Ld32(h) != svc::kRequestMagic || Ld16(h + 4) != svc::kVersion) {
    ++counts.malformed;
    return Reply(reply, id, svc::kMalformed, nullptr, 0);
  }
  if (kind == svc::kStopService && req.len == sizeof(svc::Header) + sizeof(svc::kStopBody) &&
      memcmp(h + sizeof(svc::Header), svc::kStopBody, sizeof(svc::kStopBody)) == 0) {
    return Reply(reply, id, svc::kOk, nullptr, 0) | kUdpStopAfterReply;  // the harness's stop
  }
  Recorded rec;
  if (store.Lookup(id, &rec)) {
    ++counts.repeats;
    return Reply(reply, id, rec.status, rec.body, rec.len);
  }
  if (!store.MaybeCheckpoint()) return kUdpStop;
  const uint8_t* body = h + sizeof(svc::Header);
  const uint32_t len = req.len - static_cast<uint32_t>(sizeof(svc::Header));
  Outcome out;
  switch (kind) {
    case kNewOrderTxn:
      out = NewOrder(id, body, len);
      break;
    case kPaymentTxn:
      out = Payment(id, body, len);
      break;
    case kOrderStatusTxn:
      out = OrderStatus(body, len);
      break;
    case kDeliveryTxn:
      out = Delivery(id, body, len);
      break;
    case kStockLevelTxn:
      out = StockLevel(body, len);
      break;
    default:
      out = Malformed();
      break;
  }
  if (store.fatal()) return kUdpStop;
  if (out.record) {
    if (!store.Commit(kind, id, out.status, resp, out.len)) return kUdpStop;
  } else {
    store.Abandon();
    if (store.fatal()) return kUdpStop;
  }
  switch (out.status) {
    case svc::kOk:
      ++counts.ok;
      ++counts.by_kind[kind];
      break;
    case svc::kNotFound:
      ++counts.not_found;
      break;
    case svc::kAborted:
      ++counts.aborted;
      break;
    case svc::kFailed:
      ++counts.failed;
      break;
    default:
      ++counts.malformed;
      break;
  }
  return Reply(reply, id, out.status, resp, out.status == svc::kMalformed ? 0 : out.len);
}

bool Fail(LineWriter* err) {
  err->Flush();
  return false;
}

}  // namespace

bool RunOltp(const VirtioDevices& devices, uint32_t ip, uint16_t port, uint64_t steps,
             uint64_t ram_end, uint32_t io_depth) {
  LineWriter err;
  err.Str("rehome-guest: oltp: ");
  VirtioMmio found;
  if (!FindVirtioDevice(devices.regions, devices.count, kVirtioIdBlock, &found)) {
    err.Str("no virtio-blk device (needs --disk with an oltp_load.py image)");
    return Fail(&err);
  }
  // The page cache and the recorded responses live in the RAM above the image.
  const uint64_t arena = (reinterpret_cast<uint64_t>(__image_end) + 4095) & ~uint64_t{4095};
  if (ram_end < arena + Store::ArenaBytes()) {
    err.Str("needs ")
        .Dec(Store::ArenaBytes() >> 20)
        .Str(" MiB of RAM above the image (")
        .Hex(arena)
        .Str("), RAM ends at ")
        .Hex(ram_end);
    return Fail(&err);
  }
  if (!disk.Init(found.base(), &err)) return Fail(&err);
  store.set_io_depth(io_depth < disk.max_batch() ? io_depth : disk.max_batch());
  if (!store.Open(&disk, reinterpret_cast<uint8_t*>(arena), &err)) return Fail(&err);
  const StoreStats& s = store.stats();
  LineWriter()
      .Str("rehome-guest: oltp recovered entries=")
      .Dec(s.recovered_entries)
      .Str(" replayed=")
      .Dec(s.replayed_entries)
      .Str(" next_lsn=")
      .Dec(store.next_lsn())
      .Str(" io_depth=")
      .Dec(store.io_depth())
      .Flush();
  NetStack* net = nullptr;
  if (!BringUpNet(devices, ip, &net, &err)) return Fail(&err);
  LineWriter().Str("rehome-guest: oltp serving udp port=").Dec(port).Flush();
  if (!net->UdpServe(port, Handle, nullptr, steps, &err)) return Fail(&err);
  if (store.fatal()) return Fail(&err.Str("stopped after a storage error"));
  // A clean end: two checkpoints, so the recorded ids are dropped (a new client run restarts its
  // request ids at 1) and the image needs no replay.
  if (!store.Checkpoint() || !store.Checkpoint()) return Fail(&err.Str("final checkpoint"));
  LineWriter()
      .Str("rehome-guest: oltp done steps=")
      .Dec(net->stats().udp)
      .Str(" ok=")
      .Dec(counts.ok)
      .Str(" new_order=")
      .Dec(counts.by_kind[kNewOrderTxn])
      .Str(" payment=")
      .Dec(counts.by_kind[kPaymentTxn])
      .Str(" order_status=")
      .Dec(counts.by_kind[kOrderStatusTxn])
      .Str(" delivery=")
      .Dec(counts.by_kind[kDeliveryTxn])
      .Str(" stock_level=")
      .Dec(counts.by_kind[kStockLevelTxn])
      .Flush();
  LineWriter()
      .Str("rehome-guest: oltp totals aborted=")
      .Dec(counts.aborted)
      .Str(" not_found=")
      .Dec(counts.not_found)
      .Str(" failed=")
      .Dec(counts.failed)
      .Str(" malformed=")
      .Dec(counts.malformed)
      .Str(" repeats=")
      .Dec(counts.repeats)
      .Str(" commits=")
      .Dec(s.commits)
      .Str(" flushes=")
      .Dec(s.flushes)
      .Str(" checkpoints=")
      .Dec(s.checkpoints)
      .Str(" page_reads=")
      .Dec(s.page_reads)
      .Str(" page_writes=")
      .Dec(s.page_writes)
      .Flush();
  return true;
}

}  // namespace rehome::guest
