#!/bin/busybox sh
# /init of the emulated host (QEMU TCG, AMD SVM): loads kvm-amd with nested=1, runs the nested
# tests named by the kernel command line (tests=a,b,... or all) and powers off. Everything is
# reported on the console: "NESTED-TEST <name> PASS|FAIL|SKIP <detail>" per test, then
# "=== NESTED-TESTS DONE rc=<n>".
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
echo "=== NESTED-HOST up $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r), $(nproc) cpus," \
  "svm: $(grep -c -w svm /proc/cpuinfo)"
insmod /lib/modules/irqbypass.ko
insmod /lib/modules/kvm.ko
insmod /lib/modules/kvm-amd.ko nested=1 || echo "=== NESTED-HOST: insmod kvm-amd failed"
echo "=== NESTED-HOST /dev/kvm: $(ls /dev/kvm 2>&1), nested=$(cat /sys/module/kvm_amd/parameters/nested 2>&1)"
# NESTED_TRACE=1: KVM's exits (the last ones before a shutdown), exception injections and
# nested exits into a trace buffer that tests.sh
# prints when a nested test fails (why an L1 triple-faulted).
if [ "${NESTED_TRACE:-0}" = 1 ] && mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; then
  echo 4096 > /sys/kernel/tracing/buffer_size_kb
  for e in kvm/kvm_exit kvm/kvm_inj_exception kvm/kvm_nested_vmexit_inject; do
    echo 1 > /sys/kernel/tracing/events/$e/enable 2>/dev/null || echo "=== NESTED-HOST: no event $e"
  done
fi
sh /share/tests.sh "${tests:-all}"
echo "=== NESTED-TESTS DONE rc=$?"
poweroff -f
