#!/usr/bin/env python3
"""Per-rank FLOPs of a known bench job, predicted from the spec and the catalogue's
counting rules (restated here, independently of kernels/catalogue.c), must equal each
rank's usage.flops; per-op call counts must equal 1 checked + warmup + iterations.
usage: check_flops.py REPORT.json"""
import json
import sys

W, I = 1, 3  # warmup, iterations of every point in known_job.yaml
CALLS = 1 + W + I
# (op, size, cols) of the points in known_job.yaml, and the catalogue's FLOPs per call.
POINTS = [
    ("gemm", 64, None, lambda s, c: 2.0 * s * s * s),
    ("gemm", 48, None, lambda s, c: 2.0 * s * s * s),
    ("softmax", 32, 48, lambda m, n: 5.0 * m * n),
    ("layernorm", 32, 48, lambda m, n: 7.0 * m * n),
    ("adamw", 32, 48, lambda m, n: 16.0 * m * n),
    ("act_forward", 32, 48, lambda m, n: 9.0 * m * n),  # gelu
    ("reduce_sum_axis0", 32, 48, lambda m, n: m * n + 2.0 * n),
    ("xent_forward", 32, 48, lambda m, n: 5.0 * m * n + 2.0 * m),
    ("fill", 32, 48, lambda m, n: 0.0),
]


def main():
    r = json.load(open(sys.argv[1]))
    want = sum(f(s, c) for _, s, c, f in POINTS) * CALLS
    calls = {}
    for op, *_ in POINTS:
        calls[op] = calls.get(op, 0) + CALLS
    fails = 0
    for rank in r["ranks"]:
        u = rank["usage"]
        if u["flops"] != want:
            print("FAIL rank %d: usage.flops %r, predicted %r" % (rank["rank"], u["flops"], want))
            fails += 1
        for op, n in calls.items():
            got = u["per_op"].get(op, {}).get("calls")
            if got != n:
                print("FAIL rank %d: %s calls %r, predicted %r" % (rank["rank"], op, got, n))
                fails += 1
        if u["ops"] != sum(calls.values()):
            print("FAIL rank %d: ops %r, predicted %r" % (rank["rank"], u["ops"], sum(calls.values())))
            fails += 1
        # Bytes: the report's own per-point counts must add up to the usage record.
        b = sum(x["bytes_per_iteration"] * x["calls"] for x in rank["results"] if "calls" in x
                and "bytes_per_iteration" in x)
        if abs(b - u["bytes"]) > 1e-9 * max(b, 1):
            print("FAIL rank %d: usage.bytes %r, sum of points %r" % (rank["rank"], u["bytes"], b))
            fails += 1
        # Busy spans cover every device op, so they hold at least the timed runs.
        timed = sum(x["time_ms"]["min"] * I * 1e-3 for x in rank["results"] if "time_ms" in x)
        if u["device_busy_seconds"] < timed * 0.999:
            print("FAIL rank %d: device_busy_seconds %r below the timed runs alone %r" %
                  (rank["rank"], u["device_busy_seconds"], timed))
            fails += 1
        if not u["device_busy_seconds"] > 0 or u["device_busy_seconds"] > u["wall_seconds"] * 1.05:
            print("FAIL rank %d: device_busy_seconds %r not in (0, wall %r]" %
                  (rank["rank"], u["device_busy_seconds"], u["wall_seconds"]))
            fails += 1
    tot = r["summary"]["usage"]["flops"]
    if tot != want * len(r["ranks"]):
        print("FAIL summary.usage.flops %r, predicted %r" % (tot, want * len(r["ranks"])))
        fails += 1
    if not fails:
        print("ok   %d ranks x %.0f FLOPs each, as predicted" % (len(r["ranks"]), want))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
