"""Whether the host runs this machine's CPUs at the same time: a probe for
benchmarks that compare 1 and 2 threads.

On a virtual machine, the CPUs the guest sees are threads of the host, and
the host may, for a while, run two of them on one physical CPU, taking turns.
Each then gets about half of the time. A program on one thread does not
notice (the other CPU is idle); a program on two threads runs no faster than
on one. On the 2-core AMD EPYC (Zen 4) VM of ``docs/performance.md`` this
happens in stretches of a tenth of a second to several seconds, and
``python benchmarks/concurrency.py`` shows them.

The probe is a kernel built by polyop for the host: a parallel loop of one
iteration per core, each running the same chains of vector fused
multiply-adds on registers (``peak_fma.fma_kernel``'s loop, one copy per
core). Its time on one thread over its time on all the cores is the
*concurrency*: the number of cores that ran at once (about 2.0 on two idle
cores, about 1.0 when the host runs them in turns). Being compute-bound and
register-resident, the probe is not slowed by anything the two threads
share (caches, memory), only by the host.

Usage::

    python benchmarks/concurrency.py --seconds 20      # a time series

Example::

    >>> import concurrency                               # doctest: +SKIP
    >>> probe = concurrency.Probe(cores=2)               # doctest: +SKIP
    >>> round(probe.concurrency(), 1)                    # doctest: +SKIP
    2.0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hostinfo  # noqa: E402  (beside this script)
from peak_fma import fma_chains  # noqa: E402

import polyop  # noqa: E402
from polyop.codegen.parallel import (  # noqa: E402
    get_min_work,
    get_num_threads,
    set_min_work,
    set_num_threads,
)

#: concurrency at or above which the host is taken to have run all the cores
CONCURRENT = 1.8


class Probe:
    """The concurrency probe (module docstring) for ``cores`` threads; one
    measurement takes about ``seconds`` on one thread."""

    def __init__(self, cores: int = 2, seconds: float = 0.001):
        target = polyop.Target()
        lanes = target.lanes("float32")
        chains = fma_chains(target)
        P, CH, NV = cores, chains, lanes

        @polyop.kernel(fp_contract=True)
        def probe(n: int, x: "f32[NV]", out: "f32[P, CH, NV]"):
            for p in range(P):
                acc = np.zeros((CH, NV), np.float32)
                for t in range(n):
                    for c in range(CH):
                        for v in range(NV):
                            acc[c, v] = acc[c, v] * x[v] + x[v]
                for c in range(CH):
                    for v in range(NV):
                        out[p, c, v] = acc[c, v]

        sch = polyop.Schedule(probe)
        for s in probe.program.statements:
            loops = sch.get_loops(s.name)
            sch.vectorize(loops[-1])
            if len(loops) == 4:  # the FMA statement: p, t, c, v
                sch.unroll(loops[2])
        sch.parallel(sch.get_loops(probe.program.statements[0].name)[0])
        self._fn = polyop.build(sch, fp_contract=True)
        self.cores = cores
        self._x = np.full(lanes, 0.5, np.float32)
        self._out = np.empty((cores, chains, lanes), np.float32)
        self._fn(100, self._x, self._out)
        assert np.allclose(self._out, 1.0, rtol=1e-3), "acc * 0.5 + 0.5 converges to 1"
        # n so that one thread takes ``seconds`` (FMA latency-bound or not, measured)
        t0 = time.perf_counter()
        self._fn(10_000, self._x, self._out)
        per_step = (time.perf_counter() - t0) / 10_000
        self.n = max(1000, int(seconds / per_step))

    def _time(self, threads: int) -> float:
        before = get_num_threads()
        set_num_threads(threads)
        try:
            t0 = time.perf_counter()
            self._fn(self.n, self._x, self._out)
            return time.perf_counter() - t0
        finally:
            set_num_threads(before)

    def concurrency(self) -> float:
        """One thread's time over ``cores`` threads' time, measured now."""
        work = get_min_work()
        set_min_work(0)  # a team even for this short region
        try:
            one = self._time(1)
            return one / self._time(self.cores)
        finally:
            set_min_work(work)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to watch")
    ap.add_argument("--window", type=float, default=0.1, help="seconds per printed line")
    ap.add_argument("--cores", type=int, default=2)
    opts = ap.parse_args(argv)
    print(f"CPU {hostinfo.describe()['cpu_model']}, LLVM CPU {polyop.Target().cpu}, "
          f"{opts.cores} threads")
    probe = Probe(opts.cores)
    end, lines, low = time.time() + opts.seconds, 0, 0
    while time.time() < end:
        stop, seen = time.time() + opts.window, []
        while time.time() < stop:
            seen.append(probe.concurrency())
        c = statistics.median(seen)
        lines += 1
        low += c < CONCURRENT
        print(f"{time.strftime('%H:%M:%S')} concurrency {c:4.2f} (min {min(seen):4.2f}, "
              f"{len(seen)} probes)", flush=True)
    print(f"{low} of {lines} windows below {CONCURRENT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
