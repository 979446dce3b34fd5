"""polyop.ops: operators built from schedules, checked against numpy."""

import numpy as np
import pytest

import polyop
from polyop.errors import ArgumentError
from polyop.ops import MatmulTiling

#: code checked instruction by instruction is compiled for a named CPU
HASWELL = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell"

rng = np.random.default_rng(3)


def reference(a, b, bias=None, relu=False):
    out = a.astype(np.float64) @ b.astype(np.float64)
    if bias is not None:
        out = out + bias
    return np.maximum(out, 0) if relu else out


@pytest.mark.parametrize("shape", [(13, 35, 7), (64, 48, 32), (6, 16, 1), (1, 1, 1)])
@pytest.mark.parametrize("bias,relu,pack_a,columns_outer", [
    (False, False, True, False), (True, True, True, True), (False, True, False, False),
    (True, True, False, True)])
def test_matmul_matches_numpy(shape, bias, relu, pack_a, columns_outer):
    M, N, K = shape
    mm = polyop.ops.matmul(M, N, K, bias=bias, relu=relu,
                           tiling=MatmulTiling(mr=3, nr=8, kc=16, mb=2, pack_a=pack_a,
                                               columns_outer=columns_outer))
    assert ("Ap" in mm.schedule.stmts) == pack_a
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    bb = rng.standard_normal(N).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    mm(*([a, b, bb, c] if bias else [a, b, c]))
    np.testing.assert_allclose(c, reference(a, b, bb if bias else None, relu),
                               rtol=1e-4, atol=1e-4)


def test_matmul_default_tiling_float64_and_threads():
    M, N = 50, 70  # partial tiles in every dimension, two k slices; A packed at 1024
    for dtype, threads, K in [("float32", 2, 600), ("float64", 1, 600), ("float32", 2, 1024),
                              ("float64", 1, 1024)]:
        mm = polyop.ops.matmul(M, N, K, dtype, threads=threads)
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        c = np.empty((M, N), dtype)
        mm(a, b, c)
        np.testing.assert_allclose(c, reference(a, b), rtol=1e-4, atol=1e-3)


def test_matmul_default_tiling_where_rows_alias_in_l1():
    # rows a multiple of 4 KiB long put a tile's rows in one L1 set: 4 rows of
    # A in place with the column panels outermost, or A packed when there are
    # few column panels per thread
    # (on AVX2, where they were measured; tests/test_target.py checks other CPUs)
    t = MatmulTiling.default("float32", 1024, 1024, target=HASWELL)
    assert (t.mr, t.nr, t.pack_a, t.columns_outer) == (4, 24, False, True)
    assert MatmulTiling.default("float64", 512, 2048, target=HASWELL).nr == 12
    t = MatmulTiling.default("float32", 1024, 1024, threads=2, target=HASWELL)  # 43 panels
    assert (t.mr, t.nr, t.pack_a, t.columns_outer) == (6, 16, True, False)
    t = MatmulTiling.default("float32", 1000, 1000, target=HASWELL)
    assert (t.mr, t.nr, t.pack_a, t.columns_outer) == (6, 16, False, False)
    stmts = polyop.ops.matmul(8, 8, 1024, threads=1, target=HASWELL).schedule.stmts
    assert stmts == ["acc_init", "Ap", "Bp", "acc", "C"]


def test_matmul_with_one_k_slice_accumulates_in_a_local_tile():
    # one slice: the tile accumulates in a local array and C is only stored;
    # two slices: C itself accumulates across them
    for K, kc, local in [(64, 64, True), (70, 40, False)]:
        mm = polyop.ops.matmul(30, 40, K, tiling=MatmulTiling(mr=4, nr=8, kc=kc, mb=2))
        program = mm.function.kernel.program
        assert ("acc" in program.arrays and program.arrays["acc"].temporary) == local
        assert mm.function.arg_names == ("A", "B", "C")
        a = rng.standard_normal((30, K)).astype(np.float32)
        b = rng.standard_normal((K, 40)).astype(np.float32)
        c = np.full((30, 40), np.nan, np.float32)
        mm(a, b, c)
        np.testing.assert_allclose(c, reference(a, b), rtol=1e-4, atol=1e-4)


def test_matmul_columns_outer_with_threads_and_two_slices():
    M, N, K = 37, 45, 70
    mm = polyop.ops.matmul(M, N, K, bias=True, relu=True, threads=2, tiling=MatmulTiling(
        mr=4, nr=8, kc=40, mb=2, pack_a=False, columns_outer=True))
    assert mm.schedule.get_loops("C")[0].name == "j_outer"
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    bb = rng.standard_normal(N).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    mm(a, b, bb, c)
    np.testing.assert_allclose(c, reference(a, b, bb, True), rtol=1e-4, atol=1e-4)


def test_matmul_schedule_is_inspectable_and_arguments_checked():
    mm = polyop.ops.matmul(20, 30, 40)
    assert mm.schedule.stmts == ["acc_init", "Bp", "acc", "C"]
    assert "vfmadd" in polyop.ops.matmul(20, 30, 40, target=HASWELL).asm  # fused multiply-adds
    a, b = np.ones((20, 40), np.float32), np.ones((40, 30), np.float32)
    with pytest.raises(ArgumentError, match="shape"):
        mm(a, b, np.empty((30, 20), np.float32))
    with pytest.raises(ArgumentError, match="dtype"):
        mm(a.astype(np.float64), b, np.empty((20, 30), np.float32))
    with pytest.raises(ValueError, match="positive"):
        polyop.ops.matmul(0, 3, 3)


@pytest.mark.parametrize("shape,threads", [((13, 35, 7), 1), ((50, 70, 600), 2)])
def test_matmul_with_b_packed_at_set_up(shape, threads):
    M, N, K = shape
    tiling = MatmulTiling(mr=3, nr=8, kc=16, mb=2) if K < 16 else None
    mm = polyop.ops.matmul(M, N, K, bias=True, relu=True, threads=threads, tiling=tiling,
                           packed_b=True)
    assert "Bp" not in mm.schedule.stmts  # no copy of B per call
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    bb = rng.standard_normal(N).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    bp = mm.pack_b(b)
    nr = mm.tiling.nr
    assert bp.shape == (-(-N // nr), K, nr) and not bp[-1, :, N % nr:].any()  # zero padding
    mm(a, bp, bb, c)
    np.testing.assert_allclose(c, reference(a, b, bb, True), rtol=1e-4, atol=1e-3)
    with pytest.raises(ArgumentError, match="argument B: expected 3 dimensions"):
        mm(a, b, bb, c)  # unpacked
    with pytest.raises(ArgumentError, match=rf"pack_b: B has shape \({N}, {K}\)"):
        mm.pack_b(b.T)
