#!/usr/bin/env python3
"""virtio I/O: virtio-blk throughput and virtio-console echo cycle time, side by side for rehome
monolithic, rehome split and QEMU microvm (1 vCPU each, the same guest ELF).

- blk, `workload=blk steps=N seed=1` on a fresh 32 MiB raw image per run (docs/guest-abi.md),
  by default on /dev/shm (tmpfs: fdatasync is nearly free, so the figure is the VMM's request
  path, not the host disk; `--image-dir` puts it elsewhere, e.g. on a disk file system):
  per step one 4 KiB write and one 4 KiB read-back, a flush every 16 steps, then a final pass
  that flushes and reads back every distinct block written. The guest checks every read. The
  requests of a run are counted from its done line, `blk done steps=N writes=W reads=R
  flushes=F` (requests = W + R + F, data = 4 KiB * (W + R)); throughput =
  (requests(N_hi) - requests(N_lo)) / (T(N_hi) - T(N_lo)) of whole-process wall times, which
  cancels exec, boot, device set-up and teardown. MiB/s is 4 KiB data requests only. CPU
  µs/request: the same difference over user + system time of the VMM and the processes it
  reaped (rehome's L1s).
- echo, `workload=echo steps=N`: the guest sends `REQ <seq> <payload>` on the virtio console and
  waits for `RSP <seq> <payload reversed>` before the next request. The host peer is this
  script: it connects to the console's UNIX socket (rehome `--console-socket`, QEMU
  `-chardev socket` + `virtconsole`), answers every request at once and timestamps the arrival
  of each REQ line (time.perf_counter_ns right after recv() returns). The reported sample is the
  cycle time, arrival(REQ k+1) - arrival(REQ k): one complete request/response cycle, i.e. the
  peer's reply (parse + send, measured separately as "peer service"), the VMM carrying RSP from
  the socket into the guest's receive buffer, the guest noticing it (it polls used.idx), checking
  it, re-posting the receive buffer (a notify exit), building REQ k+1 and notifying the transmit
  queue (an exit), and the VMM writing REQ k+1 to the socket. It exceeds the guest-perceived
  round trip (which cannot be timed from the host) by the guest's own CPL3 work between requests
  (a few µs) and the peer's service time. Reported: mean, p50, p95, p99 per run; tables give
  medians of the per-run values over repetitions, plus pooled percentiles of all samples.
Checks per run: exit status (rehome 0, QEMU 1 = guest value 0 through isa-debug-exit), the done
line with the asked step count (blk: writes=N), for echo every request well formed with
consecutive seq 1..N and the peer saw EOF. rehome split's failover count (from its exit line)
is summed and printed: on a loaded host an L1 can be judged hung and failed over mid-run, which
the run survives but which shows in its timing. Repetitions run every VMM back to back in an order
that reverses between repetitions.
"""
import argparse
import os
import re
import resource
import socket
import subprocess
import tempfile
import time

import bench_lib as b

BLOCK = 4096


def vmms(with_qemu):
    out = [("rehome", m) for m in b.rehome_modes("monolithic,split")]
    if with_qemu:
        out.append(("qemu", None))
    return out


def label(vmm):
    return b.rehome_label(vmm[1]) if vmm[0] == "rehome" else "qemu-microvm"


def qemu_io_cmd(cmdline, extra):
    """bench_lib's QEMU microvm line with ACPI off (virtio-mmio entries on the command line),
    modern virtio-mmio transports and the given device arguments (guest/qemu_peer_test.sh)."""
    cmd = b.qemu_cmd(cmdline)
    cmd[cmd.index("microvm")] = "microvm,acpi=off"
    return cmd + ["-global", "virtio-mmio.force-legacy=false", *extra]


def blk_run(vmm, n, imagedir):
    """(wall s, CPU s, requests, data requests) of one checked blk run on a fresh image. CPU is
    user + system time of the VMM and every process it waited for (rehome's L1 processes)."""
    image = os.path.join(imagedir, "disk.img")
    if os.path.exists(image):
        os.unlink(image)
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    cmdline = f"workload=blk steps={n} seed=1"
    if vmm[0] == "rehome":
        cmd, ok = b.rehome_cmd(cmdline, mode=vmm[1], extra=("--disk", image)), b.REHOME_OK
    else:
        cmd = qemu_io_cmd(cmdline, ["-drive", f"id=d0,file={image},format=raw,if=none",
                                    "-device", "virtio-blk-device,drive=d0"])
        ok = b.QEMU_OK
    done = rf"^rehome-guest: blk done steps={n} writes={n} reads=(\d+) flushes=(\d+)$"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, proc = b.timed(cmd, ok, expect_stdout=[done])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reads, flushes = (int(x) for x in re.search(done, proc.stdout, re.MULTILINE).groups())
    return wall, cpu, n + reads + flushes, n + reads, failovers(vmm, proc)


