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
sh /share/tests.sh "${tests:-all}"
echo "=== NESTED-TESTS DONE rc=$?"
poweroff -f
