"""PolyBench/C 4.2.1 on polyop vs numba (and optionally CPython).

For each kernel of ``tests.polybench.BENCHES`` at one dataset size:

- polyop compile time: ``polyop.kernel(py_func).compile()`` on a fresh kernel
  object (parse, isl model, scheduling, LLVM codegen and JIT);
- numba compile time: first call of ``numba.njit(py_func)`` minus a later call;
- run times: polyop and numba interleaved (polyop, numba, polyop, ...),
  ``--repeat`` times each, every run on a fresh copy of the init arguments
  (copied outside the timed region, into the same buffers for every variant:
  ``timed_call``); the table reports medians;
- CPython: one run of the plain function, only with ``--cpython``.

polyop's outputs are checked against numba's (``rtol=1e-9, atol=1e-12``) and
mismatches are flagged. Both compiled versions run serially (one thread).

Usage::

    python benchmarks/polybench_bench.py                      # all, MEDIUM
    python benchmarks/polybench_bench.py --size SMALL --kernels gemm,2mm --cpython
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polyop  # noqa: E402
from tests.polybench import BENCHES  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12
SIZES = ("MINI", "SMALL", "MEDIUM", "LARGE")


def fresh(args: dict) -> dict:
    """A copy of the init arguments whose arrays the kernel may overwrite,
    each aligned to a cache line (``polyop.aligned``): a plain copy lands
    0, 16, 32 or 48 bytes into a line by chance, which moves a vectorised
    kernel's time by up to a sixth from one call to the next, for every
    peer alike."""
    return {k: (polyop.aligned(v) if isinstance(v, np.ndarray) else v)
            for k, v in args.items()}


#: per init-argument dict (by identity): the buffers its copies are made in
_BUFFERS: dict[int, tuple[dict, dict]] = {}


def _buffers(args: dict) -> dict:
    """``args`` with each array replaced by a buffer of its own (made once,
    cache-line aligned like ``fresh``'s) that ``timed_call`` refills before
    every call. Every variant timed on ``args`` then runs on the same
    addresses: fresh copies land where the allocator puts them, and on
    PolyBench's symm at MEDIUM two placements that alternate from one copy
    to the next differ by a fifth (4.45 against 3.65 ms on a Zen 4, the same
    code), so interleaved variants each got one placement more often than
    the other."""
    got = _BUFFERS.get(id(args))
    if got is None or got[0] is not args:
        if len(_BUFFERS) > 64:  # a long run over many kernels: forget the oldest
            del _BUFFERS[next(iter(_BUFFERS))]
        got = _BUFFERS[id(args)] = (args, fresh(args))
    return got[1]


def timed_call(fn, args: dict, order: list[str],
               refill: frozenset[str] | None = None) -> tuple[float, dict]:
    """Run ``fn`` on a fresh copy of ``args`` (positionally, in signature
    ``order``), made in the same buffers for every call on ``args``
    (``_buffers``); return (seconds, a copy of the arguments after the run).

    ``refill`` names the arrays copied afresh before the call (default: all).
    Arrays the kernel only reads (``written_arrays``) hold the same values
    call after call, so leaving them out changes no result, only where the
    data sits when the timer starts: still in the caches of whatever read it
    last, instead of freshly written (and dirty) in the calling thread's."""
    a = _buffers(args)
    for k, v in a.items():
        if isinstance(v, np.ndarray) and (refill is None or k in refill):
            np.copyto(v, args[k])
    call_args = [a[p] for p in order]
    t0 = time.perf_counter()
    fn(*call_args)
    seconds = time.perf_counter() - t0
    return seconds, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in a.items()}


def written_arrays(kernel) -> frozenset[str]:
    """The arrays some statement of ``kernel`` writes (its write access
    relations): the only ones a call can change."""
    return polyop.program.as_program(kernel).written_arrays()


def machine_info() -> dict:
    import llvmlite
    import numba

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "usable_cpus": affinity,
        "threads": 1,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "polyop": getattr(polyop, "__version__", "?"),
        "env": {k: os.environ[k] for k in ("POLYOP_NUM_THREADS", "NUMBA_NUM_THREADS",
                                           "OMP_NUM_THREADS") if k in os.environ},
    }


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    scale = np.maximum(np.abs(b.astype(np.float64)), ATOL / RTOL)
    return float(np.max(d / scale)) if d.size else 0.0


def warm_up() -> None:
    """Compile a tiny kernel with both compilers so that one-time start-up
    costs (imports, LLVM initialisation) are not charged to the first kernel."""
    import numba

    def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):  # noqa: F821
        for i in range(n):
            y[i] += a * x[i]

    x, y = np.ones(4), np.zeros(4)
    polyop.kernel(axpy)(4, 2.0, x, y)
    numba.njit(axpy)(4, 2.0, x, y)


