"""The oltp database image format (docs/oltp-format.md), shared by the host tools.

Defines the superblock, checkpoint slots, write-ahead-log entries and the fixed-size records of
the nine TPC-C tables (plus the customer last-name index) exactly as the guest workload
(guest/workloads/oltp_tables.h) reads and writes them, the request/response bodies of the oltp
service (docs/service-protocol.md, "oltp"), TPC-C's NURand and last-name syllables, and the
log replay the checker runs (the same algorithm as the guest's recovery). Pure data and
functions; no state shared between threads.
"""
import struct
import zlib

PAGE = 4096
SECTOR = 512

# ---- Scale (TPC-C clause 4.3, scaled down; docs/oltp-format.md "Scale") ----
WAREHOUSES = 1
DISTRICTS = 10
CUSTOMERS_PER_DISTRICT = 300   # TPC-C: 3000
ITEMS = 1000                   # TPC-C: 100000
INITIAL_ORDERS = 300           # per district; TPC-C: 3000 (one per customer)
INITIAL_NEW_ORDERS = 90        # the last 90 orders of each district; TPC-C: 900
FIRST_NEW_ORDER = INITIAL_ORDERS - INITIAL_NEW_ORDERS + 1  # 211; TPC-C: 2101
LAST_NAMES = 100               # C_LAST numbers 0..99; TPC-C: 0..999
MAX_OL = 15
# The load's timestamp (O_ENTRY_D, OL_DELIVERY_D, H_DATE, C_SINCE of the initial population):
# the run's timestamps are request ids, so the load's is one no client uses.
LOAD_DATE = 1 << 63
DEFAULT_CAPACITY_TXNS = 200000
DEFAULT_WAL_MIB = 16
# NURand A constants (TPC-C: C_LAST 255, C_ID 1023, OL_I_ID 8191), scaled with the ranges.
A_C_LAST, A_C_ID, A_OL_I_ID = 31, 127, 255


def orders_cap_per_district(capacity_txns):
    """Order slots per district: the initial 300 plus 5% of the transactions (New-Order is 45%
    of the mix spread over 10 districts: 4.5% each on average) plus 100 of headroom."""
    return INITIAL_ORDERS + 100 + (capacity_txns + 19) // 20


# ---- Superblock (page 0; the first 512 bytes) ----
SB_MAGIC = 0x4C4F4852   # "RHOL"
SB_VERSION = 1
SB = struct.Struct("<IIII QQ IIII IIII IIII QQ")  # see docs/oltp-format.md
SB_REGIONS_OFF = 128
REGION = struct.Struct("<QQIIQ")  # start_page, pages, rec_size, per_page, capacity
SB_CRC_OFF = 508

# Region ids, in superblock order.
(R_WAREHOUSE, R_DISTRICT, R_CUSTOMER, R_HISTORY, R_ORDER, R_NEW_ORDER, R_ORDER_LINE, R_ITEM,
 R_STOCK, R_NAME_INDEX) = range(10)
REGION_NAMES = ["warehouse", "district", "customer", "history", "order", "new_order",
                "order_line", "item", "stock", "name_index"]

# ---- Checkpoint slots (pages 1 and 2; the first 40 bytes) ----
CK_MAGIC = 0x4B434852   # "RHCK"
CK_VERSION = 1
CK = struct.Struct("<IIQQQI")  # magic, version, seq, ckpt_lsn, prev_lsn, crc32 (of bytes 0..35)
CK_SLOT_PAGES = (1, 2)
WAL_START_PAGE = 8

# ---- WAL entries ----
WAL_MAGIC = 0x4C574852  # "RHWL"
WAL_VERSION = 1
WAL_HDR = struct.Struct("<IHHQQIHHII8x")  # 48 bytes
WAL_CRC_OFF = 36
WAL_MAX_ENTRY = 32768
REDO_HDR = struct.Struct("<IHH")  # page, offset, len; then len bytes padded to 4

