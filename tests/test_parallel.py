"""Parallel loops: outlined chunk functions on the native thread pool.

Kernels are built by hand in the loop IR (as in ``test_codegen_llvm.py``) and
checked against numpy or a plain-Python reference, with several thread
counts: the results must be identical whatever the count. No timing here.
The minimum-work rule is off (``set_min_work(0)``) unless a test is about it,
so that these small loops really run on the team.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import polyop
from polyop.codegen import (
    build_module,
    compile_function,
    get_num_threads,
    set_num_threads,
    shutdown_threads,
)
from polyop.codegen.parallel import (
    MAX_THREADS,
    get_min_work,
    late_workers,
    pool_size,
    set_min_work,
    team_regions,
)
from polyop.ir import BOOL, Bin, Block, Cmp, Function, If
from polyop.types import DType, f32, f64, i32, i64
from tests.irbuild import B, C, L, S, V, array, gemm_ikj, loop, scalar, size

THREADS = (1, 2, 3, 7)
REPO = Path(polyop.__file__).resolve().parent.parent

i, j, k, n, t = V("i"), V("j"), V("k"), V("n"), V("t")


@pytest.fixture(autouse=True)
def _restore_threads():
    before, work = get_num_threads(), get_min_work()
    set_min_work(0)
    yield
    set_num_threads(before)
    set_min_work(work)


def for_each_thread_count(run):
    """``run()`` (returning a list of arrays) with every count in THREADS;
    asserts bit-identical results and returns them."""
    results = []
    for nt in THREADS:
        set_num_threads(nt)
        results.append(run())
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    return results[0]


def function_ir(llvm_ir: str, head: str) -> str:
    """The text of the function whose ``define`` line contains ``head``."""
    m = re.search(r"^define [^\n]*" + re.escape(head) + r".*?^}", llvm_ir, re.M | re.S)
    assert m is not None, head
    return m.group(0)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=120)


# -- kernels ------------------------------------------------------------------------


def gemm_parallel_i(dt: DType = f64) -> Function:
    """C[i, j] += alpha * A[i, k] * B[k, j]; loops i (parallel), k, j."""
    return gemm_ikj(dt, name="pgemm", kind="parallel")


def jacobi_1d() -> Function:
    """for t < T: (parallel i in 1..n-2) B[i] = (A[i-1] + A[i] + A[i+1]) / 3;
    (parallel i) A[i] = (B[i-1] + B[i] + B[i+1]) / 3."""
    def avg(X):
        s = B("add", B("add", L(X, B("sub", i, C(1))), L(X, i)), L(X, B("add", i, C(1))))
        return B("mul", C(0.33333, f64), s)

    inner = (loop("i", C(1), B("sub", n, C(1)), S("B", i, avg("A")), kind="parallel"),
             loop("i", C(1), B("sub", n, C(1)), S("A", i, avg("B")), kind="parallel"))
    return Function("jacobi1d", (size("T"), size("n"), array("A", f64, "n"),
                                 array("B", f64, "n")), (),
                    loop("t", C(0), V("T"), *inner))


def jacobi_reference(T: int, A: np.ndarray, B: np.ndarray) -> None:
    a, b = A.tolist(), B.tolist()
    m = len(a)
    for _ in range(T):
        for ii in range(1, m - 1):
            b[ii] = 0.33333 * (a[ii - 1] + a[ii] + a[ii + 1])
        for ii in range(1, m - 1):
            a[ii] = 0.33333 * (b[ii - 1] + b[ii] + b[ii + 1])
    A[:] = a
    B[:] = b


# -- results ------------------------------------------------------------------------


def test_parallel_gemm_matches_numpy_and_serial():
    rng = np.random.default_rng(0)
    M, N, K = 37, 29, 41
    A, Bm = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C0 = rng.standard_normal((M, N))
    cf = compile_function(gemm_parallel_i())

    def run():
        Cm = C0.copy()
        cf(M, N, K, 1.5, A, Bm, Cm)
        return [Cm]

    (Cm,) = for_each_thread_count(run)
    np.testing.assert_allclose(Cm, C0 + 1.5 * A @ Bm, rtol=1e-12, atol=1e-12)
    # same operations in the same order as the serial loop nest
    par = gemm_parallel_i()
    serial = replace(par, name="sgemm", body=replace(par.body, kind="serial"))
    Cs = C0.copy()
    compile_function(serial)(M, N, K, 1.5, A, Bm, Cs)
    np.testing.assert_array_equal(Cm, Cs)


def test_parallel_gemm_f32_more_threads_than_rows():
    rng = np.random.default_rng(1)
    M, N, K = 3, 70, 5
    A = rng.standard_normal((M, K)).astype(np.float32)
    Bm = rng.standard_normal((K, N)).astype(np.float32)
    cf = compile_function(gemm_parallel_i(f32))

    def run():
        Cm = np.zeros((M, N), np.float32)
        cf(M, N, K, 1.0, A, Bm, Cm)
        return [Cm]

    (Cm,) = for_each_thread_count(run)
    np.testing.assert_allclose(Cm, A @ Bm, rtol=1e-5, atol=1e-5)


def test_parallel_loops_inside_serial_time_loop():
    cf = compile_function(jacobi_1d())
    rng = np.random.default_rng(2)
    A0 = rng.standard_normal(203)
    B0 = np.zeros(203)

    def run():
        A, Bv = A0.copy(), B0.copy()
        cf(25, 203, A, Bv)
        return [A, Bv]

    A, Bv = for_each_thread_count(run)
    Ar, Br = A0.copy(), B0.copy()
    jacobi_reference(25, Ar, Br)
    np.testing.assert_array_equal(A, Ar)
    np.testing.assert_array_equal(Bv, Br)


def test_enclosing_loop_variable_and_scalars_are_captured():
    # for t < T: parallel i in [lo, n): X[t, i] = t * 100 + i + s (i32 scalar, f32 out)
    fn = Function("capture", (size("T"), size("n"), size("lo"), scalar("s", i32),
                              array("X", f32, "T", "n")), (),
                  loop("t", C(0), V("T"),
                       loop("i", V("lo"), n,
                            S("X", t, i, B("add", B("add", B("mul", t, C(100)), i),
                                           V("s", i32), f32)),
                            kind="parallel")))
    cf = compile_function(fn)

    def run():
        X = np.full((6, 17), -1.0, np.float32)
        cf(6, 17, 4, np.int32(7), X)
        return [X]

    (X,) = for_each_thread_count(run)
    ref = np.full((6, 17), -1.0, np.float32)
    for tt in range(6):
        for ii in range(4, 17):
            ref[tt, ii] = tt * 100 + ii + 7
    np.testing.assert_array_equal(X, ref)


@pytest.mark.parametrize("count", [-3, 0, 1, 2, 3, 6, 7, 8, 50])
def test_step_three_nonzero_start_any_trip_count(count):
    # parallel i = s; i < s + 3*count - 1 (trip count max(count, 0)); i += 3
    first = 5
    stop = B("sub", B("add", V("s"), B("mul", C(3), V("c"))), C(1))
    fn = Function("strided", (size("s"), size("c"), size("m"), array("x", i64, "m")), (),
                  loop("i", V("s"), stop, S("x", i, B("add", B("mul", i, C(2)), C(1))),
                       step=3, kind="parallel"))
    cf = compile_function(fn)
    m = first + 3 * 50 + 3

    def run():
        x = np.full(m, -7, np.int64)
        cf(first, count, m, x)
        return [x]

    (x,) = for_each_thread_count(run)
    ref = np.full(m, -7, np.int64)
    for ii in range(first, first + 3 * count - 1, 3):
        ref[ii] = 2 * ii + 1
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("first", [-(2**62), 2**62])
def test_bounds_far_from_zero(first):
    # parallel i = s; i < s + 37; i += 5: x[(i - s) // 5] = i - s (8 iterations); the
    # trip count, chunks and work estimate must not overflow near +-2**62
    rel = B("sub", i, V("s"))
    fn = Function("far", (size("s"), array("x", i64, 8)), (),
                  loop("i", V("s"), B("add", V("s"), C(37)),
                       S("x", B("fdiv", rel, C(5)), rel), step=5, kind="parallel"))
    cf = compile_function(fn)

    def run():
        x = np.full(8, -1, np.int64)
        cf(first, x)
        return [x]

    (x,) = for_each_thread_count(run)
    np.testing.assert_array_equal(x, np.arange(0, 37, 5))


def test_private_temporary_accumulator_per_row():
    # parallel i: acc = 0; for j: acc += A[i, j] * x[j]; y[i] = acc
    fn = Function("rowdot", (size("m"), size("n"), array("A", f64, "m", "n"),
                             array("x", f64, "n"), array("y", f64, "m")), (("acc", f64),),
                  loop("i", C(0), V("m"),
                       S("acc", C(0.0, f64)),
                       loop("j", C(0), n, S("acc", B("add", L("acc"),
                                                     B("mul", L("A", i, j), L("x", j))))),
                       S("y", i, L("acc")),
                       kind="parallel"))
    rng = np.random.default_rng(4)
    A, x = rng.standard_normal((53, 301)), rng.standard_normal(301)
    cf = compile_function(fn)
    assert "alloca" not in function_ir(cf.llvm_ir, "polyop_rowdot.i.par(")  # in registers

    def run():
        y = np.zeros(53)
        cf(53, 301, A, x, y)
        return [y]

    (y,) = for_each_thread_count(run)
    ref = []
    for row in A.tolist():
        acc = 0.0
        for p, q in zip(row, x.tolist(), strict=True):
            acc = acc + p * q
        ref.append(acc)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_allclose(y, A @ x, rtol=1e-12, atol=1e-12)


def test_temporaries_are_first_private():
    # base = 2.5 (outside); parallel i: cnt = base; if x[i] > 0: cnt = cnt + x[i]; y[i] = cnt
    body = Block((S("cnt", L("base")),
                  If(Cmp("gt", L("x", i), C(0.0, f64)),
                     S("cnt", B("add", L("cnt"), L("x", i)))),
                  S("y", i, L("cnt"))))
    fn = Function("firstpriv", (size("n"), array("x", f64, "n"), array("y", f64, "n")),
                  (("base", f64), ("cnt", f64), ("flag", BOOL)),
                  Block((S("base", C(2.5, f64)), loop("i", C(0), n, body, kind="parallel"))))
    xs = np.linspace(-2, 2, 41)
    cf = compile_function(fn)

    def run():
        y = np.zeros(41)
        cf(41, xs, y)
        return [y]

    (y,) = for_each_thread_count(run)
    np.testing.assert_array_equal(y, [2.5 + v if v > 0 else 2.5 for v in xs.tolist()])


def test_nested_parallel_loops_run_serially_inside_the_team():
    # parallel i: parallel j: Z[i, j] = i * 1000 + j
    fn = Function("nested", (size("m"), size("n"), array("Z", i64, "m", "n")), (),
                  loop("i", C(0), V("m"),
                       loop("j", C(0), n, S("Z", i, j, B("add", B("mul", i, C(1000)), j)),
                            kind="parallel"),
                       kind="parallel"))
    module, _ = build_module(fn)
    assert str(module).count('call void @"polyop_rt_parallel_for"') == 1
    cf = compile_function(fn)

    def run():
        Z = np.zeros((9, 13), np.int64)
        cf(9, 13, Z)
        return [Z]

    (Z,) = for_each_thread_count(run)
    np.testing.assert_array_equal(Z, np.arange(9)[:, None] * 1000 + np.arange(13)[None, :])


def test_inner_parallel_loop_inside_serial_loop_of_a_parallel_region():
    # parallel i: for k < 2: parallel j: W[i, j] += k + 1   (inner j runs in the worker)
    fn = Function("nested2", (size("m"), size("n"), array("W", f64, "m", "n")), (),
                  loop("i", C(0), V("m"),
                       loop("k", C(0), C(2),
                            loop("j", C(0), n,
                                 S("W", i, j, B("add", L("W", i, j),
                                                Bin("add", k, C(1), f64))),
                                 kind="parallel")),
                       kind="parallel"))
    cf = compile_function(fn)

    def run():
        W = np.zeros((5, 8))
        cf(5, 8, W)
        return [W]

    (W,) = for_each_thread_count(run)
    np.testing.assert_array_equal(W, np.full((5, 8), 3.0))


def test_outlined_elementwise_body_vectorises():
    fn = Function("paxpy", (size("n"), scalar("a", f64), array("x", f64, "n"),
                            array("y", f64, "n")), (),
                  loop("i", C(0), n, S("y", i, B("add", B("mul", V("a", f64), L("x", i)),
                                                L("y", i))), kind="parallel"))
    cf = compile_function(fn)
    assert "<4 x double>" in cf.llvm_ir
    assert "polyop_rt_parallel_for" in cf.llvm_ir
    x = np.linspace(0, 1, 1003)

    def run():
        y = np.ones(1003)
        cf(1003, 0.5, x, y)
        return [y]

    (y,) = for_each_thread_count(run)
    np.testing.assert_array_equal(y, [0.5 * v + 1.0 for v in x.tolist()])


def test_concurrent_calls_from_python_threads():
    # a second caller while a team is busy runs its region inline
    cf = compile_function(gemm_parallel_i())
    rng = np.random.default_rng(5)
    A, Bm = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))
    ref = A @ Bm
    set_num_threads(2)
    errors = []

    def work():
        for _ in range(20):
            Cm = np.zeros((64, 64))
            cf(64, 64, 64, 1.0, A, Bm, Cm)
            if not np.allclose(Cm, ref):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_every_iteration_runs_once_while_the_team_grows_and_shrinks():
    # x[i] += 1 inside a time loop: a chunk run twice (or skipped) shows up
    cf = compile_function(jacobi_like_increment())
    shutdown_threads()
    for nt in (*range(2, 10), 3, 1, 9, 2):
        set_num_threads(nt)
        for m in (1, nt - 1, nt, nt + 1, 5 * nt + 3):
            x = np.zeros(max(m, 1))
            cf(7, m, x)
            if m:
                np.testing.assert_array_equal(x, np.full(m, 7.0))


def jacobi_like_increment() -> Function:
    body = S("x", i, B("add", L("x", i), C(1.0, f64)))
    return Function("inc", (size("T"), size("n"), array("x", f64, "n")), (),
                    loop("t", C(0), V("T"), loop("i", C(0), n, body, kind="parallel")))


def test_min_work_counts_a_vector_loop_once_per_vector():
    """The work estimate counts an explicit ``vector`` loop per vector (its
    trip count over its lanes): rows of 64 doubles, 4 lanes (256-bit), 3
    operations an element (load, add, store) are 8 * 64 * 3 / 4 = 384
    operations, below a minimum of 400, so the region runs inline; the same
    rows as a serial loop are 1536 and fork."""
    from dataclasses import replace

    from polyop.vector_plan import VectorISA

    def rows(kind: str) -> Function:
        body = S("x", i, j, B("add", L("x", i, j), C(1.0, f64)))
        fn = Function("rows", (size("n"), array("x", f64, "n", 64)), (),
                      loop("i", C(0), n, loop("j", C(0), C(64), body, kind=kind),
                           kind="parallel"))
        return replace(fn, meta={**fn.meta, "vector_isa": VectorISA(256)})

    set_num_threads(2)
    set_min_work(400)
    for kind, forks in (("vector", 0), ("serial", 1)):
        cf = compile_function(rows(kind))
        x = np.zeros((8, 64))
        before = team_regions()
        cf(8, x)
        assert team_regions() - before == forks, kind
        np.testing.assert_array_equal(x, np.ones((8, 64)))


def test_min_work_counts_strided_vector_accesses_once_per_lane():
    """Every other element of rows of 128 doubles, in 4-lane vectors: the
    strided load and store count once per lane, (3 + 2 * 3) * 8 * 64 / 4 =
    1152 operations, above a minimum of 400: the region forks (a packing
    copy that scatters its rows, counted once per vector, ran on one thread)."""
    from dataclasses import replace

    from polyop.vector_plan import VectorISA

    two_j = B("mul", C(2), j)
    body = S("x", i, two_j, B("add", L("x", i, two_j), C(1.0, f64)))
    fn = Function("every_other", (size("n"), array("x", f64, "n", 128)), (),
                  loop("i", C(0), n, loop("j", C(0), C(64), body, kind="vector"),
                       kind="parallel"))
    set_num_threads(2)
    set_min_work(400)
    cf = compile_function(replace(fn, meta={**fn.meta, "vector_isa": VectorISA(256)}))
    x = np.zeros((8, 128))
    before = team_regions()
    cf(8, x)
    assert team_regions() - before == 1
    np.testing.assert_array_equal(x[:, ::2], np.ones((8, 64)))
    np.testing.assert_array_equal(x[:, 1::2], np.zeros((8, 64)))


def test_region_goes_on_without_a_late_worker():
    # after ~1 ms idle the worker sleeps in the kernel; a region of 2 iterations is
    # done by the caller long before the worker wakes up (tens of us), and the
    # caller revokes the region from it instead of waiting for it
    cf = compile_function(jacobi_like_increment())
    set_num_threads(2)
    x = np.zeros(2)
    cf(1, 2, x)
    before_late, before = late_workers(), team_regions()
    for _ in range(20):
        time.sleep(0.005)
        cf(1, 2, x)
    assert team_regions() - before == 20
    assert late_workers() > before_late
    np.testing.assert_array_equal(x, [21.0, 21.0])
    # the revoked worker still takes part in later regions
    y = np.zeros(4000)
    cf(500, 4000, y)
    np.testing.assert_array_equal(y, np.full(4000, 500.0))


def test_shutdown_and_restart_pool():
    cf = compile_function(jacobi_1d())
    set_num_threads(3)
    A = np.arange(10.0)
    cf(1, 10, A, np.zeros(10))
    assert pool_size() >= 2
    assert shutdown_threads()
    assert pool_size() == 0
    A1, B1 = np.arange(10.0), np.zeros(10)
    cf(3, 10, A1, B1)
    assert pool_size() >= 2
    A2, B2 = np.arange(10.0), np.zeros(10)
    jacobi_reference(3, A2, B2)
    np.testing.assert_array_equal(A1, A2)


def test_set_num_threads_validates():
    for bad in (0, -1, MAX_THREADS + 1, 2.0, True, "2"):
        with pytest.raises(ValueError):
            set_num_threads(bad)
    set_num_threads(5)
    assert get_num_threads() == 5
    for bad in (-1, 2**62, 1.5, False, "3"):
        with pytest.raises(ValueError):
            set_min_work(bad)


def test_spin_time_setting():
    # the spin reaches the running pool (in time-stamp ticks or rounds) and
    # every setting, 0 (sleep at once) included, leaves the results exact
    res = run_python(_SCRIPT_PRELUDE + """
    import time
    from polyop import SettingError
    from polyop.codegen.parallel import ensure_runtime, get_spin_time, set_spin_time
    assert get_spin_time() == 0.0005  # POLYOP_SPIN_US below
    set_num_threads(2)
    rt = ensure_runtime()
    for seconds in (0, 0.004, 0.0005):
        set_spin_time(seconds)
        assert get_spin_time() == seconds
        units = rt.get_spin()
        assert units == rt.spin_units(seconds)
        assert (units == 0) == (seconds == 0) and units >= 0
        for _ in range(3):
            x = np.zeros(5000)
            cf(7, 5000, x)
            assert (x == 7).all()
            time.sleep(0.006)  # past the spin: the workers sleep, then wake
    assert rt.spin_units(0.004) > 4 * rt.spin_units(0.0005)
    for bad in (-1, 101, "1", True, float("nan")):
        try:
            set_spin_time(bad)
        except SettingError as e:
            assert "set_spin_time" in str(e)
        else:
            raise AssertionError(bad)
    print("ok")
    """, POLYOP_SPIN_US="500")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    res = run_python("from polyop.codegen.parallel import get_spin_time; get_spin_time()",
                     POLYOP_SPIN_US="2.5")
    assert res.returncode != 0 and "POLYOP_SPIN_US='2.5'" in res.stderr


def test_shutdown_while_another_thread_runs_regions():
    # shutdown waits for the busy pool (or gives up) and never tears it down under a region
    cf = compile_function(jacobi_like_increment())
    set_num_threads(3)
    stop, errors = threading.Event(), []

    def work():
        while not stop.is_set():
            x = np.zeros(40)
            cf(30, 40, x)
            if not (x == 30).all():
                errors.append(x)

    th = threading.Thread(target=work)
    th.start()
    try:
        for _ in range(30):
            shutdown_threads()
    finally:
        stop.set()
        th.join()
    assert not errors
    assert shutdown_threads() and pool_size() == 0


# -- a region started inside a region ----------------------------------------------------


def _nested_region_module():
    """``drive(X, m)``: a region over rows ``i < m`` whose body starts, for each
    row, a region over its 8 columns that increments ``X[i, t]`` (hand LLVM
    IR: the code generator itself runs a nested parallel loop serially)."""
    from llvmlite import ir

    from polyop.codegen.threadpool import BODY_TYPE, ENTRY, ENTRY_TYPE

    i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
    m = ir.Module("nested_regions")
    rt = ir.Function(m, ENTRY_TYPE, ENTRY)
    big = ir.Constant(i64, 1 << 40)  # plenty of work: the rule never runs it inline

    def loop_fn(name, body):
        f = ir.Function(m, BODY_TYPE, name)
        env, lo, hi = f.args
        entry, head, done = (f.append_basic_block(x) for x in ("entry", "head", "done"))
        b = ir.IRBuilder(entry)
        base = b.bitcast(env, i64.as_pointer())
        b.cbranch(b.icmp_signed("<", lo, hi), head, done)
        b.position_at_end(head)
        it = b.phi(i64)
        it.add_incoming(lo, entry)
        body(b, base, it)
        nxt = b.add(it, ir.Constant(i64, 1))
        it.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, hi), head, done)
        b.position_at_end(done)
        b.ret_void()
        return f

    def increment(b, base, it):
        p = b.gep(base, [it])
        b.store(b.add(b.load(p), ir.Constant(i64, 1)), p)

    inner = loop_fn("inner", increment)

    def start_inner(b, base, it):
        row = b.gep(base, [b.mul(it, ir.Constant(i64, 8))])
        b.call(rt, [inner, b.bitcast(row, i8p), ir.Constant(i64, 8), big])

    outer = loop_fn("outer", start_inner)
    drive = ir.Function(m, ir.FunctionType(ir.VoidType(), [i8p, i64]), "drive")
    b = ir.IRBuilder(drive.append_basic_block("entry"))
    b.call(rt, [outer, drive.args[0], drive.args[1], big])
    b.ret_void()
    return m


def test_region_started_inside_a_worker_runs_inline():
    import ctypes

    import llvmlite.binding as llvm

    from polyop.codegen.parallel import ensure_runtime
    from polyop.target import LLVM_LOCK, new_jit_machine, target_machine

    ensure_runtime()
    module = _nested_region_module()
    module.triple = target_machine().triple
    with LLVM_LOCK:
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        engine = llvm.create_mcjit_compiler(mod, new_jit_machine())
        engine.finalize_object()
    drive = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(
        engine.get_function_address("drive"))
    for nt in (1, 2, 3):
        set_num_threads(nt)
        X = np.zeros((7, 8), np.int64)
        before = team_regions()
        drive(X.ctypes.data, 7)  # no deadlock: inner regions find the pool busy
        np.testing.assert_array_equal(X, np.ones((7, 8), np.int64))
        assert team_regions() - before == (nt > 1)  # the outer region only


# -- processes --------------------------------------------------------------------------

_SCRIPT_PRELUDE = """
    import numpy as np
    from polyop.codegen import compile_function, get_num_threads, set_num_threads
    from polyop.codegen.parallel import pool_size, set_min_work, team_regions
    from polyop.ir import Block, Bin, Const, For, Function, Load, Param, Store, Var
    from polyop.types import f64, i64
    i, n = Var("i", i64), Var("n", i64)
    body = Store("x", (i,), Bin("add", Load("x", (i,), f64), Const(1.0, f64), f64))
    fn = Function("inc", (Param("T", "size", i64), Param("n", "size", i64),
                          Param("x", "array", f64, (n,))), (),
                  For("t", Const(0), Var("T", i64), 1, For("i", Const(0), n, 1, body, "parallel")))
    cf = compile_function(fn)
    set_min_work(0)
