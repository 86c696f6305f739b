// guest/workloads/oltp_tables.h: the on-disk layout of the `oltp` workload's database
// (docs/oltp-format.md; the host tools' bench/oltp/oltp_format.py is the same format): the
// superblock, checkpoint slots and WAL entry header, the region ids, and the byte offsets of the
// fixed-size records of TPC-C's nine tables plus the customer last-name index, and of the
// request/response bodies of the oltp service (docs/service-protocol.md, "oltp"). Little-endian
// load/store helpers over byte pointers. Header-only, freestanding, constants and pure
// functions; thread-safe.
#ifndef REHOME_GUEST_WORKLOADS_OLTP_TABLES_H_
#define REHOME_GUEST_WORKLOADS_OLTP_TABLES_H_

#include <stddef.h>
#include <stdint.h>

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
}

namespace rehome::guest::oltp {

inline constexpr uint32_t kPage = 4096;
inline constexpr uint32_t kSector = 512;
inline constexpr uint32_t kSectorsPerPage = kPage / kSector;
inline constexpr uint32_t kMaxOrderLines = 15;

// ---- Superblock (page 0, first 512 bytes) ----
inline constexpr uint32_t kSbMagic = 0x4c4f4852;  // "RHOL"
inline constexpr uint32_t kSbVersion = 1;
namespace sb {
inline constexpr uint32_t kMagic = 0, kVersion = 4, kPageSize = 8, kRegionCount = 12;
inline constexpr uint32_t kTotalPages = 16, kSeed = 24, kWarehouses = 32, kDistricts = 36;
inline constexpr uint32_t kCustomersPerDistrict = 40, kItems = 44, kOrdersCap = 48;
inline constexpr uint32_t kInitialOrders = 52, kCapacityTxns = 56, kCLastRun = 60;
inline constexpr uint32_t kWalStartPage = 80, kWalPages = 88, kRegions = 128;
inline constexpr uint32_t kRegionSize = 32;  // start_page u64, pages u64, rec_size u32,
                                             // per_page u32, capacity u64
inline constexpr uint32_t kCrc = 508;        // CRC-32 of bytes [0, 508)
}  // namespace sb

enum Region : uint32_t {
  kWarehouse,
  kDistrict,
  kCustomer,
  kHistory,
  kOrder,
  kNewOrder,
  kOrderLine,
  kItem,
  kStock,
  kNameIndex,
  kRegionCount
};
inline constexpr uint32_t kRecordSize[kRegionCount] = {64, 64, 160, 64, 48, 16, 64, 64, 64, 20};

// ---- Checkpoint slots (pages 1 and 2, first 36 bytes) ----
inline constexpr uint32_t kCkMagic = 0x4b434852;  // "RHCK"
inline constexpr uint32_t kCkVersion = 1;
inline constexpr uint64_t kCkSlotPage[2] = {1, 2};
namespace ck {
inline constexpr uint32_t kMagic = 0, kVersion = 4, kSeq = 8, kCkptLsn = 16, kPrevLsn = 24;
inline constexpr uint32_t kCrc = 32;  // CRC-32 of bytes [0, 32)
inline constexpr uint32_t kSize = 36;
}  // namespace ck

// ---- WAL entry: 48-byte header, response body (padded to 4), redo records ----
inline constexpr uint32_t kWalMagic = 0x4c574852;  // "RHWL"
inline constexpr uint16_t kWalVersion = 1;
inline constexpr uint32_t kWalMaxEntry = 32768;
namespace wal {
inline constexpr uint32_t kMagic = 0, kVersion = 4, kKind = 6, kLsn = 8, kRequestId = 16;
inline constexpr uint32_t kTotalLen = 24, kStatus = 28, kRespLen = 30, kRedoCount = 32;
inline constexpr uint32_t kCrc = 36;  // CRC-32 of the whole entry with this field zero
inline constexpr uint32_t kHeaderSize = 48;
inline constexpr uint32_t kRedoHeader = 8;  // page u32, offset u16, len u16; then the bytes
}  // namespace wal

// ---- Record field offsets ----
namespace wh {  // warehouse, 64 bytes
inline constexpr uint32_t kId = 0, kTax = 4, kYtd = 8, kName = 16, kHCount = 32;
}
namespace di {  // district, 64 bytes
inline constexpr uint32_t kId = 0, kWId = 4, kTax = 8, kNextOId = 12, kYtd = 16, kNoHead = 24;
inline constexpr uint32_t kName = 32;
}  // namespace di
namespace cu {  // customer, 160 bytes
inline constexpr uint32_t kId = 0, kDId = 4, kWId = 8, kDiscount = 12, kCredit = 16;
inline constexpr uint32_t kPaymentCnt = 20, kDeliveryCnt = 24, kLastOId = 28, kBalance = 32;
inline constexpr uint32_t kYtdPayment = 40, kCreditLim = 48, kSince = 56, kLast = 64;
inline constexpr uint32_t kFirst = 80, kData = 96, kDataLen = 64;
}  // namespace cu
namespace hi {  // history, 64 bytes
inline constexpr uint32_t kCId = 0, kCDId = 4, kCWId = 8, kDId = 12, kWId = 16, kDate = 24;
inline constexpr uint32_t kAmount = 32, kRequestId = 40, kData = 48;
}  // namespace hi
namespace od {  // order, 48 bytes
inline constexpr uint32_t kId = 0, kDId = 4, kWId = 8, kCId = 12, kCarrier = 16, kOlCnt = 20;
inline constexpr uint32_t kAllLocal = 24, kEntryD = 32, kRequestId = 40;
}  // namespace od
namespace no {  // new-order, 16 bytes
inline constexpr uint32_t kOId = 0, kDId = 4, kWId = 8, kPresent = 12;
}
namespace ol {  // order-line, 64 bytes
inline constexpr uint32_t kOId = 0, kDId = 4, kWId = 8, kNumber = 12, kIId = 16, kSupplyWId = 20;
inline constexpr uint32_t kQuantity = 24, kAmount = 32, kDeliveryD = 40, kDistInfo = 48;
}  // namespace ol
namespace it {  // item, 64 bytes
inline constexpr uint32_t kId = 0, kImId = 4, kPrice = 8, kName = 16, kData = 40, kDataLen = 24;
}
namespace st {  // stock, 64 bytes
inline constexpr uint32_t kIId = 0, kWId = 4, kQuantity = 8, kOrderCnt = 12, kRemoteCnt = 16;
inline constexpr uint32_t kYtd = 24, kData = 32, kDataLen = 24, kDist = 56;
}  // namespace st
namespace ni {  // last-name index, 20 bytes: sorted by (last, first) within each district
inline constexpr uint32_t kLast = 0, kCId = 16;
}

inline constexpr uint32_t kNameLen = 16;

// ---- Service kinds and bodies (docs/service-protocol.md, "oltp") ----
enum Kind : uint16_t {
  kNewOrderTxn = 1,
  kPaymentTxn = 2,
  kOrderStatusTxn = 3,
  kDeliveryTxn = 4,
  kStockLevelTxn = 5
};
inline constexpr uint32_t kNewOrderReqHead = 16, kNewOrderReqLine = 12;
inline constexpr uint32_t kPaymentReqSize = 48, kOrderStatusReqSize = 32;
inline constexpr uint32_t kDeliveryReqSize = 8, kStockLevelReqSize = 12;
inline constexpr uint32_t kNewOrderRespHead = 56, kNewOrderRespLine = 24;
inline constexpr uint32_t kPaymentRespSize = 72, kOrderStatusRespHead = 64;
inline constexpr uint32_t kOrderStatusRespLine = 24, kDeliveryRespSize = 44;
inline constexpr uint32_t kStockLevelRespSize = 8;
inline constexpr uint32_t kMaxResponse = 512;  // every body above fits

// ---- Little-endian helpers (x86 is little-endian; unaligned access is fine) ----
inline uint16_t Ld16(const uint8_t* p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
inline uint32_t Ld32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline uint64_t Ld64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
inline int64_t LdI64(const uint8_t* p) { return static_cast<int64_t>(Ld64(p)); }
inline void St16(uint8_t* p, uint16_t v) { memcpy(p, &v, 2); }
inline void St32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
inline void St64(uint8_t* p, uint64_t v) { memcpy(p, &v, 8); }
inline void StI64(uint8_t* p, int64_t v) { St64(p, static_cast<uint64_t>(v)); }

}  // namespace rehome::guest::oltp

#endif  // REHOME_GUEST_WORKLOADS_OLTP_TABLES_H_
