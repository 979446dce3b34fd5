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

A second probe, ``MemoryProbe``, measures what the first cannot see: the
rate at which each CPU alone streams data held in its own L2 cache (a vector
loop ``b = 0.5 * b + a`` over 256 KiB, the calling thread pinned to that CPU
for the measurement). On an idle host every CPU streams at about the same
rate; on the Zen 4 VM, in some stretches one CPU streamed at a half or a
third of the other's rate while the FMA probe still read 2.0: the host's
other work shared that CPU's core or caches. A memory-bound kernel on two
threads then waits for its slower thread.

Usage::

    python benchmarks/concurrency.py --seconds 20      # a time series
    python benchmarks/concurrency.py --memory          # each CPU's streaming rate

Example::

    >>> import concurrency                               # doctest: +SKIP
    >>> probe = concurrency.Probe(cores=2)               # doctest: +SKIP
    >>> round(probe.concurrency(), 1)                    # doctest: +SKIP
    2.0
"""

from __future__ import annotations

import argparse
import os
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


class MemoryProbe:
    """Each CPU's streaming rate on L2-resident data (module docstring):
    ``kib`` KiB of two float64 arrays, about ``seconds`` a measurement."""

    def __init__(self, kib: int = 256, seconds: float = 0.002):
        @polyop.kernel
        def stream(reps: int, n: int, a: "f64[n]", b: "f64[n]"):  # noqa: F821
            for r in range(reps):  # noqa: B007
                for j in range(n):
                    b[j] = b[j] * 0.5 + a[j]

        sch = polyop.Schedule(stream)
        sch.vectorize(sch.get_loops("S0")[-1])
        self._fn = polyop.build(sch)
        self.n = kib * 1024 // 16
        self._a = polyop.aligned(np.ones(self.n))
        self._b = polyop.aligned(np.zeros(self.n))
        self._fn(2, self.n, self._a, self._b)
        assert np.allclose(self._b, 1.5), "b = 0.5 * b + 1 twice from 0"
        t0 = time.perf_counter()
        self._fn(100, self.n, self._a, self._b)
        self.reps = max(1, int(seconds / ((time.perf_counter() - t0) / 100)))

    def rate(self) -> float:
        """GB/s streamed (two loads and a store of 8 bytes an element) on the
        calling thread's CPU, now."""
        t0 = time.perf_counter()
        self._fn(self.reps, self.n, self._a, self._b)
        return 24 * self.n * self.reps / (time.perf_counter() - t0) / 1e9

    def per_cpu(self, repeats: int = 5) -> dict[int, float]:
        """CPU → the median of ``repeats`` rates with the calling thread on
        that CPU alone (its affinity restored afterwards)."""
        allowed = os.sched_getaffinity(0)
        out = {}
        try:
            for cpu in sorted(allowed):
                os.sched_setaffinity(0, {cpu})
                self.rate()  # the data into this CPU's caches
                out[cpu] = statistics.median(self.rate() for _ in range(repeats))
        finally:
            os.sched_setaffinity(0, allowed)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to watch")
    ap.add_argument("--window", type=float, default=0.1, help="seconds per printed line")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", action="store_true",
                    help="each CPU's streaming rate (MemoryProbe) instead")
    opts = ap.parse_args(argv)
    print(f"CPU {hostinfo.describe()['cpu_model']}, LLVM CPU {polyop.Target().cpu}, "
          f"{opts.cores} threads")
    if opts.memory:
        mem, end = MemoryProbe(), time.time() + opts.seconds
        while time.time() < end:
            stop, seen = time.time() + opts.window, []
            while time.time() < stop:
                seen.append(mem.per_cpu(repeats=1))
            rates = {c: statistics.median(r[c] for r in seen) for c in seen[0]}
            print(f"{time.strftime('%H:%M:%S')} GB/s " + "  ".join(
                f"cpu{c} {r:6.1f} (min {min(x[c] for x in seen):6.1f})"
                for c, r in rates.items()) +
                f"  slowest/fastest {min(rates.values()) / max(rates.values()):.2f}",
                flush=True)
        return 0
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
