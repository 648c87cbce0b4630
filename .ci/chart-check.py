#!/usr/bin/env python3
"""Checks charts/purchase-guard with the real Helm engine: strict lint with the default values
and with every option on, for the oldest and newest supported Kubernetes; renders each twice
(the output must not change: GitOps tools would show drift); validates every rendered
manifest against the official schemas of those Kubernetes versions."""

import importlib.util
import pathlib
import sys

import kubernetes_validate
import yaml
from helm_python import chart as helm_chart

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "purchase-guard"
VERSIONS = ["1.33.0", "1.37.0"]
# Kinds of optional integrations whose schemas are not Kubernetes': checked for apiVersion only.
FOREIGN = {"Certificate": "cert-manager.io/v1", "Issuer": "cert-manager.io/v1", "ServiceMonitor": "monitoring.coreos.com/v1"}

spec = importlib.util.spec_from_file_location("render_chart", ROOT / "hack" / "render-chart.py")
render_chart = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_chart)

failures = []
cases = {
    "defaults": {},
    "all options": helm_chart.values_from_yaml((ROOT / ".ci" / "values-all-options.yaml").read_text()),
}
for case, values in cases.items():
    for version in VERSIONS:
        report = helm_chart.lint(str(CHART), values, strict=True, namespace="purchase-guard", kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for p in problems:
            failures.append(f"lint ({case}, {version}): {p.get('path', '')}: {p['error']}")
    first = render_chart.render(values, "purchase-guard", "purchase-guard")
    second = render_chart.render(values, "purchase-guard", "purchase-guard")
    if first != second:
        failures.append(f"render ({case}): two renders differ; templates must not generate values")
    crds, docs = first
    kinds = set()
    for text in crds + docs:
        doc = yaml.safe_load(text)
        kind = doc.get("kind", "")
        kinds.add(kind)
        name = doc.get("metadata", {}).get("name", "")
        if kind in FOREIGN:
            if doc.get("apiVersion") != FOREIGN[kind]:
                failures.append(f"{case}: {kind} {name}: apiVersion {doc.get('apiVersion')} is not {FOREIGN[kind]}")
            continue
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                failures.append(f"{case}, {version}: {kind} {name}: {e.message} at {'.'.join(map(str, e.path))}")
            except Exception as e:  # unknown kinds or versions
                failures.append(f"{case}, {version}: {kind} {name}: {e}")
    print(f"chart ({case}): {len(crds)} CRDs and {len(docs)} manifests; kinds: {', '.join(sorted(kinds))}")

for f in failures:
    print("FAIL", f, file=sys.stderr)
if failures:
    sys.exit(1)
print("chart checks passed")
