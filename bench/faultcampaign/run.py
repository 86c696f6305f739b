"""One campaign run: start `rehome run` with a workload and a QMP monitor, find the target by its
role over QMP, inject one fault, watch the run to its end (or its deadline), check the result on
the host and after a failover (standby ready, QMP, a new VM), and classify it.

Everything random comes from the run's seed: the moment of the injection here, every choice of
the injector (rehome-inject --seed). The target's own state at that moment is not reproducible
and is recorded instead (docs/fault-injection.md, "Replay").
"""
import json
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from faultcampaign import outcome
from faultcampaign.qmp import Qmp, QmpError

# Faults rehome injects into itself over QMP (__org.rehome_inject-fault): deterministic points
# whose outcome is known, for checking the classifier and as a baseline.
REHOME_FAULTS = ("kill", "hang", "garbage", "assert", "die-before-commit", "die-after-commit",
                 "wrong-state", "wrong-read-data", "block")
INJECTOR_FAULTS = ("fail-stop", "register", "code", "memory", "memory-shared", "hang",
                   "livelock")
FAULTS = INJECTOR_FAULTS + tuple("rehome-" + f for f in REHOME_FAULTS) + ("none", "mutant")
EVENT_PREFIX = "__org.rehome_"
REJECTED = object()  # _inject: rehome refused the QMP fault (nothing left to inject into)


@dataclass
class RunConfig:
    build_dir: str
    source_dir: str
    fault: str
    workload: object          # a workloads.Workload
    mode: str = "split"       # split | monolithic
    target: str = "active"    # active | standby (split mode)
    rehome_args: list = field(default_factory=list)
    trigger: str = "time"     # rehome-inject --trigger
    max_steps: int = 20000
    max_run_us: int = 100
    new_vm_check: bool = True
    work_dir: str = "/tmp"
    keep_runs: bool = False   # keep each run's directory (serial, stderr, disk image)


def _wait_for(predicate, timeout, interval=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)  # polling an external process, bounded by the deadline
    return predicate()


