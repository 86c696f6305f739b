#!/usr/bin/env bash
# make bench: runs every benchmark against the build in $1 (default: build) and prints markdown
# tables; the figures recorded in docs/benchmarks.md come from this script. Output also lands in
# bench/out/latest.md. Takes about nine minutes on a 2-core host.
# Usage: bench/run-all.sh [BUILD_DIR]
# Exit: 0 all benchmarks ran; non-zero with a `bench: ...` message on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export REHOME_BUILD=${1:-build}
if [[ ! -x "$REHOME_BUILD/rehome" || ! -f "$REHOME_BUILD/guest/rehome-guest.elf" ]]; then
  echo "bench: $REHOME_BUILD/rehome or $REHOME_BUILD/guest/rehome-guest.elf is missing;" \
       "pass the build directory as the first argument" >&2
  exit 1
fi
mkdir -p bench/out

# Benchmark a snapshot of the binaries, so that a rebuild during the run cannot mix versions.
build_dir=$REHOME_BUILD
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
mkdir "$snapshot/guest"
cp "$build_dir/rehome" "$snapshot/rehome"
cp "$build_dir/guest/rehome-guest.elf" "$snapshot/guest/rehome-guest.elf"
export REHOME_BUILD=$snapshot

# The host's raw port-I/O exit cost at the time of the run (the shared KVM probe), when the
# probe's source and a C compiler are available: on software KVM backends it drifts with load.
host_probe() {
  local src=../shared/tools/kvm-probe.c
  [[ -f "$src" ]] && command -v cc >/dev/null 2>&1 || return 0
  local dir
  dir=$(mktemp -d)
  if cc -O2 -o "$dir/kvm-probe" "$src" 2>/dev/null; then
    echo "kvm-probe (shared/tools) at the start of the run:"
    echo
    "$dir/kvm-probe" 2>&1 | grep -E "CPL3 loop|CPL0 loop|PIO exit|syscall" | sed 's/^/    /' || true
    echo
  fi
  rm -rf "$dir"
}

{
  echo "## rehome benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)," \
       "$(qemu-system-x86_64 --version 2>/dev/null | head -1 || echo 'no QEMU')"
  echo
  bin=$build_dir/rehome
  head=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
  git diff --quiet HEAD 2>/dev/null || head="$head + uncommitted changes"
  echo "rehome binary: $bin, built $(date -u -r "$bin" +%Y-%m-%dT%H:%M:%SZ)," \
       "sha256 $(sha256sum "$snapshot/rehome" | cut -c1-12) (the copy benchmarked);" \
       "source tree: git $head"
  echo
  host_probe
  python3 bench/exit_cost.py --reps 7
  echo
  python3 bench/start_time.py --reps 10
  echo
  python3 bench/rehome_latency.py --reps 3
  echo
  python3 bench/failover_latency.py
  echo
  python3 bench/split_overhead.py --reps 9
  echo
  python3 bench/virtio_io.py --reps 7
  echo
  # virtio-net: what a client on the network sees (root: network namespace and tap; skipped
  # with exit 77 otherwise).
  python3 bench/netping.py --modes monolithic,split,qemu --reps 3 --count 5000 || [ $? -eq 77 ]
  echo
  python3 bench/netping.py --count 20000 --kill-active-every-ms 100 --check || [ $? -eq 77 ]
  echo
  python3 bench/netping.py --count 10000 --hang-every-ms 500 --check || [ $? -eq 77 ]
  echo
  echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee bench/out/latest.md
