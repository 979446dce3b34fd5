"""One promotion mechanism for CPU and GPU (``polyop.promotion``).

``cache_read``/``cache_write`` with ``scope="local", at=loop`` on a CPU
target copy the footprint of the array into a local buffer per iteration of
``at``: every result is checked against the kernel's own Python body run by
CPython (``k.py_func``), at sizes that are not multiples of the tiles (0 and
1 included), with 1 and 2 threads; the same promotions built for OpenCL
(PoCL) give the same results. Refusals name the array and the loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import polyop
from polyop import ir
from polyop.codegen import compile_function, get_num_threads, set_num_threads
from polyop.codegen.parallel import get_min_work, set_min_work
from polyop.errors import ScheduleError, TargetError
from polyop.kinds import LoopKind
from polyop.promotion import Request, footprint, promote_function
from polyop.types import f64

SIZES = ((0, 0, 0), (1, 1, 1), (1, 7, 3), (13, 10, 7), (16, 16, 8), (9, 17, 5))


@pytest.fixture(autouse=True)
def _threads():
    before, work = get_num_threads(), get_min_work()
    set_min_work(0)  # small sizes run in parallel too
    yield
    set_num_threads(before)
    set_min_work(work)


@polyop.kernel
def mm(ni: int, nj: int, nk: int, A: "f64[ni, nk]", B: "f64[nk, nj]", C: "f64[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def jac(n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            B[i, j] = 0.2 * (A[i, j] + A[i - 1, j] + A[i + 1, j] + A[i, j - 1] + A[i, j + 1])


@polyop.kernel
def evens(n: int, A: "f64[n]", B: "f64[2 * n]"):
    for i in range(n):
        B[2 * i] = A[i] * 3.0


@polyop.kernel
def seidel(n: int, A: "f64[n]"):
    for i in range(1, n - 1):
        A[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0


def gemm(parallel: str | None = None, read_at: str = "ko", write_at: str | None = "jo"):
    """GEMM tiled 8 x 8 x 4; A cached at ``read_at``, C at ``write_at``."""
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 8, 8)
    ko, ki = sch.split(k, 4)
    sch.reorder(io, jo, ko, ii, ji, ki)
    loops = {"io": io, "jo": jo, "ko": ko, "ii": ii}
    if parallel is not None:
        sch.parallel(loops[parallel])
    sch.cache_read("A", scope="local", at=loops[read_at])
    if write_at is not None:
        sch.cache_write("C", scope="local", at=loops[write_at])
    return sch


def check_gemm(f, sizes=SIZES, threads=(1, 2)):
    rng = np.random.default_rng(1)
    for ni, nj, nk in sizes:
        A, B, C = rng.random((ni, nk)), rng.random((nk, nj)), rng.random((ni, nj))
        want = C.copy()
        mm.py_func(ni, nj, nk, A, B, want)
        for nt in threads:
            set_num_threads(nt)
            got = C.copy()
            f(ni, nj, nk, A, B, got)
            np.testing.assert_array_equal(got, want, err_msg=f"{(ni, nj, nk)}, {nt} threads")


# -- CPU: results --------------------------------------------------------------------------

def test_gemm_tiles_of_a_and_c_in_local_buffers():
    sch = gemm("io")  # the buffers inside the parallel loop: one per thread
    text = str(polyop.lower(sch))
    assert "double A_local[8][4];" in text and "double C_local[8][8];" in text
    assert "C_local[i_inner][j_inner] = C_local[i_inner][j_inner] + A_local[i_inner][k_inner]" \
        in text  # the compute runs on the buffers
    assert "A_local[A_local_in0][A_local_in1] = A[" in text  # per-tile packing of A
    check_gemm(polyop.build(sch))


@pytest.mark.parametrize("parallel", ["jo", "ii"])
def test_gemm_promoted_at_and_around_parallel_loops(parallel):
    """At the parallel loop each thread has its own buffer; around a parallel
    loop that only reads the buffer, the threads read one copy."""
    sch = gemm(parallel, read_at="ko", write_at=None if parallel == "ii" else "jo")
    check_gemm(polyop.build(sch))


def test_stencil_halo_box_larger_than_the_tile():
    sch = polyop.Schedule(jac)
    i, j = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 8, 8)
    sch.parallel(io)
    sch.cache_read("A", scope="local", at=jo)
    text = str(polyop.lower(sch))
    assert "double A_local[10][10];" in text  # the 8 x 8 tile and its halo
    f = polyop.build(sch)
    rng = np.random.default_rng(2)
    for n in (0, 1, 2, 3, 9, 10, 17, 21):
        A, B = rng.random((n, n)), rng.random((n, n))
        want = B.copy()
        jac.py_func(n, A, want)
        for nt in (1, 2):
            set_num_threads(nt)
            got = B.copy()
            f(n, A, got)
            np.testing.assert_array_equal(got, want, err_msg=f"n = {n}, {nt} threads")


def test_copy_out_writes_only_the_elements_written():
    """B[2 i]: the box of a strip of 4 holds 7 elements, 3 of them never
    written; copying them out would overwrite B's odd elements."""
    sch = polyop.Schedule(evens)
    io, ii = sch.split(sch.get_loops("S0")[0], 4)
    sch.cache_write("B", scope="local", at=io)
    text = str(polyop.lower(sch))
    assert "double B_local[7];" in text
    assert "% 2 == 0" in text  # the copy-out's guard: the written set
    f = polyop.build(sch)
    for n in (0, 1, 5, 8, 11):
        A, B = np.arange(n, dtype=float), -np.ones(2 * n)
        want = B.copy()
        evens.py_func(n, A, want)
        f(n, A, B)
        np.testing.assert_array_equal(B, want, err_msg=f"n = {n}")


