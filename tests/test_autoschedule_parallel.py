"""auto_schedule's parallel regions: where they fork, and that they compute
what CPython computes at 1 and 2 threads.

Forks are counted with ``team_regions()`` under ``set_min_work(0)`` (every
region with two or more iterations gets a team), so the counts are exact and
do not depend on the machine's load; no timing here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import polyop
from polyop.codegen.parallel import (
    team_regions,
)
from polyop.codegen.region import use_team_regions
from polyop.ir import For, walk
from polyop.kinds import LoopKind
from tests.kernels import compare
from tests.polybench import BENCHES

TWO = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=2"
ONE = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=1"
#: the 2-core Zen 3 of benchmarks/results (L2 512 KiB: covariance's k, i, j
#: band stays untiled, so only the strips take the fork out of k)
ZEN3 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver3 -num-cores=2"


@polyop.kernel
def cov_update(n: int, m: int, d: "f64[n, m]", c: "f64[m, m]"):
    for k in range(n):  # carries the sum over samples
        for i in range(m):
            for j in range(i, m):  # triangular: strips of i differ in work
                c[i, j] += d[k, i] * d[k, j]


def _parallel_loops(sch) -> list[For]:
    return [s for s in walk(polyop.lower(sch)) if isinstance(s, For)
            and s.kind == LoopKind.PARALLEL]


def _per_loop_build(sch):
    """``sch`` built without team regions: each parallel loop forks (the
    strips' point is to take the fork out of the serial loop)."""
    with use_team_regions(False):
        return polyop.build(sch)


def _forks(f, args: dict) -> int:
    r0 = team_regions()
    f(**copy.deepcopy(args))
    return team_regions() - r0


def _matches_cpython(f, bench, sizes: dict, threads, label: str, rtol: float = 1e-9,
                     atol: float = 1e-12) -> dict:
    """``f`` (a build of ``bench``'s kernel) at 1 and 2 threads against the
    kernel run by CPython, on ``bench``'s data at ``sizes`` (returned)."""
    args = bench.init(sizes)
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    for n in (1, 2):
        threads(n)
        got = copy.deepcopy(args)
        f(**got)
        for o in bench.outputs:
            np.testing.assert_allclose(got[o], ref[o], rtol=rtol, atol=atol,
                                       err_msg=f"{label} at {n} threads: {o}")
    return args


def _matches_py_func(f, kernel, args: dict, threads) -> None:
    """``f`` (a build of ``kernel``) at 1 and 2 threads against ``kernel``
    run by CPython on ``args``: every array (``tests.kernels.compare``)."""
    for n in (1, 2):
        threads(n)
        compare(f, kernel, args, exact=False)


def test_middle_loop_strips_fork_once_and_match_cpython(threads):
    sizes = {"n": 26, "m": 24}
    sch = polyop.auto_schedule(cov_update, TWO, sizes=sizes)
    knob = sch.explanation.knob("S0:parallel_strip_middle")
    assert knob.chosen == 3 and knob.applied  # 24 rows in 4 strips a core of 2 cores
    (par,) = _parallel_loops(sch)
    assert par.var == "i_outer"
    assert [s.var for s in walk(par.body) if isinstance(s, For)][0] == "k"  # k inside the strip
    off = polyop.auto_schedule(cov_update, TWO, sizes=sizes,
                               knobs={"S0:parallel_strip_middle": None})
    (par_off,) = _parallel_loops(off)
    assert par_off.var == "i"
    rng = np.random.default_rng(0)
    args = {"n": 26, "m": 24, "d": rng.random((26, 24)), "c": rng.random((24, 24))}
    f, g = polyop.build(sch), _per_loop_build(off)
    for built in (f, g):
        _matches_py_func(built, cov_update, args, threads)
    # at 2 threads: one region a call, against one per iteration of k
    assert _forks(f, args) == 1
    assert _forks(g, args) == 26


def test_middle_strips_need_more_than_one_core_and_room():
    one = polyop.auto_schedule(cov_update, ONE, sizes={"n": 26, "m": 24})
    assert "parallel" not in str(one) and "S0:parallel_strip_middle" not in \
        [k.name for k in one.explanation.knobs]
    tiny = polyop.auto_schedule(cov_update, TWO, sizes={"n": 26, "m": 3})
    knob = tiny.explanation.knob("S0:parallel_strip_middle")
    assert knob.chosen is None and knob.candidates == [None] and "too short" in knob.why
    with pytest.raises(polyop.ScheduleError, match="parallel_strip_middle"):
        polyop.auto_schedule(cov_update, TWO, sizes={"n": 26, "m": 24},
                             knobs={"S0:parallel_strip_middle": -4})


@pytest.mark.parametrize("name", ["covariance", "syr2k",
                                  pytest.param("correlation", marks=pytest.mark.slow)])
def test_polybench_serial_outer_loop_forks_once(name, threads):
    """MEDIUM's schedule, run on MINI: the band whose outer loop carried the
    dependence (k) forked once per k before the strips; now once a call per
    parallel loop of the program, and the results are CPython's."""
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"])
    assert any(k.name.endswith(":parallel_strip_middle") and k.chosen and k.applied
               for k in sch.explanation.knobs)
    f = polyop.build(sch)
    args = _matches_cpython(f, bench, bench.sizes["MINI"], threads, name)
    # no parallel loop sits inside a serial loop: each forks at most once a
    # call (a loop of one iteration at MINI runs inline); without the strips
    # the band's loop forks once per iteration of its serial outer loop
    knob = next(k.name for k in sch.explanation.knobs
                if k.name.endswith(":parallel_strip_middle") and k.chosen)
    off = _per_loop_build(polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"],
                                               knobs={knob: None}))
    assert 1 <= _forks(f, args) <= len(_parallel_loops(sch)) < _forks(off, args)


