"""Tensor expressions (polyop.te): lowering to the Program model, schedules, builds.

Every computation is checked against numpy; where the summation order is the
same as a plain CPython loop (the reduce axes run in order), results are
compared bit for bit with such a loop.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import polyop
from polyop import ArgumentError, BoundsError, FrontendError, IllegalScheduleError
from tests.kernels import te_matmul

RNG = np.random.default_rng(1234)


def rand(shape, dtype="float64"):
    return RNG.standard_normal(shape).astype(dtype)


def matmul_python_order(a, b):
    """A CPython loop summing over k in order, in the arrays' precision."""
    m, kk = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), a.dtype)
    for i in range(m):
        for j in range(n):
            s = a.dtype.type(0)
            for k in range(kk):
                s = s + a[i, k] * b[k, j]
            out[i, j] = s
    return out


# -- the model ---------------------------------------------------------------------------

def test_matmul_program_statements_domains_and_order():
    A, B, C = te_matmul("float64")
    prog = polyop.create_schedule(C).program
    assert [s.name for s in prog.statements] == ["C_init", "C"]
    init, upd = prog.statements
    assert init.iterators == ("i", "j") and upd.iterators == ("i", "j", "k")
    assert str(upd.domain) == ("[M, K, N] -> { C[i, j, k] : 0 <= i < M and 0 <= j < N "
                               "and 0 <= k < K }")
    assert upd.source == "C[i, j] = C[i, j] + A[i, k] * B[k, j]"
    assert init.source == "C[i, j] = 0.0"
    assert [a.array for a in upd.reads] == ["C", "A", "B"]
    assert list(prog.arrays) == ["A", "B", "C"]
    assert prog.params == ("M", "K", "N")
    text = str(polyop.lower(polyop.create_schedule(C), [A, B, C]))
    assert text.splitlines()[0] == ("void C(double A[M][K], double B[K][N], double C[M][N], "
                                    "int64_t M, int64_t K, int64_t N) {")
    assert "C[i][j] = 0.0;\n      for (k = 0; k < K; k += 1)" in text


def test_generic_lambda_names_and_collisions():
    n = polyop.var("n")
    A = polyop.placeholder((n, n), "float64", name="A")
    # *idx gives i0, i1; a parameter named like a size variable is renamed
    T = polyop.compute((n, n), lambda *idx: A[idx[0], idx[1]] + 1.0, name="T")
    U = polyop.compute((n,), lambda n_: T[n_, n_], name="n")  # tensor named like the var
    prog = polyop.create_schedule(U).program
    assert prog.statement("T").iterators == ("i0", "i1")
    assert list(prog.arrays) == ["A", "T", "n_1"]
    a = rand((4, 4))
    u = np.empty(4)
    polyop.build(U, [A, U])(a, u)
    np.testing.assert_array_equal(u, np.diag(a) + 1.0)


# -- matmul: dtypes, symbolic and constant sizes, bit-exact order ----------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("symbolic", [True, False])
def test_matmul(dtype, symbolic):
    A, B, C = te_matmul(dtype, None if symbolic else (13, 11, 7))
    f = polyop.build(polyop.create_schedule(C), [A, B, C])
    a, b = rand((13, 7), dtype), rand((7, 11), dtype)
    c = np.empty((13, 11), dtype)
    f(a, b, c)
    np.testing.assert_array_equal(c, matmul_python_order(a, b))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(c, a @ b, rtol=tol, atol=tol)
    if symbolic:  # one compiled function, any size
        a, b, c = rand((3, 20), dtype), rand((20, 5), dtype), np.empty((3, 5), dtype)
        f(a, b, c)
        np.testing.assert_array_equal(c, matmul_python_order(a, b))


def test_build_forms():
    A, B, C = te_matmul("float64")
    a, b = rand((4, 3)), rand((3, 5))
    for f in (polyop.build([A, B, C]), polyop.build(C, [A, B, C]),
              polyop.build(polyop.create_schedule([C]), [A, B, C])):
        c = np.empty((4, 5))
        f(a, b, c)
        np.testing.assert_array_equal(c, matmul_python_order(a, b))
    # the argument list defines the signature
    f = polyop.build(C, [C, B, A])
    c = np.empty((4, 5))
    f(c, b, a)
    np.testing.assert_array_equal(c, matmul_python_order(a, b))
    assert polyop.Schedule(C).stmts == ["C_init", "C"]  # as_program accepts tensors
    f = polyop.build(C, [A, B, C], fp_contract=True)  # FMA allowed: close, not bit-exact
    c = np.empty((4, 5))
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)


# -- schedules on TE programs -------------------------------------------------------------------

