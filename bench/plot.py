#!/usr/bin/env python3
"""Plots hetrun bench CSV files (written beside the JSON report when report.formats has csv).

usage: bench/plot.py [--out DIR] [--format png|svg|both] CSV...

Each CSV is recognised by its header:
  results      (REPORT.csv)             -> gemm_gflops.{png,svg}: GFLOP/s vs size per backend
                                           and dtype, each dtype's peak as a dashed line;
                                           roofline.{png,svg}: one panel per dtype, every op
                                           point of that dtype against that dtype's roof
                                           min(peak, intensity x bandwidth)
  collectives  (REPORT.collectives.csv) -> busbw.{png,svg}: busbw vs message size per
                                           collective and column (host, reference, device),
                                           log-log as in nccl-tests plots
  usage        (REPORT.usage.csv)       -> ignored
Give several results files (one per backend run) to compare backends on one plot.

Peaks: one per device and dtype, read from the JSON report beside the CSV (REPORT.json):
its `summary.peaks` (declared by the backend, or measured by the GEMM probe, with the
provenance named in the legend). A report without `summary.peaks` (hetrun before 1.1):
the declared `ranks[].device.peak_flops`; no report beside the CSV: the CSV's per-point
`peak_flops` (median), labelled as such. Every figure says where its data came from (host,
ranks, backend, date, report). Figures over ranks: op points use the median over ranks;
collectives the max time over ranks (a collective is done when its slowest rank is), as
the report's summary does. The roofline's bandwidth is the best GB/s any op point of that
backend measured (measured, not a datasheet figure).

matplotlib: when the interpreter running this script lacks it, the script re-runs itself
with the first of /usr/bin/python3, /usr/local/bin/python3 and python3 on the PATH that has
it (Debian's python3-matplotlib is under /usr/bin/python3).
Exit codes: 0 plots written, 1 no plottable rows, 2 usage, 3 no python3 with matplotlib.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

DTYPE_ORDER = ["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
MARKERS = "os^vD<>ph*XP8"


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


def report_beside(csv_path):
    """REPORT.csv / REPORT.collectives.csv -> REPORT.json, parsed; None when absent."""
    base = csv_path[:-4] if csv_path.endswith(".csv") else csv_path
    for suffix in (".collectives", ".usage"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    path = base + ".json"
    try:
        with open(path) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return None
    rep["_path"] = path
    return rep


def provenance(rep, rows, csv_path):
    """One line: host(s), rank count, backend, date, source file."""
    if rep:
        hosts = (rep.get("environment") or {}).get("hosts") or sorted(
            {r.get("host", "?") for r in rep.get("ranks", [])})
        nranks = len(rep.get("ranks", []))
        backend = rep.get("backend") or "?"
        date = (rep.get("started_at") or "date unknown").replace("T", " ")
        src = os.path.basename(rep["_path"])
    else:
        hosts = sorted({r.get("host") for r in rows if r.get("host")}) or ["host unknown"]
        nranks = len({r.get("rank") for r in rows})
        backend = ",".join(sorted({r.get("backend", "?") for r in rows}))
        date = "date unknown (no report beside the CSV)"
        src = os.path.basename(csv_path)
    return "%s | %d rank%s | backend %s | %s | %s" % (
        ",".join(hosts), nranks, "" if nranks == 1 else "s", backend, date, src)


def peaks_of(rep, rows):
    """(device, dtype) -> (peak FLOP/s, where it comes from): one peak per device and dtype."""
    out = {}
    summary = (rep or {}).get("summary") or {}
    if isinstance(summary.get("peaks"), list):
        for p in summary["peaks"]:
            if num(p.get("peak_flops")):
                out[(p.get("device"), p.get("dtype"))] = (
                    float(p["peak_flops"]),
                    "%s: %s" % (p.get("source", "?"), p.get("provenance", "?")))
        return out
    if rep:
        for r in rep.get("ranks", []):
            dev = r.get("device") or {}
            for dt, v in (dev.get("peak_flops") or {}).items():
                if num(v) and (dev.get("name"), dt) not in out:
                    out[(dev.get("name"), dt)] = (float(v), "declared (report without summary.peaks)")
        return out
    per = defaultdict(list)
    for r in rows:
        if num(r.get("peak_flops")):
            per[(r.get("device"), r.get("dtype"))].append(float(r["peak_flops"]))
    return {k: (statistics.median(v), "CSV per-point peak_flops (no report beside the CSV)")
            for k, v in per.items()}


def points_over_ranks(results):
    """(backend, device, op, dtype, m, n, k) -> median over ranks of gflops and gbps."""
    groups = defaultdict(list)
    for r in results:
        g, b = num(r.get("gflops")), num(r.get("gbps"))
        if g is None or b is None or r.get("check") == "error":
            continue
        key = (r["backend"], r.get("device", "?"), r["op"], r["dtype"], int(num(r["m"]) or 0),
               int(num(r["n"]) or 0), int(num(r["k"]) or 0))
        groups[key].append((g, b, num(r.get("flops_per_iteration")),
                            num(r.get("bytes_per_iteration"))))
    out = {}
    for key, vals in groups.items():
        out[key] = {
            "gflops": statistics.median(v[0] for v in vals),
            "gbps": statistics.median(v[1] for v in vals),
            "intensity": (vals[0][2] / vals[0][3]) if vals[0][2] and vals[0][3] else None,
        }
    return out


def size_text(b):
    """4 -> "4B", 65536 -> "64K", as nccl-tests sizes read."""
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if b >= scale:
            return "%g%s" % (b / scale, unit)
    return "%gB" % b


def dtype_key(d):
    return (DTYPE_ORDER.index(d) if d in DTYPE_ORDER else len(DTYPE_ORDER), d)


def stamp(fig, prov):
    """Provenance under the figure (bbox_inches="tight" keeps it in the file)."""
    fig.text(0.01, -0.01, "\n".join(sorted(set(prov))), fontsize=7, ha="left", va="top",
             color="0.3")


def save(fig, out, name, formats):
    written = []
    for ext in formats:
        p = os.path.join(out, "%s.%s" % (name, ext))
        fig.savefig(p, dpi=120, bbox_inches="tight")
        written.append(p)
    return written


def plot_gemm(plt, pts, peaks, prov, out, formats):
    lines = defaultdict(list)
    for (backend, device, op, dtype, m, n, k), v in pts.items():
        if op == "gemm":
            lines[(backend, device, dtype)].append((m, v["gflops"]))
    if not lines:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {}
    for key in sorted(lines, key=lambda k: (k[0], k[1], dtype_key(k[2]))):
        xy = sorted(lines[key])
        colors[key] = "C%d" % (len(colors) % 10)
        ax.plot([x for x, _ in xy], [y for _, y in xy], "o-", color=colors[key],
                label="%s %s" % (key[0], key[2]))
    # One dashed line per distinct peak; dtypes that share a value share the line.
    by_value = defaultdict(list)
    for (backend, device, dtype) in lines:
        pk = peaks.get((device, dtype))
        if pk:
            by_value[(backend, pk[0], pk[1])].append((backend, device, dtype))
    for (backend, value, src), keys in sorted(by_value.items(), key=lambda kv: -kv[0][1]):
        keys.sort(key=lambda k: dtype_key(k[2]))
        ax.axhline(value / 1e9, color=colors[keys[0]], linestyle="--", linewidth=1,
                   label="%s %s peak %.1f GFLOP/s (%s)" % (
                       backend, "/".join(k[2] for k in keys), value / 1e9, src))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("GEMM size (m = n = k)")
    ax.set_ylabel("GFLOP/s (median over ranks)")
    ax.set_title("GEMM throughput per backend and dtype")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    stamp(fig, prov)
    w = save(fig, out, "gemm_gflops", formats)
    plt.close(fig)
    return w


def plot_roofline(plt, pts, peaks, prov, out, formats):
    """One panel per dtype: its points against its own roof. Ops are told apart by marker
    (named in the legend, so no text label can overlap another), backends by colour."""
    panels = defaultdict(list)
    bw = defaultdict(float)  # backend -> best measured GB/s over all its points
    for (backend, device, op, dtype, m, n, k), v in pts.items():
        if v["intensity"] and v["gflops"] > 0:
            panels[dtype].append((backend, device, op, v))
            bw[backend] = max(bw[backend], v["gbps"])
    if not panels:
        return []
    dtypes = sorted(panels, key=dtype_key)
    ops = sorted({p[2] for items in panels.values() for p in items})
    # Marker shape, then hollow for the next round: every op its own symbol.
    marker = {op: (MARKERS[i % len(MARKERS)], i >= len(MARKERS)) for i, op in enumerate(ops)}
    color = {b: "C%d" % (i % 10) for i, b in enumerate(sorted(bw))}
    ncol = min(len(dtypes), 2)
    nrow = (len(dtypes) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.9 * nrow), squeeze=False)
    xs_all = [p[3]["intensity"] for items in panels.values() for p in items]
    lo, hi = min(xs_all) / 2, max(xs_all) * 2
    xs = [lo * (hi / lo) ** (j / 200.0) for j in range(201)]
    for i, dtype in enumerate(dtypes):
        ax = axes[i // ncol][i % ncol]
        items = panels[dtype]
        roofs = []  # in the title, where no point can hide under them
        for backend, device in sorted({(p[0], p[1]) for p in items}):
            pk = peaks.get((device, dtype))
            mine = [p[3] for p in items if p[0] == backend]
            if pk:
                peak, src = pk[0] / 1e9, pk[1]
            else:  # no peak of this dtype anywhere: the best point, said so
                peak, src = max(v["gflops"] for v in mine), "no peak known: best point"
            ax.plot(xs, [min(peak, x * bw[backend]) for x in xs], "-", color=color[backend],
                    linewidth=1.2)
            roofs.append("%s roof: %.1f GFLOP/s (%s), %.1f GB/s (best measured)"
                         % (backend, peak, src, bw[backend]))
        for backend, device, op, v in items:
            shape, hollow = marker[op]
            ax.scatter([v["intensity"]], [v["gflops"]], marker=shape, s=28,
                       facecolors="none" if hollow else color[backend],
                       edgecolors=color[backend] if hollow else "black",
                       linewidths=1.0 if hollow else 0.3, zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title("%s\n%s" % (dtype, "\n".join(roofs)), fontsize=7)
        ax.set_xlabel("arithmetic intensity (FLOP/byte)", fontsize=8)
        ax.set_ylabel("GFLOP/s (median over ranks)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for j in range(len(dtypes), nrow * ncol):
        axes[j // ncol][j % ncol].axis("off")
    handles = [plt.Line2D([], [], linestyle="", marker=marker[op][0], label=op,
                          markerfacecolor="none" if marker[op][1] else "0.5",
                          markeredgecolor="0.3" if marker[op][1] else "black",
                          markeredgewidth=1.0 if marker[op][1] else 0.3) for op in ops]
    fig.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.95),
               title="op", title_fontsize=8)
    fig.suptitle("Roofline per dtype (each against its own peak)", fontsize=11)
    fig.tight_layout()
    stamp(fig, prov)
    w = save(fig, out, "roofline", formats)
    plt.close(fig)
    return w


def plot_busbw(plt, coll, prov, out, formats):
    # (backend, op, dtype, buffers, bytes) -> per-rank (time, algbw, busbw)
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
        if busbw > 0:
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
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: size_text(x)))
    ax.set_xlabel("message size")
    ax.set_ylabel("busbw GB/s (max time over ranks)")
    ax.set_title("Collectives: bus bandwidth vs size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    stamp(fig, prov)
    w = save(fig, out, "busbw", formats)
    plt.close(fig)
    return w


def import_matplotlib():
    """pyplot, or re-runs this script with a python3 that has matplotlib (never returns),
    or None when there is none."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        pass
    if os.environ.get("HETRUN_PLOT_REEXEC") != "1":
        here = os.path.realpath(sys.executable or "")
        for cand in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")):
            if not cand or not os.access(cand, os.X_OK) or os.path.realpath(cand) == here:
                continue
            ok = subprocess.run([cand, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
            if ok:
                sys.stderr.write("plot.py: %s has no matplotlib; using %s\n" % (sys.executable, cand))
                sys.stdout.flush()
                os.environ["HETRUN_PLOT_REEXEC"] = "1"
                os.execv(cand, [cand, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write("plot.py: no python3 with matplotlib (tried %s, /usr/bin/python3, "
                     "/usr/local/bin/python3); install it: apt-get install python3-matplotlib, "
                     "or pip install matplotlib\n" % sys.executable)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", nargs="+", help="CSV files written by hetrun run")
    ap.add_argument("--out", default=".", help="folder for the plots (default: .)")
    ap.add_argument("--format", default="both", choices=["png", "svg", "both"])
    args = ap.parse_args()
    plt = import_matplotlib()
    if plt is None:
        return 3
    results, coll, peaks, prov_r, prov_c = [], [], {}, [], []
    for path in args.csv:
        try:
            rows = read_csv(path)
        except OSError as e:
            sys.stderr.write("plot.py: %s: %s\n" % (path, e))
            return 2
        k = kind_of(rows, path)
        if k not in ("results", "collectives"):
            continue
        rep = report_beside(path)
        if k == "results":
            results += rows
            peaks.update(peaks_of(rep, rows))
            prov_r.append(provenance(rep, rows, path))
        else:
            coll += rows
            prov_c.append(provenance(rep, rows, path))
    os.makedirs(args.out, exist_ok=True)
    formats = ["png", "svg"] if args.format == "both" else [args.format]
    pts = points_over_ranks(results)
    written = plot_gemm(plt, pts, peaks, prov_r, args.out, formats)
    written += plot_roofline(plt, pts, peaks, prov_r, args.out, formats)
    written += plot_busbw(plt, coll, prov_c, args.out, formats)
    if not written:
        sys.stderr.write("plot.py: no plottable rows in %s\n" % " ".join(args.csv))
        return 1
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
