"""PolyBench/C 4.2.1 linear-algebra solvers: cholesky, durbin, gramschmidt, lu,
ludcmp, trisolv."""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import math

import numpy as np

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


def _spd_matrix(n: int) -> np.ndarray:
    """The matrix cholesky, lu and ludcmp start from: L * L**T with L lower
    triangular, ``L[i, j] = (-j % n) / n + 1`` in C arithmetic (``-j % n`` is
    ``-j`` there), unit diagonal. The product is accumulated over ``t`` in the
    same order as PolyBench's triple loop (one rounded multiply and one rounded
    add per term), not with a BLAS matmul."""
    i, j = grid(n, n)
    L = np.where(j <= i, f64(-j) / n + 1, 0.0)
    L[np.arange(n), np.arange(n)] = 1.0
    A = np.zeros((n, n))
    for t in range(n):
        A += L[:, t, None] * L[None, :, t]
    return A


@polyop.kernel
def kernel_cholesky(n: int, A: "f64[n, n]"):
    for i in range(n):
        # j < i
        for j in range(i):
            for k in range(j):
                A[i, j] -= A[i, k] * A[j, k]
            A[i, j] /= A[j, j]
        # i == j
        for k in range(i):
            A[i, i] -= A[i, k] * A[i, k]
        A[i, i] = math.sqrt(A[i, i])


def _init_cholesky(s):
    return dict(n=s["n"], A=_spd_matrix(s["n"]))


@polyop.kernel
def kernel_durbin(n: int, r: "f64[n]", y: "f64[n]", z: "f64[n]"):
    # z is a local array (DATA_TYPE z[N]) in PolyBench; here a scratch argument
    y[0] = -r[0]
    beta = 1.0
    alpha = -r[0]
    for k in range(1, n):
        beta = (1.0 - alpha * alpha) * beta
        sum = 0.0
        for i in range(k):
            sum += r[k - i - 1] * y[i]
        alpha = -(r[k] + sum) / beta
        for i in range(k):
            z[i] = y[i] + alpha * y[k - i - 1]
        for i in range(k):
            y[i] = z[i]
        y[k] = alpha


def _init_durbin(s):
    n = s["n"]
    return dict(n=n, r=f64(n + 1 - np.arange(n)), y=zeros(n), z=zeros(n))


@polyop.kernel
def kernel_gramschmidt(m: int, n: int, A: "f64[m, n]", R: "f64[n, n]",
                       Q: "f64[m, n]"):
    # QR decomposition with modified Gram-Schmidt
    for k in range(n):
        nrm = 0.0
        for i in range(m):
            nrm += A[i, k] * A[i, k]
        R[k, k] = math.sqrt(nrm)
        for i in range(m):
            Q[i, k] = A[i, k] / R[k, k]
        for j in range(k + 1, n):
            R[k, j] = 0.0
            for i in range(m):
                R[k, j] += Q[i, k] * A[i, j]
            for i in range(m):
                A[i, j] = A[i, j] - Q[i, k] * R[k, j]


def _init_gramschmidt(s):
    m, n = s["m"], s["n"]
    i, j = grid(m, n)
    return dict(m=m, n=n, A=(f64(i * j % m) / m) * 100 + 10, R=zeros(n, n),
                Q=zeros(m, n))


@polyop.kernel
def kernel_lu(n: int, A: "f64[n, n]"):
    for i in range(n):
        for j in range(i):
            for k in range(j):
                A[i, j] -= A[i, k] * A[k, j]
            A[i, j] /= A[j, j]
        for j in range(i, n):
            for k in range(i):
                A[i, j] -= A[i, k] * A[k, j]


def _init_lu(s):
    return dict(n=s["n"], A=_spd_matrix(s["n"]))


@polyop.kernel
def kernel_ludcmp(n: int, A: "f64[n, n]", b: "f64[n]", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        for j in range(i):
            w = A[i, j]
            for k in range(j):
                w -= A[i, k] * A[k, j]
            A[i, j] = w / A[j, j]
        for j in range(i, n):
            w = A[i, j]
            for k in range(i):
                w -= A[i, k] * A[k, j]
            A[i, j] = w

    for i in range(n):
        w = b[i]
        for j in range(i):
            w -= A[i, j] * y[j]
        y[i] = w

    # PolyBench: for (i = n-1; i >= 0; i--), here i = n - 1 - ii
    for ii in range(n):
        w = y[n - 1 - ii]
        for j in range(n - ii, n):
            w -= A[n - 1 - ii, j] * x[j]
        x[n - 1 - ii] = w / A[n - 1 - ii, n - 1 - ii]


def _init_ludcmp(s):
    n = s["n"]
    fn = float(n)
    return dict(n=n, A=_spd_matrix(n), b=(np.arange(n) + 1) / fn / 2.0 + 4,
                x=zeros(n), y=zeros(n))


@polyop.kernel
def kernel_trisolv(n: int, L: "f64[n, n]", x: "f64[n]", b: "f64[n]"):
    for i in range(n):
        x[i] = b[i]
        for j in range(i):
            x[i] -= L[i, j] * x[j]
        x[i] = x[i] / L[i, i]


def _init_trisolv(s):
    n = s["n"]
    i, j = grid(n, n)
    # lower triangle as PolyBench; the upper part (never read) is zero here
    L = np.where(j <= i, f64(i + n - j + 1) * 2 / n, 0.0)
    return dict(n=n, L=f64(L), x=np.full(n, -999.0), b=f64(np.arange(n)))


_N_SIZES = sizes("n", 40, 120, 400, 2000)

BENCHES = [
    Bench("cholesky", kernel_cholesky, _N_SIZES, _init_cholesky, ("A",),
          lambda s: s["n"] ** 3 / 3.0),
    Bench("durbin", kernel_durbin, _N_SIZES, _init_durbin, ("y", "z"),
          lambda s: 2.0 * s["n"] * s["n"]),
    Bench("gramschmidt", kernel_gramschmidt,
          sizes("m n", (20, 30), (60, 80), (200, 240), (1000, 1200)),
          _init_gramschmidt, ("R", "Q", "A"),
          lambda s: 2.0 * s["m"] * s["n"] * s["n"]),
    Bench("lu", kernel_lu, _N_SIZES, _init_lu, ("A",),
          lambda s: 2.0 * s["n"] ** 3 / 3.0),
    Bench("ludcmp", kernel_ludcmp, _N_SIZES, _init_ludcmp, ("x", "A", "y"),
          lambda s: 2.0 * s["n"] ** 3 / 3.0 + 2.0 * s["n"] * s["n"]),
    Bench("trisolv", kernel_trisolv, _N_SIZES, _init_trisolv, ("x",),
          lambda s: 1.0 * s["n"] * s["n"]),
]
