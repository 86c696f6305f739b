#!/usr/bin/env python3
"""guest/tools/echo_peer.py: host side of the rehome test guest's `echo` workload.

Connects to the UNIX socket of the guest's virtio-console (e.g. QEMU
`-chardev socket,id=c0,path=SOCK,server=on` + `-device virtconsole,chardev=c0`), answers every
line `REQ <seq> <payload>` with `RSP <seq> <payload reversed>` and exits when the socket closes.
A line that is not a well-formed request is answered with `ERR <line>` (so the guest sees a
mismatch) and reported on stderr. Single-threaded; one connection.

Usage: echo_peer.py SOCKET_PATH [--connect-timeout SECONDS] [--corrupt-seq N] [--summary FILE]
--corrupt-seq N flips one payload byte of the response to request N (a fault-injection aid
for testing that the guest detects corruption).
--summary FILE writes, at the end, a JSON object {"answered", "malformed", "in_order",
"last_seq"}: in_order is true when the request sequence numbers were exactly 1, 2, 3, ...
(no request lost, repeated or reordered on its way out of the guest).
Exit: 0 after the peer closed the socket, 1 when the socket could not be connected in time or a
malformed request was seen, 2 on bad arguments.
"""
import argparse
import json
import socket
import sys
import time


def connect(path, timeout_s):
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as e:
            sock.close()
            if time.monotonic() >= deadline:
                print(f"echo_peer: cannot connect to {path}: {e}", file=sys.stderr)
                return None
            time.sleep(delay)  # polling for the socket file to appear, bounded by the deadline
            delay = min(delay * 2, 0.2)


def answer(line, corrupt_seq):
    """Returns (response bytes, ok) for one request line (without the newline)."""
    parts = line.split(b" ", 2)
    if len(parts) == 3 and parts[0] == b"REQ" and parts[1].isdigit() and parts[2]:
        payload = bytearray(parts[2][::-1])
        if int(parts[1]) == corrupt_seq:
            payload[0] ^= 0x01
        return b"RSP " + parts[1] + b" " + bytes(payload) + b"\n", True
    return b"ERR " + line + b"\n", False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("socket_path")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--corrupt-seq", type=int, default=-1)
    parser.add_argument("--summary", default=None)
    args = parser.parse_args()
    sock = connect(args.socket_path, args.connect_timeout)
    if sock is None:
        return 1
    pending = b""
    answered = 0
    malformed = 0
    last_seq = 0
    in_order = True
    with sock:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            out = []
            for line in lines:
                response, ok = answer(line, args.corrupt_seq)
                if ok:
                    seq = int(line.split(b" ", 2)[1])
                    in_order = in_order and seq == last_seq + 1
                    last_seq = seq
                else:
                    malformed += 1
                    print(f"echo_peer: malformed request {line[:80]!r}", file=sys.stderr)
                out.append(response)
                answered += 1
            if out:
                try:
                    sock.sendall(b"".join(out))
                except (BrokenPipeError, ConnectionResetError):
                    break
    print(f"echo_peer: answered {answered} lines, {malformed} malformed", file=sys.stderr)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"answered": answered, "malformed": malformed, "in_order": in_order,
                       "last_seq": last_seq}, f)
    return 1 if malformed else 0


if __name__ == "__main__":
    sys.exit(main())
