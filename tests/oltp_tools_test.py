#!/usr/bin/env python3
"""Host-only test of the oltp tools (no KVM): oltp_load.py writes a consistent database;
oltp_check.py replays write-ahead-log entries exactly as docs/oltp-format.md says (valid
entries after the checkpoint applied, a bad CRC or a stale LSN ending the log, the wrap rule at
the end of the WAL region) and catches a broken consistency condition, a lost acknowledged
transaction and a transaction applied twice. Entries are written here the way the guest writes
them. Exit 0 pass, 1 fail.
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "oltp"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import oltp_format as f  # noqa: E402
import service_files  # noqa: E402

TOOLS = os.path.join(ROOT, "bench", "oltp")


def fail(msg):
    print(f"oltp_tools_test: FAIL {msg}")
    sys.exit(1)


def check(image, *extra, want):
    p = subprocess.run([sys.executable, os.path.join(TOOLS, "oltp_check.py"), "--image", image,
                        *extra], capture_output=True, text=True)
    if p.returncode != want:
        fail(f"oltp_check exit {p.returncode}, want {want}: {p.stdout.strip()} {p.stderr[-300:]}")
    return p.stdout


class Writer:
    """Appends WAL entries to an image file the way the guest does."""

    def __init__(self, path):
        self.path = path
        self.img = f.Image(path)
        self.sb = self.img.sb

    def record(self, region, index):
        return list(self.img.record(region, index))

    def redo(self, region, index, fields):
        start, _, size, per, _ = self.sb.regions[region]
        return (start + index // per, index % per * size, f.RECORDS[region].pack(*fields))

    def entry(self, lsn, request_id, redo, kind=f.K_PAYMENT, status=0, resp=b"", crc_ok=True):
        lsn = f.wal_position(lsn, self.sb.wal_bytes)
        body = bytearray(resp + bytes(f.pad4(len(resp)) - len(resp)))
        for page, off, data in redo:
            body += f.REDO_HDR.pack(page, off, len(data)) + data + bytes(f.pad4(len(data)) -
                                                                         len(data))
        total = f.WAL_HDR.size + len(body)
        raw = bytearray(f.WAL_HDR.pack(f.WAL_MAGIC, f.WAL_VERSION, kind, lsn, request_id, total,
                                       status, len(resp), len(redo), 0)) + body
        struct.pack_into("<I", raw, f.WAL_CRC_OFF, f.crc32(bytes(raw)) ^ (0 if crc_ok else 1))
        raw += bytes(f.round_sector(total) - total)
        with open(self.path, "r+b") as out:
            out.seek(self.sb.wal_start_page * f.PAGE + lsn % self.sb.wal_bytes)
            out.write(raw)
        return lsn + len(raw)

    def checkpoint(self, seq, ckpt_lsn, prev_lsn):
        with open(self.path, "r+b") as out:
            out.seek(f.CK_SLOT_PAGES[seq % 2] * f.PAGE)
            out.write(f.pack_checkpoint(seq, ckpt_lsn, prev_lsn))

    def payment(self, lsn, rid, d, c, amount, crc_ok=True, only_warehouse=False):
        """A Payment's redo: warehouse, district, customer, a history row."""
        w = self.record(f.R_WAREHOUSE, 0)
        h = w[4]
        w[2] += amount
        w[4] += 1
        redo = [self.redo(f.R_WAREHOUSE, 0, w)]
        if not only_warehouse:
            dist = self.record(f.R_DISTRICT, d - 1)
            dist[4] += amount
            cidx = (d - 1) * self.sb.customers_per_district + c - 1
            cust = self.record(f.R_CUSTOMER, cidx)
            cust[8] -= amount
            cust[9] += amount
            cust[5] += 1
            redo += [self.redo(f.R_DISTRICT, d - 1, dist), self.redo(f.R_CUSTOMER, cidx, cust),
                     self.redo(f.R_HISTORY, h, [c, d, 1, d, 1, 0, rid, amount, rid, b"x"])]
        return self.entry(lsn, rid, redo, crc_ok=crc_ok)