def test_matmul_schedule_split_reorder_parallel_is_bit_exact():
    A, B, C = te_matmul("float64")
    sch = polyop.create_schedule(C)
    i, j, k = sch.get_loops("C")
    assert [lp.name for lp in sch.get_loops("C_init")] == ["i", "j"]
    io, ii = sch.split(i, 4)
    jo, ji = sch.split(j, 8)
    sch.reorder(io, jo, ii, ji)
    sch.parallel(io)
    text = str(polyop.lower(sch, [A, B, C]))
    assert "// parallel" in text
    f = polyop.build(sch, [A, B, C])
    a, b = rand((37, 19)), rand((19, 29))
    c = np.empty((37, 29))
    f(a, b, c)
    np.testing.assert_array_equal(c, matmul_python_order(a, b))


def test_matmul_fission_then_ikj_order_vectorized():
    A, B, C = te_matmul("float32")
    sch = polyop.create_schedule(C)
    i, j, k = sch.get_loops("C")
    with pytest.raises(polyop.ScheduleError, match="not perfectly nested"):
        sch.reorder(k, j)  # the init sits between j and k
    sch.fission(j)  # init and update in nests of their own
    i, j, k = sch.get_loops("C")
    sch.reorder(k, j)  # i, k, j: still k in order for each C[i, j]
    sch.vectorize(j)
    sch.parallel(i)
    text = str(polyop.lower(sch, [A, B, C]))
    # the j loop in whole vectors of the host's width, then the rest
    assert re.search(r"for \(k = 0; k < K; k \+= 1\) \{\n      // vector x\d+\n      for \(j = 0;",
                     text)
    f = polyop.build(sch, [A, B, C])
    a, b = rand((21, 17), "float32"), rand((17, 35), "float32")
    c = np.empty((21, 35), np.float32)
    f(a, b, c)
    np.testing.assert_array_equal(c, matmul_python_order(a, b))


def test_reduction_axis_cannot_be_parallel_or_reversed():
    A, B, C = te_matmul("float32")
    sch = polyop.create_schedule(C)
    i, j, k = sch.get_loops("C")
    before = sch.tree
    with pytest.raises(IllegalScheduleError) as info:
        sch.parallel(k)
    assert info.value.array == "C" and info.value.loop == "k"
    with pytest.raises(IllegalScheduleError):
        sch.reverse(k)
    assert sch.tree.plain_is_equal(before)
    sch.parallel(j)  # the output axes are free
    sch.parallel(i)


def test_illegal_reorder_of_reduce_axes_in_conv():
    Out, Inp, Wt, _ = conv2d(polyop.var("n"), 3, 4, 8, 8, 3)
    sch = polyop.create_schedule(Out)
    loops = sch.get_loops("Out")
    names = [lp.name for lp in loops]
    assert names == ["b", "f", "y", "x", "rc", "ry", "rx"]
    rc, ry = loops[4], loops[5]
    with pytest.raises(IllegalScheduleError) as info:
        sch.reorder(ry, rc)
    assert info.value.array == "Out"
    sch.reorder(loops[3], loops[2])  # swapping output axes is legal


# -- producer/consumer chains ---------------------------------------------------------------------

def test_matmul_bias_relu_chain_with_scratch_intermediates():
    M, N, K = polyop.var("M"), polyop.var("N"), polyop.var("K")
    A = polyop.placeholder((M, K), "float32", name="A")
    W = polyop.placeholder((K, N), "float32", name="W")
    bias = polyop.placeholder((N,), "float32", name="bias")
    k = polyop.reduce_axis((0, K), name="k")
    mm = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * W[k, j], axis=k), name="mm")
    biased = polyop.compute((M, N), lambda i, j: mm[i, j] + bias[j], name="biased")
    out = polyop.compute((M, N), lambda i, j: polyop.maximum(biased[i, j], 0.0), name="out")
    assert out.dtype == polyop.f32  # the weak 0.0 does not upcast
    sch = polyop.create_schedule(out)
    assert sch.stmts == ["mm_init", "mm", "biased", "out"]
    f = polyop.build(sch, [A, W, bias, out])
    assert f.scratch == ("mm", "biased")
    for m, n, kk in ((6, 5, 4), (9, 3, 8), (6, 5, 4)):  # scratch re-allocated per size
        a, w, b = rand((m, kk), "float32"), rand((kk, n), "float32"), rand((n,), "float32")
        o = np.empty((m, n), np.float32)
        f(a, w, b, o)
        ref = np.maximum(matmul_python_order(a, w) + b, np.float32(0))
        np.testing.assert_array_equal(o, ref)
    # an intermediate in the argument list is returned to the caller
    g = polyop.build(sch, [A, W, bias, mm, out])
    a, w, b = rand((3, 2), "float32"), rand((2, 4), "float32"), rand((4,), "float32")
    mmv, o = np.empty((3, 4), np.float32), np.empty((3, 4), np.float32)
    g(a, w, b, mmv, o)
    np.testing.assert_array_equal(mmv, matmul_python_order(a, w))


