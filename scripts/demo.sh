#!/usr/bin/env bash
# make demo: what rehome does, in four acts. Exits non-zero if anything is not as it should be.
#  1. The counter workload on 2 vCPUs, every report checked by the host oracle, while (a) the
#     running guest is moved into a fresh KVM VM every second (pause, capture the complete CPU
#     state, new VM over the same RAM memfd, restore, resume) and (b) the active hypervisor
#     process (L1) is killed with SIGKILL every 700 ms: L0 fails over to the hot standby, retries
#     the interrupted exit, and starts a new standby.
#  2. A VM started from a libvirt domain XML (examples/counter-split.xml) with a QMP monitor; a
#     QMP client prints the failover events it receives while faults are injected over QMP.
#  3. I/O through failovers: virtio-blk and echo over virtio-console.
#  4. Verified execution: an L1 commits a wrong but well-formed state. Without verification the
#     host-side oracle finds the damage (exit 65); with `--verify triple` the wrong replica is
#     outvoted, fenced and replaced before anything it computed leaves, and the guest is correct.
set -euo pipefail
BUILD=${1:-build}
REHOME="$BUILD/rehome"
GUEST="$(cd "$(dirname "$BUILD/guest/rehome-guest.elf")" && pwd)/rehome-guest.elf"
STEPS=${DEMO_STEPS:-200000000}
for f in "$REHOME" "$GUEST"; do
  [ -e "$f" ] || { echo "demo: $f is missing (run make build)" >&2; exit 1; }
done
[ -w /dev/kvm ] || { echo "demo: /dev/kvm is missing or not writable" >&2; exit 1; }
WORK=$(mktemp -d)
MONITOR_PID=""
RUN_PID=""
cleanup() {
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null || true
  [ -n "$RUN_PID" ] && kill -9 "$RUN_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "=== Act 1: counter on 2 vCPUs; VM moved every 1 s; active L1 killed every 700 ms"
echo "+ $REHOME run --kernel $GUEST --cpus 2 --memory 64 --cmdline 'workload=counter seed=42 steps=$STEPS report_every=4000000' --rehome-interval-ms 1000 --kill-active-every-ms 700 --max-failovers 1000 --serial-file $WORK/console.txt"
set +e
"$REHOME" run --kernel "$GUEST" --cpus 2 --memory 64 \
  --cmdline "workload=counter seed=42 steps=$STEPS report_every=4000000" \
  --rehome-interval-ms 1000 --kill-active-every-ms 700 --max-failovers 1000 --serial-file "$WORK/console.txt"
status=$?
set -e
echo "--- guest console:"
cat "$WORK/console.txt"
if [ $status -ne 0 ]; then
  echo "=== demo FAILED in act 1: rehome exited with status $status" >&2
  exit $status
fi
echo "=== Act 1 passed: every report verified across every VM move and every L1 failover"
echo

echo "=== Act 2: VM from libvirt domain XML, QMP monitor, failover events over QMP"
sed "s|<kernel>[^<]*</kernel>|<kernel>$GUEST</kernel>|" examples/counter-split.xml > "$WORK/domain.xml"
SOCK="$WORK/qmp.sock"
echo "+ $REHOME run --domain $WORK/domain.xml --qmp $SOCK (a copy of examples/counter-split.xml)"
"$REHOME" run --domain "$WORK/domain.xml" --qmp "$SOCK" --serial-file "$WORK/console2.txt" \
  2> "$WORK/run2.err" &
RUN_PID=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "demo: QMP socket did not appear" >&2; cat "$WORK/run2.err" >&2; exit 1; }
echo "+ $REHOME qmp $SOCK    (monitor: prints events as they arrive)"
"$REHOME" qmp "$SOCK" > "$WORK/events.jsonl" 2>/dev/null &
MONITOR_PID=$!
qmp() { echo "+ rehome qmp SOCK $*"; "$REHOME" qmp "$SOCK" "$@"; }
qmp query-name
qmp __org.rehome_query-recovery-policy
qmp __org.rehome_query-l1s
for i in 1 2 3; do
  # Wait until a standby is ready, then kill the active L1 through QMP fault injection.
  for _ in $(seq 200); do
    "$REHOME" qmp "$SOCK" __org.rehome_query-l1s | grep -q '"standby"' && break
    sleep 0.05
  done
  qmp __org.rehome_inject-fault '{"target":"active","kind":"kill"}'
  for _ in $(seq 200); do
    [ "$(grep -c FAILOVER_COMPLETED "$WORK/events.jsonl" || true)" -ge $i ] && break
    sleep 0.05
  done
done
qmp __org.rehome_inject-fault '{"target":"active","kind":"hang"}'
for _ in $(seq 200); do
  [ "$(grep -c FAILOVER_COMPLETED "$WORK/events.jsonl" || true)" -ge 4 ] && break
  sleep 0.05
done
qmp __org.rehome_query-failovers
qmp query-status
qmp quit
wait "$RUN_PID"
status=$?
RUN_PID=""
kill "$MONITOR_PID" 2>/dev/null || true
wait "$MONITOR_PID" 2>/dev/null || true
MONITOR_PID=""
echo "--- events received by the QMP monitor client:"
cat "$WORK/events.jsonl"
completed=$(grep -c FAILOVER_COMPLETED "$WORK/events.jsonl" || true)
if [ $status -ne 0 ] || [ "$completed" -lt 4 ]; then
  echo "=== demo FAILED in act 2: rehome exited $status, $completed failovers seen over QMP" >&2
  cat "$WORK/run2.err" >&2
  exit 1
