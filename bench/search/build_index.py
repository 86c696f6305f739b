#!/usr/bin/env python3
"""Builds the search workload's index image from a text corpus (docs/search-index.md).

Writes IMAGE, a raw disk image for `rehome run --disk IMAGE` holding the inverted index of the
corpus in 4 KiB blocks (superblock, per-block CRC32 table, term index, term dictionary, document
lengths, postings), and IMAGE.json, a small side file: the corpus, N, the parameters, and
id -> path/title of every document. The guest's `workload=search` serves BM25 queries from it.

Tokenisation (the oracle re-implements it independently): ASCII case folding (A-Z -> a-z, other
bytes unchanged), tokens are the maximal runs of [a-z0-9]; tokens of length 2..24 are kept, all
others dropped. No stemming, no stopwords. The image is padded to --min-mib (the guest's
virtio-blk needs no minimum, but a round size is convenient). Exit 0, or 1 with a reason.

usage: build_index.py IMAGE [--corpus copyright|man|gcide] [--max-docs N] [--min-mib M]
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as corpora  # noqa: E402

BLOCK = 4096
MAGIC = 0x58494852  # "RHIX" little-endian
VERSION = 1
MIN_TOKEN, MAX_TOKEN = 2, 24
Q = 1 << 16  # Q16.16
TINDEX_ENTRY = struct.Struct("<24sII")          # first term of dict block, block, entries
DICT_ENTRY = struct.Struct("<24sIIQII")         # term, df, idf_q16, post off, post len, max tf
TINDEX_PER_BLOCK = BLOCK // TINDEX_ENTRY.size   # 128
DICT_PER_BLOCK = BLOCK // DICT_ENTRY.size       # 85
SUPER_HEAD = struct.Struct("<IIIIQIIII" + "II" * 5 + "QII")
SUPER_CRCS_AT = 96
MAX_CRC_BLOCKS = (BLOCK - 4 - SUPER_CRCS_AT) // 4  # 999 CRC-table blocks: images up to ~3.9 GiB
SECTIONS = ("crc", "tindex", "dict", "doclen", "postings")
assert SUPER_HEAD.size == SUPER_CRCS_AT

_TOKEN = re.compile(rb"[a-z0-9]+")


def tokens(text):
    return [t for t in _TOKEN.findall(text.lower()) if MIN_TOKEN <= len(t) <= MAX_TOKEN]


def varint(v):
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def idf_q16(n, df):
    return int(round(math.log(1.0 + (n - df + 0.5) / (df + 0.5)) * Q))


def blocks_for(nbytes):
    return (nbytes + BLOCK - 1) // BLOCK


def pad(data):
    return data + b"\0" * (blocks_for(len(data)) * BLOCK - len(data))


def build(docs):
    """docs: list of token lists. Returns (image bytes, stats dict)."""
    n = len(docs)
    postings = {}  # term -> list of (doc, tf)
    doclen = []
    for d, toks in enumerate(docs):
        doclen.append(len(toks))
        counts = {}
        for t in toks:
            counts[t] = counts.get(t, 0) + 1
        for t, tf in counts.items():
            postings.setdefault(t, []).append((d, tf))
    total = sum(doclen)
    if n == 0 or total == 0:
        raise SystemExit("build_index: the corpus has no tokens")
    # The guest's 64-bit fixed-point bounds (search_index.h: KArithmeticFits, kMaxIdfQ16).
    if total >= 1 << 36 or total * (3 + 9 * n) >= 1 << 64 or idf_q16(n, 1) >= 1 << 20:
        raise SystemExit("build_index: corpus too large for the guest's 64-bit arithmetic")
    terms = sorted(postings)
    post = bytearray()
    dict_entries = []
    for t in terms:
        plist = postings[t]
        off = len(post)
        prev = 0
        for d, tf in plist:
            post += varint(d - prev)
            post += varint(tf)
            prev = d
        dict_entries.append(DICT_ENTRY.pack(t, len(plist), idf_q16(n, len(plist)), off,
                                            len(post) - off, max(tf for _, tf in plist)))
    dict_blocks = []
    tindex = bytearray()
    for i in range(0, len(dict_entries), DICT_PER_BLOCK):
        chunk = dict_entries[i:i + DICT_PER_BLOCK]
        tindex += TINDEX_ENTRY.pack(terms[i], len(dict_blocks), len(chunk))
        dict_blocks.append(pad(b"".join(chunk)))
    dict_sec = b"".join(dict_blocks)
    tindex_sec = pad(bytes(tindex))
    doclen_sec = pad(struct.pack(f"<{n}I", *doclen))
    post_sec = pad(bytes(post))
    rest = [len(tindex_sec) // BLOCK, len(dict_sec) // BLOCK, len(doclen_sec) // BLOCK,
            len(post_sec) // BLOCK]
    crc_blocks = 1
    while True:
        total_blocks = 1 + crc_blocks + sum(rest)
        need = blocks_for(total_blocks * 4)
        if need == crc_blocks:
            break
        crc_blocks = need
    if crc_blocks > MAX_CRC_BLOCKS:
        raise SystemExit("build_index: index too large for one superblock's CRC list")
    firsts = []
    at = 1
    for size in [crc_blocks] + rest:
        firsts.append(at)
        at += size
    body = tindex_sec + dict_sec + doclen_sec + post_sec
    block_crcs = [0] * total_blocks
    base = 1 + crc_blocks
    for i in range(len(body) // BLOCK):
        block_crcs[base + i] = zlib.crc32(body[i * BLOCK:(i + 1) * BLOCK])
    crc_sec = pad(struct.pack(f"<{total_blocks}I", *block_crcs))
    crc_of_crc = [zlib.crc32(crc_sec[i * BLOCK:(i + 1) * BLOCK]) for i in range(crc_blocks)]
    sections = []
    for first, size in zip(firsts, [crc_blocks] + rest):
        sections += [first, size]
    avgdl_q16 = (total * Q + n // 2) // n
    head = SUPER_HEAD.pack(MAGIC, VERSION, BLOCK, n, total, avgdl_q16, len(terms), total_blocks,
                           0, *sections, len(post), len(dict_blocks), crc_blocks)
    sb = bytearray(BLOCK)
    sb[:len(head)] = head
    struct.pack_into(f"<{crc_blocks}I", sb, SUPER_CRCS_AT, *crc_of_crc)
    struct.pack_into("<I", sb, BLOCK - 4, zlib.crc32(bytes(sb[:BLOCK - 4])))
    image = bytes(sb) + crc_sec + body
    assert len(image) == total_blocks * BLOCK
    stats = {"docs": n, "terms": len(terms), "total_tokens": total, "avgdl_q16": avgdl_q16,
             "blocks": total_blocks, "postings_bytes": len(post),
             "sections": {name: {"first_block": f, "blocks": s}
                          for name, f, s in zip(SECTIONS, firsts, [crc_blocks] + rest)}}
    return image, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("--corpus", default="copyright", choices=corpora.CORPORA)
    ap.add_argument("--max-docs", type=int, default=None)
    ap.add_argument("--min-mib", type=int, default=1, help="pad the image to at least this size")
    args = ap.parse_args()
    t0 = time.time()
    meta, docs = [], []
    for path, title, text in corpora.documents(args.corpus, args.max_docs):
        meta.append({"id": len(meta), "path": path, "title": title})
        docs.append(tokens(text))
    image, stats = build(docs)
    min_bytes = args.min_mib << 20
    if len(image) < min_bytes:
        image += b"\0" * (min_bytes - len(image))
    with open(args.image, "wb") as f:
        f.write(image)
    side = {"format": "rehome-search-index", "version": VERSION, "image": os.path.abspath(args.image),
            "image_bytes": len(image), "image_crc32": zlib.crc32(image), "corpus": args.corpus,
            "max_docs": args.max_docs, "tokenizer": "ascii-fold [a-z0-9]+ len 2..24, no stopwords",
            "bm25": {"k1": 1.2, "b": 0.75}, **stats, "documents": meta}
    with open(args.image + ".json", "w") as f:
        json.dump(side, f, indent=1)
    print(f"build_index: {args.image}: {stats['docs']} docs, {stats['terms']} terms, "
          f"{stats['total_tokens']} tokens, {stats['blocks']} blocks "
          f"({stats['blocks'] * BLOCK / 2**20:.1f} MiB), {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
