#!/usr/bin/env python3
"""bench/campaign.py: fault-injection campaigns against rehome's L1 (docs/fault-injection.md).

One VM per run: `rehome run` with a workload and a QMP monitor; one fault injected into the L1
chosen by role (or, in monolithic mode, into the vCPU thread that handles exits); each run gets
exactly one outcome (no effect, detected and recovered, detected and not recovered, silent data
corruption, hang, L0 failure). Writes runs.csv (as it goes), summary.md (counts, shares with
Clopper-Pearson 95% intervals, recovery rates) and outcomes.png into --out.

  python3 bench/campaign.py --fault register --workload counter --runs 20
  python3 bench/campaign.py --fault fail-stop,register,code --workload blk --runs 500 --out DIR
  python3 bench/campaign.py --fault mutant --workload counter --runs-per-mutant 10
  python3 bench/campaign.py --mode nested --fault l1vm-register,l1vm-panic --runs 10
  python3 bench/campaign.py --replay 17 --out DIR      # run 17 of that campaign again
  python3 bench/campaign.py ...same arguments... --resume --out DIR  # continue a cut-off one
  python3 bench/campaign.py ...same, a larger --runs... --resume --out DIR  # extend one

Fault types: fail-stop, register, code, memory, memory-shared, hang, livelock (rehome-inject),
mutant (L1 builds with a source mutation, bench/mutants.py), rehome-kill, rehome-hang,
rehome-garbage, rehome-assert, rehome-die-before-commit, rehome-die-after-commit (rehome's own
deterministic faults over QMP), none (no fault); with --mode nested (whole L1 VMs, run inside
the emulated AMD host, faultcampaign/nested.py): l1vm-kill, l1vm-panic, l1vm-hang, l1vm-crash,
l1vm-crash-in-exit, l1vm-die-in-exit, l1vm-register.
Exit status: 0 the campaign ran (whatever its outcomes); 2 bad arguments or missing binaries.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from faultcampaign import nested, outcome, report  # noqa: E402
from faultcampaign.run import FAULTS, RunConfig, execute  # noqa: E402
from faultcampaign.workloads import WORKLOADS  # noqa: E402
from netping import enter_netns  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def refuse(reason):
    """Ends the program with REASON on one line and exit status 2 (bad arguments, missing files)."""
    print(f"campaign: {reason}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--fault", help="fault type, or several separated by commas")
    p.add_argument("--workload", default="counter", choices=sorted(WORKLOADS))
    p.add_argument("--runs", type=int, default=20, help="runs per fault type")
    p.add_argument("--mode", default="split", choices=["split", "monolithic", "nested"],
                   help="nested: whole L1 VMs on the emulated AMD host (l1vm-* faults)")
    p.add_argument("--target", default="active", choices=["active", "replica", "standby"],
                   help="the L1 to inject into, by its role over QMP (with --verify: `active` is "
                        "replica 0, `replica` the next one)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rehome-args", default="", help="extra `rehome run` arguments (one string)")
    p.add_argument("--out", default=None, help="output directory (default bench/out/campaign-*)")
    p.add_argument("--replay", type=int, default=None, help="re-run run RUN of --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the cut-off campaign in --out: keep its runs, run the rest "
                        "(the same arguments; the same injection moments); with a larger "
                        "--runs, extend a campaign by the runs it would have had with that many")
    p.add_argument("--build", default=os.environ.get("REHOME_BUILD", "build"))
    p.add_argument("--trigger", default="time", choices=["time", "step"],
                   help="rehome-inject trigger (step: NiLiHype's 0..max-steps instructions)")
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--max-run-us", type=int, default=100)
    p.add_argument("--no-new-vm-check", action="store_true")
    p.add_argument("--keep-runs", action="store_true", help="keep every run's directory")
    p.add_argument("--mutants", default=None, help="mutant build directory (bench/mutants.py)")
    p.add_argument("--runs-per-mutant", type=int, default=10)
    p.add_argument("--mutant-standbys", action="store_true",
                   help="the standbys run the mutant too (default: pristine standbys)")
    p.add_argument("--max-mutants", type=int, default=0, help="use at most this many mutants")
    args = p.parse_args(argv)
    if args.replay is None and not args.fault:
        p.error("--fault is required (or --replay RUN --out DIR)")
    if args.fault:
        for f in args.fault.split(","):
            if f not in FAULTS + nested.NESTED_FAULTS:
                p.error(f"unknown fault type {f!r} (one of "
                        f"{', '.join(FAULTS + nested.NESTED_FAULTS)})")
            if (f in nested.NESTED_FAULTS) != (args.mode == "nested"):
                p.error(f"fault type {f!r} needs --mode nested" if f in nested.NESTED_FAULTS
                        else f"--mode nested takes only {', '.join(nested.NESTED_FAULTS)}")
        if args.mode == "nested" and args.workload != "counter":
            p.error("--mode nested runs the counter workload only")
    if args.replay is not None and not args.out:
        p.error("--replay needs --out DIR of the campaign")
    if args.resume and not args.out:
        p.error("--resume needs --out DIR of the campaign")
    return args


def check_binaries(build, mode="split"):
    extra = ("rehome-agent",) if mode == "nested" else ("rehome-inject",)
    for rel in ("rehome", "guest/rehome-guest.elf", "guest/rehome_guest_counter_oracle") + extra:
        if not os.path.exists(os.path.join(build, rel)):
            refuse(f"{os.path.join(build, rel)} is missing (run `make build`, or "
                   "point --build at a build directory)")


def git_describe():
    try:
        rev = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", SOURCE_DIR, "diff", "--quiet", "HEAD"],
                               timeout=10).returncode != 0
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def load_mutants(args):
    directory = args.mutants or os.path.join(SOURCE_DIR, "build-mutants")
    manifest_path = os.path.join(directory, "manifest.json")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        refuse(f"no mutant manifest at {manifest_path} (build them first: "
               "python3 bench/mutants.py build)")
    mutants = [m for m in manifest["mutants"] if m.get("built")]
    if args.max_mutants:
        mutants = mutants[:args.max_mutants]
    if not mutants:
        refuse(f"{manifest_path} lists no built mutant")
    return [(m, os.path.join(directory, m["binary"])) for m in mutants]


def plan_runs(args):
    """(fault, run seed, extra rehome args, mutant id) for every run, in order."""
    plans = []
    for fault in args.fault.split(","):
        if fault == "mutant":
            for mutant, binary in load_mutants(args):
                # Standbys run the pristine build unless asked (rehome's default for the standby
                # binary is the active's).
                extra = ["--l1-binary", binary, "--standby-l1-binary",
                         binary if args.mutant_standbys else os.path.join(args.build, "rehome")]
                for k in range(args.runs_per_mutant):
                    seed = random.Random(f"{args.seed}:mutant:{mutant['id']}:{k}").getrandbits(63)
                    plans.append((fault, seed, extra, mutant["id"]))
            continue
        for i in range(args.runs):
            seed = random.Random(f"{args.seed}:{fault}:{i}").getrandbits(63)
            plans.append((fault, seed, [], ""))
    return plans


class Progress:
    def __init__(self, total, already=0):
        self.total = total
        self.already = already  # runs kept from before a --resume: not timed here
        self.start = time.monotonic()
        self.counts = {}
        self.last_print = 0.0
        self.tty = sys.stderr.isatty()

    def update(self, done, row):
        self.counts[row["outcome"]] = self.counts.get(row["outcome"], 0) + 1
        now = time.monotonic()
        if not self.tty and done != self.total and now - self.last_print < 20 and done % 25:
            return
        self.last_print = now
        per_run = (now - self.start) / max(1, done - self.already)
        eta = per_run * (self.total - done)
        mix = ", ".join(f"{o} {self.counts[o]}" for o in list(outcome.OUTCOMES) +
                        list(outcome.EXCLUDED) if o in self.counts)
        line = (f"[{done:5d}/{self.total}] {100 * done / self.total:5.1f}%  {per_run:.2f} s/run  "
                f"eta {int(eta // 60)}m{int(eta % 60):02d}s  | {mix}")
        print(("\r" + line + "\033[K") if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)


def run_campaign(args):
    check_binaries(args.build, args.mode)
    workload = WORKLOADS[args.workload](args.build, SOURCE_DIR)
    if args.mode == "nested":
        workload.duration_s = 0  # injection moments are drawn by nested.run_spec
    elif getattr(workload, "needs_network", False):
        enter_netns(workload.TAP)  # every run's tap lives in this process's own namespace
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(SOURCE_DIR, "bench", "out",
                                   f"campaign-{args.fault.replace(',', '+')}-{args.workload}-{stamp}")
    os.makedirs(out, exist_ok=True)
    plans = plan_runs(args)
    csv_path = os.path.join(out, "runs.csv")
    segment = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "git": git_describe()}
    if args.resume:
        meta, rows = resumable_campaign(args, out, plans)
        workload.duration_s = meta["duration_s"]  # the same injection moments as before
    else:
        meta = {"command": "python3 bench/campaign.py " +
                " ".join(shlex.quote(a) for a in sys.argv[1:]),
                "date": segment["date"], "host": f"{os.cpu_count()} cores, {platform.release()}",
                "git": segment["git"], "seed": args.seed, "args": vars(args),
                "title": f"{args.fault} faults, {args.workload} workload, {args.mode} mode"}
        rows = []
    # Each sitting of the campaign (one, unless resumed) with the build it ran.
    meta.setdefault("segments", []).append(dict(segment, first_run=len(rows), runs=len(plans)))
    with open(os.path.join(out, "campaign.json"), "w") as f:
        json.dump(meta, f, indent=1)
    progress = Progress(len(plans), already=len(rows))
    if args.mode == "nested":
        meta["duration_s"] = 0  # nothing to calibrate (nested.run_spec draws the moments)
        with open(os.path.join(out, "campaign.json"), "w") as f:
            json.dump(meta, f, indent=1)
        run_nested(args, out, plans, rows, progress, csv_path)
    else:
        run_local(args, workload, meta, out, plans, rows, progress, csv_path)
    if progress.tty:
        print(file=sys.stderr)
    summary = report.summary_markdown(rows, meta)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    report.plot(rows, os.path.join(out, "outcomes.png"), meta["title"])
    print(summary)
    print(f"\ncampaign: wrote {csv_path}, {os.path.join(out, 'summary.md')}, "
          f"{os.path.join(out, 'outcomes.png')}")
    return 0


def run_local(args, workload, meta, out, plans, rows, progress, csv_path):
    """Runs the campaign's remaining PLANS on this host, one `rehome run` each."""
    # Runs' files (disk images) live in memory when possible: unlinking a written 32 MiB image on
    # this host's ext4 (mounted with discard) took seconds, longer than the run itself.
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="rehome-campaign-", dir=scratch) as work:
        if not args.resume:
            meta["duration_s"] = calibrate(args, workload, work)
            with open(os.path.join(out, "campaign.json"), "w") as f:
                json.dump(meta, f, indent=1)
        for index, (fault, seed, extra, mutant) in enumerate(plans):
            if index < len(rows):
                continue
            cfg = make_config(args, workload, fault, extra, work)
            row = execute(cfg, index, seed)
            row["mutant"] = mutant
            row["mutant_pass"] = "mutant standbys" if (mutant and args.mutant_standbys) else ""
            rows.append(row)
            report.write_csv(rows, csv_path)  # as it goes: a cut-off campaign keeps its runs
            progress.update(index + 1, row)


