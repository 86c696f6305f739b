#!/usr/bin/env python3
"""Checks an oltp database image after a run (the guest stopped): replays the committed log
entries after the last checkpoint into memory exactly as the guest's recovery does (the file is
not written), then verifies TPC-C's consistency conditions (clause 3.3.2) 1-10 and 12, and,
given the request file and the client's response logs (--log, the load generator's RHLG format;
several may be given, e.g. one per phase of a run with continuing ids), that every acknowledged
(status 0) transaction is in the database exactly once (New-Order: the order row carrying its
request id, with the answered o_id and the requested customer and items; Payment: the history row
carrying its request id, with its amount; Delivery: exactly the orders it answered carry its id
as delivery date), that aborted, not-found and malformed ones left no row, that no request id is
applied twice and that every request id in the database was sent. Also compares the guest's
recorded responses still in the log with what the client received.

Prints one verdict line (or a JSON object with --json). Exit 0 consistent, 1 not, 2 bad usage
or an unreadable image.

  oltp_check.py --image db.img [--requests reqs.bin --log run.log ...] [--json] [--max-errors N]
"""
import argparse
import json
import os
import struct
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import oltp_format as f  # noqa: E402
import service_files  # noqa: E402

def read_log(path):
    """(request_id, record_index, latency_ns, status, body) per record of a response log."""
    return [(r.request_id, r.record_index, r.latency_ns, r.status, r.body)
            for r in service_files.read_response_log(path)]


