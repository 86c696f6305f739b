"""The documents of the search workload's corpora (shared by build_index.py and oracle.py).

A corpus is a deterministic list of (path, title, text bytes): the document ids 0..N-1 are the
positions in that list. This module decides only *what text a document is*; tokenisation,
indexing and scoring live elsewhere (build_index.py writes the index, oracle.py re-tokenises the
text itself with its own code). Sources (docs/search-index.md):
  copyright  every /usr/share/doc/*/copyright and /usr/share/common-licenses/* file, raw bytes
  man        every /usr/share/man/man*/*.gz, gunzipped, roff requests and escapes stripped
  gcide      /usr/share/dictd/gcide.dict.dz (dict-gcide): one index entry = one document
Paths are sorted bytewise (glob results sorted as str, which is the same for ASCII paths).
"""
import base64
import glob
import gzip
import os
import re

CORPORA = ("copyright", "man", "gcide")
GCIDE_DICT = "/usr/share/dictd/gcide.dict.dz"
GCIDE_INDEX = "/usr/share/dictd/gcide.index"

# roff escapes: \fX \f(XX \f[..] \(XX \*X \*(XX \*[..] \sN \s+N \[..] and any other \X.
_ESCAPE = re.compile(rb"\\(?:f(?:\(..|\[[^\]]*\]|.)|\(..|\*(?:\(..|\[[^\]]*\]|.)|s[+-]?\d+|"
                     rb"\[[^\]]*\]|[&%:]|.)")


def _escape_repl(m):
    # \& \% \: are zero-width in roff; every other escape becomes a separator.
    return b"" if m.group(0)[1:2] in (b"&", b"%", b":") else b" "


def strip_roff(data):
    """Simple roff stripping: comment lines dropped, the request name of a request line
    (starting with '.' or "'") dropped (its arguments kept), escapes replaced as above."""
    out = []
    for line in data.split(b"\n"):
        if line.startswith((b'.\\"', b"'\\\"", b'\\"')):
            continue
        if line.startswith((b".", b"'")):
            parts = line.split(None, 1)
            line = parts[1] if len(parts) > 1 else b""
        out.append(_ESCAPE.sub(_escape_repl, line))
    return b"\n".join(out)


def _b64(s):
    """dictd's base64 numbers (A-Za-z0-9+/ digits, most significant first)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    v = 0
    for c in s:
        v = v * 64 + alphabet.index(c)
    return v


def paths(corpus):
    if corpus == "copyright":
        return sorted(glob.glob("/usr/share/doc/*/copyright") +
                      glob.glob("/usr/share/common-licenses/*"))
    if corpus == "man":
        return sorted(glob.glob("/usr/share/man/man*/*.gz"))
    if corpus == "gcide":
        if not os.path.exists(GCIDE_DICT) or not os.path.exists(GCIDE_INDEX):
            raise SystemExit(f"corpus gcide needs {GCIDE_DICT} and {GCIDE_INDEX} (dict-gcide)")
        return [GCIDE_DICT]
    raise SystemExit(f"unknown corpus {corpus!r} (one of {', '.join(CORPORA)})")


def documents(corpus, max_docs=None):
    """Yields (path, title, text) in id order, at most max_docs (None = all)."""
    n = 0
    if corpus == "gcide":
        paths(corpus)
        with gzip.open(GCIDE_DICT, "rb") as f:
            data = f.read()
        entries = []
        with open(GCIDE_INDEX, "rb") as f:
            for line in f:
                fields = line.rstrip(b"\n").split(b"\t")
                if len(fields) < 3 or fields[0].startswith(b"00-database"):
                    continue
                entries.append((_b64(fields[1].decode()), _b64(fields[2].decode()),
                                fields[0].decode("latin-1")))
        entries.sort()
        for off, length, word in entries:
            if max_docs is not None and n >= max_docs:
                return
            yield f"{GCIDE_DICT}@{off}", word, data[off:off + length]
            n += 1
        return
    for p in paths(corpus):
        if max_docs is not None and n >= max_docs:
            return
        if not os.path.isfile(p):
            continue
        try:
            if corpus == "man":
                with gzip.open(p, "rb") as f:
                    text = strip_roff(f.read())
                title = os.path.basename(p)[:-3]
            else:
                with open(p, "rb") as f:
                    text = f.read()
                title = (os.path.basename(os.path.dirname(p)) if p.endswith("/copyright")
                         else "license:" + os.path.basename(p))
        except (OSError, EOFError, gzip.BadGzipFile):
            continue  # unreadable files are not documents (the same for every reader)
        yield p, title, text
        n += 1
