#!/usr/bin/env bash
# Run helm, building it first when missing: `go install` of a pinned version from the Go
# module proxy into ~/.cache/ordersaga/helm/, shared by every clone on the machine (the build, its module and build caches all stay there).
#
#   infra/helm.sh ARGS...       helm ARGS...
#   infra/helm.sh --path        print the path of the helm binary (building it if needed)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ordersaga/helm/$HELM_VERSION"
helm="$cache/bin/helm"

if [[ ! -x $helm ]]; then
    go="$(command -v go || true)"
    [[ -n $go ]] || go=/usr/local/go/bin/go
    if [[ ! -x $go ]]; then
        echo "helm.sh: Go is needed to build helm (go not on PATH, nor /usr/local/go/bin/go)" >&2
        exit 2
    fi
    echo "helm.sh: building helm $HELM_VERSION into $cache (about a minute, once)" >&2
    mkdir -p "$cache"
    GOBIN="$cache/bin" GOPATH="$cache/gopath" GOCACHE="$cache/gocache" GOFLAGS=-modcacherw \
        "$go" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    # The module and build caches are only needed to build; the binary is what stays.
    rm -rf "$cache/gopath" "$cache/gocache"
fi

if [[ ${1:-} == --path ]]; then
    echo "$helm"
    exit 0
fi
exec "$helm" "$@"
