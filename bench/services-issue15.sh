#!/usr/bin/env bash
# bench/services-issue15.sh: the service measurements recorded in docs/benchmarks.md (section
# "Search and OLTP services"): for each workload, fault-free runs at Romulus's full and light
# loads and a closed-loop maximum-throughput run, split vs monolithic vs QEMU microvm alternated
# per rep; then split mode with a crash failover every second, with hangs and with switchovers.
# Each configuration writes OUT/<name>.txt (the table), .json and plots under OUT/<name>/.
# Re-running skips finished configurations. Usage:
#   bench/services-issue15.sh [OUT_DIR] [REPS] [SECONDS]      (root: namespaces and taps)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out/issue15}
reps=${2:-3}
seconds=${3:-20}
mkdir -p "$out"
py=/usr/bin/python3
run() {
  local name=$1
  shift
  if [ -s "$out/$name.txt" ]; then
    echo "services: $name: done already"
    return
  fi
  echo "services: $name: $(date +%T) starting" >&2
  "$py" bench/service_bench.py "$@" --json "$out/$name.json" --plot-dir "$out/$name" \
    --check > "$out/$name.tmp" 2> "$out/$name.log" || echo "services: $name FAILED (see $out/$name.log)" >&2
  mv "$out/$name.tmp" "$out/$name.txt"
  tail -n 4 "$out/$name.txt" >&2
}
for w in search oltp; do
  extra=()
  [ "$w" = search ] && extra=(--corpus man --cache-kib 4096)
  run "$w-full" --workload "$w" "${extra[@]}" --modes split,monolithic,qemu --reps "$reps" \
    --load full --duration-s "$seconds"
  run "$w-closed" --workload "$w" "${extra[@]}" --modes split,monolithic,qemu --reps "$reps" \
    --load closed:4 --duration-s "$seconds"
  run "$w-light" --workload "$w" "${extra[@]}" --modes split,monolithic --reps 2 \
    --load light --duration-s $((seconds * 6))
  run "$w-kill" --workload "$w" "${extra[@]}" --modes split,monolithic --reps 2 --load full \
    --duration-s $((seconds * 3 / 2)) --kill-active-every-ms 1000
  run "$w-hang" --workload "$w" "${extra[@]}" --modes split --reps 1 --load full \
    --duration-s "$seconds" --hang-every-ms 2000
  run "$w-switchover" --workload "$w" "${extra[@]}" --modes split --reps 1 --load full \
    --duration-s "$seconds" --switchover-every-ms 1000
done
echo "services: all done" >&2
