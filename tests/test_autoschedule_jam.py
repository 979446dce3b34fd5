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