def connect(path, deadline, proc):
    """Connects to the console socket, polling (bounded) until the VMM has created it."""
    while True:
        if proc.poll() is not None:
            b.fail(f"{proc.args[0]} exited {proc.returncode} before the console peer connected")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as e:
            sock.close()
            if time.monotonic() >= deadline:
                b.fail(f"cannot connect to the console socket {path}: {e}")
            time.sleep(0.005)  # waiting for the VMM to create the socket, bounded above


def respond(sock, n):
    """Answers requests until EOF; returns (REQ arrival times ns, peer service times ns)."""
    arrivals, service = [], []
    pending = b""
    sock.settimeout(60)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            b.fail("echo: no console data for 60 s")
        now = time.perf_counter_ns()
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        out = []
        for line in lines:
            parts = line.split(b" ", 2)
            seq = len(arrivals) + 1
            if len(parts) != 3 or parts[0] != b"REQ" or parts[1] != str(seq).encode() \
                    or not parts[2]:
                b.fail(f"echo: request {seq}: unexpected line {line[:80]!r}")
            arrivals.append(now)
            out.append(b"RSP " + parts[1] + b" " + parts[2][::-1] + b"\n")
        if out:
            try:
                sock.sendall(b"".join(out))
            except (BrokenPipeError, ConnectionResetError):
                break
            service.append(time.perf_counter_ns() - now)
    if len(arrivals) != n:
        b.fail(f"echo: peer saw {len(arrivals)} requests, expected {n}")
    return arrivals, service


def echo_run(vmm, n, workdir):
    """(cycle times us, peer service times us) of one checked echo run."""
    path = os.path.join(workdir, "con.sock")
    if os.path.exists(path):
        os.unlink(path)
    cmdline = f"workload=echo steps={n} seed=1"
    if vmm[0] == "rehome":
        cmd = b.rehome_cmd(cmdline, mode=vmm[1], extra=("--console-socket", path))
        ok = b.REHOME_OK
    else:
        cmd = qemu_io_cmd(cmdline, ["-chardev", f"socket,id=c0,path={path},server=on,wait=on",
                                    "-device", "virtio-serial-device",
                                    "-device", "virtconsole,chardev=c0"])
        ok = b.QEMU_OK
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True)
        try:
            with connect(path, time.monotonic() + 30, proc) as sock:
                arrivals, service = respond(sock, n)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, rc, out.read(), err.read())
    if rc not in ok:
        b.fail(f"{' '.join(cmd)} exited {rc} (expected {ok})", result)
    if not re.search(rf"^rehome-guest: echo done steps={n}$", result.stdout, re.MULTILINE):
        b.fail(f"{' '.join(cmd)}: no `echo done steps={n}` line", result)
    cycles = [(arrivals[k + 1] - arrivals[k]) / 1e3 for k in range(n - 1)]
    return cycles, [s / 1e3 for s in service], failovers(vmm, result)


def failovers(vmm, proc):
    """Failovers rehome split reported on its exit line (0 for the other VMMs): an L1 that the
    loaded host kept off a core past --hang-timeout-ms counts as hung."""
    if vmm != ("rehome", "split"):
        return 0
    m = re.search(r"failovers: (\d+)", proc.stderr)
    if m is None:
        b.fail(f"{' '.join(proc.args)}: no `failovers: N` on stderr", proc)
    return int(m.group(1))


