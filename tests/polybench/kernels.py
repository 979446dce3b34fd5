"""PolyBench/C 4.2.1 linear-algebra kernels: 2mm, 3mm, atax, bicg, doitgen, mvt."""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import numpy as np

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


@polyop.kernel
def kernel_2mm(ni: int, nj: int, nk: int, nl: int, alpha: "f64", beta: "f64",
               tmp: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]",
               C: "f64[nj, nl]", D: "f64[ni, nl]"):
    # D := alpha*A*B*C + beta*D
    for i in range(ni):
        for j in range(nj):
            tmp[i, j] = 0.0
            for k in range(nk):
                tmp[i, j] += alpha * A[i, k] * B[k, j]
    for i in range(ni):
        for j in range(nl):
            D[i, j] *= beta
            for k in range(nj):
                D[i, j] += tmp[i, k] * C[k, j]


def _init_2mm(s):
    ni, nj, nk, nl = s["ni"], s["nj"], s["nk"], s["nl"]
    i, j = grid(ni, nk)
    A = f64((i * j + 1) % ni) / ni
    i, j = grid(nk, nj)
    B = f64(i * (j + 1) % nj) / nj
    i, j = grid(nj, nl)
    C = f64((i * (j + 3) + 1) % nl) / nl
    i, j = grid(ni, nl)
    D = f64(i * (j + 2) % nk) / nk
    return dict(ni=ni, nj=nj, nk=nk, nl=nl, alpha=1.5, beta=1.2,
                tmp=zeros(ni, nj), A=A, B=B, C=C, D=D)


@polyop.kernel
def kernel_3mm(ni: int, nj: int, nk: int, nl: int, nm: int, E: "f64[ni, nj]",
               A: "f64[ni, nk]", B: "f64[nk, nj]", F: "f64[nj, nl]",
               C: "f64[nj, nm]", D: "f64[nm, nl]", G: "f64[ni, nl]"):
    # E := A*B
    for i in range(ni):
        for j in range(nj):
            E[i, j] = 0.0
            for k in range(nk):
                E[i, j] += A[i, k] * B[k, j]
    # F := C*D
    for i in range(nj):
        for j in range(nl):
            F[i, j] = 0.0
            for k in range(nm):
                F[i, j] += C[i, k] * D[k, j]
    # G := E*F
    for i in range(ni):
        for j in range(nl):
            G[i, j] = 0.0
            for k in range(nj):
                G[i, j] += E[i, k] * F[k, j]


def _init_3mm(s):
    ni, nj, nk, nl, nm = s["ni"], s["nj"], s["nk"], s["nl"], s["nm"]
    i, j = grid(ni, nk)
    A = f64((i * j + 1) % ni) / (5 * ni)
    i, j = grid(nk, nj)
    B = f64((i * (j + 1) + 2) % nj) / (5 * nj)
    i, j = grid(nj, nm)
    C = f64(i * (j + 3) % nl) / (5 * nl)
    i, j = grid(nm, nl)
    D = f64((i * (j + 2) + 2) % nk) / (5 * nk)
    return dict(ni=ni, nj=nj, nk=nk, nl=nl, nm=nm, E=zeros(ni, nj), A=A, B=B,
                F=zeros(nj, nl), C=C, D=D, G=zeros(ni, nl))


@polyop.kernel
def kernel_atax(m: int, n: int, A: "f64[m, n]", x: "f64[n]", y: "f64[n]",
                tmp: "f64[m]"):
    for i in range(n):
        y[i] = 0.0
    for i in range(m):
        tmp[i] = 0.0
        for j in range(n):
            tmp[i] = tmp[i] + A[i, j] * x[j]
        for j in range(n):
            y[j] = y[j] + A[i, j] * tmp[i]


def _init_atax(s):
    m, n = s["m"], s["n"]
    fn = float(n)
    i, j = grid(m, n)
    return dict(m=m, n=n, A=f64((i + j) % n) / (5 * m),
                x=1 + np.arange(n) / fn, y=zeros(n), tmp=zeros(m))


