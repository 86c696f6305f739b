#!/usr/bin/env python3
"""Checks the search service's answers against an independent BM25 computation.

Reads the index's side file (IMAGE.json: corpus, max_docs, document list), re-reads the raw
corpus through corpus.py (which decides only what text each document is) and re-tokenises it
with its own code (ASCII case folding, maximal [a-z0-9] runs of length 2..24; it never reads the
index image), then scores in floating point: BM25 with k1 = 1.2, b = 0.75, avgdl = T / N,
idf = ln(1 + (N - df + 0.5) / (df + 0.5)). For every answered record of the response log (the
load generator's format, docs/service-protocol.md) it recomputes the expected reply of the
request it answers and checks: the status (0, or 1 for a malformed request; an error status has
an empty body), the match count, the result count (min(10, matches)), that every returned
document matches, each returned score within the fixed-point tolerance of the oracle's score,
the order (non-increasing returned scores, ties by ascending document id), and that the top 10 is
right: no returned document's oracle score is below another's (returned later, or not returned)
by more than twice the tolerance. Tolerance: (4 * terms + 4) / 65536 (docs/search-index.md).

Prints a one-line verdict; --json FILE writes checked, correct, wrong (count and the first few
explained), unanswered. Exit 0 when nothing is wrong (and, with --require-all, nothing is
unanswered), 1 otherwise, 2 on unreadable inputs.

usage: oracle.py INDEX_IMAGE.json REQUESTS RESPONSE_LOG [--json OUT] [--require-all]
"""
import argparse
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import corpus as corpora  # noqa: E402
import service_files as sf  # noqa: E402

REQUEST_MAGIC = 0x51534852
RESPONSE_OK, RESPONSE_MALFORMED = 0, 1
K1, B = 1.2, 0.75
TOP = 10
# The scoring clamps a term's tf here (docs/search-index.md; the guest's 64-bit intermediates).
MAX_TF = 32767

# Independent tokeniser: every byte outside [0-9A-Za-z] becomes a space, A-Z fold to a-z.
_FOLD = bytes((c + 32) if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122) else 32
              for c in range(256))


def tokenise(text):
    return [w for w in text.translate(_FOLD).split() if 2 <= len(w) <= 24]


class Model:
    def __init__(self, side):
        self.docs = side["docs"] if "docs" in side else len(side["documents"])
        self.tf = {}  # term -> {doc: tf}
        self.dl = []
        listed = side["documents"]
        for d, (path, _title, text) in enumerate(corpora.documents(side["corpus"],
                                                                   side.get("max_docs"))):
            if d >= len(listed) or listed[d]["path"] != path:
                raise SystemExit(f"oracle: document {d} is {path}, the side file says "
                                 f"{listed[d]['path'] if d < len(listed) else 'nothing'}")
            words = tokenise(text)
            self.dl.append(len(words))
            for w in words:
                post = self.tf.setdefault(w, {})
                post[d] = post.get(d, 0) + 1
        if len(self.dl) != len(listed):
            raise SystemExit(f"oracle: the corpus has {len(self.dl)} documents now, the side "
                             f"file lists {len(listed)}")
        self.n = len(self.dl)
        self.avgdl = sum(self.dl) / self.n

    def idf(self, df):
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))

    def evaluate(self, kind, terms):
        """{doc: score} of the matching documents."""
        scores = {}
        for t in terms:
            post = self.tf.get(t, {})
            idf = self.idf(len(post)) if post else 0.0
            for d, tf in post.items():
                tf = min(tf, MAX_TF)
                k = K1 * (1 - B + B * self.dl[d] / self.avgdl)
                scores[d] = scores.get(d, 0.0) + idf * tf * (K1 + 1) / (tf + k)
        if kind == 1:  # AND: the document contains every query term
            return {d: s for d, s in scores.items()
                    if all(d in self.tf.get(t, {}) for t in set(terms))}
        return scores  # OR: any term (every scored document has one)


def parse_request(dgram):
    """(kind, [terms]) of a well-formed request, None for a malformed one, 'drop' when it is not
    even a header."""
    if len(dgram) < 16:
        return "drop"
    magic, version, kind = struct.unpack_from("<IHH", dgram, 0)
    body = dgram[16:]
    if magic != REQUEST_MAGIC or version != 1 or kind not in (1, 2) or not body:
        return None
    count, at, terms = body[0], 1, []
    if not 1 <= count <= 8:
        return None
    for _ in range(count):
        if at >= len(body):
            return None
        n = body[at]
        at += 1
        word = body[at:at + n]
        if len(word) != n or not 2 <= n <= 24:
            return None
        word = word.lower() if word.isascii() else None
        if word is None or not all(48 <= c <= 57 or 97 <= c <= 122 for c in word):
            return None
        terms.append(word)
        at += n
    return (kind, terms) if at == len(body) else None


