#!/bin/bash
# Packs the small Linux guest rehome boots in its Linux tests: busybox-static and guest-init.sh
# as /init, and the pvpanic modules from MODULES (when given), into OUT (a gzip'd newc cpio).
# Prints OUT; one line and exit 1 when it cannot.
# Usage: build-guest-initramfs.sh OUT.cpio.gz [MODULES_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-guest-initramfs.sh OUT.cpio.gz [MODULES_DIR]}
modules=${2:-}
if ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
  echo "/bin/busybox is not busybox-static (apt-get install busybox-static)"; exit 1
fi
command -v cpio >/dev/null || { echo "cpio is not installed"; exit 1; }
if [ -s "$out" ] && [ "$out" -nt "$here/guest-init.sh" ] && [ "$out" -nt /bin/busybox ] &&
   [ "$out" -nt "$here/build-guest-initramfs.sh" ] &&
   { [ -z "$modules" ] || [ "$out" -nt "$modules/pvpanic-mmio.ko" ]; }; then
  echo "$out"; exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
[ -n "$modules" ] && cp "$modules"/pvpanic.ko "$modules"/pvpanic-mmio.ko "$root/lib/modules/"
cp /bin/busybox "$root/bin/busybox"
cp "$here/guest-init.sh" "$root/init" && chmod +x "$root/init"
mkdir -p "$(dirname "$out")"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