def run_nested(args, out, plans, rows, progress, csv_path):
    """Runs the campaign's remaining PLANS inside the emulated AMD host (faultcampaign/nested.py),
    RUNS_PER_BOOT per boot, classifying each run as its console lines arrive. A boot that ends
    early (the emulated host died) is followed by another for the runs it left; after two boots
    in a row that finish no run, the rest are harness errors."""
    oracle = os.path.join(args.build, "guest", "rehome_guest_counter_oracle")
    expected = subprocess.run([oracle, "0", str(nested.GUEST_SEED), str(nested.STEPS)],
                              capture_output=True, text=True, timeout=300,
                              check=True).stdout.strip()
    base = {}
    for index, (fault, seed, _, _) in enumerate(plans):
        spec, delay_ms = nested.run_spec(index, fault, seed)
        base[index] = {"run": index, "seed": seed, "fault": fault, "workload": "counter",
                       "mode": "nested", "target_role": "active", "mutant": "",
                       "delay_ms": delay_ms, "spec": spec}

    def record(index, row):
        rows.append(row)
        report.write_csv(rows, csv_path)  # as it goes: a cut-off campaign keeps its runs
        progress.update(index + 1, row)

    def boot(chunk, on_run):
        log = os.path.join(out, f"console-{chunk[0]:05d}.log")
        print(f"campaign: booting the emulated host for runs {chunk[0]}-{chunk[-1]} "
              f"(console in {log})", file=sys.stderr)
        return nested.run_boot(SOURCE_DIR, args.build, [base[i]["spec"] for i in chunk], log,
                               on_run)

    todo = nested.run_all(
        range(len(rows), len(plans)), boot,
        lambda i, run: record(i, dict(base[i], **nested.classify_run(run, expected))),
        log=lambda line: print(line, file=sys.stderr))
    for index in todo:
        record(index, dict(base[index], outcome=outcome.HARNESS_ERROR,
                           detail="the emulated host ended twice before this run"))