@polyop.kernel
def trmm(m: int, n: int, A: "f64[m, m]", B: "f64[m, n]"):
    for i in range(m):
        for j in range(n):
            for k in range(i + 1, m):
                B[i, j] += A[k, i] * B[k, j]


@polyop.kernel
def rows(m: int, n: int, B: "f64[m, n]"):
    for i in range(1, m):
        for k in range(i):
            for j in range(n):
                B[i, j] += 0.5 * B[k, j]


def _strips(kernel, width: int):
    """(j_outer, i, k, j_inner): a strip of ``width`` columns per iteration of i."""
    sch = polyop.Schedule(kernel)
    if kernel is trmm:
        i, j, k = sch.get_loops("S0")
        sch.reorder(i, k, j)
    i, k, j = sch.get_loops("S0")
    jo, ji = sch.split(j, width)
    sch.reorder(jo, i, k, ji)
    sch.vectorize(ji)
    return sch, jo, i


@pytest.mark.parametrize("kernel", [trmm, rows])
@pytest.mark.parametrize("threads", [1, 2])
def test_cache_write_promotes_the_written_group_alone(kernel, threads):
    """At ``i``, ``B``'s footprint spans every row ``k`` read (no constant
    box), but the elements written, ``B[i, strip]``, have one: they are kept
    in a buffer across ``k`` while the rows ``k``, never written in that
    iteration of ``i``, are read from ``B`` itself, which holds every earlier
    row's write-back (``rows`` reads the rows above, written back already)."""
    sch, jo, i = _strips(kernel, 8)
    sch.parallel(jo)
    sch.cache_write("B", scope="local", at=i)
    text = str(polyop.lower(sch))
    assert "double B_local[8];" in text  # one row: the buffer's unit dimension dropped
    assert "B_local[j_inner" in text and "B[k][8 * j_outer + j_inner" in text
    f = polyop.build(sch)
    set_num_threads(threads)
    rng = np.random.default_rng(5)
    for m, n in ((0, 0), (1, 3), (5, 8), (9, 17), (12, 4)):
        args = [m, n] + ([rng.random((m, m))] if kernel is trmm else [])
        B = rng.random((m, n))
        want = B.copy()
        kernel.py_func(*args, want)
        f(*args, B)
        np.testing.assert_allclose(B, want, rtol=1e-13, err_msg=f"m, n = {m}, {n}")


def test_a_written_group_without_a_box_is_refused():
    sch = polyop.Schedule(trmm)  # untiled j: the row i written has n elements
    i, j, k = sch.get_loops("S0")
    sch.reorder(i, k, j)
    sch.cache_write("B", scope="local", at=i)
    with pytest.raises(ScheduleError, match="promotion of B at loop i: its footprint has no "
                                            "constant size along dimension 1"):
        polyop.build(sch)


def test_cache_read_keeps_promoting_every_access():
    """The written group is ``cache_write``'s: a ``cache_read`` whose
    footprint has no box is refused as before."""
    sch, _, i = _strips(trmm, 8)
    sch.cache_read("B", scope="local", at=i)
    with pytest.raises(ScheduleError, match="no constant size along dimension 0"):
        polyop.build(sch)


