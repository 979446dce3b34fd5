"""CPU code generator: hand-built loop IR, compiled with LLVM, checked against
numpy and against CPython running the same loop nest (bit for bit where the
reference does the same operations in the same order)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from polyop.codegen import CodegenError, build_module, compile_function
from polyop.ir import (
    BOOL,
    Block,
    Call,
    Cast,
    Cmp,
    Function,
    If,
    Logic,
    Neg,
    Not,
    Select,
)
from polyop.types import DType, f32, f64, i32, i64
from tests.irbuild import B, C, L, S, V, array, gemm_ikj, loop, scalar, size


def pairs(a: np.ndarray, b: np.ndarray):
    """Element pairs of two arrays as Python numbers."""
    return zip(a.tolist(), b.tolist(), strict=True)


def bits(a: np.ndarray) -> np.ndarray:
    """Integer view of a float array, so -0.0 and NaN payloads compare exactly."""
    return a.view(np.int64 if a.dtype == np.float64 else np.int32)


i, j, k, n = V("i"), V("j"), V("k"), V("n")


def elementwise(name: str, out_dt: DType, in_dts: tuple[DType, ...], value, kind="serial"):
    """``out[i] = value`` for i < n, with inputs x0, x1, ... of the given types."""
    params = (size("n"), array("out", out_dt, "n"),
              *(array(f"x{q}", dt, "n") for q, dt in enumerate(in_dts)))
    return Function(name, params, (), loop("i", C(0), n, S("out", i, value), kind=kind))


# -- whole kernels -----------------------------------------------------------------


def gemm_reference(alpha, A, B, C):
    M, K = A.shape
    N = B.shape[1]
    for ii in range(M):
        for kk in range(K):
            for jj in range(N):
                C[ii, jj] = C[ii, jj] + alpha * A[ii, kk] * B[kk, jj]


def test_gemm_matches_numpy_non_square():
    cf = compile_function(gemm_ikj())
    rng = np.random.default_rng(0)
    M, N, K = 37, 53, 29
    A, Bm, Cm = rng.random((M, K)), rng.random((K, N)), rng.random((M, N))
    expect = Cm + 1.5 * A @ Bm
    cf(M, N, K, 1.5, A, Bm, Cm)
    np.testing.assert_allclose(Cm, expect, rtol=1e-13)


def test_gemm_bit_identical_to_python():
    cf = compile_function(gemm_ikj())
    rng = np.random.default_rng(1)
    M, N, K = 7, 13, 11
    A, Bm = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C0 = rng.standard_normal((M, N))
    got, ref = C0.copy(), C0.copy()
    cf(M, N, K, 0.3, A, Bm, got)
    gemm_reference(0.3, A, Bm, ref)
    np.testing.assert_array_equal(got, ref)


def test_gemm_f32_vectorises_without_contraction():
    cf = compile_function(gemm_ikj(f32))
    rng = np.random.default_rng(2)
    M, N, K = 19, 45, 23
    A, Bm = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
    Cm = np.zeros((M, N), np.float32)
    ref = Cm.copy()
    alpha = np.float32(0.7)
    for kk in range(K):  # the same per-element operation order, in float32
        ref += alpha * A[:, kk:kk + 1] * Bm[kk:kk + 1, :]
    cf(M, N, K, float(alpha), A, Bm, Cm)
    np.testing.assert_array_equal(Cm, ref)
    assert re.search(r"<(4|8|16) x float>", cf.llvm_ir)
    assert "fmuladd" not in cf.llvm_ir and "contract" not in cf.llvm_ir
    assert "vfmadd" not in cf.asm


def test_triangular_bounds_with_min_max_floor_div():
    # for i in range(n): for j in range(max(0, (i - 5) // 2), min(n, i // 3 + 4)): A[i, j] += i - j
    lo = B("max", C(0), B("fdiv", B("sub", i, C(5)), C(2)))
    hi = B("min", n, B("add", B("fdiv", i, C(3)), C(4)))
    val = B("add", L("A", i, j, dt=i64), B("sub", i, j))
    fn = Function("tri", (size("n"), array("A", i64, "n", "n")), (),
                  loop("i", C(0), n, loop("j", lo, hi, S("A", i, j, val))))
    cf = compile_function(fn)
    for nn in (0, 1, 5, 17, 40):
        got = np.zeros((nn, nn), np.int64)
        ref = np.zeros((nn, nn), np.int64)
        cf(nn, got)
        for ii in range(nn):
            for jj in range(max(0, (ii - 5) // 2), min(nn, ii // 3 + 4)):
                ref[ii, jj] += ii - jj
        np.testing.assert_array_equal(got, ref)


def test_step_three_nonzero_start():
    fn = Function("strided", (size("n"), array("x", f64, "n")), (),
                  loop("i", C(2), n, S("x", i, B("add", L("x", i), Cast(i, f64))), step=3))
    cf = compile_function(fn)
    for nn in (0, 2, 3, 5, 6, 100, 101):
        x = np.ones(nn)
        ref = np.ones(nn)
        for ii in range(2, nn, 3):
            ref[ii] += ii
        cf(nn, x)
        np.testing.assert_array_equal(x, ref)


def test_loop_bounds_are_evaluated_once_and_empty_loops_skip():
    # for i in range(n, 3): never runs when n >= 3; inner bound reads an array
    fn = Function("once", (size("n"), array("x", i64, "n"), array("hi", i64, 1)), (),
                  loop("i", C(0), L("hi", C(0), dt=i64),
                       S("hi", C(0), B("sub", L("hi", C(0), dt=i64), C(1))),
                       S("x", i, B("add", L("x", i, dt=i64), C(1)))))
    cf = compile_function(fn)
    x, hi = np.zeros(6, np.int64), np.array([6], np.int64)
    cf(6, x, hi)  # Python's range(hi[0]) reads hi once: all six run
    np.testing.assert_array_equal(x, np.ones(6, np.int64))
    assert hi[0] == 0


# -- Python-exact arithmetic -------------------------------------------------------


@pytest.mark.parametrize("dt", [i64, i32])
def test_int_floor_div_and_mod_match_python(dt):
    a_vals = np.arange(-9, 10)
    b_vals = np.array([v for v in range(-5, 6) if v != 0])
    a, b = (x.ravel().astype(dt.numpy) for x in np.meshgrid(a_vals, b_vals))
    q = np.zeros_like(a)
    r = np.zeros_like(a)
    xa, xb = L("a", i, dt=dt), L("b", i, dt=dt)
    fn = Function("divmod", (size("n"), array("a", dt, "n"), array("b", dt, "n"),
                             array("q", dt, "n"), array("r", dt, "n")), (),
                  loop("i", C(0), n, S("q", i, B("fdiv", xa, xb)), S("r", i, B("mod", xa, xb))))
    compile_function(fn)(len(a), a, b, q, r)
    np.testing.assert_array_equal(q, [int(x) // int(y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_array_equal(r, [int(x) % int(y) for x, y in zip(a, b, strict=True)])


def test_int_floor_div_mod_by_constants_on_index():
    # i from -20: i // 4, i % 4, i // -3, i % -3 (index context, nsw)
    fn = Function("cdiv", (size("n"), array("out", i64, "n", 4)), (),
                  loop("i", C(-20), B("sub", n, C(20)),
                       S("out", B("add", i, C(20)), C(0), B("fdiv", i, C(4))),
                       S("out", B("add", i, C(20)), C(1), B("mod", i, C(4))),
                       S("out", B("add", i, C(20)), C(2), B("fdiv", i, C(-3))),
                       S("out", B("add", i, C(20)), C(3), B("mod", i, C(-3)))))
    out = np.zeros((40, 4), np.int64)
    compile_function(fn)(40, out)
    ref = [[x // 4, x % 4, x // -3, x % -3] for x in range(-20, 20)]
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("dt", [f64, f32])
def test_float_floor_div_and_mod_match_python(dt):
    vals = [-7.5, -3.0, -2.5, -1.0, -0.3, -0.0, 0.0, 0.1, 0.3, 1.0, 2.5, 3.0, 7.25, 1e300, -1e-300]
    if dt == f32:
        vals = [v for v in vals if abs(v) < 1e30 and (v == 0 or abs(v) > 1e-30)]
    divs = [v for v in vals if v != 0.0]
    a, b = (x.ravel().astype(dt.numpy) for x in np.meshgrid(vals, divs))
    q, r = np.zeros_like(a), np.zeros_like(a)
    xa, xb = L("a", i, dt=dt), L("b", i, dt=dt)
    fn = Function("fdivmod", (size("n"), array("a", dt, "n"), array("b", dt, "n"),
                              array("q", dt, "n"), array("r", dt, "n")), (),
                  loop("i", C(0), n, S("q", i, B("fdiv", xa, xb)), S("r", i, B("mod", xa, xb))))
    compile_function(fn)(len(a), a, b, q, r)
    if dt == f64:  # CPython's float // and %
        ref_q = np.array([x // y for x, y in pairs(a, b)])
        ref_r = np.array([x % y for x, y in pairs(a, b)])
    else:  # numpy's float32 // and % (same algorithm, in float32)
        ref_q, ref_r = a // b, a % b
    np.testing.assert_array_equal(bits(q), bits(ref_q.astype(dt.numpy)))
    np.testing.assert_array_equal(bits(r), bits(ref_r.astype(dt.numpy)))
    if dt == f64:
        # 1.0 // 0.1 is 9.0 in Python, not floor(1.0 / 0.1) == 10.0
        assert q[list(pairs(a, b)).index((1.0, 0.1))] == 9.0


def test_true_division_of_ints_gives_float():
    fn = elementwise("tdiv", f64, (i64, i64), B("div", L("x0", i, dt=i64), L("x1", i, dt=i64), f64))
    a = np.array([7, -7, 1, 10**15 + 1, 3], np.int64)
    b = np.array([2, 2, 3, 7, -4], np.int64)
    out = np.zeros(5)
    compile_function(fn)(5, out, a, b)
    np.testing.assert_array_equal(out, [x / y for x, y in pairs(a, b)])


def test_min_max_return_first_on_ties():
    x0, x1 = L("x0", i), L("x1", i)
    a = np.array([0.0, -0.0, 1.0, 2.0, -3.0, np.nan, 1.0])
    b = np.array([-0.0, 0.0, 2.0, 1.0, -3.0, 1.0, np.nan])
    for op, pyf in (("min", min), ("max", max)):
        out = np.zeros(len(a))
        compile_function(elementwise(op, f64, (f64, f64), B(op, x0, x1)))(len(a), out, a, b)
        ref = np.array([pyf(p, q) for p, q in pairs(a, b)])
        np.testing.assert_array_equal(bits(out), bits(ref))


def test_int_min_max_abs_neg():
    x0, x1 = L("x0", i, dt=i32), L("x1", i, dt=i32)
    val = B("add", B("mul", B("min", x0, x1), C(1000, i32)),
            B("add", B("max", x0, x1), B("mul", Call("abs", (x0,), i32), Neg(x1, i32))))
    a = np.array([-5, 3, 0, 7, -2], np.int32)
    b = np.array([4, 3, -1, -9, -2], np.int32)
    out = np.zeros(5, np.int32)
    compile_function(elementwise("iminmax", i32, (i32, i32), val))(5, out, a, b)
    ref = [min(p, q) * 1000 + max(p, q) + abs(p) * -q for p, q in pairs(a, b)]
    np.testing.assert_array_equal(out, ref)


def test_casts():
    x = L("x0", i)
    fn = Function("casts", (size("n"), array("x0", f64, "n"), array("oi", i64, "n"),
                            array("of", f32, "n"), array("oj", i32, "n"), array("ob", i64, "n")),
                  (), loop("i", C(0), n,
                           S("oi", i, Cast(x, i64)),                       # int(x): truncation
                           S("of", i, Cast(Cast(x, f32), f32)),            # f64 -> f32
                           S("oj", i, Cast(B("mul", Cast(x, i64), C(3 * 2**30)), i32)),  # wrap
                           S("ob", i, Cast(Cmp("gt", x, C(0.0, f64)), i64))))  # bool -> int
    xs = np.array([-2.7, -0.5, 0.0, 0.5, 2.7, 1e10, -3.0])
    oi, of, oj, ob = (np.zeros(7, t) for t in (np.int64, np.float32, np.int32, np.int64))
    compile_function(fn)(7, xs, oi, of, oj, ob)
    np.testing.assert_array_equal(oi, [int(v) for v in xs.tolist()])
    np.testing.assert_array_equal(of, xs.astype(np.float32))
    np.testing.assert_array_equal(oj, (xs.astype(np.int64) * (3 * 2**30)).astype(np.int32))
    np.testing.assert_array_equal(ob, (xs > 0).astype(np.int64))


def test_implicit_conversions_mixed_types():
    # out_f32[i] = x_i32[i] * s_f64 + y_i64[i]  (computed in f64, stored as f32)
    val = B("add", B("mul", L("x", i, dt=i32), V("s", f64), f64), L("y", i, dt=i64), f64)
    fn = Function("mixed", (size("n"), scalar("s", f64), array("x", i32, "n"),
                            array("y", i64, "n"), array("out", f32, "n")), (),
                  loop("i", C(0), n, S("out", i, val)))
    x = np.arange(-3, 9, dtype=np.int32)
    y = np.arange(12, dtype=np.int64) * 7
    out = np.zeros(12, np.float32)
    compile_function(fn)(12, 0.1, x, y, out)
    ref = np.array([p * 0.1 + q for p, q in pairs(x, y)]).astype(np.float32)
    np.testing.assert_array_equal(out, ref)


def test_int_and_float_pow():
    xi, yi = L("x0", i, dt=i64), L("x1", i, dt=i64)
    a = np.array([2, -3, 5, 0, 1, -1, -1, 7, 2], np.int64)
    b = np.array([10, 3, 0, 0, -4, -3, -2, 2, -1], np.int64)
    out = np.zeros(len(a), np.int64)
    compile_function(elementwise("ipow", i64, (i64, i64), B("pow", xi, yi)))(len(a), out, a, b)
    np.testing.assert_array_equal(out, [int(p ** q) for p, q in pairs(a, b)])
    xf = np.array([0.5, 2.0, 3.7, 10.0])
    outf = np.zeros(4)
    fn = elementwise("fpow", f64, (f64,), B("pow", L("x0", i), C(2.5, f64)))
    compile_function(fn)(4, outf, xf)
    np.testing.assert_array_equal(outf, [v ** 2.5 for v in xf.tolist()])


# -- math functions -------------------------------------------------------------------

MATH = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
        "tanh": np.tanh, "abs": np.abs}


@pytest.mark.parametrize("dt", [f64, f32])
@pytest.mark.parametrize("name", sorted(MATH))
def test_math_functions(name, dt):
    x = np.linspace(0.01, 5.0, 101).astype(dt.numpy)
    if name in ("sin", "cos", "tanh", "abs"):
        x = np.concatenate([x, -x])
    out = np.zeros_like(x)
    fn = elementwise(f"m_{name}", dt, (dt,), Call(name, (L("x0", i, dt=dt),), dt))
    cf = compile_function(fn)
    cf(len(x), out, x)
    ref = MATH[name](x)
    if name in ("sqrt", "abs"):
        np.testing.assert_array_equal(out, ref)
    else:
        np.testing.assert_allclose(out, ref, rtol=2e-15 if dt == f64 else 2e-6, atol=0)
    if dt == f64 and name != "abs":  # same libm as CPython's math module
        np.testing.assert_array_equal(out, [getattr(math, name)(v) for v in x.tolist()])
    if dt == f32:
        assert ".f64" not in cf.llvm_ir_unoptimized and "@tanh(" not in cf.llvm_ir_unoptimized


# -- temporaries, conditionals, selects ---------------------------------------------------


def test_dot_product_with_temporary():
    fn = Function("dot", (size("n"), array("x", f64, "n"), array("y", f64, "n"),
                          array("out", f64, 1)), (("acc", f64),),
                  Block((S("acc", C(0.0, f64)),
                         loop("i", C(0), n, S("acc", B("add", L("acc"),
                                                       B("mul", L("x", i), L("y", i))))),
                         S("out", C(0), L("acc")))))
    cf = compile_function(fn)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(1001), rng.standard_normal(1001)
    out = np.zeros(1)
    cf(1001, x, y, out)
    ref = 0.0
    for p, q in pairs(x, y):
        ref = ref + p * q
    assert out[0] == ref
    assert "alloca" not in cf.llvm_ir  # promoted to a register


def test_zero_d_array_param_and_i32_temporary():
    # count = 0; for i: if x[i] > t: count += 1; c[()] = count
    fn = Function("count", (size("n"), scalar("t", f32), array("x", f32, "n"),
                            array("c", i32)), (("cnt", i32),),
                  Block((S("cnt", C(0, i32)),
                         loop("i", C(0), n, If(Cmp("gt", L("x", i, dt=f32), V("t", f32)),
                                               S("cnt", B("add", L("cnt", dt=i32), C(1, i32))))),
                         S("c", L("cnt", dt=i32)))))
    x = np.linspace(-1, 1, 50).astype(np.float32)
    c = np.zeros((), np.int32)
    compile_function(fn)(50, 0.25, x, c)
    assert c[()] == int(np.sum(x > np.float32(0.25)))


def test_if_else():
    # if i % 3 == 0: y[i] = x[i] * 2 elif x[i] < 0: y[i] = -x[i] else: y[i] = x[i] + 1
    x = L("x", i)
    body = If(Cmp("eq", B("mod", i, C(3)), C(0)), S("y", i, B("mul", x, C(2.0, f64))),
              If(Cmp("lt", x, C(0.0, f64)), S("y", i, Neg(x, f64)),
                 S("y", i, B("add", x, C(1.0, f64)))))
    fn = Function("ifelse", (size("n"), array("x", f64, "n"), array("y", f64, "n")), (),
                  loop("i", C(0), n, body))
    xs = np.linspace(-3, 3, 31)
    ys = np.zeros(31)
    compile_function(fn)(31, xs, ys)
    ref = [v * 2 if ii % 3 == 0 else (-v if v < 0 else v + 1) for ii, v in enumerate(xs.tolist())]
    np.testing.assert_array_equal(ys, ref)


def test_select_untaken_branch_is_not_evaluated():
    # y[i] = x[i - 1] if i > 0 else 0.0, and a far out-of-bounds read that would fault
    far = L("x", B("sub", i, C(10**12)))
    val = B("add", Select(Cmp("gt", i, C(0)), L("x", B("sub", i, C(1))), C(0.0, f64), f64),
            Select(Cmp("lt", i, C(0)), far, C(0.5, f64), f64))
    fn = Function("shift", (size("n"), array("x", f64, "n"), array("y", f64, "n")), (),
                  loop("i", C(0), n, S("y", i, val)))
    xs = np.arange(1.0, 11.0)
    ys = np.zeros(10)
    cf = compile_function(fn)
    cf(10, xs, ys)
    np.testing.assert_array_equal(ys, [(xs[ii - 1] if ii > 0 else 0.0) + 0.5 for ii in range(10)])
    assert "phi" in cf.llvm_ir_unoptimized


def test_short_circuit_logic_and_not():
    # y[i] = 1 if (i > 0 and x[i-1] > 0) or not (x[i] <= 2) else 0 ; ne is true for NaN
    left = Logic("and", Cmp("gt", i, C(0)), Cmp("gt", L("x", B("sub", i, C(1))), C(0.0, f64)))
    cond = Logic("or", left, Not(Cmp("le", L("x", i), C(2.0, f64))))
    cond = Logic("or", cond, Cmp("ne", L("x", i), L("x", i)))
    fn = Function("logic", (size("n"), array("x", f64, "n"), array("y", i64, "n")), (),
                  loop("i", C(0), n, S("y", i, Select(cond, C(1), C(0), i64))))
    xs = np.array([1.0, -1.0, 3.0, 0.5, np.nan, -2.0, 2.0, 2.5])
    ys = np.zeros(8, np.int64)
    compile_function(fn)(8, xs, ys)
    xl = xs.tolist()
    ref = [1 if (ii > 0 and xl[ii - 1] > 0) or not (xl[ii] <= 2) or xl[ii] != xl[ii] else 0
           for ii in range(8)]
    np.testing.assert_array_equal(ys, ref)


def test_bool_values_and_comparisons():
    # a bool temp, bool compared with an int, bool stored into an f64 array
    b = L("flag", dt=BOOL)
    fn = Function("bools", (size("n"), array("x", i64, "n"), array("y", f64, "n")),
                  (("flag", BOOL),),
                  loop("i", C(0), n, S("flag", Cmp("ge", L("x", i, dt=i64), C(2))),
                       S("y", i, B("add", Cast(b, f64), Cast(Cmp("eq", b, C(1)), f64)))))
    xs = np.arange(5, dtype=np.int64)
    ys = np.zeros(5)
    compile_function(fn)(5, xs, ys)
    np.testing.assert_array_equal(ys, [2.0 * (v >= 2) for v in xs.tolist()])


# -- loop kinds and vectorisation ---------------------------------------------------------


def saxpy(kind: str = "serial") -> Function:
    return Function("saxpy", (size("n"), scalar("a", f32), array("x", f32, "n"),
                              array("y", f32, "n")), (),
                    loop("i", C(0), n, S("y", i, B("add", B("mul", V("a", f32), L("x", i, dt=f32)),
                                                   L("y", i, dt=f32))), kind=kind))


@pytest.mark.parametrize("kind", ["serial", "vector"])
def test_elementwise_f32_vectorises(kind):
    """A serial loop is vectorised by LLVM, a ``vector`` loop by polyop itself,
    at the host's width; either way the results are CPython's."""
    cf = compile_function(saxpy(kind))
    assert re.search(r"<(4|8|16) x float>", cf.llvm_ir)
    x = np.linspace(0, 1, 1003, dtype=np.float32)
    y = np.ones(1003, np.float32)
    ref = np.float32(2.5) * x + y
    cf(1003, 2.5, x, y)
    np.testing.assert_array_equal(y, ref)
    if kind == "vector":
        assert re.search(r"load <(4|8|16) x float>", cf.llvm_ir_unoptimized)
        assert "llvm.loop.isvectorized" in cf.llvm_ir_unoptimized


def test_vector_loop_is_not_unrolled_by_llvm():
    """polyop's vector loop and its epilogue carry ``unroll.disable`` beside
    ``isvectorized`` (``vectorized_metadata``): LLVM's runtime unrolling
    (four copies and a remainder loop) cost more than it saved on short rows."""
    cf = compile_function(saxpy("vector"))
    ids = re.findall(r"!llvm\.loop (!\d+)", cf.llvm_ir_unoptimized)
    assert ids
    for loop_id in set(ids):
        node = re.search(rf"^{loop_id} = distinct !{{(.*)}}$", cf.llvm_ir_unoptimized, re.M)
        props = [re.search(rf"^{p} = !{{(.*)}}$", cf.llvm_ir_unoptimized, re.M).group(1)
                 for p in node.group(1).split(", ")[1:]]
        assert any("llvm.loop.isvectorized" in p for p in props)
        assert any("llvm.loop.unroll.disable" in p for p in props)


@pytest.mark.parametrize("bits, vty", [(128, "<4 x float>"), (256, "<8 x float>"),
                                       (512, "<16 x float>")])
def test_vector_loop_is_explicit_vector_ir_of_the_width(bits, vty):
    module, _ = build_module(saxpy("vector"), target=bits)
    text = str(module)
    assert f"load {vty}" in text and f"store {vty}" in text
    assert f"fmul {vty}" in text and f"fadd {vty}" in text
    assert "llvm.loop.vectorize.enable" not in text


def test_unrolled_loop():
    # for i: for u in range(4) (unrolled): y[4*i + u] = x[4*i + u] * (u + 1)
    idx = B("add", B("mul", i, C(4)), V("u"))
    inner = loop("u", C(0), C(4), S("y", idx, B("mul", L("x", idx), Cast(B("add", V("u"), C(1)),
                                                                       f64))), kind="unrolled")
    fn = Function("unr", (size("n"), array("x", f64, B("mul", n, C(4))),
                          array("y", f64, B("mul", n, C(4)))), (), loop("i", C(0), n, inner))
    cf = compile_function(fn)
    assert "llvm.loop.unroll.full" in cf.llvm_ir_unoptimized
    xs = np.arange(40.0)
    ys = np.zeros(40)
    cf(10, xs, ys)
    np.testing.assert_array_equal(ys, xs * np.tile([1.0, 2.0, 3.0, 4.0], 10))


def test_unrolled_loop_with_symbolic_bound():
    inc = S("y", j, B("add", L("y", j), C(1.0, f64)))
    inner = loop("j", i, B("min", n, B("add", i, C(4))), inc, kind="unrolled")
    fn = Function("unr2", (size("n"), array("y", f64, "n")), (), loop("i", C(0), n, inner, step=4))
    ys = np.zeros(13)
    compile_function(fn)(13, ys)
    np.testing.assert_array_equal(ys, np.ones(13))


def test_parallel_loop_calls_thread_runtime():
    cf = compile_function(saxpy("parallel"))
    assert "polyop_rt_parallel_for" in cf.llvm_ir


def test_native_signature():
    module, name = build_module(gemm_ikj())
    text = str(module)
    assert name == "polyop_gemm"
    assert 'define void @"polyop_gemm"(i64 %"M", i64 %"N", i64 %"K", double %"alpha"' in text
    assert text.count("noalias") == 3 and text.count("captures(none)") == 3
    assert "nounwind" in text


def test_malformed_ir_is_reported():
    bad = Function("bad", (size("n"),), (), loop("i", C(0), n, S("nope", i, C(1.0, f64))))
    with pytest.raises(CodegenError, match="unknown array"):
        build_module(bad)
    bad_var = Function("bad2", (size("n"), array("x", f64, "n")), (),
                       loop("i", C(0), n, S("x", V("q"), C(1.0, f64))))
    with pytest.raises(CodegenError, match="unknown variable"):
        build_module(bad_var)


def test_repeated_compiles_are_independent_and_record_their_compile_time():
    cfs = [compile_function(gemm_ikj()) for _ in range(3)]
    assert all(cf.compile_seconds > 0 for cf in cfs)
    A = np.ones((3, 2))
    Bm = np.ones((2, 4))
    for cf in cfs:
        Cm = np.zeros((3, 4))
        cf(3, 4, 2, 1.0, A, Bm, Cm)
        np.testing.assert_array_equal(Cm, np.full((3, 4), 2.0))


def test_calling_convention_numpy_scalars_views_and_raw_address():
    import ctypes

    cf = compile_function(saxpy())
    y = np.zeros(20, np.float32)
    x = np.arange(40, dtype=np.float32)[10:30]  # a view: data pointer is offset
    x.flags.writeable = False
    cf(np.int64(20), np.float32(2.0), x, y)
    np.testing.assert_array_equal(y, 2 * np.arange(10, 30, dtype=np.float32))
    with pytest.raises(TypeError):
        cf(20, 2.0, x)
    # the kernel itself is a plain C function taking data pointers
    raw = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p,
                           ctypes.c_void_p)(cf.address)
    raw(20, 1.0, x.ctypes.data, y.ctypes.data)
    np.testing.assert_array_equal(y, 3 * np.arange(10, 30, dtype=np.float32))
