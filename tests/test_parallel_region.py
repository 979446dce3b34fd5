"""Team regions (``polyop.codegen.region``): a serial loop around parallel
loops runs as ONE region on the team, each parallel loop split among the
members and followed by a barrier, the statements between them run by
member 0.

Every kernel is compared bit for bit with its own Python body run by
CPython, at 1, 2 and 3 threads (more threads than this machine's cores);
regions are counted with ``team_regions()``. The minimum-work rule is off
(``set_min_work(0)``) unless a test is about it. No timing here.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import polyop
from polyop.codegen import compile_function, get_num_threads, set_num_threads
from polyop.codegen.parallel import get_min_work, late_workers, set_min_work, team_regions
from polyop.codegen.region import get_team_regions, region_applies, set_team_regions
from polyop.ir import Block, Cast, Cmp, For, Function, If, walk
from polyop.kinds import LoopKind
from polyop.types import f64
from tests.irbuild import B, C, L, S, V, array, loop, size
from tests.polybench import BENCHES

THREADS = (1, 2, 3)
jacobi1d = BENCHES["jacobi-1d"].kernel
jacobi2d = BENCHES["jacobi-2d"].kernel


@pytest.fixture(autouse=True)
def _settings():
    threads, work, on = get_num_threads(), get_min_work(), get_team_regions()
    set_min_work(0)
    yield
    set_num_threads(threads)
    set_min_work(work)
    set_team_regions(on)


# -- kernels --------------------------------------------------------------------------------


@polyop.kernel
def scaled_steps(T: int, n: int, s: "f64[2]", x: "f64[n]", y: "f64[n]"):
    for t in range(T):
        s[0] = s[0] * 0.5 + 1.0  # a scalar statement of the serial loop
        for i in range(n):
            y[i] = y[i] + s[0] * x[i]
        s[1] = s[1] + y[0]  # reads what the parallel loop wrote


@polyop.kernel
def triangles(T: int, n: int, A: "f64[n, n]", C: "f64[n, n]"):
    for t in range(T):
        for i in range(n):
            for j in range(i + 1):
                C[i, j] = C[i, j] + A[i, j] * 0.5
        for i in range(n):
            for j in range(i, n):
                A[i, j] = A[i, j] - C[i, i] * 0.25


@polyop.kernel
def shrinking(T: int, n: int, x: "f64[n]"):
    for t in range(T):
        for i in range(t, n):  # no iteration at all once t >= n
            x[i] = x[i] * 0.5 + t


@polyop.kernel
def sums_then_scale(T: int, m: int, n: int, w: "f64[m]", a: "f64[T]", x: "f64[n]",
                    y: "f64[n]"):
    for t in range(T):
        for j in range(m):  # a serial loop run by member 0
            a[t] = a[t] + w[j]
        for i in range(n):
            y[i] = y[i] + a[t] * x[i]


def _parallel(kernel, loops: dict[str, int]):
    """``kernel``'s schedule with loop ``loops[stmt]`` of each statement parallel."""
    sch = polyop.Schedule(kernel)
    for stmt, depth in loops.items():
        sch.parallel(sch.get_loops(stmt)[depth])
    return sch


def _args(kernel, sizes: dict, seed: int = 0) -> dict:
    from tests.test_parallel_schedule import args_for

    return {**sizes, **args_for(kernel, sizes, seed)}


def _copies(args: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def _run(f, kernel, args: dict, threads=THREADS) -> list[int]:
    """``f`` at each thread count on a copy of ``args``, every array equal
    to CPython's run; the team regions each call started."""
    ref = _copies(args)
    kernel.py_func(**ref)
    regions = []
    for nt in threads:
        set_num_threads(nt)
        got = _copies(args)
        before = team_regions()
        f(**got)
        regions.append(team_regions() - before)
        for k, v in got.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, ref[k], err_msg=f"{k} at {nt} threads")
    return regions


def _calls(f) -> tuple[int, int]:
    ir = f.llvm_ir
    return (ir.count("call void @polyop_rt_parallel_region("),
            ir.count("call void @polyop_rt_parallel_for("))


# -- one region a call ------------------------------------------------------------------------


def test_jacobi_2d_two_parallel_nests_a_step_one_region():
    f = polyop.build(_parallel(jacobi2d, {"S0": 1, "S1": 1}))
    assert _calls(f) == (1, 0)  # the time loop is the region; no fork per sweep
    for tsteps in (0, 1, 6):
        regions = _run(f, jacobi2d, _args(jacobi2d, {"tsteps": tsteps, "n": 17}))
        assert regions == [0, 1, 1], tsteps