fi
echo "=== Act 2 passed: $completed failovers (3 kills, 1 hang) reported over QMP; guest kept running"
echo

echo "=== Act 3: I/O through failovers: virtio-blk writes/reads, and echo over virtio-console"
truncate -s 32M "$WORK/disk.img"
echo "+ $REHOME run --kernel $GUEST --disk $WORK/disk.img --cmdline 'workload=blk seed=7 steps=1500' --kill-active-every-ms 60 --max-failovers 100000"
"$REHOME" run --kernel "$GUEST" --disk "$WORK/disk.img" --cmdline "workload=blk seed=7 steps=1500" \
  --kill-active-every-ms 60 --max-failovers 100000 --serial-file "$WORK/blk.txt" 2> "$WORK/blk.err"
grep -E "blk done" "$WORK/blk.txt"
tail -1 "$WORK/blk.err"
python3 guest/tools/blk_image_check.py --seed 7 "$WORK/disk.img"
CSOCK="$WORK/console.sock"
echo "+ $REHOME run --kernel $GUEST --console-socket $CSOCK --cmdline 'workload=echo steps=1500' --kill-active-every-ms 60 --max-failovers 100000"
"$REHOME" run --kernel "$GUEST" --console-socket "$CSOCK" --cmdline "workload=echo steps=1500" \
  --kill-active-every-ms 60 --max-failovers 100000 --serial-file "$WORK/echo.txt" 2> "$WORK/echo.err" &
RUN_PID=$!
for _ in $(seq 200); do [ -S "$CSOCK" ] && break; sleep 0.05; done
echo "+ guest/tools/echo_peer.py $CSOCK   (one connection for the whole run)"
python3 guest/tools/echo_peer.py "$CSOCK"
wait "$RUN_PID"
status=$?
RUN_PID=""
grep -E "echo done" "$WORK/echo.txt"
tail -1 "$WORK/echo.err"
if [ $status -ne 0 ]; then
  echo "=== demo FAILED in act 3: rehome exited $status" >&2
  exit 1
fi
echo "=== Act 3 passed: every block and every console byte verified across the failovers"
echo

echo "=== Act 4: verified execution: an L1 that computes a wrong (well-formed) state"
VCMD="workload=counter seed=42 steps=20000000 report_every=500000"
echo "+ $REHOME run --kernel $GUEST --cpus 2 --cmdline '$VCMD' --qmp SOCK   (no verification)"
VSOCK="$WORK/v.sock"
# verified_run MODE: runs the counter with `--verify MODE`, injects `wrong-state` into one L1
# (replica-1 when verifying, the active L1 otherwise) a few exits in; prints its exit status.
verified_run() {
  local mode=$1 target=active
  [ "$mode" != none ] && target=replica-1
  rm -f "$VSOCK"
  "$REHOME" run --kernel "$GUEST" --cpus 2 --cmdline "$VCMD" --verify "$mode" --qmp "$VSOCK" \
    --serial-file "$WORK/verify-$mode.txt" 2> "$WORK/verify-$mode.err" &
  RUN_PID=$!
  for _ in $(seq 200); do [ -S "$VSOCK" ] && break; sleep 0.05; done
  "$REHOME" qmp "$VSOCK" > "$WORK/verify-$mode.jsonl" 2>/dev/null &
  MONITOR_PID=$!
  for _ in $(seq 200); do
    "$REHOME" qmp "$VSOCK" __org.rehome_query-l1s 2>/dev/null | grep -q '"standby"' && break
    sleep 0.05
  done
  echo "+ rehome qmp SOCK __org.rehome_inject-fault '{\"target\":\"$target\",\"kind\":\"wrong-state\",\"after\":3}'"
  "$REHOME" qmp "$VSOCK" __org.rehome_inject-fault \
    "{\"target\":\"$target\",\"kind\":\"wrong-state\",\"after\":3}" || true
  if [ "$mode" != none ]; then
    for _ in $(seq 200); do
      grep -q DIVERGENCE_RESOLVED "$WORK/verify-$mode.jsonl" && break
      sleep 0.05
    done
    echo "+ rehome qmp SOCK __org.rehome_query-verification"
    "$REHOME" qmp "$VSOCK" __org.rehome_query-verification || true
  fi
  local rc=0
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  kill "$MONITOR_PID" 2>/dev/null || true
  wait "$MONITOR_PID" 2>/dev/null || true
  MONITOR_PID=""
  tail -n 2 "$WORK/verify-$mode.err"
  VERIFY_STATUS=$rc
}
verified_run none
if [ "$VERIFY_STATUS" -ne 65 ]; then
  echo "=== demo FAILED in act 4: without verification the wrong state should be caught by the" \
    "counter oracle (exit 65), rehome exited $VERIFY_STATUS" >&2
  exit 1
fi
echo "--- without verification nothing in rehome noticed; the host-side oracle did (exit 65)"
echo "+ $REHOME run --kernel $GUEST --cpus 2 --cmdline '$VCMD' --verify triple --qmp SOCK"
verified_run triple
echo "--- events received by the QMP monitor client:"
grep -E "DIVERGENCE|L1_FAILED" "$WORK/verify-triple.jsonl" || true
if [ "$VERIFY_STATUS" -ne 0 ] || ! grep -q DIVERGENCE_RESOLVED "$WORK/verify-triple.jsonl"; then
  echo "=== demo FAILED in act 4: verify triple exited $VERIFY_STATUS" >&2
  cat "$WORK/verify-triple.err" >&2
  exit 1
fi
echo "=== Act 4 passed: the wrong replica was outvoted and replaced; the guest never noticed"
echo "=== demo passed"
