#!/usr/bin/env python3
"""Writes an oltp database image: TPC-C's nine tables, scaled down (1 warehouse, 10 districts,
300 customers per district, 1000 items; docs/oltp-format.md "Scale"), populated per TPC-C clause
4.3.3.1 with deterministic random data from --seed, in the fixed-region layout the guest's
`workload=oltp` serves (docs/oltp-format.md). The growing tables (order, new-order, order-line,
history) get capacity for --capacity-txns transactions of the standard mix. The file is sparse:
unwritten capacity costs no disk space. Exit status 0, 2 on bad usage.

  oltp_load.py --out db.img [--seed N] [--capacity-txns N] [--wal-mib N]
"""
import argparse
import os
import random
import string
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oltp_format as f  # noqa: E402


def astring(rng, lo, hi):
    return "".join(rng.choice(string.ascii_letters + string.digits)
                   for _ in range(rng.randint(lo, hi))).encode()


def with_original(rng, lo, hi):
    """TPC-C's I_DATA / S_DATA: 10% hold "ORIGINAL" at a random position."""
    s = astring(rng, lo, hi)
    if rng.randint(1, 10) == 1:
        pos = rng.randint(0, len(s) - 8)
        s = s[:pos] + b"ORIGINAL" + s[pos + 8:]
    return s


def layout(capacity_txns, wal_mib):
    """Region table: (start_page, pages, rec_size, per_page, capacity) per region."""
    ocap = f.orders_cap_per_district(capacity_txns)
    caps = [f.WAREHOUSES, f.DISTRICTS, f.DISTRICTS * f.CUSTOMERS_PER_DISTRICT,
            f.DISTRICTS * f.CUSTOMERS_PER_DISTRICT + capacity_txns,  # history: one per Payment
            f.DISTRICTS * ocap, f.DISTRICTS * ocap, f.DISTRICTS * ocap * f.MAX_OL, f.ITEMS,
            f.ITEMS, f.DISTRICTS * f.CUSTOMERS_PER_DISTRICT]
    wal_pages = wal_mib * 256
    page = f.WAL_START_PAGE + wal_pages
    regions = []
    for rec, cap in zip(f.RECORDS, caps):
        per_page = f.PAGE // rec.size
        pages = (cap + per_page - 1) // per_page
        regions.append((page, pages, rec.size, per_page, cap))
        page += pages
    return regions, wal_pages, page, ocap


