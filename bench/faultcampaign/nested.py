"""Campaigns into whole L1 VMs (nested mode, docs/nested.md; `campaign.py --mode nested`).

Fault types l1vm-kill, l1vm-panic, l1vm-hang, l1vm-crash, l1vm-crash-in-exit, l1vm-die-in-exit
and l1vm-register are rehome's own `--nested-fault` kinds: L0 stops the active L1 VM, its kernel
panics, its agent stops or exits (at a parked point, or while it handles one of L2's port I/O
exits), it dies while L2 is inside it (l1vm-die-in-exit), or one bit of an L1 vCPU register
flips while the L1 runs its own code (Romulus's and NiLiHype's register model). Nested mode
needs SVM with nested KVM, which only the emulated AMD host has here (scripts/nested-host), so
the runs execute inside it: one boot of the emulated host
runs up to RUNS_PER_BOOT runs (the `nested-campaign` test of tests.sh), each one L2 lifetime of
the counter workload with one fault, injected delay_ms after L2 runs and a standby L1 is ready.
The console lines of each run (rehome's status lines, L2's final digest, the exit status) are
classified into the campaign's outcomes (outcome.py) here; the host check recomputes L2's final
digest and reads the oracle's count from rehome's summary. A standby that is ready again after
recovery, QMP and a new VM are not checked (an L1 boots in about a minute under emulation,
longer than L2 runs on).

Pure parsing and classification (parse_console, observe, classify_run), the driver of one boot
(run_boot: starts scripts/nested-host/run.sh and hands each finished run to a callback) and of
the whole list (run_all: boots again for the runs a dead emulated host left).
"""
import os
import random
import re
import signal
import subprocess
import time

from faultcampaign import outcome

NESTED_FAULTS = ("l1vm-kill", "l1vm-panic", "l1vm-hang", "l1vm-crash", "l1vm-crash-in-exit",
                 "l1vm-die-in-exit", "l1vm-register")
RUNS_PER_BOOT = 25          # the run list travels on the emulated host's kernel command line
STEPS = 20_000_000          # L2's counter steps (tests.sh's NESTED_CAMPAIGN_STEPS)
GUEST_SEED = 1              # the test guest's default seed
MAX_DELAY_MS = 3000         # injection moment: uniform in [0, MAX_DELAY_MS] ms
RUN_TIMEOUT_S = 420         # per run inside the emulated host (a kill there is a hang)
KILLED_RC = 137             # `timeout -s KILL` inside the emulated host


def run_spec(index, fault, seed):
    """(spec for tests.sh "index:kind:delay_ms:fault_seed", delay_ms) of one planned run."""
    rng = random.Random(seed)
    delay_ms = rng.randint(0, MAX_DELAY_MS)
    fault_seed = rng.getrandbits(63) or 1  # 0 would mean "the clock"
    return f"{index}:{fault[len('l1vm-'):]}:{delay_ms}:{fault_seed}", delay_ms


_LINE = re.compile(r"NESTED-CAMPAIGN-(LOG|L2|RUN) (\d+) ?(.*)$")


def parse_console(text):
    """{run index: {"log": [rehome lines], "l2": final digest line, "rc": int, "wall_s": float}}
    for every run whose NESTED-CAMPAIGN-RUN line (its last) is in TEXT."""
    runs = {}
    for raw in text.splitlines():
        m = _LINE.search(raw)
        if m is None:
            continue
        kind, index, rest = m.group(1), int(m.group(2)), m.group(3).rstrip("\r")
        run = runs.setdefault(index, {"log": [], "l2": "", "rc": None, "wall_s": 0.0})
        if kind == "LOG":
            run["log"].append(rest)
        elif kind == "L2":
            run["l2"] = rest
        else:
            fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
            run["rc"] = int(fields.get("rc", "-1"))
            run["wall_s"] = float(fields.get("wall", "0"))
    return {i: r for i, r in runs.items() if r["rc"] is not None}


_FAILED = re.compile(r"L1 #\d+ failed: (.*)$")
_FAILOVER = re.compile(r"failover #\d+ \((.*)\): L1 #\d+ -> L1 #\d+ in ([\d.]+) ?ms "
                       r"\(detect ([\d.]+) ?ms")
_SUMMARY = re.compile(r"oracle: (\d+) reports verified, (\d+) violations")


