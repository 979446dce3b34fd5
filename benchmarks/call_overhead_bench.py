"""The cost of one call: polyop's checked dispatch against numba's.

A kernel of 4 arguments (``n``, a scalar, two arrays of 16 f64) is called
with positional arguments and with keywords (polyop inferring ``n`` from the
shapes; numba given every argument by name). Each case is timed in rounds of
``--number`` calls with ``time.perf_counter``; the rounds of all cases are
interleaved (ABCD ABCD ...) so that a change of machine load hits every case
alike; the median round is reported, in microseconds per call. The loop body
itself costs a few nanoseconds. Also shown: polyop's Python path (the checks
the compiled ones replace, ``CompiledKernel._checked_call``) and the bare
ctypes call of the native code without any check.

    python benchmarks/call_overhead_bench.py [--rounds 41] [--number 20000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

import polyop
import polyop.fastcall


@polyop.kernel
def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] += a * x[i]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--number", type=int, default=20000)
    opts = ap.parse_args()

    import numba

    @numba.njit
    def nb_axpy(n, a, x, y):
        for i in range(n):
            y[i] += a * x[i]

    n, a = 16, 0.5
    x, y = np.ones(n), np.zeros(n)
    f = axpy.compile()
    native = f.native
    cases = {
        "polyop f(n, a, x, y)": lambda: f(n, a, x, y),
        "polyop f(a=a, x=x, y=y)  [n inferred]": lambda: f(a=a, x=x, y=y),
        "polyop kernel object k(n, a, x, y)": lambda: axpy(n, a, x, y),
        "polyop k(a=a, x=x, y=y)  [n inferred]": lambda: axpy(a=a, x=x, y=y),
        "numba f(n, a, x, y)": lambda: nb_axpy(n, a, x, y),
        "numba f(n=n, a=a, x=x, y=y)": lambda: nb_axpy(n=n, a=a, x=x, y=y),
        "polyop Python path (old checks)": lambda: f._checked_call(n, a, x, y),
        "polyop Python path, keywords": lambda: f._checked_call(a=a, x=x, y=y),
        "native code via ctypes, unchecked": lambda: native(n, a, x, y),
    }
    for fn in cases.values():  # compile, warm up
        fn()
    # each case's round as a loop in its own code object: the loop's own cost
    # (~20 ns a call) is measured with an empty lambda and subtracted
    empty = lambda: None  # noqa: E731
    times: dict[str, list[float]] = {k: [] for k in cases}
    base: list[float] = []
    for _ in range(opts.rounds):
        for name, fn in [*cases.items(), ("", empty)]:
            t0 = time.perf_counter()
            for _ in range(opts.number):
                fn()
            dt = (time.perf_counter() - t0) / opts.number
            (times[name] if name else base).append(dt)
    loop = statistics.median(base)
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}, numpy {np.__version__}, "
          f"numba {numba.__version__}; polyop compiled checks: {polyop.fastcall.status()[1]}")
    print(f"{opts.rounds} interleaved rounds of {opts.number} calls; median per call, "
          f"less the loop's own {loop * 1e9:.0f} ns (an empty lambda)")
    width = max(map(len, cases))
    for name, ts in times.items():
        med = statistics.median(ts) - loop
        q1, q3 = np.percentile(ts, [25, 75]) - loop
        print(f"  {name:<{width}}  {med * 1e6:6.3f} us   (quartiles {q1 * 1e6:.3f}-"
              f"{q3 * 1e6:.3f})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