def test_rows_isl_shifted_are_parallel_by_the_legality_check(threads):
    """fdtd-2d: isl fuses the ey, ex and hz nests and shifts hz by a row, so
    its flags show only ``j`` coincident for ey and hz; in the kernel's own
    order each nest's rows are independent within a time step, and the
    legality check says so."""
    bench = BENCHES["fdtd-2d"]
    sch = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"])
    for stmt in ("S1", "S3"):
        knob = sch.explanation.knob(f"{stmt}:parallel")
        assert knob.chosen == "i" and "legality check finds i parallel" in knob.why
    kept = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"],
                                knobs={"S1:parallel": None})
    assert kept.explanation.knob("S1:parallel").chosen is None
    f = polyop.build(sch)
    args = _matches_cpython(f, bench, bench.sizes["MINI"], threads, "fdtd-2d")
    # three row nests a time step, one team region around the time loop
    assert _forks(f, args) == 1 and len(_parallel_loops(sch)) == 3
    assert _forks(_per_loop_build(sch), args) == 3 * args["tmax"]  # each its own region


PARALLEL = ("correlation", "covariance", "gemm", "gemver", "syr2k", "syrk", "trmm", "2mm", "3mm",
            "atax", "bicg", "mvt", "deriche", "adi", "fdtd-2d", "heat-3d", "jacobi-2d")
#: in the default run (the others are covered above)
DEFAULT = ("adi",)


def test_band_beside_a_serial_neighbour_stays_serial(threads):
    """gramschmidt's row update inside ``k`` would be parallel (the legality
    check allows ``i``), but the reduction into ``R`` beside it in ``k``
    stays serial and reads ``A`` at every step: the band is kept serial, the
    explanation says why, and a caller (a tuner) can still ask for the
    parallel loop, which then computes what CPython does at 1 and 2 threads."""
    bench = BENCHES["gramschmidt"]
    sch = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"])
    knob = sch.explanation.knob("S6:parallel")
    assert knob.chosen is None and "i" in knob.candidates
    assert "kept serial: S5 beside it in k stays serial and touches A" in knob.why
    assert not _parallel_loops(sch)
    forced = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"],
                                  knobs={"S6:parallel": "i"})
    assert forced.explanation.knob("S6:parallel").chosen == "i"
    assert len(_parallel_loops(forced)) == 1
    _matches_cpython(polyop.build(forced), bench, bench.sizes["MINI"], threads, "gramschmidt")
    # on one core nothing is vetoed: there is nothing to keep serial
    one = polyop.auto_schedule(bench.kernel, ZEN3.replace("-num-cores=2", "-num-cores=1"),
                               sizes=bench.sizes["MEDIUM"])
    assert "kept serial" not in one.explanation.knob("S6:parallel").why


