"""Unrolled split loops: full strips apart, with no guards; the partial strip once.

After ``split(k, f)`` and ``unroll`` of the inner loop (or ``unroll(k, f)``),
the loop over the strips runs over the full strips only, each unrolled into
``f`` copies of the body with no ``if`` among them; the partial strip is
handled once, after that loop (``polyop.schedule.astprep``). A parallel outer
loop, and a split that is not unrolled, keep the full-strip test in the loop.
"""

import re

import numpy as np
import pytest

import polyop
from polyop import ir, te
from tests.kernels import compare, run_both, te_matmul


@polyop.kernel
def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
    for k in range(n):
        out[0] += x[k] * y[k]


@polyop.kernel
def dot18(x: "f64[18]", y: "f64[18]", out: "f64[1]"):
    for k in range(18):
        out[0] += x[k] * y[k]


@polyop.kernel
def matmul(ni: int, nj: int, nk: int, C: "f64[ni, nj]", A: "f64[ni, nk]",
           B: "f64[nk, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def scale(n: int, x: "f64[n]", y: "f64[n]"):
    for k in range(n):
        y[k] = x[k] * 2.0


@polyop.kernel
def scale_from_2(n: int, x: "f64[n]", y: "f64[n]"):
    for k in range(2, n):
        y[k] = x[k] * 2.0


@polyop.kernel
def row_sums(n: int, A: "f64[n, n]", s: "f64[n]"):
    for i in range(n):
        for j in range(i):
            s[i] += A[i, j]


def loops_named(fn: ir.Function, name: str | None = None) -> list[ir.For]:
    """The loops of ``fn`` (or of a statement) called ``name`` (all, if None)."""
    body = fn.body if isinstance(fn, ir.Function) else fn
    return [n for n in ir.walk(body) if isinstance(n, ir.For) and name in (None, n.var)]


def count(node, cls) -> int:
    return sum(isinstance(n, cls) for n in ir.walk(node))


def assert_unrolled_strips(fn: ir.Function, outer: str, copies: int) -> None:
    """Every loop named ``outer`` runs full strips: ``copies`` stores, no ``if``
    and no inner loop in its body."""
    loops = loops_named(fn, outer)
    assert loops, f"no loop {outer} in\n{fn}"
    for lp in loops:
        assert count(lp.body, ir.If) == 0, f"a guard inside the unrolled copies:\n{fn}"
        assert count(lp.body, ir.For) == 0, f"a loop left inside {outer}:\n{fn}"
        assert count(lp.body, ir.Store) == copies, str(fn)


def unguarded(fn: ir.Function, name: str) -> list[ir.For]:
    """The loops called ``name`` with neither an ``if`` nor a loop in their body."""
    return [lp for lp in loops_named(fn, name)
            if count(lp.body, ir.If) == 0 and count(lp.body, ir.For) == 0]


def dot_args(n: int) -> dict:
    rng = np.random.default_rng(n)
    return dict(n=n, x=rng.random(n), y=rng.random(n), out=np.zeros(1))


def matmul_args(ni: int, nj: int, nk: int) -> dict:
    rng = np.random.default_rng(ni * 100 + nj * 10 + nk)
    return dict(ni=ni, nj=nj, nk=nk, C=rng.random((ni, nj)), A=rng.random((ni, nk)),
                B=rng.random((nk, nj)))


SIZES = [0, 1, 3, 4, 5, 7, 8, 9, 16, 17, 30]


@pytest.mark.parametrize("how", ["split", "unroll"])
def test_parametric_dot_full_strips_unrolled_remainder_outside(how):
    sch = polyop.Schedule(dot)
    (k,) = sch.get_loops("S0")
    if how == "split":
        _, ki = sch.split(k, 4)
        sch.unroll(ki)
    else:
        sch.unroll(k, 4)
    fn = polyop.lower(sch)
    assert_unrolled_strips(fn, "k_outer", 4)
    (main,) = loops_named(fn, "k_outer")
    assert "min" not in str(main) and "max" not in str(main)
    # the partial strip: after the loop, up to 3 guarded copies, no loop left
    assert fn.body.stmts[0] is main and len(fn.body.stmts) == 2
    assert count(fn.body, ir.For) == 1 and count(fn.body, ir.Store) == 4 + 3
    for n in SIZES:
        run_both(sch, dot, dot_args(n))


def test_constant_size_remainder_is_unrolled_too():
    sch = polyop.Schedule(dot18)
    (k,) = sch.get_loops("S0")
    sch.unroll(k, 4)
    fn = polyop.lower(sch)
    assert_unrolled_strips(fn, "k_outer", 4)
    (main,) = loops_named(fn, "k_outer")
    assert main.stop == ir.Const(4, main.stop.dtype)            # 4 full strips of 4
    assert count(fn.body, ir.If) == 0 and count(fn.body, ir.For) == 1
    assert count(fn.body, ir.Store) == 4 + 2                    # strips + k = 16, 17
    rng = np.random.default_rng(0)
    run_both(sch, dot18, dict(x=rng.random(18), y=rng.random(18), out=np.zeros(1)))


def test_matmul_k_unrolled_inside_tiles():
    sch = polyop.Schedule(matmul)
    i, j, k = sch.get_loops("S0")
    sch.tile(i, j, 8, 8)
    sch.unroll(k, 4)
    fn = polyop.lower(sch)
    # one k_outer loop per kind of (i, j) tile: full or partial in i and in j
    assert len(loops_named(fn, "k_outer")) == 4
    assert_unrolled_strips(fn, "k_outer", 4)
    for sizes in [(0, 0, 0), (1, 1, 1), (5, 9, 7), (16, 8, 12), (17, 3, 1), (9, 17, 13),
                  (8, 8, 0)]:
        run_both(sch, matmul, matmul_args(*sizes))


def test_matmul_k_split_unrolled_with_constant_sizes():
    @polyop.kernel
    def mm(C: "f64[6, 5]", A: "f64[6, 10]", B: "f64[10, 5]"):
        for i in range(6):
            for j in range(5):
                for k in range(10):
                    C[i, j] += A[i, k] * B[k, j]

    sch = polyop.Schedule(mm)
    i, j, k = sch.get_loops("S0")
    _, ki = sch.split(k, 4)
    sch.unroll(ki)
    fn = polyop.lower(sch)
    assert_unrolled_strips(fn, "k_outer", 4)
    assert count(fn.body, ir.If) == 0
    (j_loop,) = loops_named(fn, "j")
    assert count(j_loop.body, ir.Store) == 4 + 2                # k = 8, 9 unrolled after
    rng = np.random.default_rng(1)
    run_both(sch, mm, dict(C=rng.random((6, 5)), A=rng.random((6, 10)),
                           B=rng.random((10, 5))))


def full_strip_branches(fn: ir.Function, outer: str) -> list[ir.For]:
    """The inner loops in the ``then`` branch of the full-strip test in each loop
    called ``outer`` (a split that is not unrolled keeps the test in the loop)."""
    out = []
    for lp in loops_named(fn, outer):
        assert isinstance(lp.body, ir.If) and lp.body.else_ is not None, str(fn)
        out += loops_named(lp.body.then)
    return out


def test_plain_split_full_strips_have_constant_bounds():
    sch = polyop.Schedule(dot)
    (k,) = sch.get_loops("S0")
    sch.split(k, 8)
    fn = polyop.lower(sch)
    (inner,) = full_strip_branches(fn, "k_outer")
    assert inner.stop == ir.Const(8, inner.stop.dtype) and count(inner.body, ir.If) == 0
    for n in SIZES:
        run_both(sch, dot, dot_args(n))


def test_strips_not_starting_at_zero():
    sch = polyop.Schedule(scale_from_2)
    (k,) = sch.get_loops("S0")
    sch.unroll(k, 4)
    fn = polyop.lower(sch)
    # partial strips at both ends (k = 2, 3 and the last one), handled outside the
    # loop over full strips
    (main,) = unguarded(fn, "k_outer")
    assert count(main.body, ir.Store) == 4 and main.start == ir.Const(1, main.start.dtype)
    for n in range(0, 14):
        rng = np.random.default_rng(n)
        run_both(sch, scale_from_2, dict(n=n, x=rng.random(n), y=rng.random(n)))


def test_triangular_inner_loop_unrolled():
    sch = polyop.Schedule(row_sums)
    i, j = sch.get_loops("S0")
    sch.unroll(j, 4)
    fn = polyop.lower(sch)
    assert_unrolled_strips(fn, "j_outer", 4)
    for n in [0, 1, 2, 5, 9, 12]:
        rng = np.random.default_rng(n)
        run_both(sch, row_sums, dict(n=n, A=rng.random((n, n)), s=rng.random(n)))


def test_loop_between_outer_and_unrolled_inner():
    sch = polyop.Schedule(matmul)
    i, j, k = sch.get_loops("S0")
    ko, ki = sch.split(k, 4)
    sch.reorder(ko, j, ki)
    sch.unroll(ki)
    fn = polyop.lower(sch)
    # the full-strip test sits outside the j loop: one j loop runs 4 copies, unguarded
    (full,) = unguarded(fn, "j")
    assert count(full.body, ir.Store) == 4
    for sizes in [(0, 0, 0), (3, 4, 5), (2, 7, 8), (4, 3, 11)]:
        run_both(sch, matmul, matmul_args(*sizes))


def test_parallel_strips_keep_the_partial_strip_in_the_parallel_loop():
    sch = polyop.Schedule(scale)
    (k,) = sch.get_loops("S0")
    ko, ki = sch.split(k, 4)
    sch.parallel(ko)
    sch.unroll(ki)
    fn = polyop.lower(sch)
    (par,) = loops_named(fn, "k_outer")
    assert par.kind == "parallel" and isinstance(par.body, ir.If)
    full = par.body.then                    # the full strips: 4 copies, no guard
    assert count(full, ir.If) == 0 and count(full, ir.Store) == 4
    for n in [0, 3, 6, 9, 101]:
        rng = np.random.default_rng(n)
        run_both(sch, scale, dict(n=n, x=rng.random(n), y=rng.random(n)))


def test_vectorized_full_strips_have_constant_bounds():
    sch = polyop.Schedule(scale)
    (k,) = sch.get_loops("S0")
    ko, ki = sch.split(k, 8)
    sch.vectorize(ki)
    fn = polyop.lower(sch)
    # isolated on k_outer itself: a loop over the full strips, no test inside,
    # then the partial strip once (polyop.schedule.astprep)
    (outer,) = loops_named(fn, "k_outer")
    (vec,) = loops_named(outer.body)
    assert count(outer.body, ir.If) == 0
    assert vec.kind == "vector" and vec.stop == ir.Const(8, vec.stop.dtype)
    assert len(loops_named(fn, "k_inner")) == 2  # the full strips' and the partial one
    for n in [0, 5, 8, 21, 64]:
        rng = np.random.default_rng(n)
        run_both(sch, scale, dict(n=n, x=rng.random(n), y=rng.random(n)))


@polyop.kernel
def scale32(n: int, x: "f32[n]", y: "f32[n]"):
    for k in range(n):
        y[k] = x[k] * 2.0


def test_partial_strip_gets_no_vector_wider_than_the_strip():
    """A strip of 8 on a target of 16 f32 lanes: the full strips are one
    vector of 8; the partial strip (fewer than 8) no 16-lane vector and no
    loop of vectors, but one vector of each narrower width at most."""
    sch = polyop.Schedule(scale32)
    (k,) = sch.get_loops("S0")
    ko, ki = sch.split(k, 8)
    sch.vectorize(ki)
    target = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4"
    fn = polyop.lower(sch, target=target)
    assert [lp.max_trip for lp in loops_named(fn, "k_inner")] == [8, 8]
    text = str(fn)
    assert "vector x16" not in text and "k_inner:k_inner + 16" not in text, text
    assert "// vector x8\n" in text and "// vector x4 (at most once)" in text, text
    f = polyop.build(sch)
    for n in [0, 3, 8, 15, 16, 21, 64]:
        x = np.random.default_rng(n).random(n).astype(np.float32)
        compare(f, scale32, dict(n=n, x=x, y=np.zeros(n, np.float32)))


def test_loop_over_unrolled_copies_left_to_slp_vectorizer():
    # LLVM's loop vectorizer would interleave the copies of several strips (measured
    # up to 3.8x slower than packing the copies of one strip), so it is told not to
    @polyop.kernel
    def stencil(n: int, A: "f32[n, n]", B: "f32[n, n]"):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, j + 1] + A[i - 1, j]
                                 + A[i + 1, j])

    sch = polyop.Schedule(stencil)
    i, j = sch.get_loops("S0")
    sch.unroll(j, 4)
    (main,) = unguarded(polyop.lower(sch), "j_outer")
    assert count(main.body, ir.Store) == 4
    f = run_both(sch, stencil, dict(n=11, A=np.random.default_rng(2).random(
        (11, 11), np.float32), B=np.zeros((11, 11), np.float32)))
    assert '!"llvm.loop.vectorize.enable", i1 false' in f.llvm_ir_unoptimized


