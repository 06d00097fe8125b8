#!/usr/bin/env python3
"""Plots hetrun bench CSV files (written beside the JSON report when report.formats has csv).

usage: bench/plot.py [--out DIR] [--format png|svg|both] CSV...

Each CSV is recognised by its header:
  results      (REPORT.csv)             -> gemm_gflops.{png,svg}: GFLOP/s vs size per backend
                                           and dtype, with the peak as a dashed line;
                                           roofline.{png,svg}: every op point against the
                                           roof min(peak, intensity x bandwidth)
  collectives  (REPORT.collectives.csv) -> busbw.{png,svg}: busbw vs message size per
                                           collective and column (host, reference, device)
  usage        (REPORT.usage.csv)       -> ignored
Give several results files (one per backend run) to compare backends on one plot.

Figures over ranks: op points use the median over ranks; collectives use the max time over
ranks (a collective is done when its slowest rank is), as the report's summary does.
The roofline's bandwidth is the best GB/s any op point measured (a measured, not a
datasheet, bandwidth) and its peak the backend-declared or probed peak_flops of the dtype.
Exit codes: 0 plots written, 1 no plottable rows, 2 usage, 3 matplotlib missing.
"""
import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        return rows


def kind_of(rows, path):
    if not rows:
        return None
    keys = set(rows[0].keys())
    if {"busbw_gbps", "buffers", "bytes"} <= keys:
        return "collectives"
    if {"gflops", "gbps", "op", "flops_per_iteration"} <= keys:
        return "results"
    if "device_busy_seconds" in keys:
        return "usage"
    sys.stderr.write("plot.py: %s: unknown CSV kind (header %s)\n" % (path, sorted(keys)))
    return None


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def save(fig, out, name, formats):
    written = []
    for ext in formats:
        p = os.path.join(out, "%s.%s" % (name, ext))
        fig.savefig(p, dpi=120, bbox_inches="tight")
        written.append(p)
    return written


def points_over_ranks(results):
    """(backend, op, dtype, m, n, k) -> median over ranks of gflops, gbps, and the peak."""
    groups = defaultdict(list)
    for r in results:
        g, b = num(r.get("gflops")), num(r.get("gbps"))
        if g is None or b is None or r.get("check") == "error":
            continue
        key = (r["backend"], r["op"], r["dtype"], int(num(r["m"]) or 0), int(num(r["n"]) or 0),
               int(num(r["k"]) or 0))
        groups[key].append((g, b, num(r.get("peak_flops")), num(r.get("flops_per_iteration")),
                            num(r.get("bytes_per_iteration"))))
    out = {}
    for key, vals in groups.items():
        peaks = [v[2] for v in vals if v[2]]
        out[key] = {
            "gflops": statistics.median(v[0] for v in vals),
            "gbps": statistics.median(v[1] for v in vals),
            "peak": statistics.median(peaks) if peaks else None,
            "intensity": (vals[0][3] / vals[0][4]) if vals[0][3] and vals[0][4] else None,
        }
    return out


def plot_gemm(plt, pts, out, formats):
    lines = defaultdict(list)
    peaks = {}
    for (backend, op, dtype, m, n, k), v in pts.items():
        if op != "gemm":
            continue
        lines[(backend, dtype)].append((m, v["gflops"]))
        if v["peak"]:
            peaks[(backend, dtype)] = v["peak"] / 1e9
    if not lines:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (key, xy) in enumerate(sorted(lines.items())):
        xy.sort()
        color = "C%d" % (i % 10)
        ax.plot([x for x, _ in xy], [y for _, y in xy], "o-", color=color,
                label="%s %s" % key)
        if key in peaks:
            ax.axhline(peaks[key], color=color, linestyle="--", linewidth=1,
                       label="%s %s peak" % key)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("GEMM size (m = n = k)")
    ax.set_ylabel("GFLOP/s (median over ranks)")
    ax.set_title("GEMM throughput per backend and dtype")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    w = save(fig, out, "gemm_gflops", formats)
    plt.close(fig)
    return w


