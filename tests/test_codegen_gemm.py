"""Floating-point contraction (``fp_contract``) and the packed sgemm kernel of
``tests/gemm_kernels.py``: correctness against numpy at odd sizes, bit-exactness
against CPython without contraction, and the shape of the generated code."""

import re
from fractions import Fraction

import numpy as np
import pytest

import polyop
from polyop.target import host
from tests.gemm_kernels import packed_sgemm, vectorized, workspace

rng = np.random.default_rng(3)
#: code checked instruction by instruction is compiled for a named CPU, not the host
HASWELL = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell"
SKYLAKE_X, ZEN4 = ("cpu -mtriple=x86_64-linux-gnu -mcpu=" + c for c in ("skylake-avx512",
                                                                          "znver4"))


# -- fp_contract ----------------------------------------------------------------------


def _muladd(n: int, a: "f64[n]", b: "f64[n]", c: "f64[n]", out: "f64[n]"):
    for i in range(n):
        out[i] = a[i] * b[i] + c[i]


# a * b = 1 - 2**-60 rounds to 1.0, so a * b + c is 0.0 with two roundings and
# -2**-60 with one (a fused multiply-add)
A_, B_, C_ = 1 + 2.0 ** -30, 1 - 2.0 ** -30, -1.0


def run_muladd(kernel) -> float:
    out = np.zeros(1)
    kernel(1, np.array([A_]), np.array([B_]), np.array([C_]), out)
    return float(out[0])


def test_default_is_exact_and_has_no_contract_flag():
    k = polyop.kernel(_muladd)
    assert run_muladd(k) == A_ * B_ + C_ == 0.0  # CPython's two roundings
    assert "contract" not in k.compile().llvm_ir_unoptimized
    assert "fma" not in k.compile().llvm_ir


def test_fp_contract_flags_and_fused_result():
    k = polyop.kernel(fp_contract=True)(_muladd)
    ir = k.compile().llvm_ir_unoptimized
    assert re.search(r"fmul contract double", ir) and re.search(r"fadd contract double", ir)
    assert "vfmadd" in polyop.build(k, fp_contract=True, target=HASWELL).asm
    if host().has_fma:
        exact = float(Fraction(A_) * Fraction(B_) + Fraction(C_))  # rounded once
        assert run_muladd(k) == exact == -(2.0 ** -60)


def test_build_option_on_a_schedule():
    k = polyop.kernel(_muladd)
    sch = k.schedule()
    sch.split(sch.get_loops("S0")[0], 4)
    assert "contract" in polyop.build(sch, fp_contract=True).llvm_ir_unoptimized
    assert "contract" not in polyop.build(sch).llvm_ir_unoptimized


# -- the packed sgemm kernel ----------------------------------------------------------

#: small tiles and slices, so that tiny problems cross every boundary: partial
#: register tiles in m and n, several k slices, several row blocks
SMALL = dict(mr=4, nr=8, kc=16, mb=2)


def sgemm_check(kernel, M: int, N: int, K: int, run=None) -> None:
    """``kernel`` (or ``run``, a build of it) against numpy."""
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    C = np.full((M, N), np.nan, np.float32)
    (run or kernel)(M, N, K, C, A, B, *workspace(kernel, M, N, K))
    ref = A.astype(np.float64) @ B.astype(np.float64)
    np.testing.assert_allclose(C, ref, rtol=1e-5, atol=1e-5 * np.sqrt(max(K, 1)))


@pytest.fixture(scope="module")
def sgemm_default():
    return packed_sgemm()


@pytest.fixture(scope="module")
def sgemm_small():
    return packed_sgemm(**SMALL)


@pytest.mark.parametrize("M, N, K", [(37, 53, 29), (1, 1, 1), (6, 16, 8), (12, 32, 513),
                                     (5, 3, 0), (0, 7, 3)])
def test_packed_sgemm_default_tiles(sgemm_default, M, N, K):
    sgemm_check(sgemm_default, M, N, K)