class Writer:
    def __init__(self, regions):
        self.regions = regions
        self.pages = {}

    def put(self, region, index, *fields):
        start, _, rec_size, per_page, cap = self.regions[region]
        assert index < cap, (region, index, cap)
        no = start + index // per_page
        p = self.pages.setdefault(no, bytearray(f.PAGE))
        f.RECORDS[region].pack_into(p, index % per_page * rec_size, *fields)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--capacity-txns", type=int, default=f.DEFAULT_CAPACITY_TXNS)
    ap.add_argument("--wal-mib", type=int, default=f.DEFAULT_WAL_MIB)
    a = ap.parse_args()
    if a.capacity_txns < 1 or not 1 <= a.wal_mib <= 1024:
        ap.error("--capacity-txns must be >= 1 and --wal-mib 1..1024")
    rng = random.Random(a.seed)
    regions, wal_pages, total_pages, ocap = layout(a.capacity_txns, a.wal_mib)
    # NURand C constants (clause 2.1.6): C_LAST for the load and for the run differ.
    c_last_load = rng.randint(0, f.A_C_LAST)
    c_last_run = (c_last_load + rng.randint(1, f.A_C_LAST)) % (f.A_C_LAST + 1)
    c_id_c = rng.randint(0, f.A_C_ID)
    ol_i_id_c = rng.randint(0, f.A_OL_I_ID)
    w = Writer(regions)
    cpd = f.CUSTOMERS_PER_DISTRICT

    for i in range(1, f.ITEMS + 1):
        w.put(f.R_ITEM, i - 1, i, rng.randint(1, 10000), rng.randint(100, 10000),
              astring(rng, 6, 14), with_original(rng, 12, 24))
    w_name = astring(rng, 6, 10)
    w.put(f.R_WAREHOUSE, 0, 1, rng.randint(0, 2000), 30000 * 100, w_name,
          f.DISTRICTS * cpd)
    for i in range(1, f.ITEMS + 1):
        w.put(f.R_STOCK, i - 1, i, 1, rng.randint(10, 100), 0, 0, 0, 0, with_original(rng, 12, 24),
              astring(rng, 8, 8))
    h = 0
    for d in range(1, f.DISTRICTS + 1):
        d_name = astring(rng, 6, 10)
        w.put(f.R_DISTRICT, d - 1, d, 1, rng.randint(0, 2000), f.INITIAL_ORDERS + 1,
              cpd * 1000, f.FIRST_NEW_ORDER, 0, d_name)
        perm = list(range(1, cpd + 1))
        rng.shuffle(perm)  # O_C_ID: a permutation of the customers
        last_o = {c: o for o, c in enumerate(perm, 1)}
        names = []
        for c in range(1, cpd + 1):
            num = c - 1 if c <= f.LAST_NAMES else f.nurand(rng, f.A_C_LAST, 0, f.LAST_NAMES - 1,
                                                          c_last_load)
            last = f.last_name(num)
            first = astring(rng, 8, 16)
            credit = b"BC" if rng.randint(1, 10) == 1 else b"GC"
            w.put(f.R_CUSTOMER, (d - 1) * cpd + c - 1, c, d, 1, rng.randint(0, 5000), credit,
                  1, 0, last_o[c], -1000, 1000, 5000000, f.LOAD_DATE, last, first, astring(rng, 30, 64))
            names.append((last, first, c))
            w.put(f.R_HISTORY, h, c, d, 1, d, 1, 0, f.LOAD_DATE, 1000, 0, astring(rng, 12, 16))
            h += 1
        names.sort()
        for k, (last, _, c) in enumerate(names):
            w.put(f.R_NAME_INDEX, (d - 1) * cpd + k, last, c)
        for o in range(1, f.INITIAL_ORDERS + 1):
            delivered = o < f.FIRST_NEW_ORDER
            ol_cnt = rng.randint(5, 15)
            slot = (d - 1) * ocap + o - 1
            w.put(f.R_ORDER, slot, o, d, 1, perm[o - 1], rng.randint(1, 10) if delivered else 0,
                  ol_cnt, 1, 0, f.LOAD_DATE, 0)
            for n in range(1, ol_cnt + 1):
                w.put(f.R_ORDER_LINE, slot * f.MAX_OL + n - 1, o, d, 1, n,
                      rng.randint(1, f.ITEMS), 1, 5, 0,
                      0 if delivered else rng.randint(1, 999999), f.LOAD_DATE if delivered else 0,
                      astring(rng, 16, 16))
            if not delivered:
                w.put(f.R_NEW_ORDER, slot, o, d, 1, 1)

    sb = f.pack_superblock(
        (f.SB_MAGIC, f.SB_VERSION, f.PAGE, len(f.RECORDS), total_pages, a.seed, f.WAREHOUSES,
         f.DISTRICTS, cpd, f.ITEMS, ocap, f.INITIAL_ORDERS, a.capacity_txns, c_last_run, c_id_c,
         ol_i_id_c, c_last_load, 0, f.WAL_START_PAGE, wal_pages), regions)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as out:
        out.truncate(total_pages * f.PAGE)
        out.seek(0)
        out.write(sb)
        out.seek(f.CK_SLOT_PAGES[1] * f.PAGE)  # checkpoint seq goes to CK_SLOT_PAGES[seq % 2]
        out.write(f.pack_checkpoint(1, 0, 0))
        for no in sorted(w.pages):
            out.seek(no * f.PAGE)
            out.write(w.pages[no])
    os.replace(tmp, a.out)
    print(f"oltp_load: {a.out}: {total_pages} pages ({total_pages * f.PAGE >> 20} MiB, sparse), "
          f"orders/district capacity {ocap}, WAL {a.wal_mib} MiB, seed {a.seed}")


if __name__ == "__main__":
    main()
