#!/usr/bin/env bash
# Builds the helm binary that the Helm-chart test (`helm template` vs `berth render`) uses, from the
# Go module proxy at a pinned version. Cached outside the repository; a no-op when warm.
#
# Version: helm v3.22.0 (its go.mod asks for go 1.26.0). Output: the binary's path on stdout.
# Env: BERTH_HOME (default ~/.cache/berth) -> $BERTH_HOME/bin/helm-<version>.
set -euo pipefail

HELM_VERSION=v3.22.0
bin="${BERTH_HOME:-$HOME/.cache/berth}/bin"
target="$bin/helm-$HELM_VERSION"

if [ -x "$target" ]; then echo "$target"; exit 0; fi
command -v go >/dev/null || { echo "build-helm: Go is required to build helm" >&2; exit 1; }

mkdir -p "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-helm: building helm $HELM_VERSION (cold: minutes)" >&2
CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local GOBIN="$work" \
  go install -ldflags="-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$work/helm" "$target"
echo "$target"