# ---- Records (little-endian, packed; offsets in docs/oltp-format.md) ----
WAREHOUSE = struct.Struct("<IIq16sQ24x")            # 64: id, tax, ytd, name, h_count
DISTRICT = struct.Struct("<IIIIqII16s16x")          # 64: id, w_id, tax, next_o_id, ytd, no_head,
                                                    #     pad, name
CUSTOMER = struct.Struct("<IIII2s2xIIIqqqQ16s16s64s")  # 160: id, d, w, discount, credit,
                                                    # payment_cnt, delivery_cnt, last_o_id,
                                                    # balance, ytd_payment, credit_lim, since,
                                                    # last, first, data
HISTORY = struct.Struct("<IIIIIIQqQ16s")            # 64: c_id, c_d, c_w, d, w, pad, date,
                                                    #     amount, request_id, data
ORDER = struct.Struct("<IIIIIIIIQQ")                # 48: id, d, w, c_id, carrier, ol_cnt,
                                                    #     all_local, pad, entry_d, request_id
NEW_ORDER = struct.Struct("<IIII")                  # 16: o_id, d, w, present
ORDER_LINE = struct.Struct("<IIIIIIIIqQ16s")        # 64: o_id, d, w, number, i_id, supply_w,
                                                    #     quantity, pad, amount, delivery_d, dist
ITEM = struct.Struct("<IIq24s24s")                  # 64: id, im_id, price, name, data
STOCK = struct.Struct("<IIiIIIq24s8s")              # 64: i_id, w_id, quantity, order_cnt,
                                                    #     remote_cnt, pad, ytd, data, dist
NAME_INDEX = struct.Struct("<16sHxx")               # 20: last, c_id
RECORDS = [WAREHOUSE, DISTRICT, CUSTOMER, HISTORY, ORDER, NEW_ORDER, ORDER_LINE, ITEM, STOCK,
           NAME_INDEX]

# ---- Service (docs/service-protocol.md, "oltp") ----
REQ_MAGIC, RESP_MAGIC, PROTO_VERSION, OLTP_PORT = 0x51534852, 0x52534852, 1, 8082
SVC_HDR = struct.Struct("<IHHQ")
K_NEW_ORDER, K_PAYMENT, K_ORDER_STATUS, K_DELIVERY, K_STOCK_LEVEL = 1, 2, 3, 4, 5
KIND_NAMES = {1: "new_order", 2: "payment", 3: "order_status", 4: "delivery", 5: "stock_level"}
ST_OK, ST_MALFORMED, ST_NOT_FOUND, ST_ABORTED, ST_FAILED = 0, 1, 2, 3, 4
NO_REQ = struct.Struct("<IIII")      # w_id, d_id, c_id, ol_cnt; then ol_cnt x NO_LINE
NO_LINE = struct.Struct("<III")      # i_id, supply_w_id, quantity
PAY_REQ = struct.Struct("<IIIIIIq16s")  # w_id, d_id, c_w_id, c_d_id, by_name, c_id, amount, c_last
OS_REQ = struct.Struct("<IIII16s")   # w_id, d_id, by_name, c_id, c_last
DEL_REQ = struct.Struct("<II")       # w_id, o_carrier_id
SL_REQ = struct.Struct("<III")       # w_id, d_id, threshold
NO_RESP = struct.Struct("<IIIII2s2xQq16s")  # 56: o_id, ol_cnt, c_discount, w_tax, d_tax,
                                            #     c_credit, o_entry_d, total, c_last
NO_RESP_LINE = struct.Struct("<IiqIBBH")    # 24: i_id, s_quantity, ol_amount, i_price,
                                            #     quantity, brand ('B'/'G'), pad
PAY_RESP = struct.Struct("<IIqqqI2s2x16s16s")  # 72: c_id, payment_cnt, balance, ytd_payment,
                                               #     credit_lim, discount, credit, last, first
OS_RESP = struct.Struct("<IIIIqQ16s16s")    # 64: c_id, o_id, carrier, ol_cnt, balance,
                                            #     entry_d, first, last
