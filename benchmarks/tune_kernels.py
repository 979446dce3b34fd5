"""Kernels the tuning benchmarks search over, in a module of their own so that
the measuring processes can import them by name (``polyop.tune`` names a
task's kernel by module and qualified name)."""

from __future__ import annotations

import polyop


@polyop.kernel
def two_mm(n: int, tmp: "f64[n, n]", A: "f64[n, n]", B: "f64[n, n]",
           C: "f64[n, n]", D: "f64[n, n]"):
    # D += (A B) C, as two matrix products in i-k-j order; each nest has
    # knobs of its own under default_template, and the kernel is fast only
    # where both products are well tiled: a space whose good points are rare
    for i in range(n):
        for j in range(n):
            tmp[i, j] = 0.0
        for k in range(n):
            for j in range(n):
                tmp[i, j] += A[i, k] * B[k, j]
    for i in range(n):
        for k in range(n):
            for j in range(n):
                D[i, j] += tmp[i, k] * C[k, j]