@polyop.kernel
def band_rows(m: int, n: int, lo: int, hi: int, B: "f64[m, n]"):
    assert lo >= 1  # the rows read are below the row written
    for i in range(m):
        for k in range(i + lo, m):
            for j in range(n):
                if k < i + hi:
                    B[i, j] += 0.5 * B[k, j] + 0.25


@polyop.kernel
def band_rows_any(m: int, n: int, lo: int, hi: int, B: "f64[m, n]"):
    for i in range(m):
        for k in range(i + lo, m):
            for j in range(n):
                if k < i + hi and k >= 0:
                    B[i, j] += 0.5 * B[k, j] + 0.25


def _band_schedule(kernel, width: int):
    sch = polyop.Schedule(kernel)
    i, k, j = sch.get_loops("S0")
    jo, ji = sch.split(j, width)
    sch.reorder(jo, i, k, ji)
    sch.cache_write("B", scope="local", at=i)
    return sch


@given(m=st.integers(0, 9), n=st.integers(0, 11), lo=st.integers(1, 4), span=st.integers(0, 5),
       width=st.sampled_from([1, 2, 3, 4, 8]), threads=st.sampled_from([1, 2]))
@settings(max_examples=40, deadline=None, database=None, derandomize=True)
def test_written_group_matches_cpython_wherever_the_assumptions_hold(m, n, lo, span, width,
                                                                     threads):
    """The rows read lie ``lo`` or more below the row written (the kernel's
    ``assert``): isl proves them disjoint from it, the strip of the row
    written is the group, and every size and strip gives CPython's result."""
    f = _built(band_rows, width)
    set_num_threads(threads)
    B = np.random.default_rng(m * 100 + n).random((m, n))
    want = B.copy()
    band_rows.py_func(m, n, lo, lo + span, want)
    f(m, n, lo, lo + span, B)
    np.testing.assert_allclose(B, want, rtol=1e-13)


_BUILT: dict = {}


def _built(kernel, width: int):
    if (kernel, width) not in _BUILT:
        sch = _band_schedule(kernel, width)
        assert f"double B_local[{width}];" in str(polyop.lower(sch))  # one row
        _BUILT[kernel, width] = polyop.build(sch)
    return _BUILT[kernel, width]


def test_written_group_refused_where_a_read_may_meet_the_row_written():
    """Without the assumption, ``lo`` may be 0 or less: a row read may be the
    row written, the load joins the group, and the group spans rows ``k``
    without a constant box: refused, not miscompiled."""
    with pytest.raises(ScheduleError, match="promotion of B at loop i: its footprint has no "
                                            "constant size"):
        polyop.build(_band_schedule(band_rows_any, 4))


def test_read_and_written_in_place_across_tiles():
    """Gauss-Seidel in place: each strip reads the element its predecessor
    wrote back and the one its successor has not written yet."""
    sch = polyop.Schedule(seidel)
    io, ii = sch.split(sch.get_loops("S0")[0], 4)
    sch.cache_read("A", scope="local", at=io)
    assert "double A_local[6];" in str(polyop.lower(sch))
    f = polyop.build(sch)
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 6, 13):
        A = rng.random(n)
        want = A.copy()
        seidel.py_func(n, want)
        f(n, A)
        np.testing.assert_array_equal(A, want, err_msg=f"n = {n}")


# -- CPU: refusals -------------------------------------------------------------------------

def test_shared_scope_refused_on_cpu():
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 8, 8)
    sch.cache_read("A", scope="shared", at=jo)
    for step in (polyop.lower, polyop.build):
        with pytest.raises(TargetError, match=r"promotion of A at loop j_outer: scope "
                           r"'shared' is GPU shared memory, a GPU scope.*scope='local'"):
            step(sch)
    auto = polyop.Schedule(mm)
    io, jo, ii, ji = auto.tile(*auto.get_loops("S0")[:2], 8, 8)
    auto.promote_shared(jo)
    with pytest.raises(TargetError, match=r"promote_shared at loop j_outer: .*GPU scope"):
        polyop.build(auto)


def test_footprint_without_constant_size_refused():
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, ii = sch.split(i, 8)
    sch.cache_read("A", scope="local", at=io)  # k runs over all of nk
    with pytest.raises(ScheduleError, match=r"promotion of A at loop i_outer: its footprint "
                       r"has no constant size along dimension 1 \(tile the loops"):
        polyop.lower(sch)


def test_parallel_loop_under_the_promotion_writing_it_refused():
    sch = gemm("ii", read_at="ko", write_at="jo")
    with pytest.raises(ScheduleError, match=r"promotion of C at loop j_outer: the parallel "
                       r"loop i_inner under it writes C"):
        polyop.build(sch)


