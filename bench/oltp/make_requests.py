#!/usr/bin/env python3
"""Writes a request file for the load generator (bench/loadgen, format "RHRQ" v1 in
docs/service-protocol.md) holding TPC-C transactions for the guest's oltp service: the standard
mix (New-Order 45%, Payment 43%, Order-Status 4%, Delivery 4%, Stock-Level 4%; a deck shuffled
per 100 records), inputs generated per TPC-C clauses 2.4.1-2.8.1 with NURand and the run's C
constants from the database image's superblock (--image): 60% of Payment/Order-Status select
the customer by last name, 1% of New-Orders carry an unused item id (they roll back: status 3).
With one warehouse, every order line is supplied by the home warehouse and every Payment is to
the home warehouse (TPC-C's 1% remote lines and 15% remote payments cannot exist; a "remote"
Payment picks another district instead). --malformed N inserts N bad datagrams at random
positions (status 1 expected; each keeps a 16-byte header so the answer carries its request
id). Every record is a distinct transaction. Exit status 0, 2 on bad usage.

  make_requests.py --image db.img --out reqs.bin --count N [--seed N] [--malformed N]
"""
import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import oltp_format as f  # noqa: E402
import service_files  # noqa: E402

MIX = [(f.K_NEW_ORDER, 45), (f.K_PAYMENT, 43), (f.K_ORDER_STATUS, 4), (f.K_DELIVERY, 4),
       (f.K_STOCK_LEVEL, 4)]


def header(kind):
    return f.SVC_HDR.pack(f.REQ_MAGIC, f.PROTO_VERSION, kind, 0)


class Gen:
    def __init__(self, rng, consts):
        self.rng = rng
        self.c_last, self.c_id, self.ol_i_id = consts

    def customer(self):
        return f.nurand(self.rng, f.A_C_ID, 1, f.CUSTOMERS_PER_DISTRICT, self.c_id)

    def last(self):
        return f.last_name(f.nurand(self.rng, f.A_C_LAST, 0, f.LAST_NAMES - 1, self.c_last))

    def new_order(self):
        r = self.rng
        d, c, cnt = r.randint(1, f.DISTRICTS), self.customer(), r.randint(5, 15)
        rollback = r.randint(1, 100) == 1
        body = f.NO_REQ.pack(1, d, c, cnt)
        for n in range(cnt):
            item = f.nurand(r, f.A_OL_I_ID, 1, f.ITEMS, self.ol_i_id)
            if rollback and n == cnt - 1:
                item = f.ITEMS + 1  # unused item id (clause 2.4.1.4)
            body += f.NO_LINE.pack(item, 1, r.randint(1, 10))
        return header(f.K_NEW_ORDER) + body

    def payment(self):
        r = self.rng
        d = r.randint(1, f.DISTRICTS)
        cd = d if r.randint(1, 100) <= 85 else r.randint(1, f.DISTRICTS)
        by_name = r.randint(1, 100) <= 60
        c, last = (0, self.last()) if by_name else (self.customer(), b"")
        return header(f.K_PAYMENT) + f.PAY_REQ.pack(1, d, 1, cd, int(by_name), c,
                                                    r.randint(100, 500000), last)

    def order_status(self):
        r = self.rng
        by_name = r.randint(1, 100) <= 60
        c, last = (0, self.last()) if by_name else (self.customer(), b"")
        return header(f.K_ORDER_STATUS) + f.OS_REQ.pack(1, r.randint(1, f.DISTRICTS), int(by_name),
                                                        c, last)

    def delivery(self):
        return header(f.K_DELIVERY) + f.DEL_REQ.pack(1, self.rng.randint(1, 10))

    def stock_level(self):
        return header(f.K_STOCK_LEVEL) + f.SL_REQ.pack(1, self.rng.randint(1, f.DISTRICTS),
                                                       self.rng.randint(10, 20))

    def malformed(self):
        r = self.rng
        choice = r.randint(0, 6)
        good = self.new_order()
        if choice == 0:
            return good[:16]                                     # no body
        if choice == 1:
            return struct.pack("<I", 0xdeadbeef) + good[4:]      # bad magic
        if choice == 2:
            return good[:4] + struct.pack("<H", 9) + good[6:]    # bad version
        if choice == 3:
            return header(77) + good[16:]                        # unknown kind
        if choice == 4:
            return good[:-1]                                     # truncated body
        if choice == 5:
            return header(f.K_PAYMENT) + f.PAY_REQ.pack(1, 11, 1, 1, 0, 1, 100, b"")  # district 11
        return bytes(r.getrandbits(8) for _ in range(r.randint(16, 200)))


def write_requests(path, records):
    service_files.write_request_file(path, records)


def read_requests(path):
    return service_files.read_request_file(path)


def generate(count, seed, consts, malformed=0):
    rng = random.Random(seed)
    g = Gen(rng, consts)
    fns = {f.K_NEW_ORDER: g.new_order, f.K_PAYMENT: g.payment, f.K_ORDER_STATUS: g.order_status,
           f.K_DELIVERY: g.delivery, f.K_STOCK_LEVEL: g.stock_level}
    deck = []
    records = []
    for _ in range(count):
        if not deck:
            deck = [k for k, n in MIX for _ in range(n)]
            rng.shuffle(deck)
        records.append(fns[deck.pop()]())
    for _ in range(malformed):
        records.insert(rng.randint(0, len(records)), g.malformed())
    return records


def run_constants(image):
    sb = f.Image(image).sb
    return sb.c_last_run, sb.c_id_c, sb.ol_i_id_c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--image", required=True, help="the database image (for the C constants)")
    ap.add_argument("--malformed", type=int, default=0)
    a = ap.parse_args()
    if a.count < 1 or a.malformed < 0:
        ap.error("--count must be >= 1 and --malformed >= 0")
    records = generate(a.count, a.seed, run_constants(a.image), a.malformed)
    write_requests(a.out, records)
    kinds = {}
    for r in records:
        k = f.KIND_NAMES.get(struct.unpack_from("<H", r, 6)[0], "other") if len(r) >= 8 else "other"
        kinds[k] = kinds.get(k, 0) + 1
    print(f"make_requests: {a.out}: {len(records)} records " +
          " ".join(f"{k}={v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
