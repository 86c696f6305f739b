#!/bin/bash
# Builds the L1 image of nested mode (docs/nested.md): OUT/l1.cpio.gz holds busybox-static,
# the kvm modules of Debian's cloud kernel, rehome-agent and its shared libraries, and
# l1-init.sh as /init; the kernel is the same cloud kernel (OUT/cache/vmlinuz). Rebuilt only
# when an input is newer. Usage: build-l1-image.sh BUILD_DIR [OUT]  (OUT default build-nested)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: build-l1-image.sh BUILD_DIR [OUT]}" && pwd)
out=${2:-$here/../../build-nested}
mkdir -p "$out" && out=$(cd "$out" && pwd)
. "$here/lib.sh"
"$here/fetch-kernel.sh" "$out/cache" >/dev/null || { "$here/fetch-kernel.sh" "$out/cache"; exit 1; }
agent=$build/rehome-agent
[ -x "$agent" ] || { echo "build-l1-image.sh: $agent is missing (build it first)"; exit 1; }
image=$out/l1.cpio.gz
fresh=1
[ -f "$image" ] || fresh=0
for f in "$agent" "$here/l1-init.sh" "$here/build-l1-image.sh" "$here/lib.sh" "$out/cache/kver"; do
  [ "$f" -nt "$image" ] && fresh=0
done
if [ $fresh = 1 ]; then echo "$image"; exit 0; fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$out"/cache/modules/*.ko "$root/lib/modules/"
cp "$here/l1-init.sh" "$root/init" && chmod +x "$root/init"
add_binary "$root" "$agent"
pack "$root" "$image"
echo "$image"