def test_full_tile_tests_hoisted_out_of_the_loops_they_do_not_depend_on():
    # a register tile below k: whether the tile is full in i or in j does not
    # change with k, so the tests sit outside the k loops, not in their bodies
    sch = polyop.Schedule(matmul)
    i, j, k = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 4, 8)
    sch.reorder(io, jo, k, ii, ji)
    fn = polyop.lower(sch)
    k_loops = loops_named(fn, "k")
    assert len(k_loops) >= 2, str(fn)
    for lp in k_loops:
        assert count(lp.body, ir.If) == 0, f"a full-tile test inside k:\n{fn}"
    full = [lp for lp in k_loops if all(inner.stop.__class__ is ir.Const
                                        for inner in loops_named(lp.body))]
    assert len(full) == 1, str(fn)                      # the full tiles' k loop
    for sizes in [(0, 0, 0), (1, 1, 1), (4, 8, 3), (5, 9, 7), (13, 17, 2), (8, 23, 5)]:
        run_both(sch, matmul, matmul_args(*sizes))


def test_unrolled_rows_and_vector_columns_tested_together_outside_k():
    # a register tile with its rows unrolled: the rows' test goes on k's band
    # (the loop enclosing them); the columns' test, with no band of its own
    # left above k, joins it there rather than running in every row of every k
    sch = polyop.Schedule(matmul)
    i, j, k = sch.get_loops("S0")
    sch.reorder(i, k, j)
    io, ii = sch.split(i, 4)
    jo, ji = sch.split(j, 8)
    sch.reorder(io, jo, k, ii, ji)
    sch.unroll(ii)
    sch.vectorize(ji)
    fn = polyop.lower(sch)
    k_loops = loops_named(fn, "k")
    full = [lp for lp in k_loops if count(lp.body, ir.If) == 0
            and all(isinstance(inner.stop, ir.Const) for inner in loops_named(lp.body))]
    assert len(full) == 1, str(fn)  # the full tiles' k loop: 4 rows, constant columns
    assert count(full[0].body, ir.Store) == 4, str(fn)
    for sizes in [(0, 0, 0), (1, 1, 1), (4, 8, 3), (5, 9, 7), (13, 17, 2), (8, 23, 5)]:
        run_both(sch, matmul, matmul_args(*sizes))