def test_buffer_name_taken_refused():
    sch = polyop.Schedule(mm)
    io, jo, ii, ji = sch.tile(*sch.get_loops("S0")[:2], 8, 8)
    sch.cache_read("A", scope="local", at=jo, name="B")
    with pytest.raises(ScheduleError, match=r"promotion of A at loop j_outer: the buffer's "
                       r"name B is taken"):
        polyop.lower(sch)



def test_promotion_shown_in_the_schedule_and_its_loop_kept():
    """The request is printed with its arguments; a later primitive that
    replaces its loop makes lowering refuse it, naming the request and what
    replaced the loop (a buffer per iteration of a loop that is gone)."""
    sch = gemm(None, read_at="ko", write_at="jo")
    text = str(sch)
    assert "cache_read(A, scope='local', at=k_outer) -> A_local" in text
    assert "cache_write(C, scope='local', at=j_outer) -> C_local" in text
    sch.split(sch.get_loops("S0")[2], 2)  # k_outer
    with pytest.raises(ScheduleError, match=r"cache_read\(A, scope='local', at=k_outer\) -> "
                       r"A_local: loop k_outer is gone from the schedule \(split into "
                       r"k_outer_outer, k_outer_inner\)"):
        polyop.lower(sch)


def test_layout_and_pad_refused_with_a_scope():
    sch = polyop.Schedule(mm)
    io, jo, ii, ji = sch.tile(*sch.get_loops("S0")[:2], 8, 8)
    with pytest.raises(ScheduleError, match=r"cache_read\(A, scope='local'\): layout and pad "
                       r"are for scope='global'"):
        sch.cache_read("A", scope="local", at=jo, layout=lambda i, k: (k, i))
    with pytest.raises(ScheduleError, match=r"cache_write\(C, scope='local'\): layout is for"):
        sch.cache_write("C", scope="local", at=jo, layout=lambda i, j: (j, i))
    assert "cache" not in str(sch)  # refused: nothing recorded


@polyop.kernel
def two_nests(n: int, A: "f64[n]", B: "f64[n]", C: "f64[n]"):
    for i in range(n):
        B[i] = A[i] * 2.0
    for i in range(n):
        C[i] = A[i] + 1.0


def test_promotion_at_one_of_two_loops_of_the_same_name():
    """Both nests have a loop ``i_outer`` reading A: the request names the
    schedule's loop, and only that one gets the buffer."""
    sch = polyop.Schedule(two_nests)
    (i1,), (i2,) = sch.get_loops("S0"), sch.get_loops("S1")
    o1, _ = sch.split(i1, 4)
    o2, _ = sch.split(i2, 4)
    assert o1.name == o2.name == "i_outer"
    sch.cache_read("A", scope="local", at=o2)
    text = str(polyop.lower(sch))
    assert "B[4 * i_outer + i_inner] = A[4 * i_outer + i_inner] * 2.0;" in text
    assert "C[4 * i_outer + i_inner] = A_local[i_inner] + 1.0;" in text
    f = polyop.build(sch)
    for n in (0, 1, 6, 9):
        A = np.arange(n, dtype=float)
        B, C = np.zeros(n), np.zeros(n)
        f(A=A, B=B, C=C)
        np.testing.assert_array_equal(B, A * 2.0)
        np.testing.assert_array_equal(C, A + 1.0)

# -- the rewrite on hand-written loop IR ---------------------------------------------------

def _strip(body):
    """``for io in [0, 2): for ii in [0, 4): body`` over ``i = 4 io + ii``."""
    return ir.For("io", ir.Const(0), ir.Const(2), 1, ir.For("ii", ir.Const(0), ir.Const(4), 1,
                                                            body))


def _i():
    return ir.Bin("add", ir.Bin("mul", ir.Const(4), ir.Var("io"), ir.INDEX), ir.Var("ii"),
                  ir.INDEX)


def _fn(body):
    arrays = tuple(ir.Param(a, "array", f64, (ir.Const(8),)) for a in ("A", "B"))
    return ir.Function("k", arrays, (), body)


def test_store_under_a_data_dependent_guard_refused():
    guarded = ir.If(ir.Cmp("gt", ir.Load("A", (_i(),), f64), ir.Const(0.0, f64)),
                    ir.Store("B", (_i(),), ir.Const(1.0, f64)))
    with pytest.raises(ScheduleError, match=r"promotion of B at loop io: B is written under "
                       r"the data-dependent condition"):
        promote_function(_fn(_strip(guarded)), [Request("B", "io", "local", "B_local")])
    # reads under it are fine: the guard reads the buffer
    new = promote_function(_fn(_strip(guarded)), [Request("A", "io", "local", "A_local")])
    assert "if (A_local[ii] > 0.0)" in str(new.body)


