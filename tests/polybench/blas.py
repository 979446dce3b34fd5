"""PolyBench/C 4.2.1 BLAS kernels: gemm, gemver, gesummv, symm, syr2k, syrk, trmm."""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import numpy as np

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


@polyop.kernel
def kernel_gemm(ni: int, nj: int, nk: int, alpha: "f64", beta: "f64",
                C: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]"):
    # C := alpha*A*B + beta*C
    for i in range(ni):
        for j in range(nj):
            C[i, j] *= beta
        for k in range(nk):
            for j in range(nj):
                C[i, j] += alpha * A[i, k] * B[k, j]


def _init_gemm(s):
    ni, nj, nk = s["ni"], s["nj"], s["nk"]
    i, j = grid(ni, nj)
    C = f64((i * j + 1) % ni) / ni
    i, j = grid(ni, nk)
    A = f64(i * (j + 1) % nk) / nk
    i, j = grid(nk, nj)
    B = f64(i * (j + 2) % nj) / nj
    return dict(ni=ni, nj=nj, nk=nk, alpha=1.5, beta=1.2, C=C, A=A, B=B)


@polyop.kernel
def kernel_gemver(n: int, alpha: "f64", beta: "f64", A: "f64[n, n]",
                  u1: "f64[n]", v1: "f64[n]", u2: "f64[n]", v2: "f64[n]",
                  w: "f64[n]", x: "f64[n]", y: "f64[n]", z: "f64[n]"):
    for i in range(n):
        for j in range(n):
            A[i, j] = A[i, j] + u1[i] * v1[j] + u2[i] * v2[j]

    for i in range(n):
        for j in range(n):
            x[i] = x[i] + beta * A[j, i] * y[j]

    for i in range(n):
        x[i] = x[i] + z[i]

    for i in range(n):
        for j in range(n):
            w[i] = w[i] + alpha * A[i, j] * x[j]


def _init_gemver(s):
    n = s["n"]
    fn = float(n)
    i = np.arange(n)
    ii, jj = grid(n, n)
    return dict(n=n, alpha=1.5, beta=1.2, A=f64(ii * jj % n) / n,
                u1=f64(i), v1=((i + 1) / fn) / 4.0, u2=((i + 1) / fn) / 2.0,
                v2=((i + 1) / fn) / 6.0, w=zeros(n), x=zeros(n),
                y=((i + 1) / fn) / 8.0, z=((i + 1) / fn) / 9.0)


