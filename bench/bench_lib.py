"""Shared helpers for rehome's benchmark scripts: locating binaries, running and checking
commands, timing them, simple statistics.

Every helper exits the script with a one-line `bench: ...` message (plus the tail of the
command's output) when something is wrong, so a benchmark never prints a table from a failed run.
"""
import os
import shlex
import re
import shutil
import statistics
import subprocess
import sys
import time

BUILD = os.environ.get("REHOME_BUILD", "build")
REHOME = os.path.join(BUILD, "rehome")
GUEST = os.environ.get("REHOME_GUEST", os.path.join(BUILD, "guest", "rehome-guest.elf"))
QEMU = shutil.which(os.environ.get("QEMU", "qemu-system-x86_64"))

# QEMU's isa-debug-exit ends QEMU with (V << 1) | 1 for a guest write of V to port 0xf4, so a
# guest that succeeded (V = 0) makes QEMU exit 1. rehome exits with V itself.
REHOME_OK = (0,)
QEMU_OK = (1,)


def fail(message, proc=None):
    """Ends the script with a clear message and, if given, the tail of a command's output."""
    text = f"bench: {message}"
    if proc is not None:
        text += f"\n--- stdout (tail) ---\n{(proc.stdout or '')[-1500:]}"
        text += f"\n--- stderr (tail) ---\n{(proc.stderr or '')[-1500:]}"
    sys.exit(text)


def check_inputs():
    for path in (REHOME, GUEST):
        if not os.path.isfile(path):
            fail(f"{path} is missing (REHOME_BUILD={BUILD}; point it at a build directory that "
                 "contains rehome and guest/rehome-guest.elf)")
    if not os.access(REHOME, os.X_OK):
        fail(f"{REHOME} is not executable")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        fail("/dev/kvm is missing or not readable and writable")
    if QEMU is None:
        print("bench: qemu-system-x86_64 not found; QEMU columns are left empty",
              file=sys.stderr)


def rehome_modes(wanted=None):
    """The `--mode` values to benchmark: `wanted` (a comma-separated list) or every mode this
    rehome binary offers but nested (monolithic first, the baseline). [None] for a binary
    without --mode."""
    try:
        help_text = subprocess.run([REHOME, "run", "--help"], capture_output=True, text=True,
                                   timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        fail(f"{REHOME} run --help failed: {e}")
    # The --mode entries of the help (`--mode MODE  split (default): ...; monolithic: ...`,
    # `--mode nested  ...`, or an older `--mode monolithic|split`) and their continuation lines.
    block, inside = [], False
    for line in help_text.splitlines():
        if re.match(r"\s+--", line):
            inside = re.match(r"\s+--mode\b", line) is not None
        if inside:
            block.append(line)
    if not block:
        if wanted:
            fail(f"{REHOME} has no --mode option; drop --modes")
        return [None]
    text = " ".join(block)
    available = [m for m in ("monolithic", "split", "nested") if re.search(rf"\b{m}\b", text)]
    if not wanted:
        # Nested mode needs an L1 kernel and a host with nested virtualization: only on request.
        return [m for m in available if m != "nested"]
    modes = [m.strip() for m in wanted.split(",") if m.strip()]
    for m in modes:
        if m not in available:
            fail(f"--modes: {m!r} is not one of {available}")
    return modes


def rehome_label(mode):
    return "rehome" if mode is None else f"rehome {mode}"


# Extra `rehome run` arguments for every rehome command of a benchmark (e.g. `--l1-priority
# normal`), set from a script's --rehome-args or the environment's REHOME_EXTRA_ARGS (one
# shell-quoted string, for scripts without the option); shown in its header so results say
# what ran.
EXTRA_REHOME_ARGS = shlex.split(os.environ.get("REHOME_EXTRA_ARGS", ""))


def rehome_cmd(cmdline, cpus=1, memory_mib=64, extra=(), mode=None):
    with_extra = mode == "split" or mode is None
    return [REHOME, "run", "--kernel", GUEST, "--cpus", str(cpus), "--memory", str(memory_mib),
            "--cmdline", cmdline, *(["--mode", mode] if mode else []), *extra,
            *(EXTRA_REHOME_ARGS if with_extra else [])]


def qemu_cmd(cmdline, cpus=1, memory_mib=64):
    """The QEMU microvm command line of guest/qemu_peer_test.sh, with a minimal device set."""
    if QEMU is None:
        fail("QEMU was asked for but qemu-system-x86_64 is not installed")
    return [QEMU, "-M", "microvm", "-enable-kvm", "-cpu", "qemu64", "-m", f"{memory_mib}M",
            "-smp", str(cpus), "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", GUEST,
            "-append", f"{cmdline} cpus={cpus}"]


def timed(cmd, ok_codes=REHOME_OK, timeout=120, expect_stdout=(), expect_stderr=()):
    """Runs cmd and returns (seconds, completed process).

    Exits the script if cmd times out, ends with a status not in ok_codes, or if any of the
    regular expressions in expect_stdout / expect_stderr does not match the output."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"timed out after {timeout} s: {' '.join(cmd)}")
    except OSError as e:
        fail(f"cannot run {cmd[0]}: {e}")
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        fail(f"{' '.join(cmd)} exited {proc.returncode} (expected {ok_codes})", proc)
    for pattern in expect_stdout:
        if not re.search(pattern, proc.stdout, re.MULTILINE):
            fail(f"{' '.join(cmd)}: stdout lacks /{pattern}/", proc)
    for pattern in expect_stderr:
        if not re.search(pattern, proc.stderr, re.MULTILINE):
            fail(f"{' '.join(cmd)}: stderr lacks /{pattern}/", proc)
    return elapsed, proc


def median(values):
    if not values:
        fail("no samples to take a median of")
    return statistics.median(values)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        fail("no samples to take a percentile of")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def paired_ratio_row(name, unit, base, other, digits):
    """A markdown row comparing two series measured side by side (base first): both medians,
    the ratio of the medians, the median of the per-repetition ratios with its p25-p75 spread,
    and the change in percent."""
    ratio = median(other) / median(base)
    paired = [o / b for o, b in zip(other, base)]
    print(f"| {name} | {unit} | {median(base):.{digits}f} | {median(other):.{digits}f} | "
          f"{ratio:.3f} | {median(paired):.3f} | {percentile(paired, 25):.2f}-"
          f"{percentile(paired, 75):.2f} | {(ratio - 1) * 100:+.1f}% |")


def fmt(value, digits=1):
    """Formats a number, or '-' for a missing one."""
    return "-" if value is None else f"{value:.{digits}f}"
