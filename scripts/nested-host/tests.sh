#!/bin/sh
# The nested tests, run inside the emulated host by init.sh: tests.sh all | name,name,...
# Each prints "NESTED-TEST <name> PASS|FAIL|SKIP <detail>"; the exit status counts failures.
failures=0
up() { cut -d' ' -f1 /proc/uptime; }
report() {  # name verdict detail...
  n=$1; v=$2; shift 2
  echo "NESTED-TEST $n $v $*"
  [ "$v" = FAIL ] && failures=$((failures + 1))
  return 0
}
# NESTED_SKIP=name,...: tests an earlier boot of the emulated host already reported (run.sh).
wanted() {
  echo ",${NESTED_SKIP:-}," | grep -q ",$1," && return 1
  [ "$selection" = all ] || echo ",$selection," | grep -q ",$1,"
}

# A Linux kernel (Debian's cloud kernel) boots under rehome: ACPI (MADT for 2 vCPUs), an
# initrd, the serial console, power-off through the ACPI sleep control register.
# Split mode has no COM1 interrupts (README), so the guest's tty output never drains there; its
# kernel console (polled) carries the marker instead ("kmsg: REHOME-LINUX-BOOTED ...").
t_linux_boot() {  # name mode marker-prefix extra-args...
  name=$1; mode=$2; prefix=$3; shift 3
  t0=$(up)
  timeout -s KILL ${NESTED_TEST_TIMEOUT:-400} rehome run --mode "$mode" --kernel /share/vmlinuz \
    --initrd /share/hello.cpio.gz --memory 256 --cpus 2 --serial-file /tmp/$name.log "$@" \
    >/tmp/$name.err 2>&1
  rc=$?
  t1=$(up)
  # The kernel's console can cut into the init's tty line ("REHOME-LINUX-BOO[ 3.5] kmsg: ...\n
  # TED cpus=2 ..."): the marker is also looked for with a kernel message that starts inside a
  # line dropped and that line joined with the next.
  line=$({
    tr -d "\r" </tmp/$name.log
    tr -d "\r" </tmp/$name.log | awk '{ j = match($0, /\[ *[0-9]+\.[0-9]+\] /)
      if (j > 1) { printf "%s", substr($0, 1, j - 1); next }
      print }'
  } | grep "$prefix""REHOME-LINUX-BOOTED" | grep -m1 "cpus=")
  if [ $rc = 0 ] && echo "$line" | grep -q "cpus=2"; then
    report $name PASS "rc=0 in $(awk "BEGIN{print $t1-$t0}")s: $line"
    return 0
  fi
  report $name FAIL "rc=$rc: ${line:-no marker}; guest console and rehome's stderr follow"
  sed "s/^/  $name console: /" /tmp/$name.log | tail -n ${NESTED_LOG_LINES:-2000}
  sed "s/^/  $name stderr: /" /tmp/$name.err | tail -n 20
  return 1
}

