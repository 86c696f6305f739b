#!/usr/bin/env python3
"""bench/mutants.py: builds L1 binaries that each carry one source mutation of the device model or
the exit handling (software faults, bench/faultcampaign/mutation.py), for
`bench/campaign.py --fault mutant`.

  python3 bench/mutants.py list  [--count N] [--seed S]   # the mutants that would be built
  python3 bench/mutants.py build [--count N] [--seed S] [--out build-mutants] [--jobs J]

`build` copies the tracked sources to OUT/src, configures OUT/build once (only the rehome binary),
and for each chosen mutation: mutates one file, rebuilds rehome, keeps the binary as
OUT/bin/<id>/rehome, restores the file. Mutants that do not compile are recorded and replaced by
the next candidate until N are built. Built mutants are cached: a mutant whose key (a hash of
every source file, then file, line, operator, text) is in OUT/manifest.json with a binary is not
built again, so any source change rebuilds them all (a mutant is the current code plus one
mutation).
Exit status: 0 done (see OUT/manifest.json); 2 bad arguments; 1 the pristine build failed.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultcampaign.mutation import OPERATORS, candidates  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The device model and the exit handling of the L1 (what runs guest-controlled input).
TARGET_FILES = [
    "vmm/devices/serial8250.cc", "vmm/devices/counter_report_port.cc",
    "vmm/devices/debug_exit_port.cc", "vmm/devices/pio_bench_port.cc",
    "vmm/devices/reset_port.cc", "vmm/devices/power_off_port.cc", "vmm/counter_oracle.cc",
    "vmm/device_model.cc", "vmm/exit_dispatcher.cc", "vmm/bus.cc", "vmm/state_codec.cc",
    "vmm/virtio/blk_device.cc", "vmm/virtio/virtqueue.cc", "vmm/virtio/mmio_transport.cc",
    "vmm/virtio/console_device.cc", "vmm/l1/l1_server.cc", "vmm/l1/commit_record.cc",
]
COMPONENTS = ("base;kvm-l0;state-extract;vmm;vmm/virtio;vmm/domain;recovery;recovery/policy;"
              "qmp-client;vmm/cli")


def choose(count, seed, source_dir=SOURCE_DIR):
    """Up to `count` mutations of the sources in `source_dir`, spread over operators and files,
    in a seeded order; then every other candidate (spares for those that do not compile)."""
    rng = random.Random(seed)
    by_operator = {op: [] for op in OPERATORS}
    for path in TARGET_FILES:
        full = os.path.join(source_dir, path)
        if not os.path.exists(full):
            continue
        with open(full) as f:
            text = f.read()
        for m in candidates(text):
            by_operator[m.operator].append((path, m))
    for ms in by_operator.values():
        rng.shuffle(ms)
    ordered = []
    while any(by_operator.values()):
        for op in OPERATORS:
            if by_operator[op]:
                ordered.append(by_operator[op].pop())
    return ordered


def mutant_id(path, m):
    digest = hashlib.sha1(f"{path}:{m.line}:{m.operator}:{m.original}:{m.replacement}".encode())
    return f"{m.operator.lower()}-{os.path.basename(path).split('.')[0]}-{m.line + 1}-" \
           f"{digest.hexdigest()[:6]}"


def tree_rev(src):
    """A hash of every C++ source and build file in `src`: a mutant is the current code plus one
    mutation, so any change (an exit-channel version, say) invalidates every cached mutant."""
    digest = hashlib.sha1()
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".cc", ".h", ".S", "CMakeLists.txt", ".cmake")):
                with open(os.path.join(root, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    return digest.hexdigest()[:12]


def sync_sources(out):
    """OUT/src = the tracked files of the checkout (as they are in the working tree)."""
    files = subprocess.run(["git", "-C", SOURCE_DIR, "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    src = os.path.join(out, "src")
    for rel in files:
        if not rel:
            continue
        a, b = os.path.join(SOURCE_DIR, rel), os.path.join(src, rel)
        if os.path.isfile(a) and (not os.path.exists(b) or open(a, "rb").read() !=
                                  open(b, "rb").read()):
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copy2(a, b)
    return src


def ninja(build, jobs):
    return subprocess.run(["nice", "-n", "10", "ninja", "-C", build, "-j", str(jobs), "rehome"],
                          capture_output=True, text=True)


def build(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, "manifest.json")
    old = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = {m["key"]: m for m in json.load(f).get("mutants", [])}
    src = sync_sources(out)
    tree = tree_rev(src)
    build_dir = os.path.join(out, "build")
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        subprocess.run(["cmake", "-S", src, "-B", build_dir, "-G", "Ninja",
                        "-DREHOME_BUILD_GUEST=OFF", f"-DREHOME_COMPONENTS={COMPONENTS}"],
                       check=True, capture_output=True)
    pristine = ninja(build_dir, args.jobs)
    if pristine.returncode != 0:
        print(pristine.stdout[-2000:] + pristine.stderr[-2000:], file=sys.stderr)
        sys.exit("mutants: the pristine build failed")
    chosen = choose(args.count, args.seed, src)  # the copy that is built, not the live tree
    # Mutants of one file one after the other: the file is recompiled once per mutant.
    results, built = [], 0
    started = time.monotonic()
    pending = []
    for path, m in chosen:
        pending.append((path, m))
    for path, m in pending:
        if built >= args.count:
            break
        key = f"{tree}:{path}:{m.line}:{m.operator}:{m.original}:{m.replacement}"
        mid = mutant_id(path, m)
        binary_rel = os.path.join("bin", mid, "rehome")
        entry = {"id": mid, "key": key, "file": path, "line": m.line + 1, "operator": m.operator,
                 "description": m.describe(), "binary": binary_rel}
        cached = old.get(key)
        if cached and cached.get("built") and os.path.exists(os.path.join(out, binary_rel)):
            results.append(cached)
            built += 1
            continue
        if cached and cached.get("built") is False:
            results.append(cached)
            continue
        target = os.path.join(src, path)
        with open(target) as f:
            original = f.read()
        with open(target, "w") as f:
            f.write("\n".join(m.apply(original.split("\n"))))
        try:
            done = ninja(build_dir, args.jobs)
        finally:
            with open(target, "w") as f:
                f.write(original)
        entry["built"] = done.returncode == 0
        if entry["built"]:
            os.makedirs(os.path.join(out, "bin", mid), exist_ok=True)
            shutil.copy2(os.path.join(build_dir, "rehome"), os.path.join(out, binary_rel))
            built += 1
        else:
            errors = [l for l in (done.stdout + done.stderr).splitlines() if "error" in l]
            entry["error"] = (errors[0] if errors else "build failed")[:300]
        results.append(entry)
        print(f"mutants: {built}/{args.count} built ({len(results)} tried, "
              f"{time.monotonic() - started:.0f} s): {mid} "
              f"{'ok' if entry['built'] else 'does not compile'}", file=sys.stderr, flush=True)
        with open(manifest_path, "w") as f:
            json.dump({"seed": args.seed, "mutants": results}, f, indent=1)
    ninja(build_dir, args.jobs)  # leaves OUT/build pristine again
    with open(manifest_path, "w") as f:
        json.dump({"seed": args.seed, "mutants": results}, f, indent=1)
    print(f"mutants: {built} built; manifest {manifest_path}")
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["list", "build"])
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=os.path.join(SOURCE_DIR, "build-mutants"))
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    if args.command == "list":
        chosen = choose(args.count, args.seed)
        counts = {}
        for path, m in chosen:
            counts[m.operator] = counts.get(m.operator, 0) + 1
        print(f"{len(chosen)} candidate mutations: " +
              ", ".join(f"{op} {counts.get(op, 0)}" for op in OPERATORS))
        for path, m in chosen[:args.count]:
            print(f"{mutant_id(path, m)}  {path}: {m.describe()}")
        return 0
    return build(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
