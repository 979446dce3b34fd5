"""tensorize: micro-kernels (C and LLVM IR) with declared contracts replacing loop bands.

Every tensorized build is compared with numpy or with CPython running the
kernel (``run_both``); contract mismatches and illegal schedules must be refused
with messages naming what differs.
"""

import numpy as np
import pytest

import polyop
from polyop.intrinsic import cache_dir
from tests.kernels import matmul_ikj, run_both

# -- micro-kernels and their contracts ----------------------------------------------------------


@polyop.kernel
def mm_4x8(C: "f64[4, 8]", A: "f64[4, 16]", B: "f64[16, 8]"):
    for i in range(4):
        for j in range(8):
            for k in range(16):
                C[i, j] += A[i, k] * B[k, j]


UKR_C = r"""
#include <stdint.h>
/* a 4 x 8 register tile of C, updated with a 4 x 16 panel of A and a 16 x 8 panel of B */
void ukr_4x8(double *C, int64_t ldc, const double *A, int64_t lda,
             const double *B, int64_t ldb) {
    double acc[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) acc[i][j] = C[i * ldc + j];
    for (int k = 0; k < 16; k++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += A[i * lda + k] * B[k * ldb + j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) C[i * ldc + j] = acc[i][j];
}
"""

ukr = polyop.intrinsic(mm_4x8, c_source=UKR_C, symbol="ukr_4x8", name="ukr_4x8")


@polyop.kernel
def dot8(out: "f64[1]", x: "f64[8]", y: "f64[8]"):
    for k in range(8):
        out[0] += x[k] * y[k]


# an ordered reduction (no fast-math flags): the same additions, in the same order, as CPython
DOT8_IR = """
declare double @llvm.vector.reduce.fadd.v8f64(double, <8 x double>)

define void @dot8(ptr %out, ptr %x, ptr %y) {
entry:
  %xv = load <8 x double>, ptr %x, align 8
  %yv = load <8 x double>, ptr %y, align 8
  %p = fmul <8 x double> %xv, %yv
  %o = load double, ptr %out, align 8
  %s = call double @llvm.vector.reduce.fadd.v8f64(double %o, <8 x double> %p)
  store double %s, ptr %out, align 8
  ret void
}
"""


@polyop.kernel
def axpy8(a: "f64", x: "f64[8]", y: "f64[8]"):
    for i in range(8):
        y[i] += a * x[i]


AXPY8_IR = """
define void @axpy8(double %a, ptr %x, ptr %y) {
entry:
  %xv = load <8 x double>, ptr %x, align 8
  %yv = load <8 x double>, ptr %y, align 8
  %ins = insertelement <8 x double> poison, double %a, i64 0
  %av = shufflevector <8 x double> %ins, <8 x double> poison, <8 x i32> zeroinitializer
  %m = fmul <8 x double> %av, %xv
  %r = fadd <8 x double> %yv, %m
  store <8 x double> %r, ptr %y, align 8
  ret void
}
"""

# -- kernels -------------------------------------------------------------------------------------


@polyop.kernel
def matvec(n: int, m: int, y: "f64[n]", A: "f64[n, m]", x: "f64[m]"):
    for i in range(n):
        for k in range(m):
            y[i] += A[i, k] * x[k]


@polyop.kernel
def row_squares(n: int, m: int, y: "f64[n]", A: "f64[n, m]"):
    for i in range(n):
        for k in range(m):
            y[i] += A[i, k] * A[i, k]


