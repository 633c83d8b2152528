#!/usr/bin/env bash
# Build the local control plane from the Go module proxy at the versions pinned in
# versions.env: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
# and descheduler, and kwok's own pod stages (from its module). Binaries land in a cache
# outside the repository, one folder per component and version; a component whose folder
# is complete is skipped.
#
#   tests/cluster/build.sh            build what is missing, print the bin folder
#   HOMELAB_K8S_HA_CACHE=/path ...    choose the cache (default ~/.cache/homelab-k8s-ha)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${HOMELAB_K8S_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/homelab-k8s-ha}
mkdir -p "$cache/bin" "$cache/src"

# One build at a time per cache: a second caller waits, then finds the binaries.
exec 9>"$cache/build.lock"
flock 9

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
start_all=$(date +%s)

log() { printf '[build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# run_step NAME OUTDIR BIN... -- COMMAND...: run COMMAND unless every BIN exists in
# OUTDIR; print a heartbeat every 30 s so long builds show progress.
run_step() {
  local name=$1 out=$2; shift 2
  local bins=()
  while [ "$1" != "--" ]; do bins+=("$1"); shift; done
  shift
  local missing=0 b
  for b in "${bins[@]}"; do [ -f "$out/$b" ] || missing=1; done
  if [ $missing = 0 ]; then log "$name: cached in $out"; return 0; fi
  log "$name: building (${bins[*]}) ..."
  local t0; t0=$(date +%s)
  mkdir -p "$out.tmp"
  ( while sleep 30; do log "$name: still building, $(( $(date +%s) - t0 )) s"; done ) &
  local hb=$!
  if ! "$@"; then kill $hb 2>/dev/null; wait $hb 2>/dev/null || true; log "$name: FAILED"; return 1; fi
  kill $hb 2>/dev/null; wait $hb 2>/dev/null || true
  for b in "${bins[@]}"; do [ -f "$out.tmp/$b" ] || { log "$name: $b missing after build"; return 1; }; done
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "$name: built in $(( $(date +%s) - t0 )) s"
}

# A wrapper module: the upstream main modules carry replace lines that `go install`
# refuses, so each is built from a small module of ours that requires it.
wrapper() { # dir module-path go.mod-body
  mkdir -p "$1"
  printf 'module %s\n\ngo 1.24\n\n%s\n' "$2" "$3" >"$1/go.mod"
  : >"$1/go.sum"
}

# --- kube-apiserver, kube-controller-manager, kube-scheduler ----------------------
kube_dir="$cache/bin/kube-$KUBE_VERSION"
kube_src="$cache/src/kube-$KUBE_VERSION"
staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
cloud-provider cluster-bootstrap code-generator component-base component-helpers
controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
sample-apiserver sample-cli-plugin sample-controller"
replaces=""
for m in $staging; do replaces+="	k8s.io/$m => k8s.io/$m $KUBE_STAGING_VERSION"$'\n'; done
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
build_kube() {
  wrapper "$kube_src" homelab.local/kubebuild "require k8s.io/kubernetes $KUBE_VERSION

replace (
$replaces)"
  local ver="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ver+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ver+=" -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$kube_src" && go build -trimpath -ldflags "-s -w $ver" -o "$kube_dir.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
}

# --- etcd ---------------------------------------------------------------------------
etcd_dir="$cache/bin/etcd-$ETCD_VERSION"
etcd_src="$cache/src/etcd-$ETCD_VERSION"
build_etcd() {
  wrapper "$etcd_src" homelab.local/etcdbuild "require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)"
  (cd "$etcd_src" && go build -trimpath -ldflags "-s -w" -o "$etcd_dir.tmp/etcd" go.etcd.io/etcd/server/v3)
}

# --- kwok -----------------------------------------------------------------------------
kwok_dir="$cache/bin/kwok-$KWOK_VERSION"
build_kwok() {
  GOBIN="$kwok_dir.tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# kwok's own pod stages, the ones it runs when its --config has none (pod-ready,
# pod-complete, pod-delete), from its module: localcluster.py passes them together with
# tests/cluster/kwok-pod-status-reconcile.yaml, and any Pod stage in --config replaces
# kwok's built-in set.
kwok_stages="$cache/bin/kwok-$KWOK_VERSION-stages"
copy_kwok_stages() {
  local dir s
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  for s in pod-ready pod-complete pod-delete; do
    cp "$dir/kustomize/stage/pod/fast/$s.yaml" "$kwok_stages.tmp/$s.yaml"
  done
}

# --- descheduler --------------------------------------------------------------------
desch_dir="$cache/bin/descheduler-$DESCHEDULER_VERSION"
desch_src="$cache/src/descheduler-$DESCHEDULER_VERSION"
build_descheduler() {
  wrapper "$desch_src" homelab.local/deschedulerbuild "require sigs.k8s.io/descheduler $DESCHEDULER_VERSION

replace k8s.io/kube-openapi => k8s.io/kube-openapi $DESCHEDULER_KUBE_OPENAPI"
  (cd "$desch_src" && go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/descheduler/pkg/version.version=$DESCHEDULER_VERSION" \
    -o "$desch_dir.tmp/descheduler" sigs.k8s.io/descheduler/cmd/descheduler)
}

run_step etcd "$etcd_dir" etcd -- build_etcd
run_step kwok "$kwok_dir" kwok -- build_kwok
run_step kwok-stages "$kwok_stages" pod-ready.yaml pod-complete.yaml pod-delete.yaml -- copy_kwok_stages
run_step kube "$kube_dir" kube-apiserver kube-controller-manager kube-scheduler -- build_kube
run_step descheduler "$desch_dir" descheduler -- build_descheduler

log "all components ready in $(( $(date +%s) - start_all )) s"

# The one place that says where each binary is: localcluster.py reads these lines.
echo "etcd=$etcd_dir/etcd"
echo "kwok=$kwok_dir/kwok"
echo "kwok-stages=$kwok_stages"
for b in kube-apiserver kube-controller-manager kube-scheduler; do echo "$b=$kube_dir/$b"; done
echo "descheduler=$desch_dir/descheduler"