def _no_core_dumps():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _connect(sock, proc):
    """A QMP connection to rehome's monitor (the socket file exists a moment before rehome
    listens on it)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Qmp(sock)
        except (OSError, QmpError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.005)  # polling for the listener, bounded by the deadline


def _find_target(qmp, cfg, rehome_pid):
    """(pid, tid) of the process/thread to inject into, found by role over QMP."""
    if cfg.mode == "monolithic":
        # The vCPU thread's id is 0 until the thread runs: wait for it (bounded).
        tid = {}

        def vcpu_running():
            tid["tid"] = qmp.execute("query-cpus-fast")[0]["thread-id"]
            return tid["tid"] != 0
        if not _wait_for(vcpu_running, 5.0, 0.005):
            raise RuntimeError("vCPU 0 reported no thread id over QMP")
        return rehome_pid, tid["tid"]
    found = {}

    def look():
        for l1 in qmp.execute(f"{EVENT_PREFIX}query-l1s"):
            if l1["role"] == cfg.target:
                found["pid"] = l1["pid"]
                return True
        return False
    if not _wait_for(look, 5.0, 0.01):
        raise RuntimeError(f"no {cfg.target} L1 reported over QMP")
    return found["pid"], found["pid"]


def _mode_label(cfg):
    """`split`, `monolithic`, or `split verify dual` when the run verifies."""
    args = list(cfg.rehome_args)
    for i, a in enumerate(args):
        if a == "--verify" and i + 1 < len(args):
            return f"{cfg.mode} verify {args[i + 1]}"
        if a.startswith("--verify="):
            return f"{cfg.mode} verify {a.split('=', 1)[1]}"
    return cfg.mode


def _data(event):
    return event.get("data", {})


def execute(cfg, index, seed):
    """Runs one VM with one fault; a dict with the run's parameters, observations and outcome."""
    rng = random.Random(seed)
    run_dir = os.path.join(cfg.work_dir, f"run-{index:05d}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    wl = cfg.workload
    # When: a point of the workload's active part, after the target is found.
    delay_ms = int(rng.uniform(0.05, 0.6) * wl.duration_s * 1000)
    injector_seed = rng.getrandbits(63)
    row = {"run": index, "seed": seed, "fault": cfg.fault, "workload": wl.name,
           "mode": _mode_label(cfg), "target_role": cfg.target, "delay_ms": delay_ms}
    sock = os.path.join(run_dir, "qmp.sock")
    serial_path = os.path.join(run_dir, "serial.txt")
    stderr_path = os.path.join(run_dir, "stderr.txt")
    rehome = os.path.join(cfg.build_dir, "rehome")
    cmd = [rehome, "run", "--kernel", os.path.join(cfg.build_dir, "guest", "rehome-guest.elf"),
           "--qmp", sock, "--serial-file", serial_path, "--mode", cfg.mode]
    cmd += wl.prepare(run_dir) + list(cfg.rehome_args)
    started = time.monotonic()
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, preexec_fn=_no_core_dumps)
    sides, injector, new_vm = [], None, None
    obs = outcome.Observation()
    deadline = started + 4 * wl.duration_s + 8
    qmp = None
    harness_failed = False
    try:
        if not _wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 10):
            raise RuntimeError("no QMP socket")
        if proc.poll() is None:
            qmp = _connect(sock, proc)
            sides = wl.start_side(run_dir)
            pid, tid = _find_target(qmp, cfg, proc.pid)
            row["target_pid"] = pid
            injector = _inject(cfg, qmp, pid, tid, delay_ms, injector_seed, run_dir)
            if injector is REJECTED:  # nothing was injected: left out of the statistics
                obs.injected, injector = False, None
        post_checked = 0
        while proc.poll() is None and time.monotonic() < deadline:
            if qmp is not None and qmp.events(EVENT_PREFIX + "FAILOVER_FAILED"):
                # Recovery stopped; with a monitor, rehome keeps the guest paused for `cont`.
                obs.recovery_stopped = _end_paused_guest(qmp, proc)
                break
            failovers = qmp.events(EVENT_PREFIX + "FAILOVER_COMPLETED") if qmp else []
            if len(failovers) > post_checked and qmp is not None:
                post_checked = len(failovers)
                obs.standby_ready, obs.qmp_ok = _check_after_failover(qmp)
                if cfg.new_vm_check and new_vm is None:
                    new_vm = _start_new_vm(cfg, run_dir)
            time.sleep(0.005)  # polling the run and its events until it ends or the deadline
        if proc.poll() is None:
            obs.timed_out = True
    except (QmpError, RuntimeError, OSError) as e:
        row["harness_note"] = str(e)[:200]
        # A run that ends by itself was not cut short by the harness (e.g. the monitor closed
        # because the guest finished): its exit status and checks still classify it.
        harness_failed = not _wait_for(lambda: proc.poll() is not None,
                                       max(0.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        proc.wait()
        _kill_group(proc)  # L1s that outlived L0 (a stopped one cannot notice L0 is gone)
        for p in sides:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    row["wall_s"] = round(time.monotonic() - started, 3)
    obs.exit_code = proc.returncode
    if qmp is not None:
        obs.l1_failures = [_data(e) for e in qmp.events(EVENT_PREFIX + "L1_FAILED")]
        obs.failovers = [_data(e) for e in qmp.events(EVENT_PREFIX + "FAILOVER_COMPLETED")]
        obs.failovers_failed = [_data(e) for e in qmp.events(EVENT_PREFIX + "FAILOVER_FAILED")]
        obs.divergences = [_data(e) for e in qmp.events(EVENT_PREFIX + "DIVERGENCE")]
        qmp.close()
    record = _finish_injector(injector, run_dir, row)
    if cfg.fault in INJECTOR_FAULTS:
        obs.injected = record is not None and record.get("injected", False)
    if new_vm is not None:
        try:
            obs.new_vm_ok = new_vm.wait(timeout=20) == 0
        except subprocess.TimeoutExpired:
            new_vm.kill()
            new_vm.wait()
            obs.new_vm_ok = False
    with open(stderr_path, errors="replace") as f:
        obs.stderr = f.read()
    serial = ""
    if os.path.exists(serial_path):
        with open(serial_path, errors="replace") as f:
            serial = f.read()
    if obs.exit_code == 0 and not obs.timed_out:
        obs.host_problems = wl.verify(run_dir, serial, obs.stderr)
    row.update(_observation_columns(obs, record))
    row["outcome"], row["detail"], row["wrong_data"] = outcome.classify(obs)
    if injector is not None and injector.returncode in (1, 2) and record is None:
        harness_failed = True  # rehome-inject failed (an error or usage), not the target
    if harness_failed:
        row["outcome"], row["detail"] = outcome.HARNESS_ERROR, row.get("harness_note", "")
    if not cfg.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return row


def _inject(cfg, qmp, pid, tid, delay_ms, injector_seed, run_dir):
    if cfg.fault in ("none", "mutant"):
        return None
    if cfg.fault.startswith("rehome-"):
        time.sleep(delay_ms / 1000)  # the injection moment
        try:
            qmp.execute(f"{EVENT_PREFIX}inject-fault",
                        {"target": cfg.target, "kind": cfg.fault[len("rehome-"):]})
        except QmpError:
            return REJECTED  # the guest had ended (rehome gone) or the target was gone first
        return None
    cmd = [os.path.join(cfg.build_dir, "rehome-inject"), "--pid", str(pid), "--tid", str(tid),
           "--fault", cfg.fault, "--seed", str(injector_seed), "--delay-ms", str(delay_ms),
           "--trigger", cfg.trigger, "--max-steps", str(cfg.max_steps),
           "--max-run-us", str(cfg.max_run_us)]
    with open(os.path.join(run_dir, "injector.json"), "w") as out, \
            open(os.path.join(run_dir, "injector.err"), "w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err)


def _finish_injector(injector, run_dir, row):
    """Waits for rehome-inject and returns its JSON record (None if it printed none)."""
    if injector is None:
        return None
    try:
        injector.wait(timeout=10)
    except subprocess.TimeoutExpired:
        injector.kill()
        injector.wait()
    try:
        with open(os.path.join(run_dir, "injector.json")) as f:
            text = f.read().strip()
        if text:
            return json.loads(text)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(run_dir, "injector.err")) as f:
            row["harness_note"] = ("injector: " + f.read().strip())[:200]
    except OSError:
        pass
    return None


def _end_paused_guest(qmp, proc):
    """After FAILOVER_FAILED: True if the guest stays paused (then ended with `quit`), False if
    rehome ends the run by itself."""
    if _wait_for(lambda: proc.poll() is not None, 1.0, 0.01):
        return False
    try:
        qmp.execute("quit")
    except QmpError:
        pass
    _wait_for(lambda: proc.poll() is not None, 5.0, 0.01)
    return True


def _check_after_failover(qmp):
    """(standby ready again, QMP answers) shortly after a failover."""
    def standby_ready():
        try:
            return any(l1["role"] == "standby" for l1 in qmp.execute(f"{EVENT_PREFIX}query-l1s"))
        except QmpError:
            return False
    ready = _wait_for(standby_ready, 2.0, 0.005)
    try:
        qmp.execute("query-status")
        qmp_ok = True
    except QmpError:
        qmp_ok = False
    if qmp.closed:
        return None, None  # the run ended during the check (its exit status tells how)
    return ready, qmp_ok


def _start_new_vm(cfg, run_dir):
    """NiLiHype's last check: a new VM can still be created on this host after the recovery."""
    cmd = [os.path.join(cfg.build_dir, "rehome"), "run", "--quiet",
           "--kernel", os.path.join(cfg.build_dir, "guest", "rehome-guest.elf"),
           "--cmdline", "workload=counter steps=200000 report_every=100000",
           "--serial-file", os.path.join(run_dir, "new-vm-serial.txt")]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_no_core_dumps)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _observation_columns(obs, record):
    cols = {"exit_code": obs.exit_code, "failovers": len(obs.failovers),
            "standby_ready": obs.standby_ready, "qmp_ok": obs.qmp_ok, "new_vm_ok": obs.new_vm_ok}
    cause = ""
    if obs.divergences:
        cause = "divergence: " + obs.divergences[0].get("what", "")
    elif obs.l1_failures:
        cause = obs.l1_failures[0].get("cause", "")
    cols["detection_cause"] = cause.split(":")[0] if cause else ""
    cols["detection_detail"] = cause[:160]
    cols["divergences"] = len(obs.divergences)
    if obs.failovers:
        first = obs.failovers[0]
        cols["failover_ms"] = round(first.get("downtime-us", 0) / 1000, 3)
        detected_at = first.get("detected-at-us")
        if detected_at and record and record.get("injected_at_us"):
            cols["detection_ms"] = round((detected_at - record["injected_at_us"]) / 1000, 3)
    if obs.divergences and record and record.get("injected_at_us"):
        detected_at = obs.divergences[0].get("detected-at-us")
        if detected_at and "detection_ms" not in cols:
            cols["detection_ms"] = round((detected_at - record["injected_at_us"]) / 1000, 3)
    if record:
        for key in ("injected", "function", "module", "rip", "target", "bit", "old", "new",
                    "address", "region", "region_offset", "steps", "run_us", "attempts", "note"):
            if key in record:
                cols["inj_" + key] = record[key]
    return cols