@polyop.kernel
def scale_add(n: int, m: int, alpha: "f64", X: "f64[n, m]", Y: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            Y[i, j] += alpha * X[i, j]


@polyop.kernel
def mm_fixed(C: "f64[12, 24]", A: "f64[12, 48]", B: "f64[48, 24]"):
    for i in range(12):
        for k in range(48):
            for j in range(24):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def mm_sub(ni: int, nj: int, nk: int, C: "f64[ni, nj]", A: "f64[ni, nk]", B: "f64[nk, nj]"):
    for i in range(ni):
        for k in range(nk):
            for j in range(nj):
                C[i, j] -= A[i, k] * B[k, j]


@polyop.kernel
def mm_bt(ni: int, nj: int, nk: int, C: "f64[ni, nj]", A: "f64[ni, nk]", Bt: "f64[nj, nk]"):
    for i in range(ni):
        for k in range(nk):
            for j in range(nj):
                C[i, j] += A[i, k] * Bt[j, k]


@polyop.kernel
def mm_f32(ni: int, nj: int, nk: int, C: "f32[ni, nj]", A: "f32[ni, nk]", B: "f32[nk, nj]"):
    for i in range(ni):
        for k in range(nk):
            for j in range(nj):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def wave(n: int, A: "f64[n, 5, 9]"):
    for t in range(n):
        for i in range(1, 5):
            for j in range(8):
                A[t, i, j] = A[t, i - 1, j + 1] + 1.0


@polyop.kernel
def wave_ij(A: "f64[5, 9]"):
    for i in range(1, 5):
        for j in range(8):
            A[i, j] = A[i - 1, j + 1] + 1.0


@polyop.kernel
def wave_ji(A: "f64[5, 9]"):
    for j in range(8):
        for i in range(1, 5):
            A[i, j] = A[i - 1, j + 1] + 1.0


WAVE_C = r"""
#include <stdint.h>
void wave(double *A, int64_t lda) {
    for (int i = 1; i < 5; i++)
        for (int j = 0; j < 8; j++) A[i * lda + j] = A[(i - 1) * lda + j + 1] + 1.0;
}
"""


def tiled_matmul(kernel, fi=4, fj=8, fk=16):
    """i, j, k tiled by fi, fj, fk; the point loops i_inner, k_inner, j_inner innermost."""
    sch = polyop.Schedule(kernel)
    i, k, j = sch.get_loops("S0")
    io, ii = sch.split(i, fi)
    jo, ji = sch.split(j, fj)
    ko, ki = sch.split(k, fk)
    sch.reorder(io, jo, ko, ii, ki, ji)
    return sch, (io, jo, ko, ii, ki, ji)


def run_matmul(f, ni, nj, nk, seed=0):
    rng = np.random.default_rng(seed)
    A, B, C = rng.random((ni, nk)), rng.random((nk, nj)), rng.random((ni, nj))
    want = C + A @ B
    f(ni, nj, nk, C, A, B)
    np.testing.assert_allclose(C, want, rtol=1e-12)


# -- C micro-kernel in a tiled matmul -----------------------------------------------------------


def test_c_microkernel_in_tiled_matmul():
    sch, (io, jo, ko, ii, ki, ji) = tiled_matmul(matmul_ikj)
    assert sch.tensorize(ii, ukr) == "S0_ukr_4x8"
    text = str(polyop.lower(sch))
    assert ("ukr_4x8(&C[4 * i_outer][8 * j_outer], nj, &A[4 * i_outer][16 * k_outer], nk, "
            "&B[16 * k_outer][8 * j_outer], nj);") in text
    f = polyop.build(sch)
    run_matmul(f, 8, 16, 32)      # whole tiles only
    run_matmul(f, 10, 21, 35)     # partial tiles run the original loops
    run_matmul(f, 3, 5, 7)        # no whole tile at all
    # the call has the loops around the band; the partial tiles keep the point loops
    assert sch.get_loops("S0_ukr_4x8") == [io, jo, ko]
    assert sch.get_loops("S0") == [io, jo, ko, ii, ki, ji]


def test_legal_and_illegal_schedules_around_the_call():
    sch, (io, jo, ko, ii, ki, ji) = tiled_matmul(mm_fixed)
    sch.tensorize(ii, ukr)  # every tile is whole: no loops are left for partial tiles
    sch.parallel(io)
    sch.interchange(jo, ko)
    rng = np.random.default_rng(5)
    A, B, C = rng.random((12, 48)), rng.random((48, 24)), rng.random((12, 24))
    want = C + A @ B
    polyop.build(sch)(C, A, B)
    np.testing.assert_allclose(C, want, rtol=1e-12)
    trace = str(sch)
    with pytest.raises(polyop.IllegalScheduleError,
                       match=r"loop k_outer carries a RAW dependence on C: S0_ukr_4x8\[i=0, "
                             r"k=0, j=0\] \(writes C\[\d+, \d+\]\) must run before "
                             r"S0_ukr_4x8\[i=0, k=16, j=0\]"):
        sch.parallel(ko)  # k_outer carries the accumulation into C, call to call
    assert str(sch) == trace  # unchanged
    with pytest.raises(polyop.ScheduleError, match="stale: it was replaced by calls of ukr_4x8"):
        sch.unroll(ji)


def test_partial_tiles_refused_on_request():
    sch, (_, _, _, ii, _, _) = tiled_matmul(matmul_ikj)
    with pytest.raises(polyop.ScheduleError, match=r"partial tiles: the tile at S0\[i=.*"
                                                   r"multiples of the contract's extents"):
        sch.tensorize(ii, ukr, partial="error")
    with pytest.raises(polyop.ScheduleError, match="partial must be"):
        sch.tensorize(ii, ukr, partial="skip")


def test_contract_mismatches():
    cases = [
        (matmul_ikj, (4, 4, 16), r"tile of \(i: 4, k: 16, j: 4\).*domain of "
                                 r"\(i: 4, j: 8, k: 16\)"),
        (matmul_ikj, (4, 8, 8), r"tile of \(i: 4, k: 8, j: 8\)"),
        (mm_sub, (4, 8, 16), r"S0 computes `C\[i\]\[j\] = C\[i\]\[j\] - .*\(sub where the "
                             r"contract has add\)"),
        (mm_bt, (4, 8, 16), r"S0's access Bt\[j, k\] does not match the contract's B\[k, j\] "
                            r"\(operand B of ukr_4x8\): S0\[i=0, k=1, j=0\] reads Bt\[0, 1\], "
                            r"but .* puts the contract's B\[1, 0\] at Bt\[1, 0\]"),
        (mm_f32, (4, 8, 16), "type f32 where the contract has f64"),
    ]
    for kernel, factors, message in cases:
        sch, loops = tiled_matmul(kernel, *factors)
        trace = str(sch)
        with pytest.raises(polyop.ScheduleError, match=message):
            sch.tensorize(loops[3], ukr)
        assert str(sch) == trace


def test_band_must_be_one_statement_in_a_perfect_nest():
    sch, (io, _, _, _, _, _) = tiled_matmul(matmul_ikj)
    sch.tensorize(sch.get_loops("S0")[3], ukr)
    with pytest.raises(polyop.ScheduleError, match="run statements S0, S0_ukr_4x8"):
        sch.tensorize(io, ukr)
    with pytest.raises(polyop.ScheduleError, match="expected a polyop.intrinsic"):
        sch.tensorize(io, "ukr_4x8")


# -- LLVM IR micro-kernels ------------------------------------------------------------------------


def test_llvm_ir_dot_product_in_matvec():
    dot = polyop.intrinsic(dot8, llvm_ir=DOT8_IR)
    sch = polyop.Schedule(matvec)
    i, k = sch.get_loops("S0")
    ko, ki = sch.split(k, 8)
    sch.tensorize(ki, dot)
    assert "dot8(&y[i], &A[i][8 * k_outer], &x[8 * k_outer]);" in str(polyop.lower(sch))
    rng = np.random.default_rng(1)
    for n, m in ((3, 16), (4, 29)):
        f = run_both(sch, matvec, dict(n=n, m=m, y=rng.random(n), A=rng.random((n, m)),
                                       x=rng.random(m)))
    assert "@dot8" not in f.llvm_ir  # linked with internal linkage, then inlined
    # two read-only operands may be the same array
    sch = polyop.Schedule(row_squares)
    sch.tensorize(sch.split(sch.get_loops("S0")[1], 8)[1], dot)
    assert "dot8(&y[i], &A[i][8 * k_outer], &A[i][8 * k_outer]);" in str(polyop.lower(sch))
    run_both(sch, row_squares, dict(n=3, m=20, y=rng.random(3), A=rng.random((3, 20))))


def test_llvm_ir_axpy_with_a_scalar_in_a_parallel_loop():
    ax = polyop.intrinsic(axpy8, llvm_ir=AXPY8_IR)
    assert ax.c_prototype == "void axpy8(double a, const double *x, double *y)"
    sch = polyop.Schedule(scale_add)
    i, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 8)
    sch.tensorize(ji, ax)
    sch.parallel(i)
    assert "axpy8(alpha, &X[i][8 * j_outer], &Y[i][8 * j_outer]);" in str(polyop.lower(sch))
    rng = np.random.default_rng(2)
    run_both(sch, scale_add, dict(n=5, m=21, alpha=1.5, X=rng.random((5, 21)),
                                  Y=rng.random((5, 21))))