# Nested mode (docs/nested.md): the test guest's counter workload is L2, run by rehome-agent in
# an L1 VM (the cloud kernel + l1.cpio.gz) under rehome on this emulated host; faults hit the
# whole L1 and L0 re-homes L2 into the standby L1. Passes when L2 finishes with every counter
# report verified (rehome's exit status 0) after at least `count` failovers (register faults:
# after `count` flips, which may or may not fail the L1). NESTED_RUN_ARGS adds options to every
# such run (e.g. --l1-exit-tracking off).
t_nested() {  # name fault count steps extra-args...
  name=$1; fault=$2; count=$3; steps=$4; shift 4
  t0=$(up)
  mkdir -p /l1-logs/$name
  set -- --nested-faults "$count" "$@"
  [ "$fault" != none ] && set -- --nested-fault "$fault" "$@"
  # rehome's status lines stream to the console as they come (and into $name.err).
  set -o pipefail
  timeout -s KILL ${NESTED_LONG_TIMEOUT:-3000} rehome run --mode nested \
    --kernel /share/rehome-guest.elf --l1-kernel /share/vmlinuz --l1-initrd /share/l1.cpio.gz \
    --l1-console-dir /l1-logs/$name --memory 64 --max-failovers 1000 \
    --l1-hang-timeout-ms ${NESTED_HANG_MS:-8000} \
    --cmdline "workload=counter steps=$steps report_every=$((steps / 200 + 1))" \
    --serial-file /tmp/$name.log ${NESTED_RUN_ARGS:-} "$@" 2>&1 | tee /tmp/$name.err |
    sed "s/^/  $name live: /"
  rc=$?
  set +o pipefail
  t1=$(up)
  summary=$(grep "rehome: nested:" /tmp/$name.err | sed 's/^rehome: nested: //')
  n=$(grep -c "rehome: failover #" /tmp/$name.err)
  want=$count
  if [ "$fault" = register ]; then  # a flip may be masked: count the flips, not failovers
    want=0
    echo "$summary" | grep -q "; $count register faults" || rc="$rc (not $count register faults)"
  fi
  for f in /l1-logs/$name/*.log; do  # how each L1 ended (a standby that failed shows why)
    [ -f "$f" ] && sed "s|^|  $name $(basename $f) end: |" "$f" | tail -n 3
  done
  if [ "$rc" = 0 ] && [ "$n" -ge "$want" ]; then
    report $name PASS "rc=0 in $(awk "BEGIN{print $t1-$t0}")s, $n failovers: $summary"
    return 0
  fi
  report $name FAIL "rc=$rc, $n failovers (want $count): ${summary:-no summary}"
  [ -r /sys/kernel/tracing/trace ] && grep -v "^#" /sys/kernel/tracing/trace |
    tail -n ${NESTED_TRACE_LINES:-60} | sed "s/^/  $name trace: /"
  sed "s/^/  $name stderr: /" /tmp/$name.err | tail -n 60
  sed "s/^/  $name L2 console: /" /tmp/$name.log | tail -n 20
  for f in /l1-logs/$name/*.log; do
    [ -f "$f" ] && sed "s|^|  $name $(basename $f): |" "$f" | tail -n 40
  done
  return 1
}

run() {
  name=$1; shift
  wanted "$name" || return 0
  echo "NESTED-TEST-START $name at $(up)s"
  "$@"
}

selection=$1
run linux-boot t_linux_boot linux-boot monolithic "^" --cmdline "console=ttyS0 panic=-1"
run linux-boot-split t_linux_boot linux-boot-split split "kmsg: " \
  --cmdline "console=ttyS0 panic=-1 quiet"
run linux-reboot t_linux_boot linux-reboot monolithic "^" --on-reboot destroy \
  --cmdline "console=ttyS0 panic=-1 quiet action=reboot"
if wanted linux-virtio-acpi; then
  echo "NESTED-TEST-START linux-virtio-acpi at $(up)s"
  truncate -s 8M /tmp/disk.img
  t_linux_boot linux-virtio-acpi monolithic "^" --disk /tmp/disk.img \
    --cmdline "console=ttyS0 panic=-1 quiet" &&
    { grep -q "acpi-virtio=1" /tmp/linux-virtio-acpi.log ||
      report linux-virtio-acpi FAIL "the LNRO0005 device was not enumerated"; }
fi
# A Linux guest that panics with the pvpanic driver loaded (guest-init.sh action=panic): rehome
# ends the run as a guest crash (66) on the driver's write, before the kernel's own reset.
t_linux_pvpanic() {
  name=linux-pvpanic
  t0=$(up)
  timeout -s KILL ${NESTED_TEST_TIMEOUT:-400} rehome run --mode monolithic --kernel /share/vmlinuz \
    --initrd /share/hello.cpio.gz --memory 256 --serial-file /tmp/$name.log \
    --cmdline "console=ttyS0 panic=-1 quiet action=panic" >/tmp/$name.err 2>&1
  rc=$?
  t1=$(up)
  line=$(grep "REHOME-LINUX-BOOTED" /tmp/$name.log | tr -d "\r")
  if [ $rc = 66 ] && grep -q "pvpanic event" /tmp/$name.err && echo "$line" | grep -q "acpi-pvpanic=1"; then
    report $name PASS "rc=66 in $(awk "BEGIN{print $t1-$t0}")s: $(grep 'rehome: guest crashed' /tmp/$name.err)"
    return 0
  fi
  report $name FAIL "rc=$rc: ${line:-no marker}; guest console and rehome's stderr follow"
  sed "s/^/  $name console: /" /tmp/$name.log | tail -n 60
  sed "s/^/  $name stderr: /" /tmp/$name.err | tail -n 20
  return 1
}
run linux-pvpanic t_linux_pvpanic
run nested-boot t_nested nested-boot none 0 ${NESTED_BOOT_STEPS:-2000000}
run nested-kill t_nested nested-kill kill 3 ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 2000
run nested-failovers t_nested nested-failovers mixed 20 ${NESTED_LONG_STEPS:-320000000} \
  --nested-fault-every-ms 1000
run nested-register t_nested nested-register register 4 ${NESTED_REGISTER_STEPS:-50000000} \
  --nested-fault-every-ms 1000
run nested-big t_nested nested-big kill 3 ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 2000 \
  --memory 512
# Failover time against L2 RAM size: L2 lifetimes at 64 MiB and at NESTED_FLAT_BIG MiB (1024)
# in turn, NESTED_FLAT_ROUNDS (2) of each, each with NESTED_FLAT_KILLS (3) kills of the active L1;
# bench/nested_failovers.py tabulates the phases from the console log.
if wanted nested-flat; then
  for round in $(seq 1 ${NESTED_FLAT_ROUNDS:-2}); do
    for mib in 64 ${NESTED_FLAT_BIG:-1024}; do
      echo "NESTED-TEST-START nested-flat-$mib-$round at $(up)s"
      t_nested nested-flat-$mib-$round kill ${NESTED_FLAT_KILLS:-3} \
        ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 2000 --memory $mib
    done
  done
fi
# The agent dies while it handles one of L2's port I/O exits (after the device model took it,
# before its commit): L2 is re-homed from the exit's pre-handling commit, exactly once.
run nested-crash-in-exit t_nested nested-crash-in-exit crash-in-exit ${NESTED_CRASHES:-4} \
  ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 1000
# The active L1 stops for good while L2 is inside it (out of guest mode, not parked: its KVM
# handles an exit of L2's): L0 re-homes L2 from the exit it captured at the L1's VMRUN return
# (or from the commit after it), without letting the L1 run again.
run nested-die-in-exit t_nested nested-die-in-exit die-in-exit ${NESTED_DEATHS:-4} \
  ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 1000
# Kernel panics of the active L1 (the agent panics it through sysrq): detected through pvpanic.
run nested-panic t_nested nested-panic panic ${NESTED_PANICS:-4} ${NESTED_KILL_STEPS:-20000000} \
  --nested-fault-every-ms 1000
# A fault-injection campaign into whole L1s, driven by bench/campaign.py --mode nested:
# NESTED_CAMPAIGN lists runs "index:fault:delay_ms:seed" separated by commas. Each run is one L2
# lifetime (the counter workload, NESTED_CAMPAIGN_STEPS steps) with one fault, injected delay_ms
# after L2 runs and a standby is ready; it prints rehome's status lines, L2's final counter line
# and then "NESTED-CAMPAIGN-RUN index rc=N wall=S" (rc 137: killed at NESTED_CAMPAIGN_TIMEOUT).
if wanted nested-campaign && [ -n "${NESTED_CAMPAIGN:-}" ]; then
  echo "NESTED-TEST-START nested-campaign at $(up)s"
  steps=${NESTED_CAMPAIGN_STEPS:-20000000}
  for spec in $(echo "${NESTED_CAMPAIGN:-}" | tr ',' ' '); do
    i=${spec%%:*}; rest=${spec#*:}; fault=${rest%%:*}; rest=${rest#*:}
    delay=${rest%%:*}; seed=${rest#*:}
    rm -rf /l1-logs/campaign && mkdir -p /l1-logs/campaign
    t0=$(up)
    timeout -s KILL ${NESTED_CAMPAIGN_TIMEOUT:-900} rehome run --mode nested \
      --kernel /share/rehome-guest.elf --l1-kernel /share/vmlinuz --l1-initrd /share/l1.cpio.gz \
      --l1-console-dir /l1-logs/campaign --memory 64 --l1-hang-timeout-ms ${NESTED_HANG_MS:-8000} \
      --cmdline "workload=counter steps=$steps report_every=$((steps / 200 + 1))" \
      --serial-file /tmp/campaign.log --nested-fault "$fault" --nested-faults 1 \
      --nested-fault-every-ms "$delay" --nested-fault-seed "$seed" >/tmp/campaign.err 2>&1
    rc=$?
    t1=$(up)
    grep -E "^rehome" /tmp/campaign.err | sed "s/^/NESTED-CAMPAIGN-LOG $i /"
    grep "vcpu=0 step=" /tmp/campaign.log | tail -n 1 | tr -d "\r" | sed "s/^/NESTED-CAMPAIGN-L2 $i /"
    for f in /l1-logs/campaign/*.log; do  # how each L1 ended
      [ -f "$f" ] && tail -n 4 "$f" | tr -d "\r" | sed "s|^|NESTED-CAMPAIGN-L1 $i $(basename $f): |"
    done
    echo "NESTED-CAMPAIGN-RUN $i rc=$rc wall=$(awk "BEGIN{print $t1-$t0}")"
  done
  report nested-campaign PASS "$(echo "${NESTED_CAMPAIGN:-}" | tr ',' '\n' | grep -c .) runs"
fi
exit $failures
