#!/usr/bin/env bash
# bench/verified-net.sh: verified execution with a network device, recorded in docs/benchmarks.md
# (section "Verified execution on the network"): the client-seen cost of `--verify dual|triple`
# against plain split mode on netping (fault-free round trips, alternated per rep) and on the
# search and OLTP services (closed loop, maximum throughput), the same with a crash of replica 0
# every second, netping with a kill every 100 ms (every datagram exactly once), and register
# faults injected into replica 0 of `--verify dual` on the search service (the campaign's oracle:
# no wrong answer may leave). Re-running skips finished parts. Usage:
#   bench/verified-net.sh [OUT_DIR] [REPS] [SECONDS] [CAMPAIGN_RUNS]    (root: namespaces, taps)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out/verified-net}
reps=${2:-3}
seconds=${3:-20}
runs=${4:-25}
mkdir -p "$out"
py=/usr/bin/python3
step() {  # step NAME TOOL ARGS...: TOOL's output to OUT/NAME.txt, once
  local name=$1 tool=$2
  shift 2
  if [ -s "$out/$name.txt" ]; then
    echo "verified-net: $name: done already" >&2
    return
  fi
  echo "verified-net: $name: $(date +%T) starting" >&2
  "$py" "$tool" "$@" > "$out/$name.tmp" 2> "$out/$name.log" ||
    echo "verified-net: $name FAILED (see $out/$name.log)" >&2
  mv "$out/$name.tmp" "$out/$name.txt"
  tail -n 4 "$out/$name.txt" >&2
}
modes=split,verify-dual,verify-triple
step netping-free bench/netping.py --modes "$modes" --reps "$reps" --count 5000 \
  --json "$out/netping-free.json"
step netping-kill-dual bench/netping.py --modes verify-dual --count 20000 \
  --kill-active-every-ms 100 --check --json "$out/netping-kill-dual.json"
for w in search oltp; do
  extra=()
  [ "$w" = search ] && extra=(--corpus man --cache-kib 4096)
  step "$w-closed" bench/service_bench.py --workload "$w" "${extra[@]}" --modes "$modes" \
    --reps "$reps" --load closed:4 --duration-s "$seconds" --check --json "$out/$w-closed.json"
  step "$w-kill" bench/service_bench.py --workload "$w" "${extra[@]}" --modes "$modes" \
    --reps 1 --load closed:4 --duration-s "$seconds" --kill-active-every-ms 1000 --check \
    --json "$out/$w-kill.json"
done
if [ ! -s "$out/campaign-search-register-dual/summary.md" ]; then
  echo "verified-net: campaign: $(date +%T) starting" >&2
  "$py" bench/campaign.py --fault register --workload search --runs "$runs" --seed 16 \
    --rehome-args "--verify dual" --out "$out/campaign-search-register-dual" \
    > "$out/campaign.log" 2>&1 || echo "verified-net: campaign FAILED" >&2
fi
echo "verified-net: all done" >&2