def observe(run, expected_digest_line):
    """The Observation of one parsed run (EXPECTED_DIGEST_LINE: L2's correct final counter line)
    and the row columns it yields."""
    lines = run["log"]
    obs = outcome.Observation()
    obs.timed_out = run["rc"] == KILLED_RC
    obs.exit_code = run["rc"]
    obs.stderr = "\n".join(lines)
    obs.injected = any(" injecting " in f" {l}" or re.search(r"register fault #\d+: ", l)
                       for l in lines)
    obs.l1_failures = [{"cause": m.group(1)} for l in lines if (m := _FAILED.search(l))]
    failovers = [m for l in lines if (m := _FAILOVER.search(l))]
    obs.failovers = [{"cause": m.group(1), "total_ms": float(m.group(2))} for m in failovers]
    if obs.exit_code == 0 and not obs.timed_out:
        if run["l2"] != expected_digest_line:
            obs.host_problems.append(f"L2 vcpu 0 digest: got {run['l2'] or 'none'}")
        summary = [m for l in lines if (m := _SUMMARY.search(l))]
        if not summary:
            obs.host_problems.append("no oracle summary from rehome")
        elif int(summary[-1].group(2)) != 0 or int(summary[-1].group(1)) == 0:
            obs.host_problems.append(f"oracle: {summary[-1].group(0)}")
    columns = {"exit_code": run["rc"], "wall_s": run["wall_s"], "failovers": len(failovers),
               "detection_cause": obs.l1_failures[0]["cause"] if obs.l1_failures else "",
               "detection_ms": failovers[0].group(3) if failovers else "",
               "failover_ms": failovers[0].group(2) if failovers else "",
               "inj_injected": obs.injected,
               "inj_note": next((l for l in lines if "register fault #" in l or
                                 "injecting " in l), "")[:200]}
    return obs, columns


def classify_run(run, expected_digest_line):
    """The campaign row's observation columns and outcome for one parsed run."""
    obs, row = observe(run, expected_digest_line)
    row["outcome"], row["detail"], row["wrong_data"] = outcome.classify(obs)
    return row


def run_boot(source_dir, build_dir, specs, log_path, on_run, poll_s=5.0):
    """Boots the emulated host once for SPECS (at most RUNS_PER_BOOT), calling ON_RUN(index, run)
    for each run as its last console line arrives. Returns run.sh's exit status and the indices
    that never finished (the host timed out or failed)."""
    env = dict(os.environ)
    env["NESTED_LOG"] = log_path
    env["NESTED_TIMEOUT"] = str(len(specs) * RUN_TIMEOUT_S + 600)
    env["NESTED_ENV"] = (f"NESTED_CAMPAIGN={','.join(specs)} NESTED_CAMPAIGN_STEPS={STEPS} "
                         f"NESTED_CAMPAIGN_TIMEOUT={RUN_TIMEOUT_S}")
    script = os.path.join(source_dir, "scripts", "nested-host", "run.sh")
    wanted = {int(s.split(":", 1)[0]) for s in specs}
    done = set()
    # The emulated host itself can hang (docs/benchmarks.md 12b): a boot that finishes no run
    # for longer than a run may take inside it is stopped, and its runs are left to the next.
    stall_s = RUN_TIMEOUT_S + 180
    last_progress = time.monotonic()
    with open(log_path + ".runsh", "w") as out:
        proc = subprocess.Popen(["bash", script, build_dir, "nested-campaign"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            finished = proc.poll() is not None
            if not finished and time.monotonic() - last_progress > stall_s:
                out.write(f"campaign: no run finished for {stall_s} s: stopping the emulated host\n")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                finished = True
            try:
                with open(log_path, errors="replace") as f:
                    runs = parse_console(f.read())
            except OSError:
                runs = {}
            for index in sorted(runs):
                if index in wanted and index not in done:
                    done.add(index)
                    last_progress = time.monotonic()
                    on_run(index, runs[index])
            if finished:
                break
            time.sleep(poll_s)
    return proc.returncode, sorted(wanted - done)


def run_all(todo, boot, on_run, log=print):
    """Runs the run indices TODO through BOOT(indices) -> (rc, missing indices), RUNS_PER_BOOT at
    a time (BOOT calls ON_RUN(index, run) for each finished run). The runs a boot left (the
    emulated host died) go into the next boot; after two boots in a row that finish none of
    their runs it stops. Returns the indices never run."""
    todo = list(todo)
    fruitless = 0
    while todo and fruitless < 2:
        chunk = todo[:RUNS_PER_BOOT]
        rc, missing = boot(chunk, on_run)
        fruitless = fruitless + 1 if len(missing) == len(chunk) else 0
        todo = list(missing) + todo[len(chunk):]
        if missing:
            log(f"campaign: the emulated host ended before run {missing[0]} (run.sh rc={rc}); "
                f"{'giving up' if fruitless >= 2 else 'booting it again'}")
    return todo
