#!/usr/bin/env python3
"""Runs the controller and admission benchmarks at several customer counts, collects the
numbers they print, and draws docs/performance-scale.png (with the numbers in
docs/performance-scale.csv).

Usage: hack/scale-curve.py [COUNT ...]   (default: 10000 100000)
Environment: SCALE_ROUNDS (rounds per benchmark, default 1 at counts above 10,000, else 5);
SCALE_REUSE=1 reuses the outputs kept in target/scale-curve/ from earlier runs.
Needs matplotlib (pip install matplotlib). Takes long at 100,000: see docs/performance.md.
"""

import csv
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(bench, env):
    """The benchmark's output, kept in target/scale-curve/ (SCALE_REUSE=1 reads a kept one)."""
    count = next(v for k, v in env.items() if k.endswith("_CUSTOMERS"))
    kept = os.path.join(ROOT, "target", "scale-curve", f"{bench}-{count}.txt")
    if os.environ.get("SCALE_REUSE") == "1" and os.path.exists(kept):
        print(f"reusing {kept}", flush=True)
        with open(kept) as f:
            return f.read()
    print(f"running {bench} with {env}", flush=True)
    done = subprocess.run(
        ["cargo", "bench", "--bench", bench],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    print(done.stdout, flush=True)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{bench} failed with exit code {done.returncode}")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    with open(kept, "w") as f:
        f.write(done.stdout)
    return done.stdout


def number(pattern, text):
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"the benchmark did not print {pattern!r}")
    return float(m.group(1))


def measure(count):
    rounds = os.environ.get("SCALE_ROUNDS", "5" if count <= 10_000 else "1")
    ctl = run("controller", {"CONTROLLER_BENCH_CUSTOMERS": str(count), "CONTROLLER_BENCH_ROUNDS": rounds})
    adm = run(
        "admission",
        {"ADMISSION_BENCH_CUSTOMERS": str(count), "ADMISSION_BENCH_ROUNDS": rounds, "ADMISSION_BENCH_LINEARIZABLE": "0"},
    )
    # The admission p99 at concurrency 16 (the cached webhook), and its ratio to the baseline.
    row = re.search(r"^\s+16 \|\s+\d+ \|\s+([\d.]+) \|\s+\d+ \|\s+([\d.]+) \| ([\d.]+)x", adm, re.M)
    if not row:
        raise SystemExit("the admission benchmark did not print its concurrency-16 row")
    return {
        "customers": count,
        "convergence_s": number(r"cold-start convergence: median ([\d.]+) s", ctl),
        "raw_writes_s": number(r"the same writes raw: median ([\d.]+) s", ctl),
        "controller_rss_mib": number(r"controller peak RSS after convergence: median ([\d.]+) MiB", ctl),
        "admission_p99_ms": float(row.group(2)),
        "baseline_p99_ms": float(row.group(1)),
        "admission_p99_ratio": float(row.group(3)),
    }


def main():
    counts = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    rows = [measure(c) for c in counts]
    csv_path = os.path.join(ROOT, "docs", "performance-scale.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["customers"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(xs, [r["convergence_s"] for r in rows], "o-", label="cold-start convergence")
    axes[0].plot(xs, [r["raw_writes_s"] for r in rows], "s--", label="the same writes, raw")
    axes[0].set_ylabel("seconds")
    axes[1].plot(xs, [r["controller_rss_mib"] for r in rows], "o-", label="controller peak RSS")
    axes[1].set_ylabel("MiB")
    axes[2].plot(xs, [r["admission_p99_ms"] for r in rows], "o-", label="purchase webhook p99, concurrency 16")
    axes[2].plot(xs, [r["baseline_p99_ms"] for r in rows], "s--", label="allow-all baseline p99")
    axes[2].set_ylabel("ms")
    for ax in axes:
        ax.set_xlabel("customers (each with one decision)")
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("purchase-guard against customer count (2 cores, sandbox)")
    fig.tight_layout()
    png = os.path.join(ROOT, "docs", "performance-scale.png")
    fig.savefig(png, dpi=100)
    print(f"wrote {csv_path} and {png}")


if __name__ == "__main__":
    main()
