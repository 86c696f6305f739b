#!/bin/bash
# make test-nested: builds the emulated host's image (build-image.sh), boots it under QEMU TCG
# (-cpu EPYC,+svm,+npt: an AMD host with nested virtualisation, pure emulation) with a time
# bound, and reports the nested tests it ran (console lines "NESTED-TEST ..."). Exit status 0
# only when every selected test passed.
# Usage: run.sh BUILD_DIR [test,test,...|all]   Env: NESTED_TIMEOUT (s, default 1800),
#        NESTED_MEM (MiB, default 3072), NESTED_OUT (default build-nested), NESTED_ENV
#        (VAR=value words for the tests inside, e.g. NESTED_LONG_TIMEOUT=600), NESTED_LOG
#        (the timestamped console, default NESTED_OUT/console.log), NESTED_TCG_THREAD (multi:
#        one host thread per emulated CPU, QEMU's default; single: one thread for both),
#        NESTED_BOOTS (3: boots of an emulated host that died before it finished),
#        NESTED_STALL_S (600: a console silent this long means a hung host, stopped).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [tests]}
tests=${2:-all}
out=${NESTED_OUT:-$here/../../build-nested}
"$here/build-image.sh" "$build" "$out" || exit 1
out=$(cd "$out" && pwd)
log=${NESTED_LOG:-$out/console.log}
# The emulated host itself sometimes dies (QEMU's SVM emulation: docs/nested.md, "A known
# problem of the test bed"); then it is booted again, up to NESTED_BOOTS (3) times, for the
# tests that reported nothing yet (the one it died in runs again; verdicts are never retried).
: >"$log"
boot=1
while :; do
  skip=$(grep -h -o "NESTED-TEST [^ ]* \(PASS\|FAIL\|SKIP\)" "$log" | awk '{print $2}' | paste -sd, -)
  echo "test-nested: booting the emulated host (QEMU TCG, boot $boot); console in $log"
  start=${EPOCHREALTIME/./}
  marker=$out/qemu-boot.pid
  (
    timeout --kill-after=10 "${NESTED_TIMEOUT:-1800}" nice -n 10 qemu-system-x86_64 \
      -accel "tcg,thread=${NESTED_TCG_THREAD:-multi}" -cpu EPYC,+svm,+npt -m "${NESTED_MEM:-3072}" -smp 2 -nographic -no-reboot \
      -kernel "$out/vmlinuz" -initrd "$out/host.cpio.gz" -pidfile "$marker" \
      -append "console=ttyS0 mitigations=off panic=-1 quiet no_timer_check tests=$tests ${skip:+NESTED_SKIP=$skip} ${NESTED_ENV:-}" </dev/null 2>&1 |
      while IFS= read -r line; do
        d=$((${EPOCHREALTIME/./} - start))
        printf '%5d.%02d %s\n' $((d / 1000000)) $((d / 10000 % 100)) "${line%$'\r'}"
      done >>"$log"
    exit "${PIPESTATUS[0]}"
  ) &
  booted=$!
  # A hung emulated host (the console silent for NESTED_STALL_S, 600 s; the nested tests print
  # progress every 15 s) is stopped like a dead one.
  while kill -0 "$booted" 2>/dev/null; do
    sleep 2
    if [ $(($(date +%s) - $(stat -c %Y "$log"))) -gt "${NESTED_STALL_S:-600}" ]; then
      echo "test-nested: the emulated host's console is silent for ${NESTED_STALL_S:-600} s: stopping it"
      [ -s "$marker" ] && kill "$(cat "$marker")" 2>/dev/null
      touch "$log"
    fi
  done
  wait "$booted"
  qemu_rc=$?
  rm -f "$marker"
  if grep -q "=== NESTED-TESTS DONE" "$log"; then break; fi
  echo "test-nested: the emulated host died in boot $boot (qemu rc=$qemu_rc)"
  [ "$qemu_rc" = 124 ] && break  # the time bound: no more boots
  [ "$boot" -ge "${NESTED_BOOTS:-3}" ] && break
  boot=$((boot + 1))
done
grep -E "NESTED-TEST |=== " "$log"
passed=$(grep -c "NESTED-TEST [^ ]* PASS" "$log")
failed=$(grep -c "NESTED-TEST [^ ]* FAIL" "$log")
if ! grep -q "=== NESTED-TESTS DONE" "$log"; then
  echo "test-nested: FAILED: the emulated host did not finish in $boot boot(s) (qemu rc=$qemu_rc)"
  exit 1
fi
echo "test-nested: $passed passed, $failed failed ($boot boot(s) of the emulated host)"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