class Checker:
    def __init__(self, img, max_errors):
        self.img = img
        self.sb = img.sb
        self.errors = []
        self.max_errors = max_errors
        self.conditions = set()

    def err(self, cond, msg):
        if len(self.errors) < self.max_errors:
            self.errors.append(f"{cond}: {msg}")

    def consistency(self):
        img, sb = self.img, self.sb
        ocap = sb.orders_cap
        w = img.record(f.R_WAREHOUSE, 0)
        w_ytd, h_count = w[2], w[4]
        dists = [img.record(f.R_DISTRICT, d - 1) for d in range(1, sb.districts + 1)]
        if w_ytd != sum(x[4] for x in dists):
            self.err("condition 1", f"W_YTD {w_ytd} != sum(D_YTD) {sum(x[4] for x in dists)}")
        self.orders = {}       # (d, o) -> order tuple
        self.order_req = defaultdict(list)
        self.delivered_by = defaultdict(set)  # delivery date (request id) -> {(d, o)}
        delivered_amount = defaultdict(int)   # (d, c) -> sum of delivered OL_AMOUNT
        for d in range(1, sb.districts + 1):
            _, _, _, next_o, d_ytd, no_head, _, _ = dists[d - 1]
            if not 1 <= next_o <= ocap + 1:
                self.err("condition 2", f"district {d}: D_NEXT_O_ID {next_o} out of range")
                continue
            max_o, no_ids, ol_total, olcnt_total = 0, [], 0, 0
            for o in range(1, min(next_o + 1, ocap + 1)):
                slot = (d - 1) * ocap + o - 1
                od = img.record(f.R_ORDER, slot)
                nr = img.record(f.R_NEW_ORDER, slot)
                if o == next_o:  # the slot after the last order must be empty
                    if od[0] != 0 or nr[3] != 0:
                        self.err("condition 2", f"district {d}: a row at o_id {o} = D_NEXT_O_ID")
                    break
                if od[0] != o or od[1] != d or od[2] != 1:
                    self.err("condition 2", f"district {d}: order {o} missing or mislabelled "
                             f"{od[:3]}")
                    continue
                self.orders[(d, o)] = od
                max_o = o
                if od[9]:
                    self.order_req[od[9]].append((d, o))
                present = nr[3] == 1
                if present:
                    if nr[0] != o or nr[1] != d:
                        self.err("condition 3", f"district {d}: new-order {o} mislabelled")
                    no_ids.append(o)
                elif nr[3] != 0:
                    self.err("condition 3", f"district {d}: new-order {o} flag {nr[3]}")
                carrier, ol_cnt = od[4], od[5]
                if (carrier == 0) != present:
                    self.err("condition 5", f"district {d} order {o}: carrier {carrier}, "
                             f"new-order row {'present' if present else 'absent'}")
                olcnt_total += ol_cnt
                lines = 0
                for n in range(1, f.MAX_OL + 1):
                    line = img.record(f.R_ORDER_LINE, slot * f.MAX_OL + n - 1)
                    if line[0] == 0:
                        continue
                    lines += 1
                    if line[0] != o or line[1] != d or line[3] != n or n > ol_cnt:
                        self.err("condition 6", f"district {d} order {o}: line {n} is {line[:4]}")
                    if (line[9] == 0) != (carrier == 0):
                        self.err("condition 7", f"district {d} order {o} line {n}: delivery "
                                 f"date {line[9]} with carrier {carrier}")
                    if line[9]:
                        delivered_amount[(d, od[3])] += line[8]
                        if line[9] != f.LOAD_DATE:
                            self.delivered_by[line[9]].add((d, o))
                ol_total += lines
                if lines != ol_cnt:
                    self.err("condition 6", f"district {d} order {o}: O_OL_CNT {ol_cnt}, "
                             f"{lines} order-lines")
            if max_o != next_o - 1:
                self.err("condition 2", f"district {d}: D_NEXT_O_ID-1 {next_o - 1} != max(O_ID) "
                         f"{max_o}")
            if no_ids:
                if max(no_ids) != next_o - 1:
                    self.err("condition 2", f"district {d}: max(NO_O_ID) {max(no_ids)} != "
                             f"D_NEXT_O_ID-1 {next_o - 1}")
                if max(no_ids) - min(no_ids) + 1 != len(no_ids):
                    self.err("condition 3", f"district {d}: new-orders {min(no_ids)}.."
                             f"{max(no_ids)} but {len(no_ids)} rows")
                if no_head != min(no_ids):
                    self.err("condition 3", f"district {d}: delivery head {no_head} != "
                             f"min(NO_O_ID) {min(no_ids)}")
            elif no_head != next_o:
                self.err("condition 3", f"district {d}: no new-orders but head {no_head}")
            if olcnt_total != ol_total:
                self.err("condition 4", f"district {d}: sum(O_OL_CNT) {olcnt_total} != "
                         f"{ol_total} order-lines")
        # History: conditions 8, 9, and the per-customer sums of 10.
        self.hist_req = defaultdict(list)
        h_by_d = defaultdict(int)
        h_by_c = defaultdict(int)
        h_sum = 0
        for h in range(h_count):
            row = img.record(f.R_HISTORY, h)
            if row[4] != 1 or not 1 <= row[3] <= sb.districts:
                self.err("history", f"row {h} is empty or mislabelled: {row[:6]}")
                continue
            h_sum += row[7]
            h_by_d[row[3]] += row[7]
            h_by_c[(row[1], row[0])] += row[7]
            if row[8]:
                self.hist_req[row[8]].append(h)
        if h_count < self.sb.regions[f.R_HISTORY][4] and img.record(f.R_HISTORY, h_count)[4] != 0:
            self.err("history", f"a row beyond the count {h_count}")
        if w_ytd != h_sum:
            self.err("condition 8", f"W_YTD {w_ytd} != sum(H_AMOUNT) {h_sum}")
        for d in range(1, sb.districts + 1):
            if dists[d - 1][4] != h_by_d[d]:
                self.err("condition 9", f"district {d}: D_YTD {dists[d - 1][4]} != "
                         f"sum(H_AMOUNT) {h_by_d[d]}")
        for d in range(1, sb.districts + 1):
            for c in range(1, sb.customers_per_district + 1):
                row = img.record(f.R_CUSTOMER, (d - 1) * sb.customers_per_district + c - 1)
                bal, ytd = row[8], row[9]
                if bal != delivered_amount[(d, c)] - h_by_c[(d, c)]:
                    self.err("condition 10", f"customer {d}/{c}: C_BALANCE {bal} != "
                             f"{delivered_amount[(d, c)]} - {h_by_c[(d, c)]}")
                if bal + ytd != delivered_amount[(d, c)]:
                    self.err("condition 12", f"customer {d}/{c}: C_BALANCE + C_YTD_PAYMENT "
                             f"{bal + ytd} != {delivered_amount[(d, c)]}")

    def exactly_once(self, records, logs, recorded):
        answers = {}
        for rid, idx, lat, status, body in logs:
            if rid in answers and answers[rid][0] != idx:
                self.err("log", f"request id {rid} used for records {answers[rid][0]} and {idx}")
            if rid not in answers or (answers[rid][1] < 0 <= lat):
                answers[rid] = (idx, lat, status, body)
        for rid, rows in self.order_req.items():
            if len(rows) > 1:
                self.err("twice", f"request {rid}: {len(rows)} orders {rows}")
            if rid not in answers:
                self.err("unknown", f"order {rows[0]} carries request id {rid}, never sent")
        for rid, rows in self.hist_req.items():
            if len(rows) > 1:
                self.err("twice", f"request {rid}: {len(rows)} history rows")
            if rid not in answers:
                self.err("unknown", f"history row {rows[0]} carries request id {rid}, never sent")
        for rid in self.delivered_by:
            if rid not in answers:
                self.err("unknown", f"orders delivered by request id {rid}, never sent")
        acked = 0
        for rid, (idx, lat, status, body) in answers.items():
            if idx >= len(records):
                self.err("log", f"request {rid}: record index {idx} beyond the request file")
                continue
            rec = records[idx]
            kind = struct.unpack_from("<H", rec, 6)[0] if len(rec) >= 8 else 0
            answered = lat >= 0
            if answered and rid in recorded and recorded[rid] != (status, body):
                self.err("recorded", f"request {rid}: the client got status {status}, the log "
                         f"records {recorded[rid][0]}")
            if answered and status == f.ST_OK:
                acked += 1
            orders = self.order_req.get(rid, [])
            hist = self.hist_req.get(rid, [])
            deliv = self.delivered_by.get(rid, set())
            if kind != f.K_NEW_ORDER and orders or kind != f.K_PAYMENT and hist or \
                    kind != f.K_DELIVERY and deliv:
                self.err("wrong kind", f"request {rid} (kind {kind}) left rows of another kind")
            if not answered:
                continue  # may or may not have committed: at most once is checked above
            if status != f.ST_OK:
                if orders or hist or deliv:
                    self.err("status", f"request {rid}: status {status} but rows exist")
                continue
            body_req = rec[16:]
            if kind == f.K_NEW_ORDER:
                if len(orders) != 1:
                    self.err("missing", f"acknowledged New-Order {rid}: {len(orders)} orders")
                    continue
                d, o = orders[0]
                od = self.orders[(d, o)]
                _, rd, rc, cnt = f.NO_REQ.unpack_from(body_req)
                resp_o = f.NO_RESP.unpack_from(body)[0] if len(body) >= f.NO_RESP.size else -1
                if (d, od[3], od[5], o) != (rd, rc, cnt, resp_o):
                    self.err("content", f"New-Order {rid}: order {(d, o)} c {od[3]} cnt {od[5]}, "
                             f"request {(rd, rc, cnt)}, answered o_id {resp_o}")
                slot = (d - 1) * self.sb.orders_cap + o - 1
                for n in range(cnt):
                    item = f.NO_LINE.unpack_from(body_req, 16 + 12 * n)[0]
                    line = self.img.record(f.R_ORDER_LINE, slot * f.MAX_OL + n)
                    if line[4] != item:
                        self.err("content", f"New-Order {rid} line {n + 1}: item {line[4]} != "
                                 f"{item}")
            elif kind == f.K_PAYMENT:
                if len(hist) != 1:
                    self.err("missing", f"acknowledged Payment {rid}: {len(hist)} history rows")
                    continue
                row = self.img.record(f.R_HISTORY, hist[0])
                p = f.PAY_REQ.unpack(body_req)
                if (row[3], row[1], row[7]) != (p[1], p[3], p[6]):
                    self.err("content", f"Payment {rid}: history {row[:8]} vs request {p[:7]}")
            elif kind == f.K_DELIVERY:
                if len(body) < f.DEL_RESP.size:
                    self.err("content", f"Delivery {rid}: short answer")
                    continue
                resp = f.DEL_RESP.unpack_from(body)
                want = {(d, o) for d, o in enumerate(resp[1:], 1) if o}
                if want != deliv:
                    self.err("missing", f"Delivery {rid}: answered {sorted(want)}, the database "
                             f"has {sorted(deliv)}")
                for d, o in want:
                    od = self.orders.get((d, o))
                    if od is None or od[4] != resp[0]:
                        self.err("content", f"Delivery {rid}: order {(d, o)} carrier "
                                 f"{od[4] if od else None} != {resp[0]}")
        return acked, len(answers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", required=True)
    ap.add_argument("--requests")
    ap.add_argument("--log", action="append", default=[])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--max-errors", type=int, default=20)
    a = ap.parse_args()
    if bool(a.requests) != bool(a.log):
        ap.error("--requests and --log go together")
    try:
        img = f.Image(a.image)
        seen, applied, end_lsn, recorded = f.replay(img)
    except (OSError, ValueError) as e:
        print(f"oltp_check: cannot read {a.image}: {e}")
        sys.exit(2)
    c = Checker(img, a.max_errors)
    c.consistency()
    acked = sent = None
    if a.requests:
        try:
            records = service_files.read_request_file(a.requests)
            logs = [e for path in a.log for e in read_log(path)]
        except (OSError, ValueError) as e:
            print(f"oltp_check: {e}")
            sys.exit(2)
        acked, sent = c.exactly_once(records, logs, recorded)
    ok = not c.errors
    result = {"consistent": ok, "errors": c.errors, "log_entries_read": seen,
              "log_entries_replayed": applied, "end_lsn": end_lsn, "orders": len(c.orders),
              "history_rows": sum(len(v) for v in c.hist_req.values()),
              "requests_sent": sent, "acknowledged_ok": acked,
              "conditions_checked": "1-10,12"}
    if a.json:
        print(json.dumps(result, indent=1))
    elif ok:
        extra = (f"; all {acked} acknowledged transactions present once, none of {sent} sent "
                 f"applied twice") if sent is not None else ""
        print(f"oltp_check: consistent: conditions 1-10,12 hold over {len(c.orders)} orders "
              f"(replayed {applied} of {seen} log entries){extra}")
    else:
        print(f"oltp_check: INCONSISTENT: {len(c.errors)}+ errors, first: {c.errors[0]}")
        for e in c.errors[1:]:
            print(f"  {e}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
