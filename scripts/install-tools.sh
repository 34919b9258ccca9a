#!/usr/bin/env bash
# Installs the pinned tools the e2e suite drives into a project-local bin
# directory (default: <repo>/.tools/bin, gitignored). A tool is skipped when
# the binary already there was built from exactly the pinned module@version
# (read back with `go version -m`, i.e. the build info Go stamps into every
# binary), so a warm re-run costs a few milliseconds.
#
# Built binaries are also kept by version in a cache outside the clone
# (PORTCULLIS_TOOLS_CACHE, default ~/.cache/portcullis-tools): CI runs in a
# fresh clone every time, and cosign alone takes minutes to build cold.
#
# As root it also apt-installs skopeo, containerd, docker.io and podman
# (skipped when present).
#
# Env:
#   TOOLS_BIN       install directory (default <repo>/.tools/bin)
#   SKIP_APT=1      do not touch apt even as root
#   PORTCULLIS_TOOLS_CACHE  where built binaries are kept by version
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${TOOLS_BIN:-$repo_root/.tools/bin}"
mkdir -p "$bin"
bin="$(cd "$bin" && pwd)"
cache="${PORTCULLIS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis-tools}"
mkdir -p "$cache"

# name | package path | version   (the module path is read from the binary)
tools=(
  "registry|github.com/distribution/distribution/v3/cmd/registry|v3.1.2"
  "crane|github.com/google/go-containerregistry/cmd/crane|v0.22.1"
  "cosign2|github.com/sigstore/cosign/v2/cmd/cosign|v2.6.5"
  "cosign3|github.com/sigstore/cosign/v3/cmd/cosign|v3.1.3"
  "oras|oras.land/oras/cmd/oras|v1.3.6"
  "regctl|github.com/regclient/regclient/cmd/regctl|v0.11.7"
  "syft|github.com/anchore/syft/cmd/syft|v1.57.1"
)

# The OCI distribution-spec conformance suite, a test binary (go test -c).
conformance_mod="github.com/opencontainers/distribution-spec/conformance"
conformance_ver="v0.0.0-20231101194043-f2182352d4cc"

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp prints "<main module>@<version>" of a Go binary, or nothing.
stamp() {
  go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3; exit }'
}

