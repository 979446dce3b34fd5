"""The target's measured FMA peak per core, fp32 and fp64, built by polyop itself.

A ``@polyop.kernel`` keeps ``chains`` independent accumulators, each one
vector of the target wide, in a local array (``acc[chains, lanes]``) and
runs ``acc = acc · x + x`` over them ``n`` times; the schedule vectorises
the lanes (explicit vectors of the target's width) and unrolls the chains,
so the loop is ``chains`` fused multiply-adds on registers (enough
independent ones to cover the FMA latency on every pipe). The best of
``--runs`` calls, in the thread's CPU time, gives GFLOP/s (2 flops per lane
per FMA). Printed with the CPU model and LLVM's CPU name; ``peak(dtype)`` is
what other benchmarks divide by.

Usage::

    python benchmarks/peak_fma.py                       # the host
    python benchmarks/peak_fma.py --target "cpu -mattr=-avx512f"

Example::

    >>> import peak_fma                                   # doctest: +SKIP
    >>> peak_fma.peak("float32")                          # doctest: +SKIP
    117.3
"""

# no ``from __future__ import annotations``: the kernel's annotations are
# f-strings, evaluated when it is defined
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hostinfo  # noqa: E402  (beside this script)
import llvmlite.binding as llvm  # noqa: E402

import polyop  # noqa: E402


def fma_chains(target: polyop.Target) -> int:
    """Independent one-vector FMA chains: as many as leave 4 vector registers
    free, 4 to 12 (enough to cover the FMA latency on every pipe)."""
    return max(4, min(12, target.vector_registers - 4))


def fma_kernel(dtype: str, target: polyop.Target) -> "tuple[polyop.Schedule, int, int]":
    """``(schedule, chains, lanes)``: the FMA loop for ``dtype`` on ``target``,
    with ``fma_chains`` one-vector chains."""
    lanes = target.lanes(dtype)
    chains = fma_chains(target)
    CH, NV = chains, lanes
    ty, npt = ("f32", np.float32) if dtype == "float32" else ("f64", np.float64)

    @polyop.kernel(fp_contract=True)
    def fma_loop(n: int, x: f"{ty}[NV]", out: f"{ty}[CH, NV]"):
        acc = np.zeros((CH, NV), npt)
        for t in range(n):
            for c in range(CH):
                for v in range(NV):
                    acc[c, v] = acc[c, v] * x[v] + x[v]
        for c in range(CH):
            for v in range(NV):
                out[c, v] = acc[c, v]

    sch = polyop.Schedule(fma_loop)
    for s in fma_loop.program.statements:
        loops = sch.get_loops(s.name)
        if len(loops) >= 2:
            sch.vectorize(loops[-1])
            if s.name != fma_loop.program.statements[-1].name:
                sch.unroll(loops[-2])
    return sch, chains, lanes


def peak(dtype: str = "float32", target: "polyop.Target | str | None" = None,
         n: int = 2_000_000, runs: int = 7) -> float:
    """GFLOP/s of one core running ``fma_kernel`` (best of ``runs``, CPU time)."""
    t = polyop.Target(target) if isinstance(target, str) else (target or polyop.Target())
    sch, chains, lanes = fma_kernel(dtype, t)
    f = polyop.build(sch, fp_contract=True, target=t)
    x = np.full(lanes, 0.5, dtype)
    out = np.empty((chains, lanes), dtype)
    f(1000, x, out)
    assert np.allclose(out, 1.0, rtol=1e-3), "the FMA loop computes acc · 0.5 + 0.5 -> 1"
    best = float("inf")
    for _ in range(runs):
        t0 = time.thread_time()
        f(n, x, out)
        best = min(best, time.thread_time() - t0)
    return 2 * n * chains * lanes / best / 1e9


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cpu", help="a polyop target of this machine")
    ap.add_argument("--runs", type=int, default=7)
    opts = ap.parse_args(argv)
    t = polyop.Target(opts.target)
    print(f"CPU {hostinfo.describe()['cpu_model']}, LLVM CPU {llvm.get_host_cpu_name()}, "
          f"target {t} ({t.vector_bits}-bit vectors, {t.vector_registers} registers)")
    for dtype in ("float32", "float64"):
        _, chains, lanes = fma_kernel(dtype, t)
        print(f"{dtype}: {peak(dtype, t, runs=opts.runs):7.1f} GFLOP/s per core "
              f"({chains} chains of {lanes} lanes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
