"""``Schedule.rfactor``: reductions factored into partial results over one loop.

Every built schedule is compared with numpy or with CPython running the kernel.
Data are small integers (stored as floats where the kernel is f32/f64), so
that sums are exact whatever the order: the comparisons are bit for bit.
"""

import re

import numpy as np
import pytest

import polyop
from polyop import IllegalScheduleError, ScheduleError, ir
from tests.kernels import compare, matmul_ikj, te_matmul
from tests.test_vectorize_codegen import HASWELL, NEOVERSE_V2, SKYLAKE_AVX512, hot_loop

RNG = np.random.default_rng(7)


def ints(shape, dtype="float64", lo=-9, hi=10):
    return RNG.integers(lo, hi, shape).astype(dtype)


def check(sch, kernel, cases):
    """Build ``sch`` once; for each argument dict in ``cases`` run it and CPython
    on copies of the arguments and compare every array bit for bit."""
    f = polyop.build(sch)
    for args in cases:
        compare(f, kernel, args)
    return f


@polyop.kernel
def rowsum(n: int, m: int, A: "f64[n, m]", out: "f64[n]"):
    for i in range(n):
        out[i] = 0.0
        for k in range(m):
            out[i] += A[i, k]


@polyop.kernel
def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
    s = 0.0
    for k in range(n):
        s += x[k] * y[k]
    out[0] = s


@polyop.kernel
def rowmax(n: int, m: int, A: "f32[n, m]", out: "f32[n]"):
    for i in range(n):
        for k in range(m):
            out[i] = max(out[i], A[i, k])


@polyop.kernel
def window(n: int, m: int, p: int, A: "i64[n, m]", out: "i64[n]", prod: "i64[n]"):
    assert p >= 0
    for i in range(n):
        for k in range(p, m):
            out[i] -= A[i, k]
            prod[i] *= A[i, k]


# -- kernels of the kernel language -------------------------------------------------------------

def test_rowsum_split_rfactor_vectorize():
    sch = polyop.Schedule(rowsum)
    i, k = sch.get_loops("S1")
    ko, ki = sch.split(k, 8)
    init, combine = sch.rfactor("S1", ki)
    assert (init, combine) == ("out_rf_init", "out_rf_combine")
    rf = sch.program.arrays["out_rf"]
    assert rf.shape == ("8", "n") and not rf.temporary
    assert "out_rf" in sch.program.meta["scratch"]
    # the new dependences order each init before the updates of its element
    assert "out_rf_init" in str(sch.deps.by_array["WAW"]["out_rf"])
    assert "out_rf_combine" in str(sch.deps.by_array["RAW"]["out_rf"])
    assert [lp.name for lp in sch.get_loops("S1")] == ["i", "k_outer", "k_inner"]
    assert [lp.name for lp in sch.get_loops(init)] == ["i", "k_inner"]
    assert [lp.name for lp in sch.get_loops(combine)] == ["i", "k_inner"]
    sch.vectorize(ki)
    text = str(polyop.lower(sch))
    assert "out_rf[k_inner][i] = 0.0" in text
    assert "out[i] = out[i] + out_rf[k_inner][i]" in text
    assert "// vector" in text
    f = check(sch, rowsum, [dict(n=n, m=m, A=ints((n, m)), out=ints(n))
                            for n, m in ((5, 21), (3, 8), (4, 3), (2, 0))])
    assert "out_rf" not in f.names  # scratch: allocated by the runtime, not passed


@polyop.kernel
def gemv(n: int, m: int, A: "f64[n, m]", x: "f64[m]", y: "f64[n]"):
    for i in range(n):
        for k in range(m):
            y[i] += A[i, k] * x[k]