def test_micro_kernel_call_and_atomic_update_refused():
    call = ir.Extern("mk", "mk", (ir.Load("A", (_i(),), f64),), (True,))
    with pytest.raises(ScheduleError, match=r"promotion of A at loop io into A_local: the "
                       r"micro-kernel call mk uses A by address"):
        promote_function(_fn(_strip(ir.Block((ir.Store("B", (_i(),), ir.Load(
            "A", (_i(),), f64)), call)))), [Request("A", "io", "local", "A_local")])
    atomic = ir.Store("B", (ir.Const(0),), ir.Load("A", (_i(),), f64), atomic="add")
    with pytest.raises(ScheduleError, match=r"promotion of B at loop io into B_local: .* is an "
                       "atomic update"):
        promote_function(_fn(_strip(atomic)), [Request("B", "io", "local", "B_local")])


def test_every_copy_of_the_loop_promoted():
    """isl generates a loop twice (a full strip, a partial one): both are
    rewritten, the buffer as large as the largest box."""
    full = ir.For("io", ir.Const(0), ir.Const(1), 1, ir.For(
        "ii", ir.Const(0), ir.Const(4), 1, ir.Store("B", (_i(),), ir.Load("A", (_i(),), f64))))
    part = ir.For("io", ir.Const(1), ir.Const(2), 1, ir.For(
        "ii", ir.Const(0), ir.Const(3), 1, ir.Store("B", (_i(),), ir.Load("A", (_i(),), f64))))
    new = promote_function(_fn(ir.Block((full, part))), [Request("A", "io", "local", "A_local")])
    assert new.meta["temp_shapes"]["A_local"] == (4,)
    loads = [n for n in ir.walk(new.body) if isinstance(n, ir.Load) and n.array == "A"]
    assert len(loads) == 2  # one copy-in per copy of the loop, nothing else reads A
    A, B = np.arange(1.0, 9.0), np.zeros(8)
    compile_function(new)(A, B)
    np.testing.assert_array_equal(B, np.r_[A[:7], 0.0])


def test_footprint_of_a_thread_tile():
    """The core's footprint, as the GPU calls it (thread loops below ``at``)."""
    i = ir.Bin("add", ir.Bin("mul", ir.Const(16), ir.Var("io"), ir.INDEX), ir.Var("ii"),
               ir.INDEX)
    body = ir.Store("B", (ir.Var("ii"),), ir.Load("A", (i, ir.Var("n")), f64))
    inner = ir.For("ii", ir.Const(0), ir.Const(16), 1, body, LoopKind.THREAD_X)
    fp = footprint("A", [], [], [inner], [], [body], ["n"], ["io"])
    assert fp.size == (16, 1) and fp.written is None


# -- one schedule, CPU and OpenCL ----------------------------------------------------------

def register_tiles(gpu: bool):
    """Per (i, j) element of C, C and a strip of 4 of A's row in local
    buffers; on the GPU the (i, j) loops are blocks and threads."""
    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 8, 8)
    ko, ki = sch.split(k, 4)
    sch.reorder(io, jo, ii, ji, ko, ki)
    if gpu:
        for loop, axis in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                           (ji, "threadIdx.x")):
            sch.bind(loop, axis)
    sch.cache_write("C", scope="local", at=ji)
    sch.cache_read("A", scope="local", at=ko)
    return sch


def test_same_promotions_on_cpu_and_opencl():
    pytest.importorskip("pyopencl")
    cpu = polyop.build(register_tiles(False))
    assert "C_local" in str(polyop.lower(register_tiles(False)))
    gpu = polyop.build(register_tiles(True), target="opencl")
    assert "C_local" in gpu.source and "A_local" in gpu.source
    rng = np.random.default_rng(4)
    for ni, nj, nk in ((1, 1, 1), (13, 10, 7), (16, 8, 9)):
        A, B, C = rng.random((ni, nk)), rng.random((nk, nj)), rng.random((ni, nj))
        want, on_cpu, on_gpu = C.copy(), C.copy(), C.copy()
        mm.py_func(ni, nj, nk, A, B, want)
        cpu(ni, nj, nk, A, B, on_cpu)
        gpu(ni, nj, nk, A, B, on_gpu)
        np.testing.assert_array_equal(on_cpu, want)
        np.testing.assert_array_equal(on_gpu, on_cpu)
