#!/usr/bin/python3
"""Fits the coefficients of the cpu kernels' vectorisable erf (kernels/cpu/cpu_kernels.c,
verff) and prints them with the float32 evaluation's maximum error against double erf.

    /usr/bin/python3 scripts/fit-erf.py      # numpy (Debian's python3-numpy)

Two pieces, both least squares on Chebyshev nodes, in double:
  |x| < CUT:          erf(x) = x P(x^2), P of degree 5 fitted to erf(x)/x (relative error);
  CUT <= |x| < TOP:   erf(|x|) = 1 - exp(Q(|x| - CUT)), Q of degree 8 fitted to log(erfc);
  |x| >= TOP:         +-1 (erfc(TOP) is below half an ulp of 1 in float).
Q's variable starts at CUT so that near CUT, where erfc is largest, Horner's sum has no
cancellation. The evaluation below mimics the C code in float32 (exp in double, rounded:
vexpf is within a few ulp of it)."""
import math

import numpy as np

CUT, TOP, NODES = 0.625, 3.925, 6000


def chebyshev_nodes(lo, hi):
    return lo + (hi - lo) * (np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES) + 1) / 2


def fit():
    erf, erfc = np.vectorize(math.erf), np.vectorize(math.erfc)
    u = chebyshev_nodes(0.0, CUT * CUT)
    x = np.sqrt(u)
    f = erf(x) / x
    a = np.vander(u, 6, increasing=True)
    p, *_ = np.linalg.lstsq(a / f[:, None], np.ones_like(f), rcond=None)
    t = chebyshev_nodes(CUT, TOP)
    a = np.vander(t - CUT, 9, increasing=True)
    q, *_ = np.linalg.lstsq(a, np.log(erfc(t)), rcond=None)
    return p, q


def horner(c, v):
    r = np.float32(c[-1])
    for k in c[-2::-1]:
        r = (r * v + np.float32(k)).astype(np.float32)
    return r


def erf_f32(x, p, q):
    x = x.astype(np.float32)
    a = np.abs(x)
    small = (x * horner(p, x * x)).astype(np.float32)
    s = (np.minimum(a, np.float32(TOP)) - np.float32(CUT)).astype(np.float32)
    big = (np.float32(1) - np.exp(horner(q, s).astype(np.float64)).astype(np.float32))
    big = np.where(a >= TOP, np.float32(1), big).astype(np.float32)
    return np.where(a < CUT, small, np.copysign(big, x))


def main():
    p, q = fit()
    print("P (x^2, from the constant term):", ", ".join("%.9e" % v for v in p))
    print("Q (|x| - %g, from the constant term):" % CUT, ", ".join("%.9e" % v for v in q))
    xs = np.linspace(-8, 8, 2_000_001).astype(np.float32)
    err = np.abs(erf_f32(xs, p, q) - np.vectorize(math.erf)(xs.astype(np.float64)))
    print("max |erf error| over [-8, 8]: %.3g at x = %g" % (err.max(), xs[err.argmax()]))


if __name__ == "__main__":
    main()
