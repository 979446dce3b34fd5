"""auto_schedule's unroll-and-jam of row sums (``polyop.autoschedule.jam``):
where it is taken, that it leaves every result bit for bit unchanged (each
row still summed in its own order), and that LLVM's vectorizers are kept
from packing the jammed rows into gathers (``prefer-no-gather``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import polyop
from polyop.errors import ScheduleError
from tests.kernels import tied_rows
from tests.polybench import BENCHES

ZEN4 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4 -num-cores=1"
ARM = "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2 -num-cores=1"


@polyop.kernel
def gemv(m: int, n: int, A: "f64[m, n]", x: "f64[n]", y: "f64[m]"):
    for i in range(m):
        for j in range(n):
            y[i] += A[i, j] * x[j]


@polyop.kernel
def running(m: int, n: int, A: "f64[m, n]", y: "f64[m, n]"):
    for i in range(m):
        for j in range(1, n):  # the write moves with j: a scan, not a sum
            y[i, j] = y[i, j - 1] + A[i, j]


def _run(f, m: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A, x = rng.standard_normal((m, n)), rng.standard_normal(n)
    y = rng.standard_normal(m)
    f(m, n, A, x, y)
    return y


@pytest.mark.parametrize("rows", [8, 4, 16])
def test_jammed_rows_sum_bit_for_bit_as_written(rows):
    sch = polyop.auto_schedule(gemv, sizes={"m": 400, "n": 400}, knobs={"S0:jam": rows})
    knob = sch.explanation.knob("S0:jam")
    assert knob.chosen == rows and knob.applied
    assert f"split(i, {rows})" in str(sch) and "unroll(i_inner)" in str(sch)
    jammed, plain = polyop.build(sch), polyop.build(polyop.Schedule(gemv))
    for m, n in ((37, 29), (rows, 5), (rows + 1, 1), (3, 40)):  # partial strips too
        assert np.array_equal(_run(jammed, m, n), _run(plain, m, n)), (m, n)


def test_jam_only_for_sums_of_independent_rows():
    sch = polyop.auto_schedule(gemv, ZEN4, sizes={"m": 400, "n": 400})
    assert sch.explanation.knob("S0:jam").chosen == 8
    off = polyop.auto_schedule(gemv, ZEN4, sizes={"m": 400, "n": 400}, knobs={"S0:jam": None})
    assert "split(" not in str(off)
    for kernel, sizes in ((gemv, {"m": 12, "n": 400}),  # too few rows (and i innermost)
                          (running, {"m": 400, "n": 400})):
        other = polyop.auto_schedule(kernel, ZEN4, sizes=sizes)
        assert "split(" not in str(other) and all(
            not k.name.endswith(":jam") or k.chosen is None for k in other.explanation.knobs)
    with pytest.raises(ScheduleError, match="S0:jam"):
        polyop.auto_schedule(gemv, ZEN4, sizes={"m": 400, "n": 400}, knobs={"S0:jam": 1})


def test_jammed_rows_stay_scalar_on_avx512():
    """The 8 jammed rows read 8 rows of ``A`` at one column: on AVX-512 the
    SLP vectorizer packed those loads into gathers (atax 2x slower than
    with scalar loads on Zen 4); kernels that unroll a loop ask for none."""
    sch = polyop.auto_schedule(gemv, ZEN4, sizes={"m": 400, "n": 400})
    code = polyop.build(sch, target=ZEN4)
    assert "+prefer-no-gather" in code.llvm_ir and "gather" not in code.asm
    plain = polyop.build(polyop.Schedule(gemv), target=ZEN4)
    assert "prefer-no-gather" not in plain.llvm_ir  # nothing unrolled: LLVM as before
    arm = polyop.build(sch, target=ARM)  # an x86 tuning feature only
    assert "prefer-no-gather" not in arm.llvm_ir


@pytest.mark.parametrize("name", ["atax", "bicg", "mvt", "gemver", "gesummv"])
def test_polybench_row_sums_jammed_and_exact(name):
    """One core: atax's and gesummv's sums split off their nests, bicg's
    ``q[i]`` sum distributed from ``s[j]``'s update (``S2:distribute``)."""
    bench = BENCHES[name]
    sch = polyop.auto_schedule(bench.kernel, ZEN4, sizes=bench.sizes["MEDIUM"])
    assert any(k.name.endswith(":jam") and k.chosen and k.applied
               for k in sch.explanation.knobs), sch.explanation
    if name == "bicg":
        assert sch.explanation.knob("S2:distribute").applied
    f = polyop.build(sch)
    args = bench.init(bench.sizes["SMALL"])
    ref = copy.deepcopy(args)
    polyop.build(polyop.Schedule(bench.kernel))(**ref)
    f(**args)
    for o in bench.outputs:
        assert np.array_equal(args[o], ref[o]), o


@polyop.kernel
def row_filter(w: int, h: int, x: "f64[w, h]", y: "f64[w, h]"):
    for i in range(w):
        m1 = 0.0
        m2 = 0.0
        for j in range(h):  # a chain along the row through the temporaries m1, m2
            y[i, j] = x[i, j] + 0.5 * m1 - 0.25 * m2
            m2 = m1
            m1 = y[i, j]


def test_chains_through_temporaries_expanded_and_jammed_bit_for_bit():
    """A chain along each row through scalars (deriche's recursive filters):
    the scalars expanded over the rows, the row loop distributed from their
    initialisation, 8 rows run side by side with their chains' values in
    registers; same results bit for bit."""
    sch = polyop.auto_schedule(row_filter, ZEN4, sizes={"w": 720, "h": 480})
    text = str(sch)
    for step in ("expand(m1, i)", "expand(m2, i)", "fission(i)", "split(i, 8)",
                 "cache_write(m1_x, scope='local'", "cache_write(m2_x, scope='local'"):
        assert step in text, text
    assert "cache_write(y" not in text  # y moves with j: written in place
    f, plain = polyop.build(sch), polyop.build(polyop.Schedule(row_filter))
    rng = np.random.default_rng(1)
    for w, h in ((37, 29), (8, 3), (9, 1), (3, 40)):
        x = rng.standard_normal((w, h))
        y1, y2 = np.zeros((w, h)), np.zeros((w, h))
        f(w, h, x, y1)
        plain(w, h, x, y2)
        assert np.array_equal(y1, y2), (w, h)


def test_chain_expansion_taken_back_where_the_rows_stay_tied():
    sch = polyop.auto_schedule(tied_rows, ZEN4, sizes={"n": 400})
    assert "expand(" not in str(sch) and "fission(" not in str(sch)
    fission = sch.explanation.knob("S1:fission")
    assert not fission.applied and "i still carries a dependence" in fission.why
    assert not sch.explanation.knob("S1:expand").applied


def test_deriche_filters_expanded_and_exact():
    bench = BENCHES["deriche"]
    ref = bench.init(bench.sizes["SMALL"])
    polyop.build(polyop.Schedule(bench.kernel))(**ref)
    for target in (ZEN4, ZEN4.replace("-num-cores=1", "-num-cores=2")):
        sch = polyop.auto_schedule(bench.kernel, target, sizes=bench.sizes["MEDIUM"])
        assert str(sch).count("fission(") == 4  # the four recursive sweeps
        assert sum(1 for k in sch.explanation.knobs if k.name.endswith(":jam") and k.chosen) == 2
        args = bench.init(bench.sizes["SMALL"])
        polyop.build(sch)(**args)
        for o in bench.outputs:
            assert np.array_equal(args[o], ref[o]), (target, o)