# The arguments that decide a campaign's runs: a resumed campaign must be given the same.
RUN_DECIDING_ARGS = ("fault", "workload", "runs", "mode", "target", "seed", "rehome_args",
                     "trigger", "max_steps", "max_run_us", "no_new_vm_check", "runs_per_mutant",
                     "mutant_standbys", "max_mutants")


def resumable_campaign(args, out, plans):
    """(meta, rows) of the cut-off (or, with a larger --runs, finished) campaign in OUT, whose rows
    are the first runs of PLANS; exits with a one-line reason when there is none or it was started
    with other arguments."""
    try:
        with open(os.path.join(out, "campaign.json")) as f:
            meta = json.load(f)
        rows = report.read_csv(os.path.join(out, "runs.csv"))
    except (OSError, ValueError) as e:
        refuse(f"nothing to resume in {out} ({e})")
    # A larger --runs extends the campaign: its first runs are the same (plan_runs), which the
    # check of every kept run below confirms.
    differing = [k for k in RUN_DECIDING_ARGS if meta["args"].get(k) != getattr(args, k) and
                 not (k == "runs" and getattr(args, k) > meta["args"].get(k, 0))]
    if differing:
        refuse(f"cannot resume {out}: it was started with other "
               f"{', '.join('--' + k.replace('_', '-') for k in differing)}")
    if os.path.exists(os.path.join(out, "summary.md")) and len(plans) <= len(rows):
        refuse(f"{out} is finished already (summary.md exists; a larger --runs extends it)")
    if "duration_s" not in meta:
        refuse(f"cannot resume {out}: it was cut off before its calibration run")
    for index, row in enumerate(rows):
        if index >= len(plans) or int(row["run"]) != index or int(row["seed"]) != plans[index][1]:
            refuse(f"cannot resume {out}: run {index} in runs.csv is not this "
                   "campaign's")
    print(f"campaign: resuming {out}: {len(rows)} of {len(plans)} runs done", file=sys.stderr)
    meta["args"]["runs"] = args.runs
    return meta, rows


