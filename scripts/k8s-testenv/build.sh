#!/usr/bin/env bash
# Builds the Kubernetes control plane the k8s test suite runs against (test/k8s/cluster.ts):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and kwok, from the Go
# module proxy at pinned versions. Cached outside the repository by version; a no-op when warm.
#
# Versions (each picked so its go.mod `go` directive is satisfied by Go 1.26):
#   Kubernetes v1.37.2  (go 1.26.0)
#   etcd       v3.7.0   the go.etcd.io/etcd/server/v3 that k8s.io/kubernetes v1.37.2 itself requires,
#                       built inside the same wrapper module (so it shares its compiled dependencies).
#                       Debian's etcd-server 3.4.23 is too old: Kubernetes >= 1.31 needs the health
#                       endpoints etcd backported to 3.4.29 / 3.5.11.
#   kwok       v0.8.0   (go 1.26.0) built inside the same wrapper module too: with its own go.mod
#                       (`go install kwok@v`) it wants the k8s.io libraries at v0.36, so 542 of its 741
#                       packages would compile a second time; in the wrapper only 71 are its own. If it
#                       does not compile against this Kubernetes' libraries, it falls back to its go.mod.
#
# Lean on purpose: only the six binaries test/k8s/cluster.ts runs, no cgo, -trimpath, stripped (-s -w),
# every shared package compiled once (one module, one GOCACHE). Parallelism: Go's default -p is
# GOMAXPROCS, which Go >= 1.25 takes from the CPUs (and cgroup CPU quota) the process may use: 2 here.
#
# Output: the bin directory on stdout (the binaries plus kwok-stages.yaml); progress on stderr.
# Env: BERTH_HOME (default ~/.cache/berth) -> $BERTH_HOME/k8s/<k8s version>/bin.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
KWOK_VERSION=v0.8.0

# The stamp names every input, so changing one version rebuilds instead of mixing binaries.
stamp="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"
cache="${BERTH_HOME:-$HOME/.cache/berth}/k8s/$K8S_VERSION"
bin="$cache/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
# kwok does nothing without Stages; these are its default "fast" set (what kwokctl installs).
kwok_stage_dirs=(node/fast node/heartbeat-with-lease pod/fast)

log() { echo "k8s-testenv: $*" >&2; }

is_warm() {
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  [ -f "$bin/kwok-stages.yaml" ] && [ "$(cat "$bin/VERSIONS" 2>/dev/null || true)" = "$stamp" ]
}
if is_warm; then echo "$bin"; exit 0; fi

# Two runs at once (two test suites on a cold machine) would share one work dir: the second waits, then
# finds the cache warm.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build of $K8S_VERSION is running; waiting for it"
  flock 9
fi
if is_warm; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { log "Go is required to build the Kubernetes test binaries (none cached in $bin)"; exit 1; }
log "$(go version); GOPROXY=$(go env GOPROXY)"
log "building $stamp into $bin (cold: about 30 CPU-minutes; 78 minutes measured on 2 cores at load 20)"
started=$(date +%s)

mkdir -p "$bin"
work="$cache/work"
rm -rf "$work" && mkdir -p "$work"

# The tools only: no cgo (static binaries, no C toolchain needed), no paths or VCS stamps in them.
export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false"
# Only the proxy's toolchain for the `go` directive we checked above; never a silent upgrade.
export GOTOOLCHAIN=local
ldflags="-s -w"

# --- Kubernetes + etcd: a wrapper module around k8s.io/kubernetes -------------------------------
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and
# replaces them with ./staging/...; replaces in a dependency are ignored, so the wrapper replaces
# each of them with the published v0.<minor>.<patch>. The list comes from kubernetes' own go.mod.
staging_version="v0.${K8S_VERSION#v1.}"
log "fetching k8s.io/kubernetes $K8S_VERSION go.mod"
k8s_mod_dir=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
[ -f "$k8s_mod_dir" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
staging_modules=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\1#p' "$k8s_mod_dir")
[ -n "$staging_modules" ] || { log "no staging replaces found in $k8s_mod_dir"; exit 1; }
log "replacing $(echo "$staging_modules" | wc -l) staging modules with $staging_version"

k8s_work="$work/kubernetes"
mkdir -p "$k8s_work"
{
  echo "module berth.local/k8s-testenv"
  echo
  echo "go 1.26.0"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo "	sigs.k8s.io/kwok $KWOK_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in $staging_modules; do echo "	$m => $m $staging_version"; done
  echo ")"
} >"$k8s_work/go.mod"
# Blank imports make `go mod tidy` keep every package we build in go.sum.
cat >"$k8s_work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
EOF
cd "$k8s_work"
log "resolving modules"
# -e: tidy also walks the tests of every dependency; a problem there does not concern our build, which
# fails loudly on its own if a package we need is missing.
GOFLAGS="$GOFLAGS -mod=mod" go mod tidy -e >&2
resolved_etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
[ "$resolved_etcd" = "$ETCD_VERSION" ] || { log "etcd resolved to $resolved_etcd, expected $ETCD_VERSION"; exit 1; }
resolved_kwok=$(go list -m -f '{{.Version}}' sigs.k8s.io/kwok)
[ "$resolved_kwok" = "$KWOK_VERSION" ] || { log "kwok resolved to $resolved_kwok, expected $KWOK_VERSION"; exit 1; }

# Stamp the release version as Kubernetes' own build does (hack/lib/version.sh); otherwise /version says
# v0.0.0-master and version checks in clients (Helm's kubeVersion, kubectl's skew warning) misfire.
k8s_minor=${K8S_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
k8s_date=$(go list -m -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Time": "\(.*\)",*$/\1/p' | head -1)
k8s_ldflags="$ldflags"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${k8s_date:-1970-01-01T00:00:00Z}"
done
# One `go build` for the four so shared packages compile once; nice because the machine is shared.
log "compiling kube-apiserver kube-controller-manager kube-scheduler kubectl"
nice -n 10 go build -ldflags="$k8s_ldflags" -o "$work/out/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl >&2
log "compiling etcd $ETCD_VERSION (its dependencies are already compiled above)"
nice -n 10 go build -ldflags="$ldflags" -o "$work/out/etcd" go.etcd.io/etcd/server/v3 >&2

log "compiling kwok $KWOK_VERSION against the libraries compiled above"
if ! nice -n 10 go build -ldflags="$ldflags" -o "$work/out/kwok" sigs.k8s.io/kwok/cmd/kwok >&2; then
  log "kwok $KWOK_VERSION does not build against Kubernetes $K8S_VERSION's libraries; building it with its own go.mod"
  (cd "$work" && GOBIN="$work/out" nice -n 10 go install -ldflags="$ldflags" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
fi

kwok_dir=$(cd "$work" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
for d in "${kwok_stage_dirs[@]}"; do
  for f in "$kwok_dir/kustomize/stage/$d"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    echo "---"
    cat "$f"
  done
done >"$work/out/kwok-stages.yaml"
grep -q '^kind: Stage' "$work/out/kwok-stages.yaml" || { log "no kwok stages found in $kwok_dir"; exit 1; }

install -m 0644 "$work/out/kwok-stages.yaml" "$bin/kwok-stages.yaml"
for b in "${binaries[@]}"; do install -m 0755 "$work/out/$b" "$bin/$b"; done
echo "$stamp" >"$bin/VERSIONS"
cd /
rm -rf "$work"
log "done in $(($(date +%s) - started))s"
echo "$bin"
