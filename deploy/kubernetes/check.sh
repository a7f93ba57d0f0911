#!/usr/bin/env bash
# Static checks of the Kubernetes manifests, no cluster needed (what `make lint` should run):
# the rendered files are current, every object passes strict schema validation, and checkov
# finds nothing that is not skipped in place with its reason.
#   deploy/kubernetes/check.sh            check
#   deploy/kubernetes/check.sh --render   rewrite rendered/*.yaml from the overlays first
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=${DEPLOY_TOOLS:-.venv-deploy/bin}
kubectl=${KUBECTL:-kubectl}

overlays="minikube production"
if [ "${1:-}" = "--render" ]; then
    for overlay in $overlays; do
        "$kubectl" kustomize "deploy/kubernetes/overlays/$overlay" > "deploy/kubernetes/rendered/$overlay.yaml"
    done
fi

for overlay in $overlays; do
    rendered=deploy/kubernetes/rendered/$overlay.yaml
    # Users apply the rendered file: it must be exactly what the overlay makes.
    if ! "$kubectl" kustomize "deploy/kubernetes/overlays/$overlay" | diff -q "$rendered" - >/dev/null; then
        echo "$rendered is stale: run make render (or $0 --render)" >&2
        exit 1
    fi
    # Kinds without a schema are only warned about: allow just the two CRD kinds, whose
    # essential fields tests/test_deploy_kubernetes.py checks.
    validation=$("$tools/kubernetes-validate" --strict --quiet "$rendered" 2>&1) || {
        echo "$validation" >&2
        exit 1
    }
    unexpected=$(grep -v -E "Couldn't find schema for kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1 " <<<"$validation" || true)
    if [ -n "$unexpected" ]; then
        echo "$unexpected" >&2
        exit 1
    fi
    "$tools/checkov" -f "$rendered" --framework kubernetes --compact --quiet --skip-download
done