@pytest.mark.parametrize("name", ["atax", "bicg"])
def test_shared_loops_distributed_for_a_parallel_loop(name, threads):
    """atax (``tmp[i]`` summed over ``j`` beside ``y[j]`` summed over ``i``)
    and bicg (two such sums in one ``j`` loop): no loop is parallel while the
    sums share their loops; distributed, each sum's nest has one (``i``, or
    strips of ``j`` moved outermost), every loop that forks is at the outer
    level, and the results are CPython's at 1 and 2 threads. One core: no
    distribution for cores (the row sums are still split off to be jammed,
    ``polyop.autoschedule.jam``)."""
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"])
    knob = sch.explanation.knob("S2:distribute")
    assert knob.chosen and knob.applied and "may then run in parallel" in knob.why
    loops = _parallel_loops(sch)
    assert len(loops) == 2
    f = polyop.build(sch)
    _matches_cpython(f, bench, bench.sizes["SMALL"], threads, name)
    # at MEDIUM (two strips) each loop forks once a call, none inside a serial loop
    assert _forks(f, bench.init(bench.sizes["MEDIUM"])) == 2
    one = polyop.auto_schedule(bench.kernel, ZEN3.replace("-num-cores=2", "-num-cores=1"),
                               sizes=bench.sizes["MEDIUM"])
    assert not _parallel_loops(one) and all(
        k.name != "S2:distribute" or "to be jammed" in k.why for k in one.explanation.knobs)
    if name == "bicg":  # (atax's row sums are split off for the jam either way)
        off = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"],
                                   knobs={"S2:distribute": False})
        assert not _parallel_loops(off)


@polyop.kernel
def two_recurrences(n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for i in range(n - 1):
        for j in range(n - 1):  # each statement carries a dependence in i and in j
            A[i + 1, j + 1] = A[i, j] + A[i + 1, j]
            B[i + 1, j + 1] = B[i, j] * 0.5 + B[i + 1, j]


def test_distribution_that_gives_no_parallel_loop_is_taken_back():
    sch = polyop.auto_schedule(two_recurrences, ZEN3, sizes={"n": 300})
    knob = sch.explanation.knob("S0:distribute")
    assert not knob.applied and knob.why.endswith("taken back")
    assert "fission(" not in str(sch) and not _parallel_loops(sch)


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in DEFAULT else
                                               (pytest.mark.slow,)) for n in PARALLEL])
def test_parallel_kernels_match_cpython_at_1_and_2_threads(name, threads):
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, ZEN3, sizes=bench.sizes["MEDIUM"])
    assert _parallel_loops(sch), f"{name}: no parallel loop\n{sch.explanation}"
    f = polyop.build(sch)
    _matches_cpython(f, bench, bench.sizes["MINI"], threads, name)