@pytest.mark.parametrize("target, add, stack", [
    (SKYLAKE_AVX512, r"vaddpd\s+[^\n]*%zmm\d+, %zmm\d+\n", r"\(%[re][sb]p\)"),
    (HASWELL, r"vaddpd\s+[^\n]*%ymm\d+, %ymm\d+\n", r"\(%[re][sb]p\)"),
    (NEOVERSE_V2, r"fadd\s+v\d+\.2d, v\d+\.2d, v\d+\.2d", r"\[sp"),
])
def test_row_sums_factored_over_a_vector_strip_stay_in_a_register(target, add, stack):
    """The vectorised reduction idiom: a row's sum split by the target's
    lanes, factored over the strip (``rfactor``), the partial sums in a buffer
    per row (``cache_write``, its unit dimension dropped) and the strip
    vectorised. The loop over full strips runs with no test inside (the
    partial strip runs after it), so the partial sums stay in one vector
    register across it: cross-compiled, its loop has vector adds and no stack
    traffic."""
    lanes = polyop.Target(target).lanes("float64")
    sch = polyop.Schedule(gemv)
    i, k = sch.get_loops("S0")
    ko, ki = sch.split(k, lanes)
    sch.rfactor("S0", ki)
    sch.cache_write("y_rf", scope="local", at=i)
    sch.vectorize(ki)
    fn = polyop.lower(sch, target=target)
    text = str(fn)
    assert f"double y_rf_local[{lanes}];" in text
    assert f"y_rf_local[k_inner:k_inner + {lanes}] = y_rf_local[k_inner:k_inner + {lanes}]" \
        in text and "gather" not in text
    full = [lp for lp in ir.walk(fn.body) if isinstance(lp, ir.For) and lp.var == "k_outer"]
    assert len(full) == 1 and not any(isinstance(n, ir.If) for n in ir.walk(full[0].body))
    loop = hot_loop(polyop.build(sch, target=target).asm, add)
    assert re.search(add, loop) and not re.search(stack, loop), loop
    f = polyop.build(sch)
    for n, m in ((3, 5 * lanes + 3), (4, 2 * lanes), (2, 1), (2, 0)):
        compare(f, gemv, dict(n=n, m=m, A=ints((n, m)), x=ints(m), y=ints(n)))


def test_rowsum_rfactor_of_outer_strip_is_parallel_with_symbolic_extent():
    sch = polyop.Schedule(rowsum)
    i, k = sch.get_loops("S1")
    ko, ki = sch.split(k, 4)
    with pytest.raises(IllegalScheduleError, match="carries a RAW dependence on out"):
        sch.parallel(ko)
    sch.rfactor("S1", ko)
    assert sch.program.arrays["out_rf"].shape[0] == "((m + 3) // 4)"
    sch.parallel(ko)
    assert "// parallel" in str(polyop.lower(sch))
    check(sch, rowsum, [dict(n=n, m=m, A=ints((n, m)), out=ints(n))
                        for n, m in ((6, 23), (3, 4), (2, 1))])


def test_dot_product_rfactor_then_parallel_over_the_factored_loop():
    sch = polyop.Schedule(dot)
    (k,) = sch.get_loops("S1")
    ko, ki = sch.split(k, 4)
    before = sch.tree
    with pytest.raises(IllegalScheduleError):
        sch.parallel(ki)  # without rfactor: every iteration updates s
    with pytest.raises(IllegalScheduleError):
        sch.reorder(ki, ko)  # nor can the updates of s be reordered
    assert sch.tree.plain_is_equal(before)
    sch.rfactor("S1", ki)  # s is a 0-d temporary: s_rf has one dimension
    assert sch.program.arrays["s_rf"].shape == ("4",)
    sch.reorder(ki, ko)  # each k_inner sums its own strided part
    sch.parallel(ki)
    for n in (23, 4, 1, 0):
        x, y = ints(n), ints(n)
        out = np.full(1, 5.0)
        polyop.build(sch)(n, x, y, out)
        assert out[0] == x @ y


def test_matmul_k_split_rfactor_inner():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    ko, ki = sch.split(k, 4)
    init, combine = sch.rfactor("S0", ki)
    assert sch.program.arrays["C_rf"].shape == ("4", "ni", "nj")
    # inside i, around the k_outer nest; their loops run over k_inner then j
    assert [lp.name for lp in sch.get_loops(combine)] == ["i", "k_inner", "j"]
    i2, l, j2 = sch.get_loops(combine)
    sch.vectorize(j2)
    sch.parallel(i)
    check(sch, matmul_ikj, [dict(ni=ni, nj=nj, nk=nk, C=ints((ni, nj)), A=ints((ni, nk)),
                                 B=ints((nk, nj)))
                            for ni, nj, nk in ((5, 7, 11), (3, 9, 4), (2, 3, 2))])