def test_jacobi_1d_rows_fewer_than_threads():
    f = polyop.build(_parallel(jacobi1d, {"S0": 1, "S1": 1}))
    assert _calls(f) == (1, 0)
    for n in (3, 4, 40):  # 1, 2 and 38 iterations a sweep
        assert _run(f, jacobi1d, _args(jacobi1d, {"tsteps": 5, "n": n}))[1:] == [1, 1]


def test_scalar_statements_between_parallel_loops_run_once_a_step():
    f = polyop.build(_parallel(scaled_steps, {"S1": 1}))
    assert _calls(f) == (1, 0)
    for T in (0, 1, 9):
        assert _run(f, scaled_steps, _args(scaled_steps, {"T": T, "n": 23}))[1:] == [1, 1]


def test_triangular_parallel_loops():
    f = polyop.build(_parallel(triangles, {"S0": 1, "S1": 1}))
    assert _calls(f) == (1, 0)
    assert _run(f, triangles, _args(triangles, {"T": 4, "n": 19}))[1:] == [1, 1]


def test_parallel_loop_with_no_iterations_at_some_steps():
    f = polyop.build(_parallel(shrinking, {"S0": 1}))
    assert _calls(f) == (1, 0)
    for n in (1, 2, 7):
        assert _run(f, shrinking, _args(shrinking, {"T": 10, "n": n}))[1:] == [1, 1]


# -- when it applies --------------------------------------------------------------------------


def test_serial_loop_heavier_than_the_parallel_ones_forks_per_loop():
    # the statements member 0 runs alone hold a loop: the region only when
    # their work (m a step) is at most the parallel loop's (n a step)
    f = polyop.build(_parallel(sums_then_scale, {"S1": 1}))
    regions, forks = _calls(f)
    assert regions == 1 and forks >= 1  # both paths, chosen at run time
    light = _args(sums_then_scale, {"T": 5, "m": 3, "n": 40})
    assert _run(f, sums_then_scale, light)[1:] == [1, 1]
    heavy = _args(sums_then_scale, {"T": 5, "m": 400, "n": 40})
    assert _run(f, sums_then_scale, heavy)[1:] == [5, 5]


def test_team_regions_off():
    set_team_regions(False)
    f = polyop.build(_parallel(jacobi2d, {"S0": 1, "S1": 1}))
    assert _calls(f) == (0, 2)
    assert _run(f, jacobi2d, _args(jacobi2d, {"tsteps": 3, "n": 12}))[1:] == [6, 6]


def test_region_applies_only_to_plain_team_levels():
    i, t, n = V("i"), V("t"), V("n")
    par = loop("i", C(0), n, S("x", i, B("add", L("x", i), C(1.0, f64))), kind="parallel")
    assert region_applies(loop("t", C(0), V("T"), par))
    assert not region_applies(loop("t", C(0), V("T"), Block(())))  # no parallel loop
    assert not region_applies(loop("t", C(0), V("T"), par, kind="vector"))
    # a bound that reads memory, an if around the parallel loop, a local array
    loaded = For("i", C(0), L("m", C(0), dt=V("n").dtype), 1, par.body, kind="parallel")
    assert not region_applies(loop("t", C(0), V("T"), loaded))
    assert not region_applies(loop("t", C(0), V("T"), If(Cmp("lt", t, C(3)), par)))
    assert not region_applies(loop("t", C(0), V("T"), par), local_arrays={"x"})


# -- nesting, concurrency, late workers -------------------------------------------------------


def _steps_fn(inner_kind: str = "serial", outer_parallel: bool = False) -> Function:
    """``for t < T: parallel for i < m: for j < n: X[i, j] += t + 1`` (``j``
    of ``inner_kind``); with ``outer_parallel``, inside a parallel loop over
    ``r < R`` that adds ``r`` too."""
    i, j, t, r = V("i"), V("j"), V("t"), V("r")
    m, n = V("m"), V("n")
    add = B("add", B("add", t, C(1)), r) if outer_parallel else B("add", t, C(1))
    row = B("add", B("mul", r, m), i) if outer_parallel else i
    store = S("X", row, j, B("add", L("X", row, j), Cast(add, f64), f64))
    body = loop("t", C(0), V("T"), loop("i", C(0), m, loop("j", C(0), n, store,
                                                            kind=inner_kind), kind="parallel"))
    params = [size("T"), size("m"), size("n")]
    if outer_parallel:
        body = loop("r", C(0), V("R"), body, kind="parallel")
        params = [size("R"), *params]
        rows = B("mul", V("R"), m)
    else:
        rows = m
    return Function("steps", (*params, array("X", f64, rows, "n")), (), body)


