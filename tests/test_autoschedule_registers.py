"""auto_schedule's register tiles (``polyop.autoschedule.registers``): an
accumulation kept in vector registers across its reduction loop."""

from __future__ import annotations

import numpy as np
import pytest

import polyop
from polyop import ir
from tests.kernels import compare
from tests.kernels import matmul_ikj as matmul
from tests.polybench import BENCHES

AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=1"
AVX2 = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=1"
NEON = "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2 -num-cores=1"


@polyop.kernel
def products(ni: int, nj: int, nk: int, A: "f64[ni, nk]", B: "f64[nk, nj]",
             C: "f64[ni, nj]"):
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                C[i, j] = A[i, k] * B[k, j]  # the last k wins: no accumulation


def _knob(sch):
    return sch.explanation.knob("S0:register_tile")


@pytest.mark.parametrize("target, regs, lanes", [(AVX512, 32, 8), (AVX2, 16, 4), (NEON, 32, 2)])
def test_tile_fills_the_targets_registers(target, regs, lanes):
    sizes = {"ni": 64, "nj": 64, "nk": 64}
    sch = polyop.auto_schedule(matmul, target, sizes=sizes)
    assert sch.explanation.knob("S0:order").chosen == ("i", "k", "j")
    mr, nv = _knob(sch).chosen
    assert _knob(sch).applied
    assert nv == 3 and mr == min(8, (regs - 1 - nv) // nv)  # 8 x 3, 4 x 3, 8 x 3
    assert mr * nv + nv + 1 <= regs
    text = str(sch)
    assert f"split(i, {mr})" in text and f"split(j, {nv * lanes})" in text
    assert "reorder(i_outer, j_outer, k, i_inner, j_inner)" in text
    assert "cache_write(C, scope='local', at=j_outer)" in text
    fn = polyop.lower(sch)
    # the full tiles: one k loop with mr rows of vectors and no test inside
    full = [lp for lp in ir.walk(fn.body) if isinstance(lp, ir.For) and lp.var == "k"
            and not any(isinstance(n, ir.If) for n in ir.walk(lp.body))]
    assert len(full) == 1 and sum(isinstance(n, ir.Store) for n in ir.walk(full[0].body)) == mr


def test_knob_off_and_other_values():
    sizes = {"ni": 64, "nj": 64, "nk": 64}
    off = polyop.auto_schedule(matmul, AVX512, sizes=sizes, knobs={"S0:register_tile": None})
    assert "C_local" not in str(polyop.lower(off)) and "vectorize(j)" in str(off)
    four = polyop.auto_schedule(matmul, AVX512, sizes=sizes, knobs={"S0:register_tile": (4, 2)})
    assert "split(i, 4)" in str(four) and "split(j, 16)" in str(four)
    assert (4, 2) in _knob(four).candidates and (8, 4) not in _knob(four).candidates  # 37 > 32


def test_not_taken_without_an_accumulation_or_a_rectangle():
    sizes = {"ni": 64, "nj": 64, "nk": 64}
    sch = polyop.auto_schedule(products, AVX512, sizes=sizes)
    assert "C_local" not in str(polyop.lower(sch))
    knob = sch.explanation.knobs
    assert all(k.chosen is None for k in knob if k.name.endswith(":register_tile"))
    syrk = BENCHES["syrk"]  # j <= i: rows of different lengths
    sch = polyop.auto_schedule(syrk.kernel, AVX512, sizes=syrk.sizes["MEDIUM"])
    assert all(k.chosen is None for k in sch.explanation.knobs
               if k.name.endswith(":register_tile"))


def test_tiles_inside_cache_tiles_divide_them():
    # gemm at MEDIUM on a 256 KiB L2: cache tiles of (64, 4, 220), which cut
    # i (200 rows) but not j (220 columns, one tile): the register tile's
    # rows divide the cache tiles' 64, so that no cache tile has a partial
    # one; its columns are the 3 vectors wanted, the last tile of each row
    # partial, as in an untiled loop (no tile of whole vectors divides 220
    # but one of a single vector, which made the tile 8 x 1)
    gemm = BENCHES["gemm"]
    sch = polyop.auto_schedule(gemm.kernel, AVX2, sizes=gemm.sizes["MEDIUM"])
    ti, tk, tj = sch.explanation.knob("S1:tiles").chosen
    mr, nv = sch.explanation.knob("S1:register_tile").chosen
    assert (ti, tj) == (64, 220) and ti % mr == 0 and nv == 3 and tj % (nv * 4) != 0
    f = polyop.build(sch)
    for size in ("MINI", "SMALL"):
        gemm.check(f, size)


@pytest.mark.parametrize("cores", [1, 2])
def test_register_tiles_match_cpython(cores, threads):
    sch = polyop.auto_schedule(matmul, f"cpu -num-cores={cores}",
                               sizes={"ni": 100, "nj": 100, "nk": 100})
    assert _knob(sch).chosen is not None and _knob(sch).applied
    f = polyop.build(sch)
    rng = np.random.default_rng(3)
    for ni, nj, nk in ((1, 1, 1), (8, 24, 5), (9, 25, 3), (17, 50, 7), (0, 5, 5), (40, 3, 9)):
        args = {"ni": ni, "nj": nj, "nk": nk, "A": rng.random((ni, nk)),
                "B": rng.random((nk, nj)), "C": rng.random((ni, nj))}
        for nt in (1, 2):
            threads(nt)
            compare(f, matmul, args, exact=False)


def test_updates_of_the_tiles_elements_move_into_the_tile():
    # gemm's C *= beta: computed per tile, on the buffer, not in a pass of its own
    gemm = BENCHES["gemm"]
    sch = polyop.auto_schedule(gemm.kernel, AVX512, sizes=gemm.sizes["MEDIUM"])
    assert "compute_at(S0, j_outer)" in str(sch)
    assert "S0, which only updates the elements of C" in sch.explanation.knob(
        "S1:register_tile").why
    text = str(polyop.lower(sch))
    assert "C_local[i - 8 * i_outer][j - 24 * j_outer] * beta" in text
    # a pass of its own only where no tile reads C (nk == 0)
    assert text.index("if (nk == 0)") < text.index("C[i][j] = C[i][j] * beta")
    assert "S0:order" not in [k.name for k in sch.explanation.knobs]  # scheduled with S1


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("name", ["gemm", "2mm", pytest.param("3mm", marks=pytest.mark.slow)])
def test_polybench_register_tiles_match_cpython(name, cores, threads):
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, f"cpu -num-cores={cores}",
                               sizes=bench.sizes["MEDIUM"])
    tiles = [k for k in sch.explanation.knobs if k.name.endswith(":register_tile")]
    assert tiles and all(k.chosen and k.applied for k in tiles)
    assert "compute_at" in str(sch)
    f = polyop.build(sch)
    threads(cores)
    for size in ("MINI", "SMALL"):
        bench.check(f, size)
