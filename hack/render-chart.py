#!/usr/bin/env python3
"""Renders charts/purchase-guard with the real Helm engine (helm-python-sdk) and prints the
manifests as one multi-document YAML stream: CRDs first (chart crds/), then the templates in
Helm's install order of kinds.

  hack/render-chart.py [--namespace NS] [--release NAME] [--values FILE ...] [--set-json JSON ...]
"""

import argparse
import json
import pathlib
import sys

try:
    from helm_python import chart as helm_chart
except ImportError:
    sys.exit("helm-python-sdk is not installed: python3 -m pip install helm-python-sdk")

CHART = pathlib.Path(__file__).resolve().parent.parent / "charts" / "purchase-guard"

# Helm's install order (the kinds this chart renders).
ORDER = [
    "Namespace", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap",
    "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment",
    "Issuer", "Certificate", "ServiceMonitor", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
]


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def values_from(args):
    values = {}
    for path in args.values or []:
        merge(values, helm_chart.values_from_yaml(pathlib.Path(path).read_text()))
    for text in args.set_json or []:
        merge(values, json.loads(text))
    return values


def documents(rendered):
    """The rendered templates split into documents, NOTES.txt left out."""
    docs = []
    for name, text in sorted(rendered.items()):
        if name.endswith("NOTES.txt"):
            continue
        for doc in text.split("\n---"):
            body = "\n".join(line for line in doc.splitlines() if not line.startswith("# Source:"))
            if body.strip():
                docs.append(body.strip("\n"))
    return docs


def kind_of(doc):
    for line in doc.splitlines():
        if line.startswith("kind:"):
            return line.split(":", 1)[1].strip()
    return ""


def render(values, namespace, release):
    with helm_chart.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        rendered = chart.render(values=values, name=release, namespace=namespace, is_install=True)
        crds = [c["data"].strip("\n") for c in sorted(chart.crds, key=lambda c: c["name"])]
    docs = documents(rendered)
    docs.sort(key=lambda d: ORDER.index(kind_of(d)) if kind_of(d) in ORDER else len(ORDER))
    return crds, docs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="purchase-guard")
    parser.add_argument("--release", default="purchase-guard")
    parser.add_argument("--values", action="append", help="a values file (repeatable)")
    parser.add_argument("--set-json", action="append", help="values as a JSON object (repeatable)")
    args = parser.parse_args()
    crds, docs = render(values_from(args), args.namespace, args.release)
    print("\n---\n".join(crds + docs))


if __name__ == "__main__":
    main()