# module_of maps a package path to the module that holds it (for the stamp check).
module_of() {
  case "$1" in
    github.com/distribution/distribution/v3/*) echo github.com/distribution/distribution/v3 ;;
    github.com/google/go-containerregistry/*) echo github.com/google/go-containerregistry ;;
    github.com/sigstore/cosign/v2/*) echo github.com/sigstore/cosign/v2 ;;
    github.com/sigstore/cosign/v3/*) echo github.com/sigstore/cosign/v3 ;;
    oras.land/oras/*) echo oras.land/oras ;;
    github.com/regclient/regclient/*) echo github.com/regclient/regclient ;;
    github.com/anchore/syft/*) echo github.com/anchore/syft ;;
    *) echo "$1" ;;
  esac
}

install_one() {
  local name="$1" pkg="$2" ver="$3"
  local want have dest tmp start
  want="$(module_of "$pkg")@$ver"
  dest="$bin/$name"
  if [[ -x "$dest" ]]; then
    have="$(stamp "$dest")"
    if [[ "$have" == "$want" ]]; then
      log "$name: $want already installed, skipping"
      return 0
    fi
    log "$name: have '${have:-unknown}', want $want: reinstalling"
  fi
  local cached="$cache/$name-$ver"
  if [[ -x "$cached" && "$(stamp "$cached")" == "$want" ]]; then
    cp -f "$cached" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
    log "$name: $want from $cache"
    return 0
  fi
  # Both cosigns build a binary named "cosign": install each into its own
  # temporary GOBIN and move it into place under its final name. Run from
  # the temp dir so the project's go.mod plays no part in the build.
  tmp="$(mktemp -d)"
  start=$SECONDS
  log "$name: go install $pkg@$ver"
  (cd "$tmp" && GOBIN="$tmp/bin" go install "$pkg@$ver")
  local built
  built="$(find "$tmp/bin" -maxdepth 1 -type f -perm -u+x | head -n1)"
  if [[ -z "$built" ]]; then
    log "$name: go install produced no binary"; rm -rf "$tmp"; return 1
  fi
  cp -f "$built" "$cached"
  mv -f "$built" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  rm -rf "$tmp"
  have="$(stamp "$dest")"
  if [[ "$have" != "$want" ]]; then
    log "$name: installed binary reports '$have', want $want"; return 1
  fi
  log "$name: installed $want in $((SECONDS - start))s"
}

for t in "${tools[@]}"; do
  IFS='|' read -r name pkg ver <<<"$t"
  install_one "$name" "$pkg" "$ver"
done

# install_conformance builds the distribution-spec conformance suite as a
# test binary, cached by version like the tools above. A marker file next to
# it records the version (test binaries carry no main-module stamp).
install_conformance() {
  local dest="$bin/conformance.test" cached="$cache/conformance-$conformance_ver.test"
  if [[ -x "$dest" && "$(cat "$dest.version" 2>/dev/null)" == "$conformance_ver" ]]; then
    log "conformance: $conformance_ver already installed, skipping"; return 0
  fi
  if [[ ! -x "$cached" ]]; then
    local tmp start=$SECONDS
    tmp="$(mktemp -d)"
    log "conformance: go test -c $conformance_mod@$conformance_ver"
    (cd "$tmp" && go mod init conformance-build >/dev/null 2>&1 \
      && go get -t "$conformance_mod@$conformance_ver" >/dev/null 2>&1 \
      && go test -c -o "$tmp/conformance.test" "$conformance_mod")
    cp -f "$tmp/conformance.test" "$cached"
    rm -rf "$tmp"
    log "conformance: built in $((SECONDS - start))s"
  fi
  cp -f "$cached" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
  echo "$conformance_ver" >"$dest.version"
}
install_conformance

# The Kubernetes test bed (e2e/harness_kube_test.go): kube-apiserver, kubectl
# and etcd, built from the wrapper module in scripts/kubetools (k8s.io/kubernetes
# cannot be `go install`ed: its go.mod replaces the staging modules with local
# directories). The versions are read from that module's go.mod, so it is the
# one place that pins them; its go.sum makes the build reproducible (the build
# is -mod=readonly, so a drifting dependency fails instead of resolving anew).
# Cold (empty Go build and module caches) the three cost about 1,000 CPU
# seconds, 1.9 GB peak memory and 2.4 GB of build cache: 8-9 minutes on two
# idle cores, far more on a busy machine. They are cached by version like the
# tools above: a warm machine only checks stamps (tens of milliseconds), a
# fresh clone on it copies 210 MB from the cache.
kubetools="$repo_root/scripts/kubetools"
# modver prints the version the wrapper's go.mod requires for a module.
modver() {
  awk -v m="$1" '($1 == m && $2 ~ /^v/) { print $2; exit }' "$kubetools/go.mod"
}
kube_ver="$(modver k8s.io/kubernetes)"
etcd_ver="$(modver go.etcd.io/etcd/server/v3)"
if [[ -z "$kube_ver" || -z "$etcd_ver" ]]; then
  log "kube: cannot read the k8s.io/kubernetes and etcd versions from $kubetools/go.mod"; exit 1
fi

# depstamp prints "<module>@<version>" for module $2 in binary $1's build
# info: the "mod" line when the main package lives in that module (as here:
# k8s.io/kubernetes for kube-apiserver and kubectl, etcd's server module for
# etcd), else a "dep" line.
depstamp() {
  go version -m "$1" 2>/dev/null | awk -v m="$2" '($1 == "mod" || $1 == "dep") && $2 == m { print $2 "@" $3; exit }'
}

# name | package | module that pins it | version
kube_tools=(
  "kube-apiserver|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes|$kube_ver"
  "kubectl|k8s.io/kubernetes/cmd/kubectl|k8s.io/kubernetes|$kube_ver"
  "etcd|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3|$etcd_ver"
)

install_kube() {
  local name pkg mod ver want cached p
  local -a build_pkgs=() build_names=() build_stamps=()
  for t in "${kube_tools[@]}"; do
    IFS='|' read -r name pkg mod ver <<<"$t"
    want="$mod@$ver"
    cached="$cache/$name-$ver"
    if [[ -x "$bin/$name" && "$(depstamp "$bin/$name" "$mod")" == "$want" ]]; then
      log "$name: $want already installed, skipping"
    elif [[ -x "$cached" && "$(depstamp "$cached" "$mod")" == "$want" ]]; then
      cp -f "$cached" "$bin/$name.tmp.$$" && mv -f "$bin/$name.tmp.$$" "$bin/$name"
      log "$name: $want from $cache"
    else
      build_pkgs+=("$pkg"); build_names+=("$name"); build_stamps+=("$want")
    fi
  done
  ((${#build_pkgs[@]})) || return 0

  # One go build for every missing binary: the three share most packages.
  # kubectl cannot parse the server's version without the version ldflags
  # (both packages, as Kubernetes's own hack/lib/version.sh sets them).
  local minor tmp start=$SECONDS
  minor="${kube_ver#v1.}"; minor="${minor%%.*}"
  local -a ld=(-s -w)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=(-X "$p.gitVersion=$kube_ver" -X "$p.gitMajor=1" -X "$p.gitMinor=$minor")
  done
  tmp="$(mktemp -d)"
  log "kube: building ${build_names[*]} (k8s.io/kubernetes@$kube_ver, etcd $etcd_ver) in $kubetools; minutes when cold"
  if ! (cd "$kubetools" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false" \
        go build -trimpath -ldflags "${ld[*]}" -o "$tmp/" "${build_pkgs[@]}"); then
    log "kube: go build failed"; rm -rf "$tmp"; return 1
  fi
  local i built
  for i in "${!build_names[@]}"; do
    name="${build_names[$i]}" want="${build_stamps[$i]}" ver="${build_stamps[$i]##*@}"
    # go build names a binary after the last path element that is not a
    # major-version suffix: go.etcd.io/etcd/server/v3 becomes "server".
    case "${build_pkgs[$i]}" in
      go.etcd.io/etcd/server/v3) built="$tmp/server" ;;
      *) built="$tmp/$name" ;;
    esac
    if [[ ! -x "$built" || "$(depstamp "$built" "${want%@*}")" != "$want" ]]; then
      log "$name: the build left no binary stamped $want at $built"; rm -rf "$tmp"; return 1
    fi
    cp -f "$built" "$cache/$name-$ver.tmp.$$" && mv -f "$cache/$name-$ver.tmp.$$" "$cache/$name-$ver"
    mv -f "$built" "$bin/$name.tmp.$$" && mv -f "$bin/$name.tmp.$$" "$bin/$name"
  done
  rm -rf "$tmp"
  log "kube: built ${build_names[*]} in $((SECONDS - start))s"
}
install_kube

# System packages for the client-side tests.
if [[ "${SKIP_APT:-0}" == 1 ]]; then
  log "SKIP_APT=1: not installing skopeo/containerd/docker.io/podman"
elif [[ "$(id -u)" != 0 ]]; then
  missing=()
  for c in skopeo containerd ctr dockerd podman; do command -v "$c" >/dev/null || missing+=("$c"); done
  if ((${#missing[@]})); then
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    log "!!! NOT ROOT: cannot apt-get install skopeo containerd docker.io podman (missing: ${missing[*]})"
    log "!!! the runtime e2e tests will SKIP (or FAIL with PORTCULLIS_E2E_REQUIRE=1)"
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  fi
else
  need=()
  command -v skopeo >/dev/null || need+=(skopeo)
  { command -v containerd >/dev/null && command -v ctr >/dev/null; } || need+=(containerd)
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v podman >/dev/null || need+=(podman)
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    log "skopeo, containerd, docker.io and podman already installed, skipping apt"
  fi
fi

log "tools in $bin:"
for t in "${tools[@]}"; do
  IFS='|' read -r name _ _ <<<"$t"
  log "  $name $(stamp "$bin/$name")"
done
for t in "${kube_tools[@]}"; do
  IFS='|' read -r name _ mod _ <<<"$t"
  log "  $name $(depstamp "$bin/$name" "$mod")"
done
