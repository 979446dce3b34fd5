"""``polyop demo``: compile a GEMM and a 2-D Jacobi stencil, check and time them.

For each kernel the demo prints the polyhedral model's statements, the
generated loop nest, the compile time, the largest difference to a numpy
reference, and median run times of polyop, numpy and (if installed) numba.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import polyop


@polyop.kernel
def gemm(ni: int, nj: int, nk: int, alpha: "f64", beta: "f64",
         C: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]"):
    for i in range(ni):
        for j in range(nj):
            C[i, j] *= beta
        for k in range(nk):
            for j in range(nj):
                C[i, j] += alpha * A[i, k] * B[k, j]


@polyop.kernel
def jacobi_2d(tsteps: int, n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, j + 1] + A[i + 1, j] + A[i - 1, j])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = 0.2 * (B[i, j] + B[i, j - 1] + B[i, j + 1] + B[i + 1, j] + B[i - 1, j])


def _gemm_numpy(ni, nj, nk, alpha, beta, C, A, B):
    C *= beta
    C += alpha * (A @ B)


def _jacobi_numpy(tsteps, n, A, B):
    for _ in range(tsteps):
        B[1:-1, 1:-1] = 0.2 * (A[1:-1, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:]
                               + A[2:, 1:-1] + A[:-2, 1:-1])
        A[1:-1, 1:-1] = 0.2 * (B[1:-1, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:]
                               + B[2:, 1:-1] + B[:-2, 1:-1])


def _median_times(fns: dict, make_args, repeat: int) -> dict[str, float]:
    """Median run time of each function, runs interleaved so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            args = make_args()
            t0 = time.perf_counter()
            fn(*args)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _cases(rng: np.random.Generator):
    ni, nj, nk = 400, 440, 480
    mats = (rng.random((ni, nj)), rng.random((ni, nk)), rng.random((nk, nj)))
    yield gemm, _gemm_numpy, lambda: (ni, nj, nk, 1.5, 1.2, *(m.copy() for m in mats)), (5,)
    n, t = 600, 20
    grids = (rng.random((n, n)), rng.random((n, n)))
    yield jacobi_2d, _jacobi_numpy, lambda: (t, n, *(g.copy() for g in grids)), (2, 3)


def run_demo(repeat: int = 5) -> int:
    """Run the demo; returns a process exit status (0 when every check passes)."""
    try:
        import numba
    except ImportError:  # the demo still runs, without that column
        numba = None
    rng = np.random.default_rng(0)
    status = 0
    for kern, reference, make_args, outputs in _cases(rng):
        print(f"=== {kern.__name__} ===")
        print(kern.program)
        t0 = time.perf_counter()
        compiled = polyop.kernel(kern.py_func).compile()
        compile_s = time.perf_counter() - t0
        print("\ngenerated loop nest:")
        print(compiled.function)
        got, want = make_args(), make_args()
        compiled(*got)
        reference(*want)
        err = max(float(np.max(np.abs(got[k] - want[k]))) for k in outputs)
        ok = all(np.allclose(got[k], want[k], rtol=1e-9, atol=1e-9) for k in outputs)
        status |= not ok
        print(f"\ncompile: {compile_s * 1e3:.0f} ms; max |polyop - numpy| = {err:.2e} "
              f"({'OK' if ok else 'MISMATCH'})")
        fns = {"polyop": compiled, "numpy": reference}
        if numba is not None:
            fns["numba"] = numba.njit(kern.py_func)
            fns["numba"](*make_args())
        else:
            print("(numba is not installed: no numba column)")
        rows = _median_times(fns, make_args, repeat)
        base = rows["polyop"]
        for name, t in rows.items():
            print(f"  {name:7s} {t * 1e3:9.2f} ms   polyop speed-up {t / base:5.2f}x")
        print()
    print("all checks passed" if status == 0 else "SOME CHECKS FAILED")
    return status
