"""The load generator's file formats for Python tools (docs/service-protocol.md).

write_request_file(path, datagrams) writes an "RHRQ" request file (what rehome-loadgen sends);
read_request_file(path) reads one back; read_response_log(path) reads the "RHLG" response log
rehome-loadgen writes, as a list of Record. Both files end with a CRC32 (zlib) of everything
before it; a damaged file raises ValueError with a one-line reason.
"""
import collections
import struct
import zlib

REQUEST_MAGIC, LOG_MAGIC, VERSION = b"RHRQ", b"RHLG", 1
HEADER = struct.Struct("<IHHQ")  # magic, version, kind/status, request id
REQUEST_MAGIC_WORD, RESPONSE_MAGIC_WORD = 0x51534852, 0x52534852
RECORD = struct.Struct("<QIIqqHHI")

Record = collections.namedtuple(
    "Record", "request_id record_index retries send_ns latency_ns status body")


def request(kind, body=b"", version=VERSION, magic=REQUEST_MAGIC_WORD):
    """One request datagram (its id is filled in by the load generator)."""
    return HEADER.pack(magic, version, kind, 0) + body


def _unwrap(data, magic, what):
    if len(data) < 12 or data[:4] != magic:
        raise ValueError(f"{what}: bad magic")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != VERSION:
        raise ValueError(f"{what}: version {version} (expected {VERSION})")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]):
        raise ValueError(f"{what}: CRC32 mismatch")
    return data[8:-4]


def write_request_file(path, datagrams):
    out = bytearray(REQUEST_MAGIC + struct.pack("<II", VERSION, len(datagrams)))
    for d in datagrams:
        if not 16 <= len(d) <= 1472:
            raise ValueError(f"a request datagram is {len(d)} bytes (16..1472)")
        out += struct.pack("<I", len(d)) + d
    out += struct.pack("<I", zlib.crc32(out))
    with open(path, "wb") as f:
        f.write(out)


def read_request_file(path):
    with open(path, "rb") as f:
        body = _unwrap(f.read(), REQUEST_MAGIC, path)
    (count,) = struct.unpack_from("<I", body, 0)
    pos, out = 4, []
    for i in range(count):
        if pos + 4 > len(body):
            raise ValueError(f"{path}: record {i} truncated")
        (length,) = struct.unpack_from("<I", body, pos)
        out.append(bytes(body[pos + 4:pos + 4 + length]))
        pos += 4 + length
    if pos != len(body):
        raise ValueError(f"{path}: bytes after the last record")
    return out


def read_response_log(path):
    with open(path, "rb") as f:
        body = _unwrap(f.read(), LOG_MAGIC, path)
    pos, out = 0, []
    while pos < len(body):
        if pos + RECORD.size > len(body):
            raise ValueError(f"{path}: record {len(out)} truncated")
        rid, index, retries, send_ns, latency_ns, status, _, length = RECORD.unpack_from(body, pos)
        pos += RECORD.size
        out.append(Record(rid, index, retries, send_ns, latency_ns, status,
                          bytes(body[pos:pos + length])))
        pos += length
    return out
