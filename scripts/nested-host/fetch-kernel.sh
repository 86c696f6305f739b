#!/bin/bash
# Fetches Debian's cloud kernel (linux-image-cloud-amd64's current dependency) once with
# `apt-get download` and unpacks what rehome needs into a cache directory:
#   CACHE/vmlinuz                  the bzImage
#   CACHE/kver                     its version (e.g. 6.1.0-57-cloud-amd64)
#   CACHE/modules/{irqbypass,kvm,kvm-amd}.ko, and {pvpanic,pvpanic-mmio}.ko (L1s and Linux
#                                  guests report a kernel panic to rehome through pvpanic)
# Usage: fetch-kernel.sh [CACHE]   (default: build-nested/cache in the checkout)
# Prints the vmlinuz path and exits 0, or prints one line saying why it cannot and exits 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-$here/../../build-nested/cache}
mkdir -p "$cache" && cd "$cache" && cache=$(pwd) || { echo "cannot create $cache"; exit 1; }
if [ -s vmlinuz ] && [ -s kver ] && [ -s modules/pvpanic-mmio.ko ]; then echo "$cache/vmlinuz"; exit 0; fi
exec 9>.lock && flock 9  # one download at a time (both builds' tests may ask)
if [ -s vmlinuz ] && [ -s kver ] && [ -s modules/pvpanic-mmio.ko ]; then echo "$cache/vmlinuz"; exit 0; fi
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$pkg" ]; then
  echo "no linux-image-cloud-amd64 in the apt lists (run apt-get update)"; exit 1
fi
rm -rf dl x && mkdir -p dl
if ! (cd dl && apt-get download -q "$pkg" >/dev/null 2>&1); then
  echo "apt-get download $pkg failed (no network or mirror?)"; exit 1
fi
dpkg-deb -x dl/*.deb x || { echo "dpkg-deb -x failed on $(ls dl)"; exit 1; }
kver=${pkg#linux-image-}
mod=x/lib/modules/$kver/kernel
mkdir -p modules
for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/misc/pvpanic/pvpanic \
         drivers/misc/pvpanic/pvpanic-mmio; do
  if [ -f "$mod/$m.ko" ]; then cp "$mod/$m.ko" modules/
  elif [ -f "$mod/$m.ko.xz" ]; then xz -dc "$mod/$m.ko.xz" > "modules/$(basename $m).ko"
  else echo "module $m not in $pkg"; exit 1; fi
done
cp "x/boot/vmlinuz-$kver" vmlinuz.tmp && mv vmlinuz.tmp vmlinuz
echo "$kver" > kver
rm -rf dl x
echo "$cache/vmlinuz"