def test_vector_loop_of_constant_trip_count_is_vectorised_not_unrolled():
    # rows of 24 with a per-row bias (a convolution's epilogue): fully unrolled
    # first, the SLP vectorizer packed the 4 x 24 copies across rows, by gathers
    @polyop.kernel
    def epilogue(conv: "f32[4, 3136]", bias: "f32[4]", out: "f32[4, 3136]"):
        for f in range(4):
            for q in range(24):
                out[f, q] = max(conv[f, q] + bias[f], 0.0)

    sch = polyop.Schedule(epilogue)
    _, q = sch.get_loops("S0")
    sch.vectorize(q)
    rng = np.random.default_rng(0)
    k = run_both(sch, epilogue, dict(conv=rng.standard_normal((4, 3136), np.float32),
                                     bias=rng.standard_normal(4, np.float32),
                                     out=np.zeros((4, 3136), np.float32)))
    assert re.search(r"load <\d+ x float>", k.llvm_ir_unoptimized)  # polyop's own vectors
    for cpu in ("haswell", "znver4"):  # AVX2, AVX-512
        asm = polyop.build(sch, target=f"cpu -mtriple=x86_64-linux-gnu -mcpu={cpu}").asm
        assert "vinsertps" not in asm and "gather" not in asm, cpu