"""


def test_process_exits_cleanly_after_using_the_pool():
    # the last region returns while the workers still spin: exit must not hang or crash
    res = run_python(_SCRIPT_PRELUDE + """
    set_num_threads(4)
    x = np.zeros(1000)
    cf(100, 1000, x)
    assert (x == 100).all()
    assert pool_size() == 3
    print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_process_exits_cleanly_without_atexit_shutdown():
    # workers are left running (no atexit hooks when the interpreter exits via os._exit)
    res = run_python(_SCRIPT_PRELUDE + """
    import os, sys
    set_num_threads(3)
    x = np.zeros(100)
    cf(10, 100, x)
    sys.stdout.write("ok\\n"); sys.stdout.flush()
    os._exit(0)
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_env_var_thread_count_and_one_thread_runs_inline():
    res = run_python(_SCRIPT_PRELUDE + """
    assert get_num_threads() == 1, get_num_threads()
    x = np.zeros(64)
    cf(5, 64, x)
    assert (x == 5).all()
    assert pool_size() == 0  # no thread was created
    print("ok")
    """, POLYOP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr
    res = run_python("from polyop.codegen import get_num_threads; print(get_num_threads())",
                     POLYOP_NUM_THREADS="3")
    assert res.stdout.strip() == "3", res.stderr


@pytest.mark.parametrize("triple", ["aarch64-unknown-linux-gnu", "powerpc64le-unknown-linux-gnu",
                                    "arm64-apple-macosx14.0.0", "x86_64-apple-macosx14.0.0"])
def test_pool_module_is_valid_ir_for_other_targets(triple):
    import llvmlite.binding as llvm

    from polyop.codegen.threadpool import SPIN_ROUNDS, build_pool_module

    text = str(build_pool_module(triple))
    llvm.parse_assembly(text).verify()
    if not triple.startswith("x86"):
        # no time-stamp counter: the spin counts rounds (most of them with a
        # sched_yield), starting at SPIN_ROUNDS until the host sets it
        assert "readcyclecounter" not in text
        assert f'@"polyop_rt.spin" = internal global i64 {SPIN_ROUNDS}' in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_after_using_the_pool():
    res = run_python(_SCRIPT_PRELUDE + """
    import os
    set_num_threads(2)
    x = np.zeros(100)
    cf(3, 100, x)
    pid = os.fork()
    if pid == 0:
        y = np.zeros(100)
        cf(4, 100, y)
        os._exit(0 if (y == 4).all() and pool_size() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    cf(2, 100, x)
    assert (x == 5).all()
    print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