# -- order inside a tile ---------------------------------------------------------------------


def test_contract_order_must_respect_dependences_inside_a_tile():
    bad = polyop.intrinsic(wave_ji, c_source=WAVE_C, symbol="wave")
    sch = polyop.Schedule(wave)
    t, i, j = sch.get_loops("S0")
    with pytest.raises(polyop.IllegalScheduleError,
                       match=r"wave_ji's contract runs the instances of a tile in its own loop "
                             r"order, which would run S0\[t=0, i=2, j=0\] \(reads A\[0, 1, 1\]\) "
                             r"before S0\[t=0, i=1, j=1\]"):
        sch.tensorize(i, bad)
    good = polyop.intrinsic(wave_ij, c_source=WAVE_C, symbol="wave")
    good.verify()
    sch.tensorize(i, good)  # contract domain starts at i = 1: the pointer is shifted back
    sch.parallel(t)
    assert "wave_ij(&A[t][1 - 1][0], 9);" in str(polyop.lower(sch))
    run_both(sch, wave, dict(n=3, A=np.random.default_rng(3).random((3, 5, 9))))


# -- tensor expressions -----------------------------------------------------------------------


def test_tensor_expression_contract_and_kernel():
    a = polyop.placeholder((4, 16), "float64", name="a")
    b = polyop.placeholder((16, 8), "float64", name="b")
    kk = polyop.reduce_axis((0, 16), name="k")
    c = polyop.compute((4, 8), lambda i, j: polyop.sum(a[i, kk] * b[kk, j], axis=kk), name="c")
    src = UKR_C.replace("ukr_4x8(double *C, int64_t ldc, const double *A, int64_t lda,\n"
                        "             const double *B, int64_t ldb)",
                        "te_ukr(const double *A, int64_t lda, const double *B, int64_t ldb, "
                        "double *C, int64_t ldc)")
    mm = polyop.intrinsic(c, c_source=src, symbol="te_ukr")  # the reduction's update
    assert mm.c_prototype.startswith("void te_ukr(const double *a, int64_t a_stride0")
    n = polyop.var("n")
    A = polyop.placeholder((n, 16), "float64", name="A")
    B = polyop.placeholder((16, 8), "float64", name="B")
    k = polyop.reduce_axis((0, 16), name="k")
    C = polyop.compute((n, 8), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="C")
    sch = polyop.create_schedule(C)
    sch.fission(sch.get_loops(C)[0])  # the init apart from the update
    io, ii = sch.split(sch.get_loops(C)[0], 4)
    sch.tensorize(ii, mm)
    f = polyop.build(sch, [A, B, C])
    rng = np.random.default_rng(4)
    An, Bn, Cn = rng.random((10, 16)), rng.random((16, 8)), np.empty((10, 8))
    f(An, Bn, Cn)
    np.testing.assert_allclose(Cn, An @ Bn, rtol=1e-12)


