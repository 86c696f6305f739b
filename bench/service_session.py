#!/usr/bin/env python3
"""One client session against a guest network service, then the harness's stop request.

Used by the fault campaigns (bench/faultcampaign/workloads.py: search, oltp): waits until the
service answers (ARP resolved), runs rehome-loadgen with the request file (--load, --count),
writing its response log, then sends the stop request (kind 0xfff0, body "stop";
docs/service-protocol.md) until it is answered, so the guest finishes and rehome exits 0. The
campaign's oracle then checks the log. Exit status: 0; 1 when the service never answered, the
load generator failed or the stop was not answered within --stop-timeout-s (the run's outcome
is then decided by what rehome and the guest did).
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_files as sf  # noqa: E402

STOP_KIND, STOP_BODY = 0xFFF0, b"stop"


def exchange(sock, kind, body, rid, deadline, every=0.1):
    """Sends the request every `every` s until an answer with its id comes or the deadline."""
    datagram = bytearray(sf.request(kind, body))
    datagram[8:16] = rid.to_bytes(8, "little")
    while time.monotonic() < deadline:
        sock.send(bytes(datagram))
        end = time.monotonic() + every
        while time.monotonic() < end:
            sock.settimeout(max(0.001, end - time.monotonic()))
            try:
                reply = sock.recv(2048)
            except (socket.timeout, ConnectionRefusedError):
                continue
            if len(reply) >= 16 and int.from_bytes(reply[:4], "little") == \
                    sf.RESPONSE_MAGIC_WORD and int.from_bytes(reply[8:16], "little") == rid:
                return int.from_bytes(reply[6:8], "little")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--target", required=True, help="IP:PORT")
    ap.add_argument("--requests", required=True)
    ap.add_argument("--out", required=True, help="the response log")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--closed", type=int, default=2, help="requests outstanding")
    ap.add_argument("--start-timeout-s", type=float, default=30)
    ap.add_argument("--stop-timeout-s", type=float, default=10)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, int(port)))
    # An unknown kind gets status 1 from either service: the service is up.
    if exchange(sock, 0xFFFF, b"", 1 << 62, time.monotonic() + args.start_timeout_s) is None:
        print("service_session: the service never answered", file=sys.stderr)
        return 1
    run = subprocess.run([args.loadgen, "--target", args.target, "--requests", args.requests,
                          "--out", args.out, "--closed", str(args.closed), "--count",
                          str(args.count)], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    if run.returncode != 0:
        print(f"service_session: rehome-loadgen exited {run.returncode}: {run.stderr.strip()}",
              file=sys.stderr)
        return 1
    status = exchange(sock, STOP_KIND, STOP_BODY, (1 << 62) + 1,
                      time.monotonic() + args.stop_timeout_s)
    if status != 0:
        print(f"service_session: stop request answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
