#!/usr/bin/env bash
# Builds the real images the integration tests and benchmarks use, offline but for Debian's archive, and
# caches them under $PORTCULLIS_CACHE/images (default /var/cache/portcullis/images). Idempotent.
#
#   rootfs-bookworm/            debootstrap --variant=minbase bookworm (88 real dpkg packages)
#   rootfs-bookworm-two/        the same plus `jq` installed and `gpgv` purged (a second layer)
#   rootfs-bookworm-lang/       base plus python3-six, libcommons-lang3-java and direnv (a Go program)
#   rootfs-bookworm-inventory/  lang's packages plus ruby (default gems) and fzf (a GOPATH-mode Go build)
#   oci-bookworm/  (OCI layout) tags: base (one layer), two (base + the second layer, with whiteouts),
#                  lang (base + a layer of language packages from Debian), inventory (the same, larger)
#
# Usage: images.sh            build what is missing
#        images.sh --print    print the cache folder
set -euo pipefail
cache="${PORTCULLIS_CACHE:-/var/cache/portcullis}/images"
[ "${1:-}" = "--print" ] && { echo "$cache"; exit 0; }
mkdir -p "$cache"
log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
lock="$cache/.lock"
exec 9>"$lock"
flock 9

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ ! -f "$cache/rootfs-bookworm/.complete" ]; then
  log "debootstrap bookworm minbase (about 30 s)"
  rm -rf "$cache/rootfs-bookworm"
  debootstrap --variant=minbase bookworm "$cache/rootfs-bookworm" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # apt's caches make the layer realistic in size (testenv.md's 95 MB figure); keep them.
  touch "$cache/rootfs-bookworm/.complete"
fi

oci="$cache/oci-bookworm"

# layer_on_base TAG NAME 'shell commands': unpacks the base image, runs the commands in it (chroot, with
# /proc and the host's resolver), keeps the result as rootfs-bookworm-NAME and repacks it as TAG: a second
# layer that holds exactly what the commands changed, whiteouts included.
layer_on_base() {
  local tag=$1 name=$2 commands=$3 root="$cache/bundle/rootfs" rc
  rm -rf "$cache/bundle"
  umoci unpack --image "$oci:base" "$cache/bundle" >/dev/null
  mount -t proc proc "$root/proc" 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  set +e
  chroot "$root" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && $commands" >"$cache/layer-$name.log" 2>&1
  rc=$?
  set -e
  umount "$root/proc" 2>/dev/null || true
  [ $rc = 0 ] || { tail -20 "$cache/layer-$name.log" >&2; exit 1; }
  rm -rf "$cache/rootfs-bookworm-$name"
  rsync -a "$root/" "$cache/rootfs-bookworm-$name/"
  umoci repack --image "$oci:$tag" "$cache/bundle"
  rm -rf "$cache/bundle"
}

if [ ! -f "$oci/.complete" ]; then
  log "packing the OCI layout (umoci)"
  rm -rf "$oci" "$cache/bundle"
  umoci init --layout "$oci"
  umoci new --image "$oci:base"
  umoci unpack --image "$oci:base" "$cache/bundle" >/dev/null
  rsync -a --exclude=/.complete "$cache/rootfs-bookworm/" "$cache/bundle/rootfs/"
  umoci repack --image "$oci:base" "$cache/bundle"
  umoci config --image "$oci:base" --config.cmd /bin/bash --os linux --architecture amd64
  rm -rf "$cache/bundle"
  log "second layer: install jq, purge gpgv"
  layer_on_base two two 'apt-get install -y -qq --no-install-recommends jq >/dev/null && apt-get purge -y -qq gpgv >/dev/null'
  touch "$oci/.complete"
fi
if [ ! -f "$oci/.complete-lang" ]; then
  log "language layer: python3-six, libcommons-lang3-java, direnv"
  layer_on_base lang lang 'apt-get install -y -qq --no-install-recommends python3-six libcommons-lang3-java direnv >/dev/null && apt-get clean'
  touch "$oci/.complete-lang"
fi
if [ ! -f "$oci/.complete-inventory" ]; then
  log "inventory layer: lang's packages, ruby, fzf"
  layer_on_base inventory inventory 'apt-get install -y -qq --no-install-recommends python3-six libcommons-lang3-java direnv ruby fzf >/dev/null && apt-get clean'
  touch "$oci/.complete-inventory"
fi
log "images ready in $cache"