def bench_one(bench, size: str, repeat: int, cpython: bool) -> dict:
    import numba

    sizes = bench.sizes[size]
    res: dict = {"kernel": bench.name, "sizes": sizes,
                 "flops": bench.flops(sizes) if bench.flops else None}
    args = bench.init(sizes)
    py_func = bench.kernel.py_func
    order = list(inspect.signature(py_func).parameters)

    # polyop: compile a fresh kernel object
    poly = None
    try:
        t0 = time.perf_counter()
        k = polyop.kernel(py_func)
        k.compile()
        res["polyop_compile_s"] = time.perf_counter() - t0
        poly = k
    except Exception as exc:  # report and go on with numba alone
        res["polyop_error"] = f"{type(exc).__name__}: {exc}"
        res["polyop_traceback"] = traceback.format_exc()

    # numba: first call (compile + run) minus a later call
    nb = numba.njit(py_func)
    t_first, _ = timed_call(nb, args, order)
    t_second, _ = timed_call(nb, args, order)
    res["numba_compile_s"] = max(t_first - t_second, 0.0)

    poly_times, numba_times = [], []
    poly_out = numba_out = None
    for _ in range(repeat):
        if poly is not None:
            t, poly_out = timed_call(poly, args, order)
            poly_times.append(t)
        t, numba_out = timed_call(nb, args, order)
        numba_times.append(t)
    res["numba_times_s"] = numba_times
    res["numba_s"] = statistics.median(numba_times)
    if poly is not None:
        res["polyop_times_s"] = poly_times
        res["polyop_s"] = statistics.median(poly_times)
        res["speedup"] = res["numba_s"] / res["polyop_s"] if res["polyop_s"] > 0 else None
        diffs = {o: max_rel_diff(poly_out[o], numba_out[o]) for o in bench.outputs}
        ok = all(np.allclose(poly_out[o], numba_out[o], rtol=RTOL, atol=ATOL,
                             equal_nan=True) for o in bench.outputs)
        res["max_rel_diff"] = diffs
        res["match"] = bool(ok)

    if cpython:
        t, _ = timed_call(py_func, args, order)
        res["cpython_s"] = t
    return res


def _ms(x) -> str:
    return "-" if x is None else f"{1e3 * x:.2f}"


def print_table(results: list[dict], size: str, cpython: bool) -> float | None:
    head = ("kernel", "polyop ms", "numba ms", "speedup", "CPython ms",
            "polyop compile ms", "numba compile ms", "check")
    rows = []
    for r in results:
        sp = r.get("speedup")
        check = ("ok" if r.get("match") else "MISMATCH") if "match" in r else "ERROR"
        rows.append((r["kernel"], _ms(r.get("polyop_s")), _ms(r.get("numba_s")),
                     "-" if sp is None else f"{sp:.2f}x", _ms(r.get("cpython_s")),
                     _ms(r.get("polyop_compile_s")), _ms(r.get("numba_compile_s")), check))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths, strict=True)))
    print(f"\nPolyBench/C 4.2.1, {size} dataset (medians; speedup = numba time / polyop time)")
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                        for i, (x, w) in enumerate(zip(row, widths, strict=True))))
    speedups = [r["speedup"] for r in results if r.get("speedup")]
    geo = math.exp(sum(math.log(s) for s in speedups) / len(speedups)) if speedups else None
    print("-" * len(line))
    if geo is not None:
        print(f"geometric mean speedup polyop vs numba: {geo:.3f}x over {len(speedups)} kernels")
    if not cpython:
        print("CPython: not run (too slow at this size); pass --cpython to include it")
    for r in results:
        if "polyop_error" in r:
            print(f"polyop failed on {r['kernel']}: {r['polyop_error'].splitlines()[0]}")
        elif not r.get("match", True):
            print(f"MISMATCH on {r['kernel']}: max relative difference per output "
                  f"{r['max_rel_diff']}")
    return geo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="MEDIUM", choices=SIZES,
                    help="PolyBench dataset (default MEDIUM)")
    ap.add_argument("--kernels", default="",
                    help="comma-separated kernel names (default: all 30)")
    ap.add_argument("--repeat", type=int, default=7,
                    help="timed runs per compiler (default 7)")
    ap.add_argument("--cpython", action="store_true",
                    help="also time one plain-CPython run per kernel (slow)")
    ap.add_argument("--json", default=None,
                    help="where to write results "
                         "(default benchmarks/results/polybench_<size>.json)")
    opts = ap.parse_args(argv)

    names = [n.strip() for n in opts.kernels.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown kernel(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    if opts.repeat < 1:
        ap.error("--repeat must be at least 1")

    warm_up()
    results = []
    for name in names:
        print(f"[{opts.size}] {name} ...", file=sys.stderr, flush=True)
        results.append(bench_one(BENCHES[name], opts.size, opts.repeat, opts.cpython))
    geo = print_table(results, opts.size, opts.cpython)

    out = Path(opts.json) if opts.json else (
        ROOT / "benchmarks" / "results" / f"polybench_{opts.size.lower()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "PolyBench/C 4.2.1",
        "size": opts.size,
        "repeat": opts.repeat,
        "cpython": opts.cpython,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "geomean_speedup_polyop_vs_numba": geo,
        "results": results,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {out}")
    return 0 if all(r.get("match", False) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
