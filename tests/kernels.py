"""Small hand kernels and a run-and-compare helper shared by the schedule tests.

The PolyBench kernels (``tests.polybench.BENCHES``) serve where a test needs
gemm, jacobi or another PolyBench loop nest; these are the few extra nests
that several modules use.
"""

import numpy as np

import polyop


@polyop.kernel
def recurrence(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n - 1):
            A[i, j] = A[i - 1, j + 1] + A[i, j - 1]


@polyop.kernel
def tied_rows(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        s = 0.0
        for j in range(n):
            s = s + A[i - 1, j]  # row i reads row i - 1: i carries a dependence
            A[i, j] = s


@polyop.kernel
def matmul_ikj(ni: int, nj: int, nk: int, C: "f64[ni, nj]", A: "f64[ni, nk]",
               B: "f64[nk, nj]"):
    for i in range(ni):
        for k in range(nk):
            for j in range(nj):
                C[i, j] += A[i, k] * B[k, j]


def run_both(sch, kernel, args, exact=True):
    """Build ``sch``, run it and CPython on copies of ``args``; compare every
    array (bit for bit unless ``exact`` is false). Returns the built kernel."""
    f = polyop.build(sch)
    compare(f, kernel, args, exact)
    return f


def compare(f, kernel, args, exact=True):
    """Run the built ``f`` and CPython's ``kernel`` on copies of ``args``;
    compare every array (bit for bit unless ``exact`` is false)."""
    a = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    b = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    f(**a)
    kernel.py_func(**b)
    for k, v in a.items():
        if isinstance(v, np.ndarray):
            if exact:
                np.testing.assert_array_equal(v, b[k], err_msg=f"{k} with {args}")
            else:
                np.testing.assert_allclose(v, b[k], rtol=1e-12, err_msg=f"{k} with {args}")


def te_matmul(dtype: str = "float32", sizes=None):
    """Tensor expressions ``C = A @ B``, with symbolic sizes ``M, N, K`` (or
    the constant ``sizes``); returns ``(A, B, C)``."""
    M, N, K = sizes or (polyop.var("M"), polyop.var("N"), polyop.var("K"))
    A = polyop.placeholder((M, K), dtype, name="A")
    B = polyop.placeholder((K, N), dtype, name="B")
    k = polyop.reduce_axis((0, K), name="k")
    C = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="C")
    return A, B, C