@pytest.mark.parametrize("M, N, K", [(37, 53, 29), (9, 17, 33), (8, 8, 16), (3, 41, 7)])
def test_packed_sgemm_small_tiles(sgemm_small, M, N, K):
    sgemm_check(sgemm_small, M, N, K)


def test_packed_sgemm_without_contraction_matches_cpython():
    k = packed_sgemm(**SMALL, fp_contract=False)
    M, N, K = 7, 11, 21
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    C1, C2 = np.zeros((M, N), np.float32), np.zeros((M, N), np.float32)
    k(M, N, K, C1, A, B, *workspace(k, M, N, K))
    k.py_func(M, N, K, C2, A, B, *workspace(k, M, N, K))
    assert np.array_equal(C1.view(np.int32), C2.view(np.int32))


def test_packed_sgemm_rejects_a_wrong_workspace(sgemm_default):
    M, N, K = 8, 8, 8
    A, B, C = (np.zeros((8, 8), np.float32) for _ in range(3))
    Ap, Bp = workspace(sgemm_default, M, N, K)
    with pytest.raises(polyop.ArgumentError, match="argument Bp"):
        sgemm_default(M, N, K, C, A, B, Ap, Bp[:, :4])


@pytest.mark.parametrize("M, N, K", [(37, 53, 29), (1, 1, 1), (12, 32, 513)])
def test_vectorized_packed_sgemm(sgemm_default, M, N, K):
    """The micro-kernel's columns and the packing of ``B`` in explicit vectors
    (``vectorized``), on the host, against numpy."""
    sgemm_check(sgemm_default, M, N, K,
                polyop.build(vectorized(sgemm_default), fp_contract=True))


def test_micro_kernel_is_register_blocked(sgemm_default):
    """Compiled for Haswell (AVX2), the k loop of the 6x16 tile, its columns
    vectorised: 2 vector loads of Bp, 6 broadcasts of Ap and 12 FMAs on ymm
    registers, with no store (the tile stays in registers).
    ``tests/test_target.py`` checks other CPUs."""
    asm = polyop.build(vectorized(sgemm_default), fp_contract=True, target=HASWELL).asm
    loops = re.findall(r"\n(\.LBB\d+_\d+):\n((?:\t[^\n]*\n)+?)\tj\w+\t\1\n", asm)
    bodies = [body for _, body in loops
              if len(re.findall(r"vfmadd\d+ps\t%ymm\d+, %ymm\d+, %ymm\d+", body)) == 12]
    assert bodies, "no loop with 12 register FMAs"
    body = bodies[0]
    assert len(re.findall(r"vbroadcastss", body)) == 6
    assert len(re.findall(r"vmov[au]ps\t-?\d*\(%\w+\), %ymm", body)) == 2
    assert not re.search(r"vmov[au]ps\t%ymm\d+, ", body)  # no stores


@pytest.mark.parametrize("cpu", [SKYLAKE_X, ZEN4])
def test_micro_kernel_is_register_blocked_on_avx512(sgemm_default, cpu):
    """For AVX-512 the 6x16 tile is 6 zmm accumulators: the k loop (which LLVM
    may unroll) has whole tiles of full-width FMAs into registers, ``Ap``
    broadcast from memory (``{1to16}``), no stack traffic, and nothing in the
    kernel is gathered or scattered."""
    asm = polyop.build(vectorized(sgemm_default), fp_contract=True, target=cpu).asm
    assert not re.search(r"\tv(gather|scatter)", asm)
    loops = re.findall(r"\n(\.LBB\d+_\d+):\n((?:\t[^\n]*\n)+?)\tj\w+\t\1\n", asm)
    body = max((b for _, b in loops), key=lambda b: b.count("vfmadd"))
    full = re.findall(r"\tvfmadd\d+ps\t(?:-?\d*\(%\w+\)\{1to16\}|%zmm\d+), %zmm\d+, "
                      r"%zmm(\d+)\n", body)
    assert full and len(full) == body.count("vfmadd") and len(full) % 6 == 0, body
    assert len(set(full)) == 6  # the six accumulators
    assert not re.search(r"\(%rsp\)", body)
