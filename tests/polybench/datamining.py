"""PolyBench/C 4.2.1 datamining kernels: correlation, covariance."""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import math

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


@polyop.kernel
def kernel_correlation(m: int, n: int, float_n: "f64", data: "f64[n, m]",
                       corr: "f64[m, m]", mean: "f64[m]", stddev: "f64[m]"):
    eps = 0.1
    for j in range(m):
        mean[j] = 0.0
        for i in range(n):
            mean[j] += data[i, j]
        mean[j] /= float_n

    for j in range(m):
        stddev[j] = 0.0
        for i in range(n):
            stddev[j] += (data[i, j] - mean[j]) * (data[i, j] - mean[j])
        stddev[j] /= float_n
        stddev[j] = math.sqrt(stddev[j])
        # near-zero standard deviations would divide by zero below
        stddev[j] = 1.0 if stddev[j] <= eps else stddev[j]

    # center and reduce the column vectors
    for i in range(n):
        for j in range(m):
            data[i, j] -= mean[j]
            data[i, j] /= math.sqrt(float_n) * stddev[j]

    # the m x m correlation matrix
    for i in range(m - 1):
        corr[i, i] = 1.0
        for j in range(i + 1, m):
            corr[i, j] = 0.0
            for k in range(n):
                corr[i, j] += data[k, i] * data[k, j]
            corr[j, i] = corr[i, j]
    corr[m - 1, m - 1] = 1.0


def _init_correlation(s):
    m, n = s["m"], s["n"]
    i, j = grid(n, m)
    return dict(m=m, n=n, float_n=float(n), data=f64(i * j) / m + i,
                corr=zeros(m, m), mean=zeros(m), stddev=zeros(m))


@polyop.kernel
def kernel_covariance(m: int, n: int, float_n: "f64", data: "f64[n, m]",
                      cov: "f64[m, m]", mean: "f64[m]"):
    for j in range(m):
        mean[j] = 0.0
        for i in range(n):
            mean[j] += data[i, j]
        mean[j] /= float_n

    for i in range(n):
        for j in range(m):
            data[i, j] -= mean[j]

    for i in range(m):
        for j in range(i, m):
            cov[i, j] = 0.0
            for k in range(n):
                cov[i, j] += data[k, i] * data[k, j]
            cov[i, j] /= float_n - 1.0
            cov[j, i] = cov[i, j]


def _init_covariance(s):
    m, n = s["m"], s["n"]
    i, j = grid(n, m)
    return dict(m=m, n=n, float_n=float(n), data=f64(i * j) / m,
                cov=zeros(m, m), mean=zeros(m))


_DATAMINING_SIZES = sizes("m n", (28, 32), (80, 100), (240, 260), (1200, 1400))

BENCHES = [
    Bench("correlation", kernel_correlation, _DATAMINING_SIZES, _init_correlation,
          ("corr", "data", "mean", "stddev"),
          lambda s: s["m"] * s["m"] * s["n"] + 7.0 * s["m"] * s["n"]),
    Bench("covariance", kernel_covariance, _DATAMINING_SIZES, _init_covariance,
          ("cov", "data", "mean"),
          lambda s: s["m"] * (s["m"] + 1) * s["n"] + 2.0 * s["m"] * s["n"]),
]
