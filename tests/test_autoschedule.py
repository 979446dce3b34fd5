"""``polyop.auto_schedule``: auto-scheduled kernels match CPython, decisions
follow the target, are deterministic, explained and overridable.

The PolyBench sweep schedules each kernel for its MEDIUM sizes (what the
benchmark runs) and checks the compiled result against the kernel's own
Python body on the MINI dataset; ten representative kernels (products,
stencils, solvers, a kernel isl cannot parallelise) run by default, the
other twenty are marked slow.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import polyop
from polyop.autoschedule import auto_knobs
from polyop.autoschedule.model import BandModel, Group
from polyop.errors import ScheduleError
from tests.kernels import tied_rows
from tests.polybench import BENCHES

DEFAULT = ("gemm", "2mm", "syrk", "atax", "mvt", "doitgen", "lu", "jacobi-2d", "fdtd-2d",
           "seidel-2d")
AVX2 = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=2"
AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=2"
ZEN4 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4 -num-cores=2"


def _cases():
    for name in BENCHES:
        marks = () if name in DEFAULT else (pytest.mark.slow,)
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", _cases())
def test_polybench_matches_cpython(name):
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, sizes=bench.sizes["MEDIUM"])
    assert isinstance(sch, polyop.Schedule) and sch.check() == []
    f = polyop.build(sch)
    args = bench.init(bench.sizes["MINI"])
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    f(**args)
    for o in bench.outputs:
        np.testing.assert_allclose(args[o], ref[o], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: output {o!r}\n{sch}\n{sch.explanation}")


@polyop.kernel
def matmul(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            for k in range(n):
                C[i, j] += A[i, k] * B[k, j]


def test_matmul_is_reordered_tiled_vectorized_parallel():
    sch = polyop.auto_schedule(matmul, AVX2, sizes={"n": 1000})
    ex = sch.explanation
    assert ex.knob("S0:order").chosen == ("i", "k", "j")  # unit stride innermost
    tiles = ex.knob("S0:tiles").chosen
    assert tiles != (1000, 1000, 1000) and ex.knob("S0:tiles").applied
    assert ex.knob("S0:vectorize").chosen and ex.knob("S0:vectorize").applied
    assert ex.knob("S0:parallel").chosen.startswith("i")
    text = str(sch)
    assert "reorder(i, k, j)" in text and "vectorize(" in text and "parallel(" in text
    a, b = np.random.rand(37, 37), np.random.rand(37, 37)
    c = np.zeros((37, 37))
    polyop.build(sch)(37, a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)


def test_avx512_gets_wider_choices_than_avx2():
    s2 = polyop.auto_schedule(matmul, AVX2, sizes={"n": 2000})
    s5 = polyop.auto_schedule(matmul, AVX512, sizes={"n": 2000})
    t2 = s2.explanation.knob("S0:tiles").chosen
    t5 = s5.explanation.knob("S0:tiles").chosen
    assert s2.explanation.facts["vector_bits"] == 256
    assert s5.explanation.facts["vector_bits"] == 512
    # the innermost tile is at least four vectors: 4 x 4 f64 on AVX2, 4 x 8 on AVX-512
    assert t2[-1] % 16 == 0 and t5[-1] % 32 == 0
    assert t5[-1] > t2[-1]
    assert str(s2) != str(s5)


def test_deterministic():
    bench = BENCHES["gemm"]
    a = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"])
    b = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"])
    assert str(a) == str(b)
    assert str(a.explanation) == str(b.explanation)
    assert a.tree.get_root().to_str() == b.tree.get_root().to_str()


def test_explanation_names_every_decision_and_the_formula():
    sch = polyop.auto_schedule(matmul, AVX2, sizes={"n": 1000})
    text = str(sch.explanation)
    for word in ("vector_bits=256", "isl's schedule", "S0: i[pc], j[pc], k[p]",
                 "S0:order", "S0:tiles", "S0:vectorize", "S0:parallel", "S0:unroll",
                 "why:", "model: F(T) ="):
        assert word in text, word
    assert all(k.why for k in sch.explanation.knobs)


@polyop.kernel
def prefix(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n):
            A[i, j] += A[i - 1, j] + A[i, j - 1]


def test_kernel_without_parallelism():
    sch = polyop.auto_schedule(prefix, AVX2, sizes={"n": 500})
    assert "parallel(" not in str(sch) and "vectorize(" not in str(sch)
    par = sch.explanation.knob("S0:parallel")
    assert not par.applied or par.chosen is None
    a = np.random.rand(19, 19)
    ref = a.copy()
    prefix.py_func(19, ref)
    polyop.build(sch)(19, a)
    np.testing.assert_array_equal(a, ref)


def test_band_isl_does_not_find_permutable_is_reordered_by_the_legality_check():
    """lu's row update ``for j >= i: for k < i: A[i, j] -= A[i, k] * A[k, j]``:
    isl's band over (j, k) is not permutable (its flags speak of its own
    schedule), but the legality check allows k outside j in the kernel's
    order, and then j (a row, unit stride) vectorises."""
    bench = BENCHES["lu"]
    for target in (AVX2, AVX512):
        sch = polyop.auto_schedule(bench.kernel, target, sizes=bench.sizes["MEDIUM"])
        assert sch.explanation.knob("S2:order").chosen == ("k", "j"), target
        vec = sch.explanation.knob("S2:vectorize")
        assert vec.chosen is True and "vectorize(j)" in str(sch)
    # Zen 4 leaves the untiled row to LLVM's vectorizer (256-bit vectors)
    zen4 = polyop.auto_schedule(bench.kernel, ZEN4, sizes=bench.sizes["MEDIUM"])
    vec = zen4.explanation.knob("S2:vectorize")
    assert vec.chosen is False and "left to LLVM's vectorizer at 256 bits" in vec.why
    sch = polyop.auto_schedule(bench.kernel, sizes=bench.sizes["MEDIUM"])  # the host: run below
    order = sch.explanation.knob("S2:order")
    assert order.chosen == ("k", "j") and order.applied
    assert "the legality check decides" in order.why
    assert "reorder(k, j)" in str(sch)
    assert sch.explanation.knob("S2:tiles").chosen == (399, 399)  # untiled: not permutable
    # the caller's order is applied as asked, or refused and the kernel's kept
    kept = polyop.auto_schedule(bench.kernel, sizes=bench.sizes["MEDIUM"],
                                knobs={"S2:order": ("j", "k")})
    assert "reorder(k, j)" not in str(kept) and kept.explanation.knob("S2:order").applied
    # k innermost then sums each j over k: the rows j are jammed
    assert kept.explanation.knob("S2:jam").chosen and "reorder(j_outer, k, j_inner)" in str(kept)
    args = bench.init(bench.sizes["MINI"])
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    polyop.build(sch)(**args)
    np.testing.assert_allclose(args["A"], ref["A"], rtol=1e-9, atol=1e-12)


def test_knobs_override_and_refusals():
    knobs = {k.name: k for k in auto_knobs(matmul, AVX2, sizes={"n": 1000})}
    tiles = knobs["S0:tiles"]
    other = next(c for c in tiles.candidates if c != tiles.chosen)
    sch = polyop.auto_schedule(matmul, AVX2, sizes={"n": 1000},
                               knobs={"S0:tiles": other, "S0:vectorize": False,
                                      "S0:parallel": None})
    assert sch.explanation.knob("S0:tiles").chosen == other
    assert sch.explanation.knob("S0:tiles").why == "set by the caller"
    assert "vectorize(" not in str(sch) and "parallel(" not in str(sch)
    with pytest.raises(ScheduleError, match="no decision is called 'S9:tiles'"):
        polyop.auto_schedule(matmul, AVX2, knobs={"S9:tiles": (4, 4, 4)})
    with pytest.raises(ScheduleError, match="knob 'S0:unroll' got 3"):
        polyop.auto_schedule(matmul, AVX2, knobs={"S0:unroll": 3})
    with pytest.raises(ScheduleError, match="unknown size parameter"):
        polyop.auto_schedule(matmul, AVX2, sizes={"m": 4})


def test_unroll_knob_is_applied_and_correct():
    sch = polyop.auto_schedule(matmul, AVX2, sizes={"n": 64}, knobs={"S0:unroll": 2})
    assert "unroll(" in str(sch)
    a, b = np.random.rand(21, 21), np.random.rand(21, 21)
    c = np.zeros((21, 21))
    polyop.build(sch)(21, a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)


def test_time_tiling_of_seidel_by_isl_skew():
    """isl's tileable band for seidel-2d is (t, t + i, 2t + i + j): the skews
    are applied with ``skew`` and the band tiled; the model says it does not
    pay (the nest is compute-bound), so only forced knobs do it (the default
    skews the rows into wavefronts instead: test_autoschedule_wavefront)."""
    bench = BENCHES["seidel-2d"]
    sizes = {"tsteps": 10, "n": 30}
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes)
    assert not sch.explanation.knob("S0:skew").chosen and "skew(t" not in str(sch)
    assert "skew(i, j, 2)" in str(sch)  # the wavefronts
    assert "2*t + i + j" in sch.explanation.knob("S0:skew").why
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes,
                               knobs={"S0:skew": True, "S0:tiles": (4, 8, 1000)})
    text = str(sch)  # tiles of 4 time steps x 8 rows (a tiled j too makes isl's AST slow)
    for step in ("skew(t, j, 2)", "skew(i, j, 1)", "skew(t, i, 1)", "split(t, 4)",
                 "split(i, 8)"):
        assert step in text, text
    args = bench.init(sizes)
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    polyop.build(sch)(**args)
    np.testing.assert_array_equal(args["A"], ref["A"])  # same order per element: exact
    with pytest.raises(ScheduleError, match="knob 'S0:tiles' got"):
        polyop.auto_schedule(bench.kernel, AVX2, knobs={"S0:skew": True, "S0:tiles": (4, 8)})


def test_model_footprint_and_traffic_by_hand():
    # C[i, j] += A[i, k] * B[k, j] over (i, k, j), f64: 8 elements per 64-byte line
    m = BandModel.build(["i", "k", "j"], [64, 64, 64],
                        [Group("C", ((1, 0, 0), (0, 0, 1)), (0, 0), 8),
                         Group("A", ((1, 0, 0), (0, 1, 0)), (0, 0), 8),
                         Group("B", ((0, 1, 0), (0, 0, 1)), (0, 0), 8)])
    # a 8x8x8 tile: 8 rows of 8 contiguous doubles (15/8 lines each, unaligned) per array
    assert m.group_footprints((8, 8, 8)) == [8 * 15 / 8] * 3
    # 8*8*8 tiles, but A[i, k] does not depend on j, the innermost tile loop: it
    # stays in cache across j's tiles and is loaded once per (i, k) tile
    assert m.traffic((8, 8, 8)) == pytest.approx((512 + 64 + 512) * 15)
    # everything fits in 1 MiB: one pass, each array once
    assert m.untiled(1 << 20) == (64, 64, 64)
    assert m.traffic((64, 64, 64)) == pytest.approx(3 * 64 * 71 / 8)
    # a stencil's offsets widen the box: A[i-1..i+1] over T_i
    s = BandModel.build(["i"], [100], [Group("A", ((1,),), (2,), 8)])
    assert s.group_footprints((16,)) == [(16 + 2) * 8 / 64 + 56 / 64]


@polyop.kernel
def row_scan(n: int, A: "f64[n, n]", y: "f64[n, n]"):
    for i in range(n):
        s = 0.0  # a scalar statement in the i loop: the band is j alone
        for j in range(n):
            s = s + A[i, j]
            y[i, j] = s


def test_outer_parallel_loop_above_the_band():
    from polyop.codegen.parallel import get_num_threads, set_num_threads

    # the nest kept whole: its chain through s is not expanded (that is
    # test_autoschedule_jam's), so the band is j alone and i is above it
    whole = {"S1:fission": False}
    sch = polyop.auto_schedule(row_scan, AVX2, sizes={"n": 300}, knobs=whole)
    knob = sch.explanation.knob("outer_parallel")
    assert knob.chosen and knob.why.endswith(": i")
    assert "parallel(i)" in str(sch)
    off = polyop.auto_schedule(row_scan, AVX2, sizes={"n": 300},
                               knobs={**whole, "outer_parallel": False})
    assert "parallel(" not in str(off)
    one = polyop.auto_schedule(row_scan, "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell "
                               "-num-cores=1", sizes={"n": 300}, knobs=whole)
    assert "parallel(" not in str(one)
    # the caller's "keep this band serial" holds for the loops around it too
    kept = polyop.auto_schedule(row_scan, AVX2, sizes={"n": 300},
                                knobs={**whole, **{k.name: None for k in sch.explanation.knobs
                                                   if k.name.endswith(":parallel")}})
    assert "parallel(" not in str(kept)
    f = polyop.build(sch)
    a = np.random.rand(300, 300)
    ref = np.zeros((300, 300))
    row_scan.py_func(300, a, ref)
    before = get_num_threads()
    try:
        for threads in (1, 2):
            set_num_threads(threads)
            y = np.zeros((300, 300))
            f(300, a, y)
            np.testing.assert_allclose(y, ref, rtol=1e-12)
    finally:
        set_num_threads(before)
    dep = polyop.auto_schedule(tied_rows, AVX2, sizes={"n": 300})
    assert "parallel(" not in str(dep)
    assert dep.explanation.knob("outer_parallel").why.endswith("none found")