def test_tile_loop_with_init_and_epilogue_is_split_into_full_and_partial_tiles():
    # the init, the update and an epilogue in sequence under j_outer: whether a
    # tile is full is decided by j_outer itself, so j_outer is split, and the
    # full tiles run init and epilogue with constant bounds too
    A, B, C = te_matmul("float32", (13, 20, 5))
    D = te.compute((13, 20), lambda i, j: te.maximum(C[i, j], te.const(0, "float32")),
                   name="D")
    sch = te.create_schedule(D)
    sch.fission(sch.get_loops(C)[0])
    i, j, k = sch.get_loops(C)
    io, ii = sch.split(i, 4)
    jo, ji = sch.split(j, 8)
    sch.reorder(io, jo, k, ii, ji)
    sch.compute_at("C_init", jo)
    sch.reverse_compute_at(D, jo)
    fn = polyop.lower(sch, [A, B, D])
    full = loops_named(fn, "j_outer")[0]
    assert full.stop == ir.Const(2, full.stop.dtype), str(fn)   # tiles 0, 1 of 0 .. 2
    assert count(full.body, ir.If) == 0 and "min" not in str(full), str(fn)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((13, 5), np.float32), rng.standard_normal((5, 20), np.float32)
    d = np.full((13, 20), np.nan, np.float32)
    polyop.build(sch, [A, B, D])(a, b, d)
    np.testing.assert_allclose(d, np.maximum(a.astype(np.float64) @ b, 0), rtol=1e-5,
                               atol=1e-5)
