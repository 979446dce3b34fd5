"""Parallel loops end to end: ``polyop.kernel`` → ``Schedule.parallel`` →
``polyop.build`` → the thread pool, against CPython (``kernel.py_func``).

Every result must be bit-identical to CPython's: a legal parallel loop runs
each element's chain of operations in program order, whatever the thread
count. The minimum-work rule is off (``set_min_work(0)``) unless a test is
about it, so that these small problems really run on the team; the tests
check that they did with ``team_regions()``.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest

import polyop
from polyop.codegen import get_num_threads, set_num_threads
from polyop.codegen.parallel import CALL_COST, get_min_work, set_min_work, team_regions
from polyop.runtime import eval_index
from tests.kernels import matmul_ikj as matmul
from tests.polybench import BENCHES
from tests.test_parallel import run_python

gemm = BENCHES["gemm"].kernel
jacobi1d = BENCHES["jacobi-1d"].kernel
jacobi2d = BENCHES["jacobi-2d"].kernel


@pytest.fixture(autouse=True)
def _no_min_work():
    threads, work = get_num_threads(), get_min_work()
    set_min_work(0)
    yield
    set_num_threads(threads)
    set_min_work(work)


# -- kernels --------------------------------------------------------------------------------


@polyop.kernel
def lower_syrk(n: int, m: int, C: "f64[n, n]", A: "f64[n, m]"):
    for i in range(n):
        for j in range(i + 1):
            for k in range(m):
                C[i, j] += A[i, k] * A[j, k]


@polyop.kernel
def matvec(m: int, n: int, A: "f64[m, n]", x: "f64[n]", y: "f64[m]"):
    for i in range(m):
        s = 0.0
        for j in range(n):
            s += A[i, j] * x[j]
        y[i] = s


@polyop.kernel
def guarded_exp(n: int, x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        if i > 3:
            y[i] = math.exp(x[i])
        else:
            y[i] = 0.0


# -- helpers ----------------------------------------------------------------------------------


def args_for(kernel, sizes: dict, seed: int = 0) -> dict:
    """Random arrays of the shapes that ``sizes`` imply, by argument name."""
    rng = np.random.default_rng(seed)
    sizes = {k: v for k, v in sizes.items() if isinstance(v, int)}
    return {a.name: rng.standard_normal(tuple(eval_index(e, sizes) for e in
                                              kernel.program.arrays[a.name].extents))
            for a in kernel.program.arguments if a.kind == "array"}


def copies(args: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def run_and_compare(sch, kernel, args: dict, threads=(1, 2, 3)) -> int:
    """Build ``sch``; for each thread count run it on a copy of ``args`` and
    assert every array bit-identical to CPython's run. Returns the number of
    team regions of the last run."""
    f = polyop.build(sch)
    ref = copies(args)
    kernel.py_func(**ref)
    regions = 0
    for nt in threads:
        set_num_threads(nt)
        got = copies(args)
        before = team_regions()
        f(**got)
        regions = team_regions() - before
        if nt == 1:
            assert regions == 0
        for k, v in got.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, ref[k], err_msg=f"{k} with {nt} threads")
    return regions


def uses_pool(f) -> bool:
    """The optimised LLVM IR calls the pool with an outlined chunk function."""
    ir = f.llvm_ir
    return (re.search(r"call void @polyop_rt_parallel_for\(ptr nonnull @\"?polyop_\w+\.\w+\.par"
                      r"(\.\d+)?\.wrap", ir) is not None
            and re.search(r"^define internal void @\"?polyop_\w+\.\w+\.par", ir, re.M) is not None)


# -- results ----------------------------------------------------------------------------------


def test_gemm_outer_i_parallel():
    sch = polyop.Schedule(gemm)
    sch.parallel(sch.get_loops("S0")[0])  # i, shared by both statements
    assert "// parallel" in str(polyop.lower(sch))
    assert uses_pool(polyop.build(sch))
    args = dict(ni=23, nj=19, nk=17, alpha=1.5, beta=1.2)
    args.update(args_for(gemm, args))
    assert run_and_compare(sch, gemm, args) == 1


def test_unscheduled_kernel_does_not_use_the_pool():
    f = polyop.build(polyop.Schedule(gemm))
    assert "polyop_rt_parallel_for" not in f.llvm_ir


def test_stencil_time_loop_serial_spatial_loops_parallel():
    sch = polyop.Schedule(jacobi2d)
    for stmt in ("S0", "S1"):
        t, i, j = sch.get_loops(stmt)
        sch.parallel(i)
    with pytest.raises(polyop.IllegalScheduleError):
        sch.parallel(sch.get_loops("S0")[0])  # the time loop carries dependences
    f = polyop.build(sch)
    # one team region around the time loop, a barrier per sweep (polyop.codegen.region)
    assert "polyop_rt_parallel_for" not in f.llvm_ir
    assert f.llvm_ir.count("call void @polyop_rt_parallel_region(") == 1
    args = dict(tsteps=5, n=14)
    args.update(args_for(jacobi2d, args))
    assert run_and_compare(sch, jacobi2d, args) == 1


def test_triangular_nest():
    sch = polyop.Schedule(lower_syrk)
    sch.parallel(sch.get_loops("S0")[0])
    args = dict(n=21, m=6)
    args.update(args_for(lower_syrk, args))
    assert run_and_compare(sch, lower_syrk, args, threads=(1, 2, 3, 5)) == 1


def test_outer_loop_of_a_split_is_parallel():
    sch = polyop.Schedule(matmul)
    i, k, j = sch.get_loops("S0")
    io, ii = sch.split(i, 4)
    sch.parallel(io)
    args = dict(ni=18, nj=7, nk=5)  # 5 strips, the last one partial
    args.update(args_for(matmul, args))
    assert run_and_compare(sch, matmul, args) == 1


def test_outer_tile_loop_is_parallel():
    sch = polyop.Schedule(matmul)
    i, k, j = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 4, 3)
    sch.parallel(io)
    f = polyop.build(sch)
    assert uses_pool(f)
    args = dict(ni=15, nj=10, nk=6)
    args.update(args_for(matmul, args))
    assert run_and_compare(sch, matmul, args) == 1
    # the second tile loop too (inside a parallel one it runs serially in the worker)
    sch.parallel(jo)
    assert polyop.build(sch).llvm_ir.count("call void @polyop_rt_parallel_for(") == 1
    assert run_and_compare(sch, matmul, args) == 1


def test_private_local_scalar():
    sch = polyop.Schedule(matvec)
    sch.parallel(sch.get_loops("S0")[0])
    args = dict(m=29, n=31)
    args.update(args_for(matvec, args))
    assert run_and_compare(sch, matvec, args, threads=(1, 2, 4)) == 1


@pytest.mark.parametrize("kernel, sizes", [
    (gemm, dict(ni=0, nj=5, nk=4, alpha=1.5, beta=1.2)),
    (gemm, dict(ni=6, nj=0, nk=4, alpha=1.5, beta=1.2)),
    (gemm, dict(ni=6, nj=5, nk=0, alpha=1.5, beta=1.2)),
    (matvec, dict(m=0, n=3)), (matvec, dict(m=4, n=0)),
    (lower_syrk, dict(n=0, m=3)), (jacobi2d, dict(tsteps=3, n=0)),
    (jacobi2d, dict(tsteps=3, n=2)), (jacobi2d, dict(tsteps=0, n=6)),
])
def test_zero_trip_loops(kernel, sizes):
    sch = polyop.Schedule(kernel)
    for stmt in sch.stmts:
        loops = sch.get_loops(stmt)
        sch.parallel(loops[1] if kernel is jacobi2d else loops[0])
    args = dict(sizes)
    args.update(args_for(kernel, args))
    run_and_compare(sch, kernel, args)


def test_thread_count_from_the_environment():
    code = """
    import numpy as np, polyop
    from polyop.codegen import get_num_threads
    from polyop.codegen.parallel import pool_size, set_min_work, team_regions
    from tests.test_parallel_schedule import args_for, copies, matvec
    set_min_work(0)
    sch = polyop.Schedule(matvec)
    sch.parallel(sch.get_loops("S0")[0])
    f = polyop.build(sch)
    args = dict(m=40, n=9)
    args.update(args_for(matvec, args))
    ref = copies(args)
    matvec.py_func(**ref)
    f(**args)
    assert (args["y"] == ref["y"]).all()
    print(get_num_threads(), pool_size(), team_regions())
    """
    for env, expected in (("1", "1 0 0"), ("2", "2 1 1")):
        res = run_python(code, POLYOP_NUM_THREADS=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == expected


# -- settings: thread count -----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_default_thread_count_follows_cpu_affinity():
    # e.g. `taskset -c 0 python ...`, or a container limited to some CPUs:
    # threads beyond the allowed CPUs only take turns with the caller
    res = run_python("""
    import os
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from polyop.codegen import get_num_threads
    print(get_num_threads())
    """, POLYOP_NUM_THREADS="")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_default_thread_count_follows_cpu_quota(tmp_path):
    from polyop.codegen.parallel import available_cpus

    cpus = available_cpus(str(tmp_path))  # no cgroup files: the affinity mask
    assert cpus >= 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(str(tmp_path)) == cpus
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # docker --cpus=0.5
    assert available_cpus(str(tmp_path)) == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(str(tmp_path)) == cpus
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100001\n")  # a bit over 1 CPU
    assert available_cpus(str(tmp_path)) == min(cpus, 2)


# -- the minimum-work rule --------------------------------------------------------------------


def estimated_work(call) -> int:
    """The work estimate of the single region ``call()`` starts, found from
    the team rule ``k = min(2, n, work // min_work)`` with 2 threads: a team
    runs iff ``min_work <= work // 2``; returns ``2 * max such min_work``."""
    set_num_threads(2)
    lo, hi = 1, 1 << 61
    while lo < hi:
        mid = (lo + hi + 1) // 2
        set_min_work(mid)
        before = team_regions()
        call()
        lo, hi = (mid, hi) if team_regions() > before else (lo, mid - 1)
    return 2 * lo


def test_work_estimate():
    sch = polyop.Schedule(matvec)
    sch.parallel(sch.get_loops("S0")[0])
    f = polyop.build(sch)
    a = dict(m=53, n=301)
    a.update(args_for(matvec, a))
    # per row: s = 0 (1); n * (store, load s, 2 loads, mul, add: 6); y = s (2)
    assert abs(estimated_work(lambda: f(**a)) - 53 * (1 + 301 * 6 + 2)) <= 1
    # triangular: counted at the middle row i = 50 (51 points, m * 6 each: store, 3 loads,
    # mul, add), so 2% above the exact 101 * 102 / 2 points
    sch = polyop.Schedule(lower_syrk)
    sch.parallel(sch.get_loops("S0")[0])
    f = polyop.build(sch)
    a = dict(n=101, m=4)
    a.update(args_for(lower_syrk, a))
    assert abs(estimated_work(lambda: f(**a)) - 101 * 51 * 4 * 6) <= 1
    # math.exp: CALL_COST; isl splits the loop at the condition: the second region
    sch = polyop.Schedule(guarded_exp)
    for stmt in sch.stmts:
        sch.parallel(sch.get_loops(stmt)[0])
    f = polyop.build(sch)
    a = dict(n=1000, x=np.zeros(1000), y=np.zeros(1000))
    assert abs(estimated_work(lambda: f(**a)) - 996 * (2 + CALL_COST)) <= 1


def test_work_estimate_of_an_if():
    # hand IR (isl turns affine conditions into loop bounds): 1 + the dearer branch
    from polyop.codegen import compile_function
    from polyop.ir import Cmp, Function, If
    from polyop.types import f64
    from tests.irbuild import B, C, L, S, V, array, loop, size

    i = V("i")
    body = If(Cmp("gt", L("x", i), C(0.0, f64)),
              S("y", i, B("add", L("x", i), B("mul", L("x", i), L("y", i)))),
              S("y", i, C(0.0, f64)))
    fn = Function("cond", (size("n"), array("x", f64, "n"), array("y", f64, "n")), (),
                  loop("i", C(0), V("n"), body, kind="parallel"))
    cf = compile_function(fn)
    x, y = np.zeros(1000), np.zeros(1000)
    assert abs(estimated_work(lambda: cf(1000, x, y)) - 1000 * (1 + 6)) <= 1


def test_small_loops_run_serially_large_ones_on_the_team():
    sch = polyop.Schedule(jacobi1d)
    for stmt in ("S0", "S1"):
        sch.parallel(sch.get_loops(stmt)[1])
    f = polyop.build(sch)
    set_num_threads(2)
    set_min_work(1 << 15)  # the default: 7 operations a point, 2 threads need 9363 points
    # in all, over the team region of 3 steps of 2 sweeps: n > 1563
    for n, regions in ((1000, 0), (1500, 0), (1600, 1), (50000, 1)):
        a = dict(tsteps=3, n=n)
        a.update(args_for(jacobi1d, a))
        ref = copies(a)
        jacobi1d.py_func(**ref)
        before = team_regions()
        f(**a)
        assert team_regions() - before == regions, n
        np.testing.assert_array_equal(a["A"], ref["A"])
        np.testing.assert_array_equal(a["B"], ref["B"])


def test_min_work_from_the_environment():
    res = run_python("from polyop.codegen.parallel import get_min_work; print(get_min_work())",
                     POLYOP_MIN_WORK="123")
    assert res.stdout.strip() == "123", res.stderr
    res = run_python("""
    import polyop
    from polyop.codegen.parallel import get_min_work
    try:
        get_min_work()
    except polyop.SettingError as e:
        print(e)
    """, POLYOP_MIN_WORK="-4")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "POLYOP_MIN_WORK='-4': expected an integer from 0 to " \
                                 f"{2**62 - 1}"