def calibrate(args, workload, work_dir):
    """Measures the workload's fault-free run on this host, in this mode, with these arguments:
    injection moments are drawn within it (a faster mode or host would otherwise see faults land
    after the guest finished). Keeps the workload's nominal duration if the run fails."""
    cfg = make_config(args, workload, "none", [], work_dir)
    cfg.new_vm_check = False
    row = execute(cfg, 99999, 0)
    if row["outcome"] != outcome.NO_EFFECT:
        print(f"campaign: calibration run failed ({row['outcome']}: {row['detail']}); using the "
              f"nominal {workload.duration_s} s", file=sys.stderr)
        return workload.duration_s
    workload.duration_s = max(0.1, float(row["wall_s"]))
    print(f"campaign: a fault-free {args.workload} run takes {workload.duration_s:.2f} s here; "
          "faults land within it", file=sys.stderr)
    return workload.duration_s


def make_config(args, workload, fault, extra, work_dir):
    return RunConfig(build_dir=args.build, source_dir=SOURCE_DIR, fault=fault, workload=workload,
                     mode=args.mode, target=args.target,
                     rehome_args=shlex.split(args.rehome_args) + extra, trigger=args.trigger,
                     max_steps=args.max_steps, max_run_us=args.max_run_us,
                     new_vm_check=not args.no_new_vm_check, work_dir=work_dir,
                     keep_runs=args.keep_runs)


def replay(args):
    with open(os.path.join(args.out, "campaign.json")) as f:
        meta = json.load(f)
    recorded = [r for r in report.read_csv(os.path.join(args.out, "runs.csv"))
                if int(r["run"]) == args.replay]
    if not recorded:
        refuse(f"run {args.replay} is not in {args.out}/runs.csv")
    old = recorded[0]
    saved = argparse.Namespace(**meta["args"])
    if saved.mode == "nested":
        refuse("--replay does not re-run nested campaigns (runs.csv has the run's delay_ms and "
               "seed; see docs/fault-injection.md)")
    saved.build = args.build
    check_binaries(saved.build)
    workload = WORKLOADS[old["workload"]](saved.build, SOURCE_DIR)
    if getattr(workload, "needs_network", False):
        enter_netns(workload.TAP)
    workload.duration_s = meta.get("duration_s", workload.duration_s)  # the same moments
    extra = []
    if old.get("mutant"):
        binary = dict((m["id"], b) for m, b in load_mutants(saved))[old["mutant"]]
        extra = ["--l1-binary", binary, "--standby-l1-binary",
                 binary if saved.mutant_standbys else os.path.join(saved.build, "rehome")]
    work = os.path.join(args.out, f"replay-{args.replay}")
    os.makedirs(work, exist_ok=True)
    cfg = make_config(saved, workload, old["fault"], extra, work)
    cfg.keep_runs = True
    row = execute(cfg, int(old["run"]), int(old["seed"]))
    print(f"run {args.replay}: recorded {old['outcome']!r} ({old.get('detail', '')}); "
          f"replayed {row['outcome']!r} ({row['detail']})")
    print(f"  fault parameters (same seed): recorded target {old.get('inj_target')} bit "
          f"{old.get('inj_bit')}; replayed target {row.get('inj_target')} bit {row.get('inj_bit')}")
    print(f"  the replayed run's files: {os.path.join(work, 'run-%05d' % int(old['run']))}")
    return 0


def main(argv):
    args = parse_args(argv)
    if args.replay is not None:
        return replay(args)
    return run_campaign(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