def _steps_reference(T: int, m: int, n: int, R: int = 0) -> np.ndarray:
    X = np.zeros((max(R, 1) * m, n))
    for r in range(max(R, 1)):
        for t in range(T):
            X[r * m:(r + 1) * m] += t + 1 + (r if R else 0)
    return X


def test_nested_parallel_loop_inside_a_region_runs_serially():
    cf = compile_function(_steps_fn(inner_kind="parallel"))
    assert "polyop_rt_parallel_region" in cf.llvm_ir and "polyop_rt_parallel_for" not in \
        cf.llvm_ir
    for nt in THREADS:
        set_num_threads(nt)
        X = np.zeros((9, 5))
        before = team_regions()
        cf(4, 9, 5, X)
        assert team_regions() - before == (nt > 1)
        np.testing.assert_array_equal(X, _steps_reference(4, 9, 5))


def test_region_inside_a_parallel_loop_is_not_made():
    # parallel r: for t: parallel i: the serial t runs inside a chunk of r
    cf = compile_function(_steps_fn(outer_parallel=True))
    assert "polyop_rt_parallel_region" not in cf.llvm_ir
    for nt in THREADS:
        set_num_threads(nt)
        X = np.zeros((3 * 4, 6))
        cf(3, 5, 4, 6, X)
        np.testing.assert_array_equal(X, _steps_reference(5, 4, 6, R=3))


def test_two_python_threads_call_one_kernel():
    f = polyop.build(_parallel(jacobi2d, {"S0": 1, "S1": 1}))
    args = _args(jacobi2d, {"tsteps": 8, "n": 30})
    ref = _copies(args)
    jacobi2d.py_func(**ref)
    set_num_threads(2)
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(25):
                got = _copies(args)
                f(**got)
                np.testing.assert_array_equal(got["A"], ref["A"])
                np.testing.assert_array_equal(got["B"], ref["B"])
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads) and not errors, errors


def test_tiny_region_goes_on_without_a_sleeping_worker():
    # a region of a few operations does not wait for a worker asleep in the
    # kernel (a ~1 ms idle pool): the worker is revoked and the team is the
    # caller alone, whose barriers return at once
    import time

    cf = compile_function(_steps_fn())
    set_num_threads(3)
    late = late_workers()
    for _ in range(5):
        time.sleep(0.005)
        X = np.zeros((2, 1))
        cf(3, 2, 1, X)
        np.testing.assert_array_equal(X, _steps_reference(3, 2, 1))
    assert late_workers() > late


def test_min_work_counts_the_whole_region():
    f = polyop.build(_parallel(jacobi1d, {"S0": 1, "S1": 1}))
    set_num_threads(2)
    set_min_work(1 << 15)
    # 7 operations a point, 2 sweeps of n - 2 points a step: 2 threads need
    # 2 * 2**15 operations in all: n > 1562 for 3 steps, n > 48 for 100
    for tsteps, n, regions in ((3, 1500, 0), (3, 1600, 1), (100, 40, 0), (100, 60, 1)):
        assert _run(f, jacobi1d, _args(jacobi1d, {"tsteps": tsteps, "n": n}),
                    threads=(2,)) == [regions], (tsteps, n)


def test_every_loop_kind_in_the_region_is_known():
    # the team level of an auto-scheduled stencil: serial and parallel loops only
    sch = polyop.auto_schedule(jacobi2d, "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell "
                                         "-num-cores=2", sizes={"tsteps": 10, "n": 40})
    top = polyop.lower(sch).body
    loops = [x for x in walk(top) if isinstance(x, For) and x.kind is LoopKind.PARALLEL]
    assert loops and region_applies(next(x for x in walk(top) if isinstance(x, For)))
    f = polyop.build(sch)
    assert _calls(f) == (1, 0)
    assert _run(f, jacobi2d, _args(jacobi2d, {"tsteps": 4, "n": 21}))[1:] == [1, 1]