def main():
    work = tempfile.mkdtemp(prefix="oltp-tools-")
    image = os.path.join(work, "db.img")
    subprocess.run([sys.executable, os.path.join(TOOLS, "oltp_load.py"), "--out", image,
                    "--capacity-txns", "1000", "--wal-mib", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    check(image, want=0)

    # A committed Payment after the checkpoint is replayed; the next entry has a bad CRC: the
    # log ends there (its change is not applied, so the database stays consistent).
    w = Writer(image)
    lsn = w.payment(0, 7, 3, 12, 4321)
    w.img = f.Image(image)
    _, _, _, _ = f.replay(w.img)  # the Writer builds the next change on the replayed state
    end = w.payment(lsn, 8, 3, 12, 1000, crc_ok=False)
    out = check(image, "--json", want=0)
    if '"log_entries_replayed": 1' not in out:
        fail(f"want exactly the valid entry replayed: {out}")
    img = f.Image(image)
    f.replay(img)
    if img.record(f.R_WAREHOUSE, 0)[2] != 3000000 + 4321:
        fail("the replayed Payment is not in W_YTD")

    # Exactly-once: a request file and a response log that acknowledge id 7 (present) and id 9
    # (absent: a lost acknowledged transaction).
    reqs = os.path.join(work, "reqs.rhrq")
    pay = f.SVC_HDR.pack(f.REQ_MAGIC, 1, f.K_PAYMENT, 0) + f.PAY_REQ.pack(1, 3, 1, 3, 0, 12,
                                                                            4321, b"")
    service_files.write_request_file(reqs, [pay])
    rec = struct.Struct("<QIIqqHHI")

    def log(path, ids):
        out = bytearray(b"RHLG" + struct.pack("<I", 1))
        for rid in ids:
            out += rec.pack(rid, 0, 0, 0, 1000, 0, 0, 0)
        out += struct.pack("<I", f.crc32(bytes(out)))
        with open(path, "wb") as fh:
            fh.write(out)
        return path

    check(image, "--requests", reqs, "--log", log(os.path.join(work, "a.log"), [7]), want=0)
    out = check(image, "--requests", reqs, "--log", log(os.path.join(work, "b.log"), [7, 9]),
                want=1)
    if "missing" not in out:
        fail(f"a lost acknowledged Payment not reported: {out}")

    # The same request id applied twice (a second history row with id 7) is reported.
    w.img = f.Image(image)
    f.replay(w.img)
    w.payment(lsn, 7, 3, 12, 4321)  # overwrites the bad-CRC entry with a valid one, id 7 again
    out = check(image, "--requests", reqs, "--log", os.path.join(work, "a.log"), want=1)
    if "twice" not in out:
        fail(f"a transaction applied twice not reported: {out}")

    # A change that breaks condition 1 (W_YTD without D_YTD) is reported.
    w.img = f.Image(image)
    w.payment(lsn, 10, 3, 12, 55, only_warehouse=True)
    out = check(image, want=1)
    if "condition 1" not in out:
        fail(f"condition 1 not reported: {out}")

    # Wrap rule and checkpoint: a fresh image whose checkpoint sits 512 bytes before the end of
    # the WAL region: the next entry is at the next lap (offset 0), and it is replayed; an entry
    # there with a stale LSN (an earlier lap) is not.
    subprocess.run([sys.executable, os.path.join(TOOLS, "oltp_load.py"), "--out", image,
                    "--capacity-txns", "1000", "--wal-mib", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    w = Writer(image)
    ck = w.sb.wal_bytes - 512
    w.checkpoint(2, ck, 0)
    w.payment(ck, 11, 5, 1, 777)  # wal_position: lands at LSN wal_bytes
    out = check(image, "--json", want=0)
    if '"log_entries_replayed": 1' not in out or f'"end_lsn": {w.sb.wal_bytes + 512}' not in out:
        fail(f"the entry after the wrap was not replayed: {out}")
    w.checkpoint(3, 2 * w.sb.wal_bytes - 512, ck)  # a lap later: offset 0 holds a stale LSN
    out = check(image, "--json", want=0)
    if '"log_entries_replayed": 0' not in out or '"log_entries_read": 1' not in out:
        fail(f"a stale entry of an earlier lap was replayed (or the one since prev_lsn not "
             f"read for its id): {out}")
    subprocess.run(["rm", "-rf", work])
    print("oltp_tools_test: PASS")


if __name__ == "__main__":
    main()