def test_name_collisions_and_scalar_placeholder():
    n = polyop.var("n")
    X = polyop.placeholder((n,), "float64", name="X")
    alpha = polyop.placeholder((), "float64", name="alpha")
    T1 = polyop.compute((n,), lambda i: X[i] * alpha[()], name="T")
    T2 = polyop.compute((n,), lambda i: T1[i] + 1.0, name="T")  # same name, same axis name
    sch = polyop.create_schedule(T2)
    assert sch.stmts == ["T", "T_1"]
    assert list(sch.program.arrays) == ["X", "alpha", "T", "T_1"]
    assert sch.program.statement("T_1").iterators == ("i",)
    f = polyop.build(sch, [X, alpha, T2])
    x, out = rand(6), np.empty(6)
    f(x, np.array(3.0), out)
    np.testing.assert_array_equal(out, x * 3.0 + 1.0)
    assert "void T_1(double X[n], double alpha, double T_1[n], double T[n]" in \
        str(polyop.lower(T2, [X, alpha, T2]))


def test_two_outputs_and_shared_reduce_axis():
    n, m = polyop.var("n"), polyop.var("m")
    X = polyop.placeholder((n, m), "float64", name="X")
    k = polyop.reduce_axis((0, m), name="k")
    rmax = polyop.compute((n,), lambda i: polyop.max(X[i, k], axis=k), name="rmax")
    rmin = polyop.compute((n,), lambda i: polyop.min(X[i, k], axis=k), name="rmin")
    sch = polyop.create_schedule([rmax, rmin])
    f = polyop.build(sch, [X, rmax, rmin])
    x = rand((7, 5))
    hi, lo = np.empty(7), np.empty(7)
    f(x, hi, lo)
    np.testing.assert_array_equal(hi, x.max(axis=1))
    np.testing.assert_array_equal(lo, x.min(axis=1))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
def test_max_min_identities(dtype):
    n, m = polyop.var("n"), polyop.var("m")
    X = polyop.placeholder((n, m), dtype, name="X")
    k = polyop.reduce_axis((0, m), name="k")
    hi = polyop.compute((n,), lambda i: polyop.max(X[i, k], axis=k), name="hi")
    lo = polyop.compute((n,), lambda i: polyop.min(X[i, k], axis=k), name="lo")
    f = polyop.build([X, hi, lo])
    info = np.iinfo(dtype) if dtype.startswith("int") else np.finfo(dtype)
    x = np.array([[info.min, info.min], [info.max, info.max]], dtype)
    h, l_ = np.empty(2, dtype), np.empty(2, dtype)
    f(x, h, l_)
    np.testing.assert_array_equal(h, x.max(axis=1))
    np.testing.assert_array_equal(l_, x.min(axis=1))
    x = np.zeros((2, 0), dtype)  # empty reduction: the identity
    f(x, h, l_)
    if dtype.startswith("int"):
        assert h[0] == info.min and l_[0] == info.max
    else:
        assert h[0] == -np.inf and l_[0] == np.inf


def test_softmax_chain():
    n, m = polyop.var("n"), polyop.var("m")
    X = polyop.placeholder((n, m), "float64", name="X")
    k = polyop.reduce_axis((0, m), name="k")
    mx = polyop.compute((n,), lambda i: polyop.max(X[i, k], axis=k), name="mx")
    ex = polyop.compute((n, m), lambda i, j: polyop.exp(X[i, j] - mx[i]), name="ex")
    k2 = polyop.reduce_axis((0, m), name="k")
    total = polyop.compute((n,), lambda i: polyop.sum(ex[i, k2], axis=k2), name="total")
    sm = polyop.compute((n, m), lambda i, j: ex[i, j] / total[i], name="softmax")
    f = polyop.build(sm, [X, sm])
    x = rand((6, 9)) * 5
    out = np.empty_like(x)
    f(x, out)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-13)


# -- convolution --------------------------------------------------------------------------------

def conv2d(N, CI, CO, H, W, R, inp=None, dtype="float64"):
    """Direct NCHW convolution (valid), reduce axes rc, ry, rx."""
    Inp = inp if inp is not None else polyop.placeholder((N, CI, H, W), dtype, name="Inp")
    Hin, Win = Inp.shape[2], Inp.shape[3]
    Wt = polyop.placeholder((CO, CI, R, R), dtype, name="Wt")
    rc = polyop.reduce_axis((0, CI), name="rc")
    ry = polyop.reduce_axis((0, R), name="ry")
    rx = polyop.reduce_axis((0, R), name="rx")
    Out = polyop.compute(
        (N, CO, Hin - R + 1, Win - R + 1),
        lambda b, f, y, x: polyop.sum(Inp[b, rc, y + ry, x + rx] * Wt[f, rc, ry, rx],
                                      axis=[rc, ry, rx]),
        name="Out")
    return Out, Inp, Wt, (rc, ry, rx)