@polyop.kernel
def kernel_gesummv(n: int, alpha: "f64", beta: "f64", A: "f64[n, n]",
                   B: "f64[n, n]", tmp: "f64[n]", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        tmp[i] = 0.0
        y[i] = 0.0
        for j in range(n):
            tmp[i] = A[i, j] * x[j] + tmp[i]
            y[i] = B[i, j] * x[j] + y[i]
        y[i] = alpha * tmp[i] + beta * y[i]


def _init_gesummv(s):
    n = s["n"]
    i, j = grid(n, n)
    return dict(n=n, alpha=1.5, beta=1.2, A=f64((i * j + 1) % n) / n,
                B=f64((i * j + 2) % n) / n, tmp=zeros(n),
                x=f64(np.arange(n) % n) / n, y=zeros(n))


@polyop.kernel
def kernel_symm(m: int, n: int, alpha: "f64", beta: "f64", C: "f64[m, n]",
                A: "f64[m, m]", B: "f64[m, n]"):
    # C := alpha*A*B + beta*C, A symmetric and stored in its lower triangle
    for i in range(m):
        for j in range(n):
            temp2 = 0.0
            for k in range(i):
                C[k, j] += alpha * B[i, j] * A[i, k]
                temp2 += B[k, j] * A[i, k]
            C[i, j] = beta * C[i, j] + alpha * B[i, j] * A[i, i] + alpha * temp2


def _init_symm(s):
    m, n = s["m"], s["n"]
    i, j = grid(m, n)
    C = f64((i + j) % 100) / m
    B = f64((n + i - j) % 100) / m        # n + i - j > 0: C and Python % agree
    i, j = grid(m, m)
    A = np.where(j <= i, f64((i + j) % 100) / m, -999.0)  # upper part unused
    return dict(m=m, n=n, alpha=1.5, beta=1.2, C=C, A=f64(A), B=B)


@polyop.kernel
def kernel_syr2k(n: int, m: int, alpha: "f64", beta: "f64", C: "f64[n, n]",
                 A: "f64[n, m]", B: "f64[n, m]"):
    # lower triangle of C := alpha*A*B**T + alpha*B*A**T + beta*C
    for i in range(n):
        for j in range(i + 1):
            C[i, j] *= beta
        for k in range(m):
            for j in range(i + 1):
                C[i, j] += A[j, k] * alpha * B[i, k] + B[j, k] * alpha * A[i, k]


def _init_syr2k(s):
    n, m = s["n"], s["m"]
    i, j = grid(n, m)
    A = f64((i * j + 1) % n) / n
    B = f64((i * j + 2) % m) / m
    i, j = grid(n, n)
    C = f64((i * j + 3) % n) / m
    return dict(n=n, m=m, alpha=1.5, beta=1.2, C=C, A=A, B=B)


@polyop.kernel
def kernel_syrk(n: int, m: int, alpha: "f64", beta: "f64", C: "f64[n, n]",
                A: "f64[n, m]"):
    # lower triangle of C := alpha*A*A**T + beta*C
    for i in range(n):
        for j in range(i + 1):
            C[i, j] *= beta
        for k in range(m):
            for j in range(i + 1):
                C[i, j] += alpha * A[i, k] * A[j, k]


def _init_syrk(s):
    n, m = s["n"], s["m"]
    i, j = grid(n, m)
    A = f64((i * j + 1) % n) / n
    i, j = grid(n, n)
    C = f64((i * j + 2) % m) / m
    return dict(n=n, m=m, alpha=1.5, beta=1.2, C=C, A=A)


@polyop.kernel
def kernel_trmm(m: int, n: int, alpha: "f64", A: "f64[m, m]", B: "f64[m, n]"):
    # B := alpha*A**T*B, A unit lower triangular
    for i in range(m):
        for j in range(n):
            for k in range(i + 1, m):
                B[i, j] += A[k, i] * B[k, j]
            B[i, j] = alpha * B[i, j]


def _init_trmm(s):
    m, n = s["m"], s["n"]
    i, j = grid(m, m)
    # strictly lower part as PolyBench, unit diagonal; the upper part is left
    # uninitialised by PolyBench (and never read): zero here
    A = np.where(j < i, f64((i + j) % m) / m, 0.0)
    A[np.arange(m), np.arange(m)] = 1.0
    i, j = grid(m, n)
    B = f64((n + (i - j)) % n) / n        # n + i - j > 0: C and Python % agree
    return dict(m=m, n=n, alpha=1.5, A=f64(A), B=B)


_MN_SIZES = ((20, 30), (60, 80), (200, 240), (1000, 1200))

BENCHES = [
    Bench("gemm", kernel_gemm,
          sizes("ni nj nk", (20, 25, 30), (60, 70, 80), (200, 220, 240),
                (1000, 1100, 1200)),
          _init_gemm, ("C",),
          lambda s: 2.0 * s["ni"] * s["nj"] * s["nk"] + s["ni"] * s["nj"]),
    Bench("gemver", kernel_gemver, sizes("n", 40, 120, 400, 2000), _init_gemver,
          ("w", "A", "x"), lambda s: 10.0 * s["n"] * s["n"]),
    Bench("gesummv", kernel_gesummv, sizes("n", 30, 90, 250, 1300), _init_gesummv,
          ("y", "tmp"), lambda s: 4.0 * s["n"] * s["n"] + 3.0 * s["n"]),
    Bench("symm", kernel_symm, sizes("m n", *_MN_SIZES), _init_symm, ("C",),
          lambda s: 2.5 * s["m"] * s["m"] * s["n"]),
    # syr2k/syrk take (n, m): N is the larger of the two PolyBench sizes
    Bench("syr2k", kernel_syr2k, sizes("m n", *_MN_SIZES), _init_syr2k, ("C",),
          lambda s: 3.0 * s["n"] * s["n"] * s["m"]),
    Bench("syrk", kernel_syrk, sizes("m n", *_MN_SIZES), _init_syrk, ("C",),
          lambda s: 1.5 * s["n"] * s["n"] * s["m"]),
    Bench("trmm", kernel_trmm, sizes("m n", *_MN_SIZES), _init_trmm, ("B",),
          lambda s: 1.0 * s["m"] * s["m"] * s["n"]),
]