@polyop.kernel
def rows_scaled(n: int, m: int, A: "f64[n, m]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            B[i, j] = 2.0 * A[i, j] + 1.0


def test_thread_profile_counts_every_iteration_once(threads):
    """The pool's per-thread counters: every iteration of a parallel loop is
    counted once, on the thread that ran it (thread 0 alone at 1 thread),
    with CPU time where it ran; nothing is counted once profiling is off."""
    from polyop.codegen.parallel import set_profiling, thread_stats

    sch = polyop.Schedule(rows_scaled)
    sch.parallel(sch.get_loops("S0")[0])
    f = polyop.build(sch)
    a = np.random.default_rng(1).random((301, 64))
    calls = 3
    try:
        for n in (1, 2):
            threads(n)
            set_profiling(True)
            for _ in range(calls):
                b = np.zeros_like(a)
                f(301, 64, a, b)
                np.testing.assert_array_equal(b, 2.0 * a + 1.0)
            stats = thread_stats()
            assert sum(it for it, _ in stats) == 301 * calls
            if n == 1:
                assert stats[0][0] == 301 * calls and stats[0][1] > 0
            assert all(cpu >= 0 for _, cpu in stats)
            assert all(cpu > 0 for it, cpu in stats if it > 0) or not _linux()
        set_profiling(False)
        f(301, 64, a, np.zeros_like(a))
        assert sum(it for it, _ in thread_stats()) == 301 * calls
    finally:
        set_profiling(False)


def _linux() -> bool:
    import sys

    return sys.platform.startswith("linux")


@polyop.kernel
def col_update(n: int, A: "f64[n, n]", x: "f64[n]", y: "f64[n]"):
    for j in range(n):  # carries the sums into x
        for i in range(n):
            x[i] += A[j, i] * y[j]


def test_innermost_strips_on_for_several_cores_with_the_model_and_exact(threads):
    sch = polyop.auto_schedule(col_update, ZEN3, sizes={"n": 400})
    knob = sch.explanation.knob("S0:parallel_strip")
    # j walks the rows of A through each strip of i, reading every element
    # once: strips of 4 cache lines (32 doubles), 13 of them for the pool
    assert knob.chosen == 32
    # one strip a core, and halves of it in whole lines (8 doubles) down to 4
    # vectors, for a tuner to try
    assert knob.candidates == [None, 32, 200, 104, 56, 16]
    assert "modelled traffic" in knob.why and "one thread" in knob.why
    assert "4 cache lines wide" in knob.why
    (par,) = _parallel_loops(sch)
    assert par.var == "i_outer"
    off = polyop.auto_schedule(col_update, ZEN3, sizes={"n": 400},
                               knobs={"S0:parallel_strip": None})
    assert not _parallel_loops(off)
    one = polyop.auto_schedule(col_update, ZEN3.replace("-num-cores=2", "-num-cores=1"),
                               sizes={"n": 400})
    assert not _parallel_loops(one) and "S0:parallel_strip" not in \
        [k.name for k in one.explanation.knobs]
    on = sch
    f = polyop.build(on)
    rng = np.random.default_rng(2)
    args = {"n": 203, "A": rng.random((203, 203)), "x": rng.random(203), "y": rng.random(203)}
    _matches_py_func(f, col_update, args, threads)
    assert _forks(f, args) == 1


@polyop.kernel
def col_update_tri(n: int, A: "f64[n, n]", x: "f64[n]", y: "f64[n]"):
    for j in range(n):
        for i in range(j, n):  # later rows do more work: two strips a core
            x[i] += A[j, i] * y[j]


@polyop.kernel
def col_filter(w: int, h: int, x: "f64[w, h]", y: "f64[w, h]"):
    for j in range(h):  # deriche's column passes: a chain down each column
        prev = 0.0
        for i in range(w):
            y[i, j] = 0.5 * x[i, j] + 0.5 * prev
            prev = y[i, j]


def test_strips_of_a_band_isl_did_not_find_permutable(threads):
    """The chain is expanded over ``j`` and the nest reordered ``i, j`` for
    unit stride; isl's fused schedule calls that band not permutable, but
    the legality check finds ``j`` free and lets its strip loop move
    outermost: one region a call, matching CPython at 1 and 2 threads on a
    partial last strip."""
    sch = polyop.auto_schedule(col_filter, ZEN3, sizes={"w": 300, "h": 200})
    # i walks the rows through each strip: strips of 4 cache lines (32 doubles)
    assert sch.explanation.knob("S1:parallel_strip").chosen == 32
    (par,) = _parallel_loops(sch)
    assert par.var == "j_outer"
    assert [s.var for s in walk(par.body) if isinstance(s, For)][0] == "i"
    f = polyop.build(sch)
    rng = np.random.default_rng(5)
    args = {"w": 7, "h": 203, "x": rng.random((7, 203)), "y": np.zeros((7, 203))}
    _matches_py_func(f, col_filter, args, threads)
    assert _forks(f, args) == 1
    # a wider candidate (a tuner's choice): one strip a core, 100 columns
    # rounded to whole cache lines (13 of 8 doubles), the second partial
    wide = polyop.auto_schedule(col_filter, ZEN3, sizes={"w": 300, "h": 200},
                                knobs={"S1:parallel_strip": 104})
    assert 104 in wide.explanation.knob("S1:parallel_strip").candidates
    _matches_py_func(polyop.build(wide), col_filter, args, threads)


def test_strips_of_unequal_work_are_narrow_or_two_a_core(threads):
    sch = polyop.auto_schedule(col_update_tri, ZEN3, sizes={"n": 400})
    knob = sch.explanation.knob("S0:parallel_strip")
    # a row walk: 4 cache lines; the wide candidate is two strips a core,
    # 400 / 4 = 100 rounded to whole cache lines (8 doubles), not to 4-lane vectors
    assert knob.chosen == 32 and knob.candidates[:3] == [None, 32, 104]
    f = polyop.build(sch)
    rng = np.random.default_rng(6)
    args = {"n": 203, "A": rng.random((203, 203)), "x": rng.random(203), "y": rng.random(203)}
    _matches_py_func(f, col_update_tri, args, threads)
    assert _forks(f, args) == 1


@pytest.mark.parametrize("target, wide_kept", [
    ("cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=2", True),  # 15 of 32
    (ZEN3, False),  # 30 vectors of 4 doubles: more than half of 16 registers
    ("cpu -num-cores=2", None)])  # this machine, run: whichever it is
def test_a_strip_accumulated_in_registers_across_the_reduction(threads, target, wide_kept):
    """trmm: each strip of B[i] gathers A[k, i] * B[k, strip] over k; it is
    kept in a buffer (registers) at i, loaded once and stored once, while the
    rows B[k] are read in place; the strips are two vectors wide (a one-row
    micro-tile), many a core; one strip a core (120 columns) is kept only
    where 15 vectors fit half the registers; the result is CPython's on 1 and
    2 threads at sizes that leave partial strips."""
    trmm = BENCHES["trmm"].kernel  # PolyBench's: B = alpha * (B + A^T B), A unit lower
    sizes = {"m": 200, "n": 240}
    sch = polyop.auto_schedule(trmm, target, sizes=sizes)
    t = polyop.Target(target)
    lanes = t.lanes("float64")
    strip = sch.explanation.knob("S0:parallel_strip").chosen
    assert strip == max(2 * lanes, 8)  # two vectors, in whole 64-byte lines
    knob = sch.explanation.knob("S0:strip_accumulator")
    assert knob.chosen == "local" and knob.applied
    assert "B_local" in str(polyop.lower(sch))
    wide = polyop.auto_schedule(trmm, target, {"S0:parallel_strip": 120}, sizes=sizes)
    fits = 120 // lanes <= t.vector_registers // 2
    assert wide_kept is None or wide_kept == fits
    assert wide.explanation.knob("S0:strip_accumulator").chosen == ("local" if fits else None)
    assert ("B_local" in str(polyop.lower(wide))) == fits
    off = polyop.auto_schedule(trmm, target, {"S0:strip_accumulator": None}, sizes=sizes)
    assert "B_local" not in str(polyop.lower(off))
    if wide_kept is not None:  # code for another CPU: not run here
        return
    f = polyop.build(sch)
    rng = np.random.default_rng(4)
    for m, n in ((1, 1), (7, 13), (30, 250), (12, 121)):
        A, B = rng.random((m, m)), rng.random((m, n))
        want = B.copy()
        trmm.py_func(m, n, 1.5, A, want)
        for nt in (1, 2):
            threads(nt)
            got = B.copy()
            f(m, n, 1.5, A, got)
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{m}x{n}, {nt} threads")


def test_parallel_tiles_resized_to_split_evenly(threads):
    """gemm at MEDIUM on a 256 KiB L2: the model's i tiles of 64 over 200 rows
    would leave 2 threads 128 and 72 rows; tiles of 50 give each 100. Not on
    one core, nor when the caller sets the tiles."""
    bench = BENCHES["gemm"]
    sizes = bench.sizes["MEDIUM"]
    sch = polyop.auto_schedule(bench.kernel, TWO, sizes=sizes)
    knob = sch.explanation.knob("S1:tiles")
    assert knob.chosen == (50, 4, 220) and "i's tiles 64 -> 50" in knob.why
    one = polyop.auto_schedule(bench.kernel, ONE, sizes=sizes)
    assert one.explanation.knob("S1:tiles").chosen == (64, 4, 220)
    kept = polyop.auto_schedule(bench.kernel, TWO, sizes=sizes, knobs={"S1:tiles": (64, 4, 220)})
    assert kept.explanation.knob("S1:tiles").chosen == (64, 4, 220)
    f = polyop.build(sch)
    _matches_cpython(f, bench, {"ni": 120, "nj": 70, "nk": 90}, threads, "gemm", rtol=1e-12,
                     atol=0.0)


def test_split_efficiency_of_tiles():
    from polyop.autoschedule.strips import split_efficiency

    assert split_efficiency(180, 64, 2) == 180 / 232  # 64 + 52 | 64
    assert split_efficiency(180, 45, 2) == 1.0
    assert split_efficiency(7, 1, 2) == 7 / 8
    assert split_efficiency(100, 100, 2) == 0.5  # one tile: one thread