def conv_reference(x, w):
    n, ci, h, wd = x.shape
    co, _, r, _ = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (r, r), axis=(2, 3))
    return np.einsum("bcyxij,fcij->bfyx", win, w)


def conv_python_order(x, w):
    n, ci, h, wd = x.shape
    co, _, r, _ = w.shape
    out = np.zeros((n, co, h - r + 1, wd - r + 1), x.dtype)
    for idx in np.ndindex(out.shape):
        b, f, y, xx = idx
        s = 0.0
        for c in range(ci):
            for i in range(r):
                for j in range(r):
                    s = s + x[b, c, y + i, xx + j] * w[f, c, i, j]
        out[idx] = s
    return out


def test_conv2d_nchw_symbolic_sizes():
    N, CI, CO = polyop.var("N"), polyop.var("CI"), polyop.var("CO")
    H, W, R = polyop.var("H"), polyop.var("W"), polyop.var("R")
    Out, Inp, Wt, _ = conv2d(N, CI, CO, H, W, R)
    f = polyop.build(Out, [Inp, Wt, Out])
    x, w = rand((2, 3, 7, 6)), rand((4, 3, 3, 3))
    out = np.empty((2, 4, 5, 4))
    f(x, w, out)
    np.testing.assert_array_equal(out, conv_python_order(x, w))
    np.testing.assert_allclose(out, conv_reference(x, w), rtol=1e-12, atol=1e-12)


def test_padded_conv2d_via_if_then_else():
    N, C, H, W = polyop.var("N"), 2, polyop.var("H"), polyop.var("W")
    p = 1
    Inp = polyop.placeholder((N, C, H, W), "float32", name="Inp")
    Pad = polyop.compute(
        (N, C, H + 2 * p, W + 2 * p),
        lambda b, c, y, x: polyop.if_then_else(
            (y >= p) & (y < H + p) & (x >= p) & (x < W + p), Inp[b, c, y - p, x - p], 0.0),
        name="Pad")
    assert Pad.dtype == polyop.f32
    Out, _, Wt, _ = conv2d(N, C, 3, None, None, 3, inp=Pad, dtype="float32")
    sch = polyop.create_schedule(Out)
    read = sch.program.statement("Pad").reads[0]
    assert read.array == "Inp" and "0 < y <= H" in str(read.relation)  # restricted to the guard
    f = polyop.build(sch, [Inp, Wt, Out])
    x, w = rand((2, 2, 5, 6), "float32"), rand((3, 2, 3, 3), "float32")
    out = np.empty((2, 3, 5, 6), np.float32)
    f(x, w, out)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(out, conv_reference(xp, w), rtol=1e-5, atol=1e-5)


# -- elementwise math and typing ----------------------------------------------------------------