OS_RESP_LINE = struct.Struct("<IIqQ")       # 24: i_id, quantity, amount, delivery_d
DEL_RESP = struct.Struct("<I10I")           # 44: carrier, o_id per district (0 = none)
SL_RESP = struct.Struct("<II")              # low_stock, d_next_o_id

SYLLABLES = ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"]


def last_name(num):
    """TPC-C clause 4.3.2.3: the syllables of the three digits of num (0..999)."""
    return (SYLLABLES[num // 100] + SYLLABLES[num // 10 % 10] + SYLLABLES[num % 10]).encode()


def nurand(rng, a, x, y, c):
    """TPC-C clause 2.1.6: NURand(A, x, y) = (((random(0, A) | random(x, y)) + C) % (y-x+1)) + x."""
    return (((rng.randint(0, a) | rng.randint(x, y)) + c) % (y - x + 1)) + x


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def pad4(n):
    return (n + 3) & ~3


def round_sector(n):
    return (n + SECTOR - 1) // SECTOR * SECTOR


class Superblock:
    """The parsed superblock: scale, run constants, the WAL region and the table regions."""

    def __init__(self, raw):
        if len(raw) < SECTOR:
            raise ValueError("image shorter than a superblock")
        f = SB.unpack_from(raw, 0)
        (self.magic, self.version, self.page_size, self.region_count, self.total_pages,
         self.seed, self.warehouses, self.districts, self.customers_per_district, self.items,
         self.orders_cap, self.initial_orders, self.capacity_txns, self.c_last_run,
         self.c_id_c, self.ol_i_id_c, self.c_last_load, _pad, self.wal_start_page,
         self.wal_pages) = f
        if self.magic != SB_MAGIC or self.version != SB_VERSION:
            raise ValueError(f"bad superblock magic/version {self.magic:#x}/{self.version}")
        crc = struct.unpack_from("<I", raw, SB_CRC_OFF)[0]
        if crc != crc32(raw[:SB_CRC_OFF]):
            raise ValueError("superblock CRC mismatch")
        if self.page_size != PAGE or self.region_count != len(RECORDS):
            raise ValueError("unsupported page size or region count")
        self.regions = [REGION.unpack_from(raw, SB_REGIONS_OFF + i * REGION.size)
                        for i in range(self.region_count)]
        self.wal_bytes = self.wal_pages * PAGE


def pack_superblock(sb_fields, regions):
    raw = bytearray(SECTOR)
    SB.pack_into(raw, 0, *sb_fields)
    for i, r in enumerate(regions):
        REGION.pack_into(raw, SB_REGIONS_OFF + i * REGION.size, *r)
    struct.pack_into("<I", raw, SB_CRC_OFF, crc32(bytes(raw[:SB_CRC_OFF])))
    return bytes(raw)


def pack_checkpoint(seq, ckpt_lsn, prev_lsn):
    raw = bytearray(CK.pack(CK_MAGIC, CK_VERSION, seq, ckpt_lsn, prev_lsn, 0))
    struct.pack_into("<I", raw, 32, crc32(bytes(raw[:32])))
    return bytes(raw)


def parse_checkpoint(raw):
    magic, version, seq, ckpt_lsn, prev_lsn, crc = CK.unpack_from(raw, 0)
    if magic != CK_MAGIC or version != CK_VERSION or crc != crc32(bytes(raw[:32])):
        return None
    return seq, ckpt_lsn, prev_lsn


class Image:
    """Page-level view of an image file with an in-memory overlay (replayed redo goes here; the
    file is never written)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.overlay = {}
        self.sb = Superblock(self.read_raw(0, SECTOR))

    def read_raw(self, offset, n):
        self.f.seek(offset)
        data = self.f.read(n)
        return data + bytes(n - len(data))

    def page(self, no):
        p = self.overlay.get(no)
        if p is None:
            p = bytearray(self.read_raw(no * PAGE, PAGE))
            self.overlay[no] = p
        return p

    def record(self, region, index):
        start, pages, rec_size, per_page, cap = self.sb.regions[region]
        if index >= cap:
            raise IndexError(f"{REGION_NAMES[region]} index {index} >= capacity {cap}")
        p = self.page(start + index // per_page)
        off = index % per_page * rec_size
        return RECORDS[region].unpack_from(p, off)

    def checkpoint(self):
        """(seq, ckpt_lsn, prev_lsn) of the newest valid slot, or None."""
        best = None
        for no in CK_SLOT_PAGES:
            ck = parse_checkpoint(self.read_raw(no * PAGE, CK.size))
            if ck and (best is None or ck[0] > best[0]):
                best = ck
        return best

    def wal_read(self, lsn, n):
        pos = self.sb.wal_start_page * PAGE + lsn % self.sb.wal_bytes
        return self.read_raw(pos, n)


def wal_position(lsn, wal_bytes):
    """The wrap rule: an entry never straddles the end of the WAL region; where fewer than
    WAL_MAX_ENTRY bytes remain, the next entry starts at the next lap."""
    if wal_bytes - lsn % wal_bytes < WAL_MAX_ENTRY:
        lsn += wal_bytes - lsn % wal_bytes
    return lsn


def parse_wal_entry(img, lsn):
    """The entry at lsn (after the wrap rule) as a dict, or None where the log ends there."""
    head = img.wal_read(lsn, SECTOR)
    (magic, version, kind, elsn, request_id, total, status, resp_len, n_redo,
     crc) = WAL_HDR.unpack_from(head, 0)
    if magic != WAL_MAGIC or version != WAL_VERSION or elsn != lsn:
        return None
    if total < WAL_HDR.size or total > WAL_MAX_ENTRY or WAL_HDR.size + resp_len > total:
        return None
    raw = bytearray(img.wal_read(lsn, total))
    struct.pack_into("<I", raw, WAL_CRC_OFF, 0)
    if crc32(bytes(raw)) != crc:
        return None
    resp = bytes(raw[WAL_HDR.size:WAL_HDR.size + resp_len])
    off = WAL_HDR.size + pad4(resp_len)
    redo = []
    for _ in range(n_redo):
        if off + REDO_HDR.size > total:
            return None
        page, poff, ln = REDO_HDR.unpack_from(raw, off)
        off += REDO_HDR.size
        if off + ln > total or poff + ln > PAGE:
            return None
        redo.append((page, poff, bytes(raw[off:off + ln])))
        off += pad4(ln)
    return {"lsn": lsn, "kind": kind, "request_id": request_id, "status": status,
            "response": resp, "redo": redo, "next": lsn + round_sector(total)}


def replay(img):
    """Replays the log into img's overlay exactly as the guest's recovery does: entries from the
    checkpoint's prev_lsn on are read (their ids are the recorded responses), those at or after
    ckpt_lsn have their redo applied. Returns (entries_seen, entries_applied, end_lsn,
    {request_id: (status, response)})."""
    ck = img.checkpoint()
    if ck is None:
        raise ValueError("no valid checkpoint slot")
    _, ckpt_lsn, prev_lsn = ck
    ids = {}
    seen = applied = 0
    lsn = prev_lsn
    restarted = False
    while True:
        lsn = wal_position(lsn, img.sb.wal_bytes)
        e = parse_wal_entry(img, lsn)
        if e is None:
            if lsn < ckpt_lsn and not restarted:  # should not happen: the window is kept
                lsn, restarted = ckpt_lsn, True
                continue
            break
        seen += 1
        ids[e["request_id"]] = (e["status"], e["response"])
        if lsn >= ckpt_lsn:
            applied += 1
            for page, poff, data in e["redo"]:
                img.page(page)[poff:poff + len(data)] = data
        lsn = e["next"]
    return seen, applied, max(lsn, ckpt_lsn), ids


def cstr(b):
    return b.split(b"\0", 1)[0]
