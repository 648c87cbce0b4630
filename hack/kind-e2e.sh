#!/usr/bin/env bash
# Runs the e2e suite (tests/e2e.rs) against a kind cluster: creates the cluster, builds and
# loads the image, installs the chart with helm, runs the suite with E2E_KUBECONFIG, and
# collects logs into $E2E_ARTIFACTS (default: target/e2e-artifacts) when something fails.
#
# Needs: docker, kind, helm, kubectl, cargo. KIND_CLUSTER names the cluster (default
# purchase-guard-e2e); KEEP_CLUSTER=1 keeps it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIND_CLUSTER:-purchase-guard-e2e}"
IMAGE="purchase-guard:e2e"
NAMESPACE="purchase-guard"
ARTIFACTS="${E2E_ARTIFACTS:-target/e2e-artifacts}"
KUBECONFIG_FILE="$(mktemp)"

collect_logs() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "== e2e failed (exit $status): collecting logs into $ARTIFACTS"
    mkdir -p "$ARTIFACTS"
    export KUBECONFIG="$KUBECONFIG_FILE"
    kubectl -n "$NAMESPACE" get all,leases,secrets -o wide > "$ARTIFACTS/resources.txt" 2>&1 || true
    kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/name=purchase-guard --all-containers --prefix --tail=-1 \
      > "$ARTIFACTS/purchase-guard.log" 2>&1 || true
    kubectl get events -A --sort-by=.lastTimestamp > "$ARTIFACTS/events.txt" 2>&1 || true
    kubectl get purchaseguard -A -o yaml > "$ARTIFACTS/purchaseguard-objects.yaml" 2>&1 || true
    kind export logs "$ARTIFACTS/kind" --name "$CLUSTER" > /dev/null 2>&1 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" != "1" ]; then
    kind delete cluster --name "$CLUSTER" > /dev/null 2>&1 || true
  fi
  rm -f "$KUBECONFIG_FILE"
  exit "$status"
}
trap collect_logs EXIT

echo "== cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
export KUBECONFIG="$KUBECONFIG_FILE"

echo "== image $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

echo "== chart"
# The report kind the audit writes (the chart's default, audit.reports: openreports); on a
# real cluster install the OpenReports CRD instead of this minimal definition.
kubectl apply -f examples/reports/reports.openreports.io.yaml
# The same values as the sandbox run of the suite (tests/e2e.rs E2E_VALUES): a short lease,
# and reading Partners' verification Secrets.
helm upgrade --install purchase-guard charts/purchase-guard \
  --namespace "$NAMESPACE" --create-namespace \
  --set image.repository=purchase-guard --set image.tag=e2e --set image.pullPolicy=Never \
  --set leaderElection.leaseDurationSeconds=4 --set leaderElection.renewGraceSeconds=1 \
  --set verification.enabled=true \
  --wait --timeout 5m
kubectl -n "$NAMESPACE" rollout status deployment/purchase-guard --timeout=180s

echo "== e2e suite"
E2E_KUBECONFIG="$KUBECONFIG_FILE" cargo test --locked --test e2e -- --nocapture
