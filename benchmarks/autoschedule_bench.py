"""PolyBench/C 4.2.1: ``polyop.auto_schedule`` against the default schedule and numba.

For each kernel of ``tests.polybench.BENCHES`` at one dataset (MEDIUM by
default):

- ``auto``: ``polyop.build(polyop.auto_schedule(kernel, target, sizes=<dataset>))``
  with ``target`` for one core (``-num-cores=1``): the schedule for one thread;
- ``default``: the kernel compiled with its own order (``polyop.kernel``);
- ``numba``: ``numba.njit`` of the same Python function.

The three run interleaved (auto, default, numba, auto, ...), ``--repeat``
times each on fresh copies of the init arguments, one thread (``Calls``:
by default the steady state of repeated calls; ``--calls refill`` times
calls on inputs the calling thread has just written); the table
reports medians (the JSON also the best of the runs, the least disturbed on a
loaded machine). Then, for the kernels whose schedule for two cores
(``-num-cores=2``) has a parallel loop, interleaved, once each per round of
``--repeat`` rounds over all those kernels: the 1-core schedule at 1
thread, the 2-core schedule at 1 and at 2 threads (the speed-up of 2 threads
is the 1-core schedule's time over the 2-core schedule's at 2 threads; the
same schedule's ratio is recorded too). auto's outputs are checked against
numba's (``rtol=1e-9, atol=1e-12``). Every comparison is interleaved, so that
other jobs on the machine disturb all three alike; ``--conditions`` records in
the JSON what else ran.

Usage::

    python benchmarks/autoschedule_bench.py                   # all, MEDIUM
    python benchmarks/autoschedule_bench.py --kernels gemm,2mm --repeat 3
    python benchmarks/autoschedule_bench.py --timetile --kernels jacobi-1d,jacobi-2d \
        --json benchmarks/results/autoschedule_timetile.json

``--merge A.json B.json ...`` prints one table and summary from runs of kernel
subsets (each short enough to keep the machine to itself) and writes it to
``--json``.

``--parallel-only`` times only the kernels whose schedule has a parallel
loop (the others are listed in the JSON's summary); with it, 1 against 2
threads on an otherwise idle machine::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/autoschedule_bench.py \
        --parallel-only --repeat 9 --json benchmarks/results/autoschedule_medium_parallel.json \
        --conditions "the kernels with a parallel loop, --repeat 9, no other job on the machine"

The JSON has each kernel's forks per call at 2 threads (regions that got a
team), whether its 2-thread outputs match numba's, and a thread profile
(``thread_profile``: each thread's iterations and CPU time in the parallel
loops, at 1 and 2 threads; ``cpu_2t_over_1t`` near 1 means the two threads
did the 1-thread work without slowing each other down, so a speed-up short
of 2 is time spent waiting: an uneven split or a late worker). Each 2-thread
run sits between two probes of the host (``concurrency.py``): on a virtual
machine the host may for a while run both CPUs on one of its own, in turns,
and the runs it did so are left out of ``speedup_2_threads_host_concurrent``
(``speedup_2_threads`` keeps them all).

``--timetile`` adds, for kernels whose schedule has a ``<stmt>:time_tile``
knob, auto with that knob forced on (``timetile_on``) and off
(``timetile_off``) to the interleaved runs, and at 1 and 2 threads
timetile_on, timetile_off and default interleaved.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import hostinfo  # noqa: E402
import polybench_bench as pb  # noqa: E402
from concurrency import CONCURRENT, MemoryProbe, Probe  # noqa: E402

import polyop  # noqa: E402
from polyop.codegen.parallel import (  # noqa: E402
    late_workers,
    set_num_threads,
    set_profiling,
    team_regions,
    thread_stats,
)
from tests.polybench import BENCHES  # noqa: E402


@dataclass(frozen=True)
class Calls:
    """How a timed call is prepared (``--calls``).

    ``refill``: every array is copied afresh from the init arguments before
    the call, so the inputs sit freshly written (dirty) in the calling
    thread's caches, as a producer would leave them; a second thread fetches
    its share from there (on a 2-core Zen 4, copying the arrays atax, bicg
    and mvt only read made their 2-thread runs 18-27 % slower than copying
    only the written ones; a column sum over a 390 x 410 matrix the caller
    had just copied ran 0.85-1.11x as fast on two threads as on one, and
    1.22-1.49x when the matrix stayed where the last call left it). ``warm``: only
    the arrays the kernel writes are copied afresh (those it only reads keep
    their values), and an untimed call of the same function at the same
    thread count comes first: the steady state of a kernel called again and
    again on the same inputs, which is what timing loops such as TVM's
    ``time_evaluator`` measure."""

    fill: frozenset[str] | None  # the arrays copied afresh (None: all)
    warm: bool

    @classmethod
    def of(cls, how: str, kernel) -> "Calls":
        """The preparation ``how`` (``"warm"`` or ``"refill"``) for ``kernel``."""
        if how == "warm":
            return cls(pb.written_arrays(kernel), True)
        return cls(None, False)

    def __call__(self, fn, args: dict, order: list[str]) -> tuple[float, dict]:
        if self.warm:
            pb.timed_call(fn, args, order, self.fill)
        return pb.timed_call(fn, args, order, self.fill)


def with_cores(target: str, cores: int) -> str:
    """``target`` for ``cores`` cores (``-num-cores``), whatever it said."""
    words = [w for w in target.split() if not w.startswith("-num-cores")]
    return " ".join([*words, f"-num-cores={cores}"])


def _median_ms(ts: list[float]) -> float:
    return 1e3 * statistics.median(ts)


def _timetile_variants(bench, sch, target: str, sizes: dict) -> dict:
    """auto with the time-tiling knob forced on and off (``--timetile``)."""
    knobs = [k for k in sch.explanation.knobs if k.name.endswith(":time_tile")]
    out: dict = {}
    for knob in knobs[:1]:
        for label, value in (("timetile_on", True), ("timetile_off", False)):
            if value not in knob.candidates:  # not a time-tiling candidate: nothing to force
                continue
            s = polyop.auto_schedule(bench.kernel, target, sizes=sizes,
                                     knobs={knob.name: value})
            t0 = time.perf_counter()
            try:
                out[label] = (polyop.build(s), time.perf_counter() - t0, s)
            except polyop.errors.PolyopError as exc:  # reported, the other variants run
                print(f"  {label}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    return out


def _parallel_loops(sch) -> int:
    """Parallel loops of the schedule's loop nest (the heuristic's, the outer
    pass's and time tiling's wavefronts alike)."""
    from polyop.ir import For, walk
    from polyop.kinds import LoopKind

    return sum(isinstance(s, For) and s.kind == LoopKind.PARALLEL
               for s in walk(polyop.lower(sch)))


def bench_one(bench, size: str, repeat: int, target: str, timetile: bool = False,
              parallel_only: bool = False, pending: list | None = None,
              calls: str = "warm") -> dict:
    import numba

    sizes = bench.sizes[size]
    args = bench.init(sizes)
    order = list(inspect.signature(bench.kernel.py_func).parameters)
    call = Calls.of(calls, bench.kernel)
    res: dict = {"kernel": bench.name, "sizes": sizes}
    # one schedule per target: the 1-thread table times the schedule made for
    # one core (no parallel loops, no strips for a second core), the 2-thread
    # runs the one made for two cores
    t0 = time.perf_counter()
    sch1 = polyop.auto_schedule(bench.kernel, with_cores(target, 1), sizes=sizes)
    auto = polyop.build(sch1)
    res["auto_compile_s"] = time.perf_counter() - t0
    res["schedule"] = str(sch1).splitlines()[1:]
    res["knobs"] = {k.name: repr(k.chosen) for k in sch1.explanation.knobs if k.applied}
    sch = polyop.auto_schedule(bench.kernel, with_cores(target, 2), sizes=sizes)
    auto2 = polyop.build(sch)
    res["schedule_2_cores"] = str(sch).splitlines()[1:]
    res["parallel_loops"] = _parallel_loops(sch)
    parallel = res["parallel_loops"] > 0
    res["has_parallel_loop"] = parallel
    if parallel_only and not parallel:
        return {**res, "skipped": "no parallel loop"}
    default = polyop.kernel(bench.kernel.py_func)
    default.compile()
    nb = numba.njit(bench.kernel.py_func)
    pb.timed_call(nb, args, order)  # compile
    variants = _timetile_variants(bench, sch, target, sizes) if timetile else {}
    for label, (_, secs, s) in variants.items():
        res[f"{label}_compile_s"] = secs
        res[f"{label}_schedule"] = str(s).splitlines()[1:]
    fns = [("auto", auto), ("default", default), ("numba", nb)] + \
        [(label, v[0]) for label, v in variants.items()]

    set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name, _ in fns}
    outs: dict[str, dict] = {}
    for _ in range(repeat):
        for name, fn in fns:
            t, outs[name] = call(fn, args, order)
            times[name].append(t)
    for name, ts in times.items():
        res[f"{name}_ms"] = _median_ms(ts)
        res[f"{name}_min_ms"] = 1e3 * min(ts)
        res[f"{name}_times_s"] = ts
    res["speedup_vs_numba"] = res["numba_ms"] / res["auto_ms"]
    res["speedup_vs_default"] = res["default_ms"] / res["auto_ms"]
    # best-of-n: on a loaded machine the least disturbed run of each
    res["speedup_vs_numba_min"] = res["numba_min_ms"] / res["auto_min_ms"]
    res["speedup_vs_default_min"] = res["default_min_ms"] / res["auto_min_ms"]
    res["match"] = bool(all(np.allclose(outs[v][o], outs["numba"][o], rtol=pb.RTOL,
                                        atol=pb.ATOL, equal_nan=True)
                            for o in bench.outputs for v in outs))
    for label in variants:
        res[f"{label}_vs_default"] = res["default_ms"] / res[f"{label}_ms"]
    if variants:  # time tiles' wavefront vs per-step parallel loops, at 1 and 2 threads
        runs: dict[str, list[float]] = {}
        for _ in range(repeat):
            for threads in (1, 2):
                set_num_threads(threads)
                for name, fn in [("default", default)] + \
                        [(label, v[0]) for label, v in variants.items()]:
                    runs.setdefault(f"{name}_{threads}t", []).append(
                        call(fn, args, order)[0])
        set_num_threads(1)
        res["threads_ms"] = {k: _median_ms(v) for k, v in runs.items()}
    if parallel:
        # deterministic evidence beside the times: regions that got a team
        # (forks) in one call at 2 threads, and the 2-thread outputs checked
        set_num_threads(2)
        r0 = team_regions()
        out2 = pb.timed_call(auto2, args, order, call.fill)[1]  # one call: its forks
        res["forks_per_call_2_threads"] = team_regions() - r0
        res["match_2_threads"] = bool(all(
            np.allclose(out2[o], outs["numba"][o], rtol=pb.RTOL, atol=pb.ATOL, equal_nan=True)
            for o in bench.outputs))
        res["match"] = res["match"] and res["match_2_threads"]
        res["thread_profile"] = _thread_profile(auto2, args, order, repeat, call)
        set_num_threads(1)
        if pending is not None:  # timed by time_threads, in rounds over all kernels
            pending.append((res, auto, auto2, args, order, call))
    return res


def _balance(memory: MemoryProbe) -> float:
    """The slowest CPU's streaming rate over the fastest's, now."""
    rates = memory.per_cpu(repeats=1).values()
    return min(rates) / max(rates)


def time_threads(pending: list, repeat: int, probe: Probe, memory: MemoryProbe) -> None:
    """1 against 2 threads for each kernel of ``pending`` (``bench_one``'s),
    in ``repeat`` rounds over all of them: a short slower stretch of the host
    (a tenth of a second to a few seconds) then falls on one round of a few
    kernels, not on every run of one. Each 2-thread run sits between two
    probes of the host's concurrency (``Probe``), the lower recorded; its
    CPUs' streaming balance (``MemoryProbe``) is measured after each round,
    away from the timed runs: it pins the calling thread to each CPU in
    turn, and a 2-thread run right after it ran slower (Zen 4, 21 rounds:
    atax 1.46 -> 0.92x, mvt 1.54 -> 0.90x, correlation 1.91 -> 1.61x
    over the 1-core schedule), which is the probe's doing, not the host's.

    The three runs of a kernel take turns at going first: the first run
    after the other kernels' finds the caches, branch predictors and TLB
    filled by them, and always putting the 1-core schedule there charged
    it alone for that (Zen 4, MEDIUM: gesummv 34.6 us against 26.6 for the
    2-core schedule on one thread, the same inner loop)."""
    times = [([], [], [], [], []) for _ in pending]
    for r in range(repeat):
        for (_, auto, auto2, args, order, call), (t1, t21, t2, host, _mem) in zip(pending,
                                                                                times):
            runs = ((t1, auto, 1), (t21, auto2, 1), (t2, auto2, 2))
            for k in range(3):
                ts, fn, threads = runs[(r + k) % 3]
                set_num_threads(threads)
                concurrent = probe.concurrency() if threads == 2 else 0.0
                ts.append(call(fn, args, order)[0])
                if threads == 2:
                    host.append(min(concurrent, probe.concurrency()))
            set_num_threads(1)
        balance = _balance(memory)  # once a round, after its runs
        for *_, mem in times:
            mem.append(balance)
    set_num_threads(1)
    for (res, *_), (t1, t21, t2, host, mem) in zip(pending, times):
        res["host_memory_balance"] = mem
        res["auto_1thread_ms"], res["auto_2threads_ms"] = _median_ms(t1), _median_ms(t2)
        res["auto_2_cores_schedule_1thread_ms"] = _median_ms(t21)
        res["speedup_2_threads"] = res["auto_1thread_ms"] / res["auto_2threads_ms"]
        res["speedup_2_threads_min"] = min(t1) / min(t2)
        # the same (2-core) schedule at 1 and 2 threads: the scaling of the code alone
        res["speedup_2_threads_same_schedule"] = _median_ms(t21) / res["auto_2threads_ms"]
        # the 2-thread runs between two probes that saw both CPUs run at once
        res["host_concurrency"] = host
        both = [t for t, c in zip(t2, host) if c >= CONCURRENT]
        if len(both) >= max(3, repeat // 3):
            res["speedup_2_threads_host_concurrent"] = res["auto_1thread_ms"] / _median_ms(both)


def _thread_profile(fn, args: dict, order: list[str], repeat: int,
                    call: Calls) -> dict:
    """Per call, at 1 and at 2 threads: each thread's share of the parallel
    loops' iterations and its CPU time in their bodies (``thread_stats``),
    the regions a late worker missed, and the CPU time summed over threads
    against 1 thread's: more CPU in total at 2 threads is work slowed down by
    sharing (memory, caches); an uneven split of CPU or iterations is
    imbalance, or a worker that started late."""
    out: dict = {}
    for threads in (1, 2):
        set_num_threads(threads)
        late0 = late_workers()
        set_profiling(True)
        for _ in range(repeat):  # no warm-up calls: each counts
            pb.timed_call(fn, args, order, call.fill)
        stats = thread_stats()[:threads]
        set_profiling(False)
        out[f"{threads}t"] = {
            "iterations_per_thread": [it / repeat for it, _ in stats],
            "cpu_ms_per_thread": [1e3 * cpu / repeat for _, cpu in stats],
            "late_worker_regions": late_workers() - late0}
    one, two = (sum(out[t]["cpu_ms_per_thread"]) for t in ("1t", "2t"))
    out["cpu_2t_over_1t"] = two / one if one else None
    return out


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _geo(xs: list[float]) -> float | None:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="MEDIUM", choices=pb.SIZES)
    ap.add_argument("--kernels", default="", help="comma-separated names (default: all 30)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--timetile", action="store_true",
                    help="also time auto with the time-tiling knob forced on and off")
    ap.add_argument("--parallel-only", action="store_true",
                    help="time only the kernels whose schedule has a parallel loop")
    ap.add_argument("--calls", default="warm", choices=("warm", "refill"),
                    help="warm (default): only the arrays the kernel writes copied afresh "
                         "before a timed call, and an untimed call of the same function "
                         "first; refill: every array copied afresh, no untimed call")
    ap.add_argument("--conditions", default="not recorded",
                    help="what else ran on the machine, recorded in the JSON")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="no timing: one table and summary from earlier runs' JSON files "
                         "(e.g. kernel subsets run one after another on an idle machine)")
    opts = ap.parse_args(argv)
    if opts.merge:
        docs = [json.loads(Path(f).read_text()) for f in opts.merge]
        opts.size, opts.repeat, opts.target = (docs[0][k] for k in ("size", "repeat", "target"))
        opts.calls = docs[0].get("calls", "refill")
        results = [r for d in docs for r in d["results"]]
        skipped = [k for d in docs for k in d["summary"].get("not_timed_no_parallel_loop", [])]
        return report(results, skipped, opts, docs[0])
    names = [n.strip() for n in opts.kernels.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown kernel(s): {', '.join(unknown)}")

    pb.warm_up()
    pending: list = []
    results = []
    for name in names:
        print(f"[{opts.size}] {name} ...", file=sys.stderr, flush=True)
        try:
            results.append(bench_one(BENCHES[name], opts.size, opts.repeat, opts.target,
                                     opts.timetile, opts.parallel_only, pending,
                                     opts.calls))
        except Exception as exc:  # noqa: BLE001  (reported in the table and the JSON)
            results.append({"kernel": name, "error": f"{type(exc).__name__}: {exc}"})
    if pending:
        print(f"1 against 2 threads, {opts.repeat} rounds over {len(pending)} kernels ...",
              file=sys.stderr, flush=True)
        time_threads(pending, opts.repeat, Probe(2), MemoryProbe())
    skipped = [r["kernel"] for r in results if "skipped" in r]
    results = [r for r in results if "skipped" not in r]
    return report(results, skipped, opts)


def report(results: list[dict], skipped: list[str], opts, merged_from: dict | None = None) -> int:
    """Print the table and the summary of ``results``, write the JSON."""
    if skipped:
        print(f"no parallel loop (not timed): {', '.join(skipped)}", file=sys.stderr)

    print(f"\nPolyBench/C 4.2.1 {opts.size}, 1 thread, medians of {opts.repeat} interleaved runs")
    print(f"{'kernel':16s} {'auto ms':>9s} {'default':>9s} {'numba':>9s} {'vs numba':>9s} "
          f"{'vs dflt':>8s} {'2 thr':>6s}  check")
    for r in results:
        if "error" in r:
            print(f"{r['kernel']:16s} ERROR {r['error'][:100]}")
            continue
        two = f"{r['speedup_2_threads']:.2f}x" if "speedup_2_threads" in r else "-"
        print(f"{r['kernel']:16s} {r['auto_ms']:9.3f} {r['default_ms']:9.3f} "
              f"{r['numba_ms']:9.3f} {r['speedup_vs_numba']:8.2f}x "
              f"{r['speedup_vs_default']:7.2f}x {two:>6s}  "
              f"{'ok' if r['match'] else 'MISMATCH'}")
    ok = [r for r in results if "error" not in r]
    for r in ok:
        if "timetile_on_ms" in r and "timetile_off_ms" in r:
            print(f"{r['kernel']:16s} time tiles on {r['timetile_on_ms']:.3f} ms "
                  f"({r['timetile_on_vs_default']:.2f}x default), off "
                  f"{r['timetile_off_ms']:.3f} ms ({r['timetile_off_vs_default']:.2f}x); "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["threads_ms"].items()))
    summary = {
        "geomean_auto_vs_numba": _geo([r["speedup_vs_numba"] for r in ok]),
        "geomean_auto_vs_default": _geo([r["speedup_vs_default"] for r in ok]),
        "geomean_default_vs_numba": _geo([r["numba_ms"] / r["default_ms"] for r in ok]),
        "kernels_more_than_5pct_slower_than_default":
            [r["kernel"] for r in ok if r["speedup_vs_default"] < 1 / 1.05],
        "geomean_2_threads_on_parallel_kernels":
            _geo([r["speedup_2_threads"] for r in ok if "speedup_2_threads" in r]),
        # only the 2-thread runs that the host gave two CPUs at once (concurrency.py)
        "geomean_2_threads_host_concurrent":
            _geo([r["speedup_2_threads_host_concurrent"] for r in ok
                  if "speedup_2_threads_host_concurrent" in r]),
        "parallel_kernels_host_concurrent":
            sum("speedup_2_threads_host_concurrent" in r for r in ok),
        "share_of_2_thread_runs_host_concurrent": _share(
            [c >= CONCURRENT for r in ok for c in r.get("host_concurrency", [])]),
        # the 2-thread runs between which both CPUs streamed within 10 % of each other
        "share_of_2_thread_runs_memory_balanced": _share(
            [b >= 0.9 for r in ok for b in r.get("host_memory_balance", [])]),
        "geomean_2_threads_same_schedule":
            _geo([r["speedup_2_threads_same_schedule"] for r in ok
                  if "speedup_2_threads_same_schedule" in r]),
        "best_of_n": {
            "geomean_auto_vs_numba": _geo([r["speedup_vs_numba_min"] for r in ok]),
            "geomean_auto_vs_default": _geo([r["speedup_vs_default_min"] for r in ok]),
            "kernels_more_than_5pct_slower_than_default":
                [r["kernel"] for r in ok if r["speedup_vs_default_min"] < 1 / 1.05],
            "geomean_2_threads_on_parallel_kernels":
                _geo([r["speedup_2_threads_min"] for r in ok if "speedup_2_threads_min" in r]),
        },
        "parallel_kernels": [r["kernel"] for r in ok if "speedup_2_threads" in r],
        "forks_per_call_2_threads": {r["kernel"]: r["forks_per_call_2_threads"] for r in ok
                                     if "forks_per_call_2_threads" in r},
        "not_timed_no_parallel_loop": skipped,
    }
    if opts.timetile:  # per kernel: the model's choice and each variant against the default
        summary["timetile"] = {r["kernel"]: {
            "chosen": next((v for k, v in r["knobs"].items() if k.endswith(":time_tile")), None),
            **{f"{v}_vs_default{m}": r[f"default{m}_ms"] / r[f"{v}{m}_ms"]
               for v in ("auto", "timetile_on", "timetile_off") for m in ("", "_min")
               if f"{v}_ms" in r},
            **{f"{v}_2t_vs_default_2t": r["threads_ms"]["default_2t"] / r["threads_ms"][f"{v}_2t"]
               for v in ("timetile_on", "timetile_off") if f"{v}_2t" in r.get("threads_ms", {})},
        } for r in ok}
    for k, v in summary.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                print(f"{k} {k2}: {v2:.3f}" if isinstance(v2, float) else f"{k} {k2}: {v2}")
        else:
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")

    out = Path(opts.json) if opts.json else (
        ROOT / "benchmarks" / "results" / f"autoschedule_{opts.size.lower()}.json")
    import llvmlite
    import numba

    doc = {
        "benchmark": "PolyBench/C 4.2.1: auto_schedule vs default schedule vs numba",
        "size": opts.size, "repeat": opts.repeat, "target": opts.target,
        "calls": opts.calls,
        "target_resolved": str(polyop.Target(opts.target)),
        **({"merged_from": opts.merge} if opts.merge else {}),
        "method": (
            "calls=refill: every array copied afresh from the init arguments before "
            "every timed call (the inputs then sit freshly written in the calling "
            "thread's caches); calls=warm: only the arrays the kernel writes, and each "
            "timed call right after an untimed call of the same function at the same "
            "thread count (the steady state of repeated calls); "
            "auto (auto_schedule for the target with -num-cores=1), default and numba "
            "interleaved per repetition, medians, 1 thread; then, on kernels whose schedule "
            "for -num-cores=2 has a parallel loop, interleaved, in rounds over all those "
            "kernels (one run of each variant of each kernel a round): the 1-core schedule "
            "at 1 thread, the 2-core schedule at 1 thread and at 2 threads. "
            "speedup_2_threads: 1-core schedule at 1 thread over 2-core schedule at 2 "
            "threads; speedup_2_threads_same_schedule: the 2-core schedule at 1 over 2 "
            "threads. host_concurrency: before and after each 2-thread run, "
            "concurrency.py's probe (1-thread over 2-thread time of a compute-bound "
            "parallel loop; ~1 when the host runs both CPUs in turns), the lower of the "
            "two; speedup_2_threads_host_concurrent: over the 2-thread runs whose probes "
            "were both >= 1.8 (at least a third of them). host_memory_balance: after each "
            "round of 2-thread runs, concurrency.py's MemoryProbe (each CPU alone "
            "streaming 256 KiB held in its L2), the slowest CPU's rate over the fastest's "
            "(below 1: the host slowed one CPU's memory accesses)."),
        "conditions": merged_from["conditions"] if merged_from else opts.conditions,
        "date": merged_from["date"] if merged_from else
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": merged_from["machine"] if merged_from else
        {**hostinfo.describe(), "numba": numba.__version__, "llvmlite": llvmlite.__version__},
        "summary": summary,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"results written to {out}")
    return 0 if all(r.get("match") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