def test_max_reduction_and_float32():
    sch = polyop.Schedule(rowmax)
    i, k = sch.get_loops("S0")
    ko, ki = sch.split(k, 8)
    sch.rfactor("S0", ki)
    sch.vectorize(ki)
    assert sch.program.statement("out_rf_init").body.value.value == float("-inf")
    check(sch, rowmax, [dict(n=n, m=m, A=ints((n, m), "float32"), out=ints(n, "float32"))
                        for n, m in ((4, 19), (2, 5))])


def test_subtraction_product_and_parametric_lower_bound():
    sch = polyop.Schedule(window)
    i, k = sch.get_loops("S0")
    sch.fission(k)
    i, k = sch.get_loops("S0")
    _, k1 = sch.get_loops("S1")
    sch.rfactor("S0", k)  # out[i] -= ...: partial differences, then out[i] += rf
    sch.rfactor("S1", k1, name="partial_products")
    assert sch.program.arrays["out_rf"].shape[0] == "(m - p)"
    assert sch.program.statement("out_rf_combine").body.value.op == "add"
    assert sch.program.statement("partial_products_init").body.value.value == 1
    sch.parallel(k)
    sch.parallel(k1)
    check(sch, window, [dict(n=n, m=m, p=p, A=ints((n, m), "int64", -3, 4),
                             out=ints(n, "int64"), prod=ints(n, "int64"))
                        for n, m, p in ((3, 9, 2), (2, 4, 0), (2, 3, 5))])


def test_skewed_loop_whose_value_fixes_an_outer_loop():
    sch = polyop.Schedule(rowsum)
    i, k = sch.get_loops("S1")
    ko, ki = sch.split(k, 4)
    sch.skew(ko, ki, 4)  # k_inner now runs over k itself, inside k_outer = k // 4
    init, combine = sch.rfactor("S1", ki)
    assert [lp.name for lp in sch.get_loops(combine)] == ["i", "k_outer", "k_inner"]
    check(sch, rowsum, [dict(n=n, m=m, A=ints((n, m)), out=ints(n))
                        for n, m in ((3, 10), (2, 4))])


# -- tensor expressions ------------------------------------------------------------------------

def test_te_dot_product_sum():
    n = polyop.var("n")
    A = polyop.placeholder((n,), "float32", name="A")
    B = polyop.placeholder((n,), "float32", name="B")
    k = polyop.reduce_axis((0, n), name="k")
    S = polyop.compute((), lambda: polyop.sum(A[k] * B[k], axis=k), name="S")
    sch = polyop.create_schedule(S)
    (kk,) = sch.get_loops(S)
    ko, ki = sch.split(kk, 8)
    assert sch.rfactor(S, ki) == ("S_rf_init", "S_rf_combine")
    sch.vectorize(ki)
    f = polyop.build(sch, [A, B, S])
    for size in (37, 8, 3):
        a, b = ints(size, "float32"), ints(size, "float32")
        s = np.empty((), np.float32)
        f(a, b, s)
        assert s[()] == a @ b


def test_te_matmul_and_integer_max_rfactor_outer_strip():
    A, B, C = te_matmul("float64")
    sch = polyop.create_schedule(C)
    i, j, kk = sch.get_loops(C)
    ko, ki = sch.split(kk, 4)
    sch.rfactor(C, ki)
    sch.parallel(i)
    a, b = ints((6, 13)), ints((13, 5))
    c = np.empty((6, 5))
    polyop.build(sch, [A, B, C])(a, b, c)
    np.testing.assert_array_equal(c, a @ b)
    assert "C_rf" in str(polyop.lower(sch, [A, B, C]))

    n, m = polyop.var("n"), polyop.var("m")
    X = polyop.placeholder((n, m), "int32", name="X")
    r = polyop.reduce_axis((0, m), name="r")
    Mx = polyop.compute((n,), lambda i: polyop.max(X[i, r], axis=r), name="Mx")
    sch = polyop.create_schedule(Mx)
    i, rr = sch.get_loops(Mx)
    ro, ri = sch.split(rr, 4)
    sch.rfactor(Mx, ro)
    sch.parallel(ro)
    assert sch.program.statement("Mx_rf_init").body.value.value == np.iinfo(np.int32).min
    x = ints((6, 13), "int32", -1000, 1000)
    out = np.empty(6, np.int32)
    polyop.build(sch, [X, Mx])(x, out)
    np.testing.assert_array_equal(out, x.max(axis=1))