def plot_roofline(plt, pts, out, formats):
    by_backend = defaultdict(list)
    for (backend, op, dtype, m, n, k), v in pts.items():
        if v["intensity"] and v["gflops"] > 0:
            by_backend[backend].append((op, dtype, v))
    if not by_backend:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (backend, items) in enumerate(sorted(by_backend.items())):
        color = "C%d" % (i % 10)
        bw = max(v["gbps"] for _, _, v in items)  # measured: the best op point
        peaks = [v["peak"] for _, d, v in items if v["peak"] and d == "fp32"] or \
                [v["peak"] for _, _, v in items if v["peak"]]
        peak = max(peaks) / 1e9 if peaks else max(v["gflops"] for _, _, v in items)
        lo = min(v["intensity"] for _, _, v in items) / 2
        hi = max(v["intensity"] for _, _, v in items) * 2
        xs = [lo * (hi / lo) ** (j / 200.0) for j in range(201)]
        ax.plot(xs, [min(peak, x * bw) for x in xs], "-", color=color,
                label="%s roof: %.0f GFLOP/s, %.1f GB/s" % (backend, peak, bw))
        ax.scatter([v["intensity"] for _, _, v in items], [v["gflops"] for _, _, v in items],
                   color=color, s=18)
        # Label every non-GEMM op once and the largest GEMM of each dtype, not every size.
        best = {}
        for op, dtype, v in items:
            key = (op, dtype) if op == "gemm" else (op, "")
            if key not in best or v["intensity"] > best[key][2]["intensity"]:
                best[key] = (op, dtype, v)
        for op, dtype, v in best.values():
            ax.annotate(op + ("/" + dtype if op == "gemm" else ""), (v["intensity"], v["gflops"]),
                        fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (catalogue FLOPs / bytes)")
    ax.set_ylabel("GFLOP/s (median over ranks)")
    ax.set_title("Roofline (peak: declared or probed; bandwidth: best measured)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    w = save(fig, out, "roofline", formats)
    plt.close(fig)
    return w


def plot_busbw(plt, coll, out, formats):
    # (label, op, dtype, buffers, bytes) -> per-rank (time, algbw, busbw)
    per = defaultdict(list)
    for r in coll:
        t, a, b = num(r.get("time_us")), num(r.get("algbw_gbps")), num(r.get("busbw_gbps"))
        if t is None or not t > 0:
            continue
        per[(r["backend"], r["op"], r["dtype"], r["buffers"], int(num(r["bytes"])))].append((t, a, b))
    lines = defaultdict(list)
    for (backend, op, dtype, buffers, size), vals in per.items():
        t, a, b = max(vals)  # the slowest rank
        factor = b / a if a else 0.0
        busbw = size / (t * 1e-6) / 1e9 * factor
        lines[(backend, op, dtype, buffers)].append((size, busbw))
    if not lines:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"host": "o-", "mpi_reference": "x--", "device": "s:"}
    colors = {k: "C%d" % (i % 10) for i, k in enumerate(sorted({k[:3] for k in lines}))}
    for key, xy in sorted(lines.items()):
        xy.sort()
        ax.plot([x for x, _ in xy], [y for _, y in xy], styles.get(key[3], "o-"),
                color=colors[key[:3]], label="%s %s %s %s" % key)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("busbw GB/s (max time over ranks)")
    ax.set_title("Collectives: bus bandwidth vs size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    w = save(fig, out, "busbw", formats)
    plt.close(fig)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", nargs="+", help="CSV files written by hetrun run")
    ap.add_argument("--out", default=".", help="folder for the plots (default: .)")
    ap.add_argument("--format", default="both", choices=["png", "svg", "both"])
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("plot.py: matplotlib is not installed (Debian: python3-matplotlib)\n")
        return 3
    results, coll = [], []
    for path in args.csv:
        try:
            rows = read_csv(path)
        except OSError as e:
            sys.stderr.write("plot.py: %s: %s\n" % (path, e))
            return 2
        k = kind_of(rows, path)
        if k == "results":
            results += rows
        elif k == "collectives":
            coll += rows
    os.makedirs(args.out, exist_ok=True)
    formats = ["png", "svg"] if args.format == "both" else [args.format]
    pts = points_over_ranks(results)
    written = plot_gemm(plt, pts, args.out, formats)
    written += plot_roofline(plt, pts, args.out, formats)
    written += plot_busbw(plt, coll, args.out, formats)
    if not written:
        sys.stderr.write("plot.py: no plottable rows in %s\n" % " ".join(args.csv))
        return 1
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