def read_requests(path):
    try:
        return sf.read_request_file(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"oracle: {e}")


def read_log(path):
    try:
        records = sf.read_response_log(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"oracle: {e}")
    return [{"request_id": r.request_id, "record": r.record_index, "retries": r.retries,
             "latency_ns": r.latency_ns, "status": r.status, "body": r.body} for r in records]


def check(model, req, entry):
    """None when the reply is right, else a reason."""
    status, body = entry["status"], entry["body"]
    if req is None:
        if status != RESPONSE_MALFORMED:
            return f"malformed request answered with status {status}, want 1"
        return None if not body else f"status 1 with a {len(body)}-byte body"
    if req == "drop":
        return "a datagram shorter than the header was answered"
    kind, terms = req
    if status != RESPONSE_OK:
        return f"status {status}, want 0"
    if len(body) < 5:
        return f"body of {len(body)} bytes"
    matches, count = struct.unpack_from("<IB", body, 0)
    if len(body) != 5 + 8 * count:
        return f"body of {len(body)} bytes for {count} results"
    results = [struct.unpack_from("<II", body, 5 + 8 * i) for i in range(count)]
    expect = model.evaluate(kind, terms)
    tol = (4 * len(terms) + 4) / 65536.0
    if matches != len(expect):
        return f"matches {matches}, want {len(expect)}"
    if count != min(TOP, len(expect)):
        return f"{count} results, want {min(TOP, len(expect))}"
    seen = set()
    for rank, (doc, q) in enumerate(results):
        if doc in seen:
            return f"document {doc} returned twice"
        seen.add(doc)
        if doc not in expect:
            return f"rank {rank}: document {doc} does not match"
        if abs(q / 65536.0 - expect[doc]) > tol:
            return (f"rank {rank}: document {doc} score {q / 65536.0:.6f}, oracle "
                    f"{expect[doc]:.6f} (tolerance {tol:.6f})")
        if rank > 0:
            pd, pq = results[rank - 1]
            if not (pq > q or (pq == q and pd < doc)):
                return f"rank {rank}: ({doc}, {q}) ordered after ({pd}, {pq})"
    # Top-k: everything returned must beat (within tolerance) everything ranked after it.
    rest = [s for d, s in expect.items() if d not in seen]
    floor_rest = max(rest, default=-math.inf)
    for rank, (doc, _) in enumerate(results):
        later = [expect[d] for d, _ in results[rank + 1:]]
        worst_after = max(later + [floor_rest])
        if expect[doc] < worst_after - 2 * tol:
            return (f"rank {rank}: document {doc} (oracle {expect[doc]:.6f}) ranked above a "
                    f"document scoring {worst_after:.6f}")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("side")
    ap.add_argument("requests")
    ap.add_argument("log")
    ap.add_argument("--json")
    ap.add_argument("--require-all", action="store_true", help="an unanswered request is wrong")
    args = ap.parse_args()
    with open(args.side) as f:
        side = json.load(f)
    requests = [parse_request(r) for r in read_requests(args.requests)]
    log = read_log(args.log)
    model = Model(side)
    checked = correct = unanswered = 0
    wrong = []
    cache = {}
    for e in log:
        if e["latency_ns"] < 0:
            unanswered += 1
            continue
        checked += 1
        if e["record"] >= len(requests):
            wrong.append({"request_id": e["request_id"], "why": "record index out of range"})
            continue
        key = (e["record"], e["status"], e["body"])
        if key not in cache:
            cache[key] = check(model, requests[e["record"]], e)
        why = cache[key]
        if why is None:
            correct += 1
        else:
            wrong.append({"request_id": e["request_id"], "record": e["record"], "why": why})
    ok = not wrong and (unanswered == 0 or not args.require_all)
    verdict = (f"search oracle: {'OK' if ok else 'FAIL'}: checked={checked} correct={correct} "
               f"wrong={len(wrong)} unanswered={unanswered} docs={model.n}")
    if wrong:
        verdict += f" first_wrong=[request {wrong[0]['request_id']}: {wrong[0]['why']}]"
    print(verdict)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checked": checked, "correct": correct, "wrong": len(wrong),
                       "wrong_examples": wrong[:10], "unanswered": unanswered, "ok": ok}, f,
                      indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
