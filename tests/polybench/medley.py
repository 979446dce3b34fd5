"""PolyBench/C 4.2.1 medley kernels: deriche, floyd-warshall, nussinov.

Deviations from the C types (values are unaffected or only rounded
differently): deriche's DATA_TYPE is float in PolyBench, f64 here;
floyd-warshall's and nussinov's DATA_TYPE is int in PolyBench, f64 here (all
values are small integers, exact in f64); nussinov's ``base`` (char) sequence is
an i32 array.
"""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import math

import numpy as np

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


@polyop.kernel
def kernel_deriche(w: int, h: int, alpha: "f64", imgIn: "f64[w, h]",
                   imgOut: "f64[w, h]", y1: "f64[w, h]", y2: "f64[w, h]"):
    k = ((1.0 - math.exp(-alpha)) * (1.0 - math.exp(-alpha))
         / (1.0 + 2.0 * alpha * math.exp(-alpha) - math.exp(2.0 * alpha)))
    # PolyBench's chained assignments (a1 = a5 = k, ...) are split in two
    a5 = k
    a1 = a5
    a6 = k * math.exp(-alpha) * (alpha - 1.0)
    a2 = a6
    a7 = k * math.exp(-alpha) * (alpha + 1.0)
    a3 = a7
    a8 = -k * math.exp(-2.0 * alpha)
    a4 = a8
    b1 = math.pow(2.0, -alpha)
    b2 = -math.exp(-2.0 * alpha)
    c2 = 1.0
    c1 = c2

    for i in range(w):
        ym1 = 0.0
        ym2 = 0.0
        xm1 = 0.0
        for j in range(h):
            y1[i, j] = a1 * imgIn[i, j] + a2 * xm1 + b1 * ym1 + b2 * ym2
            xm1 = imgIn[i, j]
            ym2 = ym1
            ym1 = y1[i, j]

    # PolyBench: for (j = h-1; j >= 0; j--), here j = h - 1 - jj
    for i in range(w):
        yp1 = 0.0
        yp2 = 0.0
        xp1 = 0.0
        xp2 = 0.0
        for jj in range(h):
            y2[i, h - 1 - jj] = a3 * xp1 + a4 * xp2 + b1 * yp1 + b2 * yp2
            xp2 = xp1
            xp1 = imgIn[i, h - 1 - jj]
            yp2 = yp1
            yp1 = y2[i, h - 1 - jj]

    for i in range(w):
        for j in range(h):
            imgOut[i, j] = c1 * (y1[i, j] + y2[i, j])

    for j in range(h):
        tm1 = 0.0
        ym1 = 0.0
        ym2 = 0.0
        for i in range(w):
            y1[i, j] = a5 * imgOut[i, j] + a6 * tm1 + b1 * ym1 + b2 * ym2
            tm1 = imgOut[i, j]
            ym2 = ym1
            ym1 = y1[i, j]

    # PolyBench: for (i = w-1; i >= 0; i--), here i = w - 1 - ii
    for j in range(h):
        tp1 = 0.0
        tp2 = 0.0
        yp1 = 0.0
        yp2 = 0.0
        for ii in range(w):
            y2[w - 1 - ii, j] = a7 * tp1 + a8 * tp2 + b1 * yp1 + b2 * yp2
            tp2 = tp1
            tp1 = imgOut[w - 1 - ii, j]
            yp2 = yp1
            yp1 = y2[w - 1 - ii, j]

    for i in range(w):
        for j in range(h):
            imgOut[i, j] = c2 * (y1[i, j] + y2[i, j])


def _init_deriche(s):
    w, h = s["w"], s["h"]
    i, j = grid(w, h)
    # PolyBench computes this in float ((float)x / 65535.0f); double here
    return dict(w=w, h=h, alpha=0.25, imgIn=f64((313 * i + 991 * j) % 65536) / 65535.0,
                imgOut=zeros(w, h), y1=zeros(w, h), y2=zeros(w, h))


@polyop.kernel
def kernel_floyd_warshall(n: int, path: "f64[n, n]"):
    for k in range(n):
        for i in range(n):
            for j in range(n):
                path[i, j] = (path[i, j] if path[i, j] < path[i, k] + path[k, j]
                              else path[i, k] + path[k, j])


def _init_floyd_warshall(s):
    n = s["n"]
    i, j = grid(n, n)
    path = f64(i * j % 7 + 1)
    path[((i + j) % 13 == 0) | ((i + j) % 7 == 0) | ((i + j) % 11 == 0)] = 999.0
    return dict(n=n, path=path)


@polyop.kernel
def kernel_nussinov(n: int, seq: "i32[n]", table: "f64[n, n]"):
    # PolyBench: for (i = n-1; i >= 0; i--), here i = n - 1 - ii, so i + 1 is
    # n - ii; match(b1, b2) and max_score(s1, s2) are inlined
    for ii in range(n):
        for j in range(n - ii, n):
            if j - 1 >= 0:
                table[n - 1 - ii, j] = max(table[n - 1 - ii, j],
                                           table[n - 1 - ii, j - 1])
            if n - ii < n:
                table[n - 1 - ii, j] = max(table[n - 1 - ii, j],
                                           table[n - ii, j])
            if j - 1 >= 0 and n - ii < n:
                # don't allow adjacent elements to bond
                if n - 1 - ii < j - 1:
                    table[n - 1 - ii, j] = max(
                        table[n - 1 - ii, j],
                        table[n - ii, j - 1] + (1 if seq[n - 1 - ii] + seq[j] == 3 else 0))
                else:
                    table[n - 1 - ii, j] = max(table[n - 1 - ii, j],
                                               table[n - ii, j - 1])
            for k in range(n - ii, j):
                table[n - 1 - ii, j] = max(table[n - 1 - ii, j],
                                           table[n - 1 - ii, k] + table[k + 1, j])


def _init_nussinov(s):
    n = s["n"]
    return dict(n=n, seq=((np.arange(n) + 1) % 4).astype(np.int32),
                table=zeros(n, n))


BENCHES = [
    Bench("deriche", kernel_deriche,
          sizes("w h", (64, 64), (192, 128), (720, 480), (4096, 2160)),
          _init_deriche, ("imgOut", "y1", "y2"),
          lambda s: 32.0 * s["w"] * s["h"]),
    Bench("floyd-warshall", kernel_floyd_warshall, sizes("n", 60, 180, 500, 2800),
          _init_floyd_warshall, ("path",), lambda s: 2.0 * s["n"] ** 3),
    Bench("nussinov", kernel_nussinov, sizes("n", 60, 180, 500, 2500),
          _init_nussinov, ("table",), lambda s: s["n"] ** 3 / 3.0),
]