# -- declarations --------------------------------------------------------------------------------


def test_declaration_errors():
    with pytest.raises(polyop.IntrinsicError, match="constant sizes, but n, m are size"):
        polyop.intrinsic(matvec, c_source="void matvec(void) {}")
    with pytest.raises(polyop.IntrinsicError, match="exactly one implementation"):
        polyop.intrinsic(dot8)
    wrong = "define void @dot8(ptr %out, ptr %x) {\n  ret void\n}"
    with pytest.raises(polyop.IntrinsicError, match=r"@dot8 must be defined as "
                                                    r"void \(ptr, ptr, ptr\)"):
        polyop.intrinsic(dot8, llvm_ir=wrong)
    with pytest.raises(polyop.IntrinsicError, match="defines no function @dot8"):
        polyop.intrinsic(dot8, llvm_ir="define void @other() {\n  ret void\n}")
    broken = polyop.intrinsic(mm_4x8, c_source="void ukr(double *C) { syntax error }",
                              symbol="ukr")
    with pytest.raises(polyop.IntrinsicError, match="does not compile"):
        broken.compile()


def test_verify_catches_a_wrong_implementation_and_caches_the_library():
    wrong = polyop.intrinsic(mm_4x8, c_source=UKR_C.replace("+= A", "-= A"),
                             symbol="ukr_4x8", name="wrong")
    with pytest.raises(polyop.IntrinsicError, match="wrong disagrees with its contract on C"):
        wrong.verify()
    ukr.verify()
    assert ukr.library().exists() and ukr.library().parent == cache_dir()


# -- printing ------------------------------------------------------------------------------------


@polyop.kernel
def with_local_tile(n: int, A: "f32[n, 16]"):
    for i in range(n):
        acc = polyop.local((6, 16), "f32")
        for j in range(16):
            acc[0, j] = A[i, j]
            A[i, j] = acc[0, j] * 2.0


def test_local_arrays_print_with_their_shape():
    assert "  float acc[6][16];" in str(polyop.lower(with_local_tile))