# -- refusals -------------------------------------------------------------------------------------

@polyop.kernel
def two_nests(n: int, m: int, A: "f64[n, m]", out: "f64[n]", z: "f64[n]", x: "f64[2]"):
    for i in range(n):
        out[i] = 0.0
        for k in range(m):
            out[i] += A[i, k]
    for j in range(n):
        z[j] = out[j] * 2.0
    for q in range(n):
        x[0] = x[0] + x[1] * z[q]


def test_errors_name_the_statement_and_loop():
    sch = polyop.Schedule(two_nests)
    i, k = sch.get_loops("S1")
    (j,) = sch.get_loops("S2")
    (q,) = sch.get_loops("S3")
    before = sch.tree
    with pytest.raises(ScheduleError, match=r"rfactor\(S0, i\): S0 .* is not a reduction"):
        sch.rfactor("S0", i)
    with pytest.raises(ScheduleError, match=r"rfactor\(S2, j\): S2 .* does not combine z"):
        sch.rfactor("S2", j)
    with pytest.raises(ScheduleError, match=r"rfactor\(S1, j\): loop j is not around S1"):
        sch.rfactor("S1", j)
    with pytest.raises(ScheduleError, match="i is not a reduction loop of S1"):
        sch.rfactor("S1", i)
    with pytest.raises(ScheduleError, match=r"e \(x\[1\] \* z\[q\]\) reads x too"):
        sch.rfactor("S3", q)
    with pytest.raises(ScheduleError, match="unknown statement"):
        sch.rfactor("S9", k)
    with pytest.raises(ScheduleError, match="name 'A' is taken"):
        sch.rfactor("S1", k, name="A")
    assert sch.tree.plain_is_equal(before) and sch.stmts == ["S0", "S1", "S2", "S3"]
    ko, ki = sch.split(k, 2)
    with pytest.raises(ScheduleError, match="stale"):
        sch.rfactor("S1", k)


@polyop.kernel
def reader_inside(n: int, m: int, A: "f64[n, m]", out: "f64[n]", B: "f64[n, m]"):
    for i in range(n):
        for k in range(m):
            out[i] += A[i, k]
            B[i, k] = out[i]


@polyop.kernel
def reader_last(n: int, m: int, A: "f64[n, m]", out: "f64[n]", B: "f64[n]"):
    for i in range(n):
        for k in range(m):
            out[i] += A[i, k]
            if k == m - 1:
                B[i] = out[i]


def test_refused_when_partial_results_would_be_observed():
    sch = polyop.Schedule(reader_inside)
    i, k = sch.get_loops("S0")
    with pytest.raises(ScheduleError, match="S1 accesses out between two updates"):
        sch.rfactor("S0", k)
    # the reader runs after the last update, but inside the loop: the combine
    # would come after it; the new dependences catch it, and nothing changes
    sch = polyop.Schedule(reader_last)
    i, k = sch.get_loops("S0")
    tree, program, loops = sch.tree, sch.program, dict(sch._loops)
    with pytest.raises(IllegalScheduleError, match="out_rf_combine") as info:
        sch.rfactor("S0", k)
    assert info.value.array == "out"
    assert sch.tree.plain_is_equal(tree) and sch.program is program and sch._loops == loops
    sch.fission(k)  # reader in a nest of its own: now rfactor is exact
    i, k = sch.get_loops("S0")
    sch.rfactor("S0", k)
    sch.parallel(k)
    check(sch, reader_last, [dict(n=3, m=5, A=ints((3, 5)), out=ints(3), B=ints(3))])
