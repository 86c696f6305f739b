#!/usr/bin/env python3
"""Writes a request file of search queries for the load generator (docs/service-protocol.md).

Reads the vocabulary (term, df) from the index image written by build_index.py and writes
--count query datagrams (service header + search body, request id 0: the load generator sets
it) in the load generator's request-file format (bench/service_files.py). Queries are a deterministic (--seed) mix of 1..3-term AND (kind 1)
and OR (kind 2) queries whose terms are drawn from three document-frequency bands (rare: df <= 2,
medium, common: the most frequent 1% of terms), some with upper-case letters (the guest folds
case); --malformed N of the records (spread evenly) are malformed on purpose, one of each kind in
turn (bad magic, version, kind, term count 0 or 9, term too short/long, a non-token byte,
truncated body, trailing bytes), so the oracle checks the status-1 replies too. Exit 0.

usage: make_queries.py INDEX_IMAGE OUT [--count N] [--seed S] [--malformed N] [--max-terms K]
"""
import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import service_files as sf  # noqa: E402

REQUEST_MAGIC = 0x51534852  # "RHSQ"
VERSION = 1
AND, OR = 1, 2
HEADER = struct.Struct("<IHHQ")
BLOCK = 4096


def vocabulary(image):
    """(term, df) of every dictionary entry, read from the image (docs/search-index.md)."""
    with open(image, "rb") as f:
        data = f.read()
    magic, version = struct.unpack_from("<II", data, 0)
    if magic != 0x58494852 or version != 1:
        raise SystemExit(f"make_queries: {image} is not a version-1 search index")
    n_terms = struct.unpack_from("<I", data, 28)[0]
    dict_first, dict_blocks = struct.unpack_from("<II", data, 40 + 8 * 2)
    out = []
    for b in range(dict_blocks):
        base = (dict_first + b) * BLOCK
        for i in range(BLOCK // 48):
            if len(out) == n_terms:
                break
            term, df = struct.unpack_from("<24sI", data, base + 48 * i)
            if term[0] == 0:
                break
            out.append((term.rstrip(b"\0"), df))
    return out


def body(terms):
    out = bytes([len(terms)])
    for t in terms:
        out += bytes([len(t)]) + t
    return out


def datagram(kind, b, magic=REQUEST_MAGIC, version=VERSION):
    return HEADER.pack(magic, version, kind, 0) + b


def malformed(i, rng, good_term):
    cases = [
        lambda: datagram(AND, body([good_term]), magic=0x12345678),
        lambda: datagram(AND, body([good_term]), version=2),
        lambda: datagram(3, body([good_term])),
        lambda: datagram(OR, b"\0"),
        lambda: datagram(OR, body([good_term] * 9)),
        lambda: datagram(AND, body([b"a"])),
        lambda: datagram(AND, body([b"x" * 25])),
        lambda: datagram(OR, body([good_term[:1] + b"-" + good_term[1:]])),
        lambda: datagram(AND, body([good_term, good_term])[:-1]),
        lambda: datagram(AND, body([good_term]) + b"\0"),
        lambda: datagram(OR, b""),
    ]
    return cases[i % len(cases)]()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", type=int, default=0)
    ap.add_argument("--max-terms", type=int, default=3, choices=range(1, 9))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    vocab = vocabulary(args.image)
    if not vocab:
        raise SystemExit("make_queries: empty vocabulary")
    by_df = sorted(vocab, key=lambda v: (-v[1], v[0]))
    top = max(1, len(by_df) // 100)
    bands = {"common": [t for t, _ in by_df[:top]],
             "rare": [t for t, df in by_df[top:] if df <= 2],
             "medium": [t for t, df in by_df[top:] if df > 2]}
    bands = {k: v for k, v in bands.items() if v}
    names = sorted(bands)
    bad_at = set()
    if args.malformed > 0:
        step = args.count / args.malformed
        bad_at = {int(i * step + step / 2) for i in range(min(args.malformed, args.count))}
    records = []
    nbad = 0
    for i in range(args.count):
        if i in bad_at:
            records.append(malformed(nbad, rng, bands[names[0]][0]))
            nbad += 1
            continue
        kind = rng.choice((AND, OR))
        terms = []
        for _ in range(rng.randint(1, args.max_terms)):
            t = rng.choice(bands[rng.choice(names)])
            if rng.random() < 0.1:
                t = t.upper() if rng.random() < 0.5 else t[:1].upper() + t[1:]
            terms.append(t)
        records.append(datagram(kind, body(terms)))
    sf.write_request_file(args.out, records)
    print(f"make_queries: {args.out}: {len(records)} requests ({nbad} malformed), "
          f"vocabulary {len(vocab)} terms", file=sys.stderr)


if __name__ == "__main__":
    main()
