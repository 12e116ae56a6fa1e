#!/usr/bin/env bash
# Builds the large image of bench/toc.ts: one layer of a debootstrapped Debian 12 with clang-14 and
# llvm-14-dev installed (about 650 MB uncompressed, real Debian packages), as an OCI layout, offline but for
# Debian's archive. Cached under $PORTCULLIS_CACHE/images/oci-toolchain (tag `big`). Idempotent.
#
# Usage: toc-image.sh            build it if missing
#        toc-image.sh --print    print the layout's folder
set -euo pipefail
cache="${PORTCULLIS_CACHE:-/var/cache/portcullis}/images"
oci="$cache/oci-toolchain"
[ "${1:-}" = "--print" ] && { echo "$oci"; exit 0; }
[ -f "$oci/.complete" ] && exit 0
mkdir -p "$cache"
exec 9>"$cache/.lock-toolchain"
flock 9
[ -f "$oci/.complete" ] && exit 0
log() { printf '[toc-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$cache/toolchain-build"
rm -rf "$work" "$oci"
mkdir -p "$work"
log "debootstrap bookworm minbase"
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
log "installing clang-14 and llvm-14-dev in it (a few minutes)"
mount -t proc proc "$work/rootfs/proc"
cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
set +e
chroot "$work/rootfs" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends clang-14 llvm-14-dev >/dev/null && apt-get clean' >"$work/install.log" 2>&1
rc=$?
set -e
umount "$work/rootfs/proc"
[ $rc = 0 ] || { tail -20 "$work/install.log" >&2; exit 1; }
log "packing one layer (umoci)"
umoci init --layout "$oci"
umoci new --image "$oci:big"
umoci unpack --image "$oci:big" "$work/bundle" >/dev/null
rsync -a "$work/rootfs/" "$work/bundle/rootfs/"
umoci repack --image "$oci:big" "$work/bundle"
umoci config --image "$oci:big" --os linux --architecture amd64
# The root filesystem stays for dpkg-query (the bench checks the package count against it).
mv "$work/rootfs" "$cache/rootfs-toolchain.new" && rm -rf "$cache/rootfs-toolchain" && mv "$cache/rootfs-toolchain.new" "$cache/rootfs-toolchain"
rm -rf "$work"
touch "$oci/.complete"
log "ready: $oci:big ($(du -sh "$cache/rootfs-toolchain" | cut -f1) unpacked)"