def test_elementwise_math():
    n = polyop.var("n")
    X = polyop.placeholder((n,), "float64", name="X")
    Y = polyop.placeholder((n,), "float32", name="Y")
    exprs = {
        "e": (lambda i: polyop.exp(X[i]), lambda x, y: np.exp(x)),
        "s": (lambda i: polyop.sqrt(abs(X[i])), lambda x, y: np.sqrt(np.abs(x))),
        "l": (lambda i: polyop.log(polyop.abs(X[i]) + 1), lambda x, y: np.log(np.abs(x) + 1)),
        "t": (lambda i: polyop.tanh(Y[i]), lambda x, y: np.tanh(y)),
        "mx": (lambda i: polyop.maximum(X[i], Y[i]), lambda x, y: np.maximum(x, y)),
        "mn": (lambda i: polyop.minimum(Y[i], 0.5), lambda x, y: np.minimum(y, 0.5)),
        "c": (lambda i: Y[i].astype("float64") * X[i], lambda x, y: y.astype(np.float64) * x),
        "sel": (lambda i: polyop.if_then_else((X[i] > 0) | (Y[i] < -1), X[i], -Y[i]),
                lambda x, y: np.where((x > 0) | (y < -1), x, -y)),
        "neg": (lambda i: polyop.if_then_else(~(X[i] > 0) & (i % 2 == 0), 1.0, 2.0),
                lambda x, y: np.where(~(x > 0) & (np.arange(len(x)) % 2 == 0), 1.0, 2.0)),
        "fl": (lambda i: X[i] // 0.5 + X[i] % 0.5 - X[i] ** 2,
               lambda x, y: x // 0.5 + x % 0.5 - x ** 2),
        "ax": (lambda i: Y[i] * i + 0.25,  # the axis is a Python int: float32 stays
               lambda x, y: y * np.arange(len(y), dtype=np.float32) + np.float32(0.25)),
        "ii": (lambda i: (i * 3 + 1) // 2 - i, lambda x, y: (np.arange(len(x)) * 3 + 1) // 2
               - np.arange(len(x))),
    }
    outs = {name: polyop.compute((n,), fn, name=name) for name, (fn, _) in exprs.items()}
    f = polyop.build([X, Y, *outs.values()])
    x, y = rand(33), rand(33, "float32")
    res = {name: np.empty(33, t.dtype.numpy) for name, t in outs.items()}
    f(x, y, *res.values())
    for name, (_, ref) in exprs.items():
        expected = ref(x, y)
        assert res[name].dtype == expected.dtype, name
        np.testing.assert_allclose(res[name], expected, rtol=2e-7 if name == "t" else 1e-15,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_floor_division_by_zero_is_numpy2(dtype):
    n = polyop.var("n")
    A = polyop.placeholder((n,), dtype, name="A")
    B = polyop.placeholder((n,), dtype, name="B")
    outs = [polyop.compute((n,), fn, name=name) for name, fn in (
        ("q", lambda i: A[i] // B[i]), ("r", lambda i: A[i] % B[i]),
        ("qq", lambda i: A[i] // A[i]), ("rr", lambda i: A[i] % A[i]))]
    f = polyop.build([A, B, *outs])
    lo = np.iinfo(dtype).min
    a = np.array([0, 7, -7, lo, lo, 5, 0, -3], dtype)
    b = np.array([0, 0, 2, -1, 0, -1, 3, -2], dtype)
    res = [np.full(len(a), 99, dtype) for _ in outs]
    f(a, b, *res)
    with np.errstate(all="ignore"):  # NumPy 2: x // 0 == x % 0 == 0, MIN // -1 == MIN
        expected = [a // b, a % b, a // a, a % a]
    for got, want, t in zip(res, expected, outs):
        np.testing.assert_array_equal(got, want, err_msg=t.name)
    assert res[2][0] == 0  # 0 // 0 is 0, not 1


def test_numpy2_typing():
    n = polyop.var("n")
    F = polyop.placeholder((n,), "float32", name="F")
    D = polyop.placeholder((n,), "float64", name="D")
    I = polyop.placeholder((n,), "int32", name="I")
    def dt(e):
        return e.dtype.numpy
    i = polyop.reduce_axis((0, n), name="i")
    cases = [
        (F[i] * 2.0, np.float32(1) * 2.0), (F[i] + 1, np.float32(1) + 1),
        (I[i] + 1, np.int32(1) + 1), (I[i] * 1.5, np.int32(1) * 1.5),
        (F[i] + D[i], np.float32(1) + np.float64(1)), (F[i] + I[i], np.float32(1) + np.int32(1)),
        (I[i] / 2, np.int32(1) / 2), (I[i] // 2, np.int32(1) // 2),
        (polyop.exp(F[i]), np.exp(np.float32(1))), (polyop.exp(I[i]), np.exp(np.int32(1))),
        (F[i] + polyop.const(1.0, "float64"), np.float32(1) + np.float64(1)),
        (F[i] + np.float64(1.0), np.float32(1) + np.float64(1)),
        # axes and sizes are Python ints in the reference semantics: weak
        (F[i] * i, np.float32(1) * 3), (I[i] + (i + n), np.int32(1) + 3),
        (F[i] * (i * 0.5), np.float32(1) * 1.5), (i * 0.5, np.float64(1.5)),
        (F[i] * i.astype("int64"), np.float32(1) * np.int64(3)),
    ]
    for e, ref in cases:
        assert dt(e) == ref.dtype, (str(e), ref.dtype)


def test_int_reduction_and_triangular_reduce_axis():
    n = polyop.var("n")
    A = polyop.placeholder((n,), "int32", name="A")

    def prefix(i):  # a reduce axis created inside the lambda may depend on the axes
        j = polyop.reduce_axis((0, i + 1), name="j")
        return polyop.sum(A[j] * 2, axis=j)

    P = polyop.compute((n,), prefix, name="P")
    assert P.dtype == polyop.i32
    dom = polyop.create_schedule(P).program.statement("P").domain
    assert str(dom) == "[n] -> { P[i, j] : 0 <= i < n and 0 <= j <= i }"
    a = RNG.integers(-100, 100, 12).astype(np.int32)
    p = np.empty(12, np.int32)
    polyop.build([A, P])(a, p)
    np.testing.assert_array_equal(p, np.cumsum(a * 2).astype(np.int32))


def test_scalar_output_and_shapes_with_offsets():
    n = polyop.var("n")
    A = polyop.placeholder((n + 2,), "float64", name="A")
    k = polyop.reduce_axis((0, n), name="k")
    S = polyop.compute((), lambda: polyop.sum(A[k + 1] * A[k + 2], axis=k), name="S")
    Avg = polyop.compute((n,), lambda i: (A[i] + A[i + 1] + A[i + 2]) / 3, name="Avg")
    f = polyop.build([A, S, Avg])
    a = rand(10)
    s, avg = np.empty(()), np.empty(8)
    f(a, s, avg)  # n is inferred from A's shape n + 2
    ref = 0.0
    for k in range(8):
        ref = ref + a[k + 1] * a[k + 2]
    assert s[()] == ref
    np.testing.assert_array_equal(avg, (a[:-2] + a[1:-1] + a[2:]) / 3)
    with pytest.raises(ArgumentError, match="argument Avg: shape"):
        f(a, s, np.empty(9))


def test_size_not_inferable_is_passed_by_keyword_or_listed():
    n = polyop.var("n")
    A = polyop.placeholder((n,), "float64", name="A")
    B = polyop.compute((n,), lambda i: A[i] * 2.0, name="B")
    C = polyop.compute((n // 2,), lambda i: B[2 * i] + B[2 * i + 1], name="C")
    f = polyop.build(C, [C, A])  # B is scratch; n comes from A
    c = np.empty(3)
    a = rand(7)
    f(c, a)
    np.testing.assert_array_equal(c, (a[0:6:2] * 2 + a[1:6:2] * 2))
    g = polyop.build(C, [A, C])
    g(a, c)
    h = polyop.build(C, [C, A, n])  # a size variable in the list is positional
    h(c, a, 7)
    with pytest.raises(ArgumentError, match=r"argument C: shape \(3,\) does not match "
                                            r"\[n // 2\] = \(4,\) \(with n=8\)"):
        h(c, a, 8)
    # n // 2 == 3 leaves n in {6, 7}: the caller says which
    X = polyop.placeholder((n // 2,), "float64", name="X")
    Y = polyop.compute((n // 2,), lambda i: X[i] + n % 2, name="Y")
    f = polyop.build([X, Y])
    x, y = rand(3), np.empty(3)
    with pytest.raises(ArgumentError, match="size n is not determined by the argument "
                                            "shapes; pass it as n=..."):
        f(x, y)
    f(x, y, n=7)
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ArgumentError, match=r"argument X: shape \(3,\) does not match"):
        f(x, y, n=9)


# -- errors ----------------------------------------------------------------------------------------

def test_non_affine_index_is_rejected_at_compute_time():
    n = polyop.var("n")
    A = polyop.placeholder((n, n), "float64", name="A")
    B = polyop.placeholder((n,), "int32", name="B")
    with pytest.raises(FrontendError, match=r"index 1 of tensor A in 'A\[i, i \* j\]' is not "
                                            r"affine.*product of two non-constant terms"):
        polyop.compute((n, n), lambda i, j: A[i, i * j], name="C")
    with pytest.raises(FrontendError, match=r"index 0 of tensor A .*data-dependent"):
        polyop.compute((n,), lambda i: A[B[i], i], name="C")
    with pytest.raises(FrontendError, match=r"index 1 of tensor A \('i / 2'\) is not an integer"):
        polyop.compute((n,), lambda i: A[i, i / 2], name="C")
    with pytest.raises(FrontendError) as info:
        polyop.compute((n,), lambda i: A[i, n * i], name="C")
    assert info.value.filename == __file__
    # quasi-affine indices are fine
    C = polyop.compute((n,), lambda i: A[i // 2, i - i % 2], name="C")
    a, c = rand((5, 5)), np.empty(5)
    polyop.build([A, C])(a, c)
    np.testing.assert_array_equal(c, [a[i // 2, i - i % 2] for i in range(5)])


def test_out_of_bounds_read_is_rejected_and_names_the_tensor():
    n = polyop.var("n")
    A = polyop.placeholder((n,), "float64", name="A")
    C = polyop.compute((n,), lambda i: A[i + 1], name="C")
    with pytest.raises(BoundsError, match=r"C \(line \d+: C\[i\] = A\[i \+ 1\]\) reads "
                                          r"A\[i \+ 1\] out of bounds") as info:
        polyop.build(C, [A, C])
    assert info.value.array == "A"
    with pytest.raises(BoundsError):
        polyop.create_schedule(C)
    # an unguarded padding read is rejected, a guarded one accepted
    bad = polyop.compute((n + 2,), lambda i: A[i - 1], name="bad")
    with pytest.raises(BoundsError, match="reads A\\[i - 1\\]"):
        polyop.create_schedule(bad)
    ok = polyop.compute((n + 2,), lambda i: polyop.if_then_else(
        polyop.logical_and(i >= 1, i <= n), A[i - 1], 0.0), name="ok")
    f = polyop.build(ok, [A, ok])
    a, o = rand(5), np.empty(7)
    f(a, o)
    np.testing.assert_array_equal(o, np.pad(a, 1))
    # the else branch is guarded by the negated condition
    ok2 = polyop.compute((n + 2,), lambda i: polyop.if_then_else(
        (i < 1) | (i > n), -1.0, A[i - 1]), name="ok2")
    polyop.build(ok2, [A, ok2])(a, o)
    np.testing.assert_array_equal(o, np.pad(a, 1, constant_values=-1))


def test_reduce_axis_errors():
    n = polyop.var("n")
    A = polyop.placeholder((n, n), "float64", name="A")
    k = polyop.reduce_axis((0, n), name="k")
    with pytest.raises(FrontendError, match="reduce axis k is used outside a reduction"):
        polyop.compute((n,), lambda i: A[i, k], name="C")
    k2 = polyop.reduce_axis((0, n), name="k2")
    with pytest.raises(FrontendError, match="reduce axis k2 is not used in the reduction body"):
        polyop.compute((n,), lambda i: polyop.sum(A[i, k], axis=[k, k2]), name="C")
    with pytest.raises(FrontendError, match="reduce axis k2 is used outside"):
        polyop.compute((n,), lambda i: polyop.sum(A[i, k] + A[k2, i], axis=k), name="C")
    with pytest.raises(FrontendError, match="must be the whole body of a compute"):
        polyop.compute((n,), lambda i: polyop.sum(A[i, k], axis=k) * 2.0, name="C")
    with pytest.raises(FrontendError, match="is not a reduce axis.*polyop.maximum"):
        polyop.compute((n,), lambda i: polyop.max(A[i, 0], A[i, 1]), name="C")
    with pytest.raises(FrontendError, match="reduction inside a reduction"):
        polyop.compute((n,), lambda i: polyop.sum(polyop.sum(A[k2, k], axis=k2), axis=k),
                       name="C")
    T = polyop.compute((n,), lambda i: A[i, i], name="T")
    with pytest.raises(FrontendError, match="axis i belongs to compute T"):
        polyop.compute((n,), lambda j: A[j, T.axis[0]], name="C")


def test_argument_list_errors():
    A, B, C = te_matmul("float32")
    sch = polyop.create_schedule(C)
    with pytest.raises(ArgumentError, match="placeholder B is read by the schedule but "
                                            "missing from the argument list"):
        polyop.build(sch, [A, C])
    with pytest.raises(ArgumentError, match="output tensor C is missing"):
        polyop.build(sch, [A, B])
    other = polyop.placeholder((3,), "float32", name="other")
    with pytest.raises(ArgumentError, match="tensor other in the argument list is not part"):
        polyop.build(sch, [A, B, C, other])
    with pytest.raises(ArgumentError, match="A appears twice"):
        polyop.build(sch, [A, B, C, A])
    with pytest.raises(TypeError, match="give the argument list"):
        polyop.build(sch)


def test_call_errors_name_the_argument():
    A, B, C = te_matmul("float32")
    f = polyop.build([A, B, C])
    a, b, c = rand((4, 3), "float32"), rand((3, 5), "float32"), np.empty((4, 5), np.float32)
    with pytest.raises(ArgumentError, match=r"takes 3 arguments \(A, B, C\) but 2"):
        f(a, b)
    with pytest.raises(ArgumentError, match="argument B: dtype float64 does not match f32") \
            as info:
        f(a, b.astype(np.float64), c)
    assert info.value.argument == "B"
    with pytest.raises(ArgumentError, match=r"argument B: shape \(4, 5\) does not match "
                                            r"\[K, N\] = \(3, N\) \(with M=4, K=3\)"):
        f(a, rand((4, 5), "float32"), c)
    with pytest.raises(ArgumentError, match="argument C: expected a numpy array"):
        f(a, b, [[0.0]])
    with pytest.raises(ArgumentError, match="argument C: expected 2 dimensions"):
        f(a, b, np.empty(5, np.float32))
    with pytest.raises(ArgumentError, match="unexpected argument 'Q'"):
        f(a, b, c, Q=3)


def test_definition_errors():
    n = polyop.var("n")
    A = polyop.placeholder((n, n), "float64", name="A")
    with pytest.raises(FrontendError, match="the lambda takes 1 argument but the shape has 2"):
        polyop.compute((n, n), lambda i: A[i, i], name="C")
    with pytest.raises(FrontendError, match="dimension 1 has a negative extent"):
        polyop.placeholder((3, -1), "float32", name="P")
    with pytest.raises(FrontendError, match="extent of dimension 0 .*n \\* n.*not affine"):
        polyop.placeholder((n * n,), "float32", name="P")
    with pytest.raises(FrontendError, match="A has 2 dimensions but is indexed with 1"):
        polyop.compute((n,), lambda i: A[i], name="C")
    with pytest.raises(FrontendError, match="tensor A is used as a value without an index"):
        polyop.compute((n,), lambda i: A + 1.0, name="C")
    with pytest.raises(FrontendError, match="index 0 of tensor A .* is not an integer"):
        polyop.compute((n,), lambda i: A[i * 1.0, i], name="C")
    with pytest.raises(TypeError, match="no Python truth value"):
        polyop.compute((n,), lambda i: A[i, i] if A[i, i] > 0 else 0.0, name="C")
    with pytest.raises(TypeError, match="no Python truth value"):
        polyop.compute((n,), lambda i: max(A[i, i], 0.0), name="C")
    with pytest.raises(TypeError, match="'~' combines conditions"):
        polyop.compute((n,), lambda i: ~i, name="C")
    with pytest.raises(TypeError, match="'&' combines conditions"):
        polyop.compute((n,), lambda i: A[i, i] * ((i > 0) & 1), name="C")
    with pytest.raises(TypeError, match="no Python truth value"):
        polyop.compute((n,), lambda i: polyop.if_then_else(0 < i < n - 1, A[i, i], 0.0))
    with pytest.raises(TypeError, match="unsupported dtype"):
        polyop.placeholder((n,), "float16", name="P")


def test_python_numbers_needed_get_polyop_errors():
    import math

    n = polyop.var("n")
    A = polyop.placeholder((n,), "float64", name="A")
    line = test_python_numbers_needed_get_polyop_errors.__code__.co_firstlineno
    for fn, what in ((lambda i: math.exp(A[i]), "float()"), (lambda i: int(A[i]), "int()"),
                     (lambda i: A[range(A[i])[0]], "integer index")):
        with pytest.raises(FrontendError) as info:
            polyop.compute((n,), fn, name="B")
        err = info.value
        assert isinstance(err, TypeError)  # still what Python code catches
        assert what in str(err) and "use polyop.exp" in str(err)
        assert err.filename == __file__ and line < err.line < line + 8
    with pytest.raises(FrontendError, match="no Python truth value"):
        polyop.compute((n,), lambda i: max(A[i], 0.0), name="B")


def test_numpy_integers_as_extents_and_bounds():
    P = polyop.placeholder((np.int64(3), np.int32(4)), "float64", name="P")
    r = polyop.reduce_axis((np.int64(0), np.int64(4)), name="r")
    S = polyop.compute((np.int64(3),), lambda i: polyop.sum(P[i, r], axis=r), name="S")
    f = polyop.build([P, S])
    p, out = rand((3, 4)), np.zeros(3)
    f(p, out)
    np.testing.assert_allclose(out, p.sum(axis=1), rtol=1e-15)


def test_layout_of_the_wrong_arity_is_a_schedule_error():
    A, B, C = te_matmul("float32")
    for layout, sig in ((lambda k: (k,), "(k)"), (lambda a, b, c: (a, b), "(a, b, c)")):
        sch = polyop.create_schedule(C)
        with pytest.raises(polyop.ScheduleError, match=r"one index per dimension of the "
                           r"array \(2: lambda i0, i1: ...\), but its signature is "
                           + re.escape(sig)):
            sch.cache_read(B, C, layout=layout, name="Bp")
    sch = polyop.create_schedule(C)
    with pytest.raises(polyop.ScheduleError, match="must be a function"):
        sch.cache_write(C, layout=(1, 0))


def test_expression_identity_semantics():
    n = polyop.var("n")
    k1, k2 = polyop.reduce_axis((0, n), "k1"), polyop.reduce_axis((0, n), "k2")
    assert k1 in [k2, k1] and k2 not in [k1]
    assert {k1: 1}[k1] == 1
    assert str((n + 1) * 2 - n // 3) == "(n + 1) * 2 - n // 3"


# -- fusion of stages: compute_inline and compute_at ---------------------------------------

def test_gemm_bias_relu_fused_into_one_nest():
    M, N, K = 13, 10, 7
    A = polyop.placeholder((M, K), "float32", name="A")
    B = polyop.placeholder((K, N), "float32", name="B")
    bias = polyop.placeholder((N,), "float32", name="bias")
    k = polyop.reduce_axis((0, K), name="k")
    T = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="T")
    D = polyop.compute((M, N), lambda i, j: T[i, j] + bias[j], name="D")
    R = polyop.compute((M, N), lambda i, j: polyop.maximum(D[i, j], 0.0), name="R")
    sch = polyop.create_schedule(R)
    sch.compute_inline(D)
    i, _ = sch.get_loops(R)
    sch.compute_at(T, i)
    assert str(sch).splitlines()[1:] == ["  inline(D)", "  compute_at(T, i)"]
    text = str(polyop.lower(sch, [A, B, bias, R]))
    assert "max(T[i][j] + bias[j], 0.0)" in text and text.count("for (i = ") == 1
    f = polyop.build(sch, [A, B, bias, R])
    a, b, c = rand((M, K), "float32"), rand((K, N), "float32"), rand((N,), "float32")
    r = np.empty((M, N), "float32")
    f(a, b, c, r)
    np.testing.assert_allclose(r, np.maximum(a @ b + c, 0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ArgumentError, match="D was inlined"):
        polyop.build(sch, [A, B, bias, D, R])
    with pytest.raises(polyop.ScheduleError, match="T is a reduction"):
        sch.compute_inline(T)