def summary(values):
    return {"mean": sum(values) / len(values), "p50": b.percentile(values, 50),
            "p95": b.percentile(values, 95), "p99": b.percentile(values, 99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blk-lo", type=int, default=200, help="blk steps, short run")
    parser.add_argument("--blk-hi", type=int, default=1000, help="blk steps, long run")
    parser.add_argument("--echo-steps", type=int, default=500, help="echo requests per run")
    parser.add_argument("--reps", type=int, default=5, help="repetitions")
    parser.add_argument("--no-qemu", action="store_true", help="rehome only")
    parser.add_argument("--image-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the blk image lives (default /dev/shm, else the temp dir)")
    args = parser.parse_args()
    if not 0 < args.blk_lo < args.blk_hi or args.echo_steps < 3 or args.reps < 1:
        b.fail("need 0 < --blk-lo < --blk-hi, --echo-steps >= 3 and --reps >= 1")
    b.check_inputs()
    targets = vmms(not args.no_qemu and b.QEMU is not None)
    load_start = f"{os.getloadavg()[0]:.2f}"
    # (requests/s, MiB/s, T(N_hi) s, CPU us/request) per repetition
    blk = {v: [] for v in targets}
    echo = {v: [] for v in targets}  # summary dict per repetition
    pooled = {v: [] for v in targets}
    peer = {v: [] for v in targets}  # mean peer service us per repetition
    fo = {"blk": 0, "echo": 0}  # failovers in rehome split runs
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rehome-virtio-io-") as workdir, \
            tempfile.TemporaryDirectory(prefix="rehome-virtio-io-",
                                        dir=args.image_dir) as imagedir:
        fstype = subprocess.run(["stat", "-f", "-c", "%T", imagedir], capture_output=True,
                                text=True).stdout.strip() or "?"
        for rep in range(args.reps):
            order = targets if rep % 2 == 0 else list(reversed(targets))
            for vmm in order:
                t_lo, c_lo, req_lo, data_lo, f_lo = blk_run(vmm, args.blk_lo, imagedir)
                t_hi, c_hi, req_hi, data_hi, f_hi = blk_run(vmm, args.blk_hi, imagedir)
                fo["blk"] += f_lo + f_hi
                if t_hi <= t_lo:
                    b.fail(f"blk {label(vmm)}: T(N_hi) {t_hi:.3f} s <= T(N_lo) {t_lo:.3f} s")
                dt = t_hi - t_lo
                blk[vmm].append(((req_hi - req_lo) / dt,
                                 (data_hi - data_lo) * BLOCK / (1 << 20) / dt, t_hi,
                                 (c_hi - c_lo) / (req_hi - req_lo) * 1e6))
            for vmm in reversed(order):
                cycles, service, f = echo_run(vmm, args.echo_steps, workdir)
                fo["echo"] += f
                echo[vmm].append(summary(cycles))
                pooled[vmm].extend(cycles)
                peer[vmm].append(sum(service) / len(service))
    elapsed = time.monotonic() - started
    load_end = f"{os.getloadavg()[0]:.2f}"
    base = targets[0]

    print(f"### virtio-blk throughput and virtio-console echo cycle time (median of {args.reps} "
          f"alternating repetitions, {elapsed:.0f} s; load average {load_start} at the start, "
          f"{load_end} at the end)\n")
    print(f"virtio-blk, `workload=blk`, N={args.blk_lo} vs {args.blk_hi} steps, 32 MiB raw image "
          f"under {args.image_dir or tempfile.gettempdir()} ({fstype}); requests = writes + reads "
          "+ flushes from the done line\n")
    print("| VMM | requests/s | min-max | MiB/s (4 KiB data requests) | wall us/request | "
          f"CPU us/request | wall s, N={args.blk_hi} run | requests/s vs {label(base)} |")
    print("|" + " --- |" * 8)
    base_rps = b.median([r[0] for r in blk[base]])
    for vmm in targets:
        rps = [r[0] for r in blk[vmm]]
        m = b.median(rps)
        print(f"| {label(vmm)} | {m:.0f} | {min(rps):.0f}-{max(rps):.0f} | "
              f"{b.median([r[1] for r in blk[vmm]]):.2f} | {1e6 / m:.0f} | "
              f"{b.median([r[3] for r in blk[vmm]]):.0f} | "
              f"{b.median([r[2] for r in blk[vmm]]):.2f} | {m / base_rps:.2f} |")
    print()
    print(f"virtio-console echo, `workload=echo steps={args.echo_steps}`: host-observed cycle "
          "time = interval between consecutive REQ arrivals at the peer, us "
          f"({args.echo_steps - 1} samples per run)\n")
    print("| VMM | mean | p50 | p95 | p99 | pooled p95 | pooled p99 | pooled max | "
          f"mean vs {label(base)} | peer service mean |")
    print("|" + " --- |" * 10)
    base_mean = b.median([s["mean"] for s in echo[base]])
    for vmm in targets:
        med = {k: b.median([s[k] for s in echo[vmm]]) for k in ("mean", "p50", "p95", "p99")}
        print(f"| {label(vmm)} | {med['mean']:.0f} | {med['p50']:.0f} | {med['p95']:.0f} | "
              f"{med['p99']:.0f} | {b.percentile(pooled[vmm], 95):.0f} | "
              f"{b.percentile(pooled[vmm], 99):.0f} | {max(pooled[vmm]):.0f} | "
              f"{med['mean'] / base_mean:.2f} | {b.median(peer[vmm]):.1f} |")
    print()
    print("- blk requests/s per repetition: " + "; ".join(
        f"{label(v)} " + ", ".join(f"{r[0]:.0f}" for r in blk[v]) for v in targets))
    print("- echo mean cycle us per repetition: " + "; ".join(
        f"{label(v)} " + ", ".join(f"{s['mean']:.0f}" for s in echo[v]) for v in targets))
    print(f"- rehome split runs that failed over (L1 judged hung): blk {fo['blk']} failovers, "
          f"echo {fo['echo']} failovers (all runs still passed their checks)")
    print("- echo p99 cycle us per repetition: " + "; ".join(
        f"{label(v)} " + ", ".join(f"{s['p99']:.0f}" for s in echo[v]) for v in targets))


if __name__ == "__main__":
    main()