@polyop.kernel
def kernel_bicg(m: int, n: int, A: "f64[n, m]", s: "f64[m]", q: "f64[n]",
                p: "f64[m]", r: "f64[n]"):
    for i in range(m):
        s[i] = 0.0
    for i in range(n):
        q[i] = 0.0
        for j in range(m):
            s[j] = s[j] + r[i] * A[i, j]
            q[i] = q[i] + A[i, j] * p[j]


def _init_bicg(sz):
    m, n = sz["m"], sz["n"]
    i, j = grid(n, m)
    return dict(m=m, n=n, A=f64(i * (j + 1) % n) / n, s=zeros(m), q=zeros(n),
                p=f64(np.arange(m) % m) / m, r=f64(np.arange(n) % n) / n)


@polyop.kernel
def kernel_doitgen(nr: int, nq: int, np: int, A: "f64[nr, nq, np]",
                   C4: "f64[np, np]", sum: "f64[np]"):
    for r in range(nr):
        for q in range(nq):
            for p in range(np):
                sum[p] = 0.0
                for s in range(np):
                    sum[p] += A[r, q, s] * C4[s, p]
            for p in range(np):
                A[r, q, p] = sum[p]


def _init_doitgen(sz):
    nr, nq, npp = sz["nr"], sz["nq"], sz["np"]
    i, j, k = grid(nr, nq, npp)
    A = f64((i * j + k) % npp) / npp
    i, j = grid(npp, npp)
    C4 = f64(i * j % npp) / npp
    return {"nr": nr, "nq": nq, "np": npp, "A": A, "C4": C4, "sum": zeros(npp)}


@polyop.kernel
def kernel_mvt(n: int, x1: "f64[n]", x2: "f64[n]", y_1: "f64[n]", y_2: "f64[n]",
               A: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            x1[i] = x1[i] + A[i, j] * y_1[j]
    for i in range(n):
        for j in range(n):
            x2[i] = x2[i] + A[j, i] * y_2[j]


def _init_mvt(s):
    n = s["n"]
    i = np.arange(n)
    ii, jj = grid(n, n)
    return dict(n=n, x1=f64(i % n) / n, x2=f64((i + 1) % n) / n,
                y_1=f64((i + 3) % n) / n, y_2=f64((i + 4) % n) / n,
                A=f64(ii * jj % n) / n)


_MN_SIZES = ((38, 42), (116, 124), (390, 410), (1900, 2100))

BENCHES = [
    Bench("2mm", kernel_2mm,
          sizes("ni nj nk nl", (16, 18, 22, 24), (40, 50, 70, 80),
                (180, 190, 210, 220), (800, 900, 1100, 1200)),
          _init_2mm, ("D", "tmp"),
          lambda s: 3.0 * s["ni"] * s["nj"] * s["nk"]
          + 2.0 * s["ni"] * s["nl"] * s["nj"] + s["ni"] * s["nl"]),
    Bench("3mm", kernel_3mm,
          sizes("ni nj nk nl nm", (16, 18, 20, 22, 24), (40, 50, 60, 70, 80),
                (180, 190, 200, 210, 220), (800, 900, 1000, 1100, 1200)),
          _init_3mm, ("G", "E", "F"),
          lambda s: 2.0 * (s["ni"] * s["nj"] * s["nk"] + s["nj"] * s["nl"] * s["nm"]
                           + s["ni"] * s["nl"] * s["nj"])),
    Bench("atax", kernel_atax, sizes("m n", *_MN_SIZES), _init_atax, ("y", "tmp"),
          lambda s: 4.0 * s["m"] * s["n"]),
    Bench("bicg", kernel_bicg, sizes("m n", *_MN_SIZES), _init_bicg, ("s", "q"),
          lambda s: 4.0 * s["m"] * s["n"]),
    Bench("doitgen", kernel_doitgen,
          sizes("nq nr np", (8, 10, 12), (20, 25, 30), (40, 50, 60), (140, 150, 160)),
          _init_doitgen, ("A", "sum"),
          lambda s: 2.0 * s["nr"] * s["nq"] * s["np"] * s["np"]),
    Bench("mvt", kernel_mvt, sizes("n", 40, 120, 400, 2000), _init_mvt, ("x1", "x2"),
          lambda s: 4.0 * s["n"] * s["n"]),
]
