"""auto_schedule's wavefronts (``polyop.autoschedule.wavefront``): a chain
carried by the innermost loop, with no parallel loop around it, is skewed so
that a wavefront's instances are independent; the results stay bit for bit
those of the kernel as written (same instances, same expression each, every
dependence kept)."""

from __future__ import annotations

import numpy as np
import pytest

import polyop
from polyop.autoschedule.wavefront import chain_distance
from tests.kernels import compare
from tests.polybench import BENCHES

ZEN4 = "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4 -num-cores=1"
SEIDEL = BENCHES["seidel-2d"]


@polyop.kernel
def stride2(n: int, A: "f64[n]"):
    for i in range(2, n):
        A[i] = A[i] * 0.5 + A[i - 2]


@polyop.kernel
def no_flow(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        B[i] = A[i] * 2.0


@polyop.kernel
def diagonal(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n):  # w = i + j: (1, 0) and (0, 1) are the only distances
            A[i, j] = A[i - 1, j] * 0.5 + A[i, j - 1] * 0.25 + 1.0


@polyop.kernel
def interleaved(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(8, n):  # 8 chains interleaved along j: enough in flight
            A[i, j] = A[i, j - 8] * 0.5 + A[i - 1, j]


def _seidel(f, tsteps: int, n: int):
    args = SEIDEL.init({"tsteps": tsteps, "n": n})
    f(args["tsteps"], args["n"], args["A"])
    return args["A"]


def test_chain_distance():
    assert chain_distance(polyop.Schedule(stride2), "S0", "i") == 2
    assert chain_distance(polyop.Schedule(no_flow), "S0", "i") is None
    assert chain_distance(polyop.Schedule(SEIDEL.kernel), "S0", "j") == 1
    assert chain_distance(polyop.Schedule(SEIDEL.kernel), "S0", "i") == 1  # A[i - 1, j]
    fw = BENCHES["floyd-warshall"].kernel  # path[i, k] read by every later column
    assert chain_distance(polyop.Schedule(fw), "S0", "j") is None


def test_seidel_wavefronts_bit_for_bit_as_written():
    sch = polyop.auto_schedule(SEIDEL.kernel, ZEN4, sizes=SEIDEL.sizes["MEDIUM"])
    knob = sch.explanation.knob("S0:wavefront_skew")
    assert knob.chosen == 2 and knob.applied, knob
    assert "skew(i, j, 2)" in str(sch) and "reorder(j, i)" in str(sch)
    assert "vector" not in str(polyop.lower(sch))  # rows at different columns: not vectorised
    waves = polyop.build(sch)
    plain = polyop.kernel(SEIDEL.kernel.py_func)
    for tsteps, n in ((3, 30), (2, 4), (1, 5), (4, 17)):  # wavefronts of one to many points
        assert np.array_equal(_seidel(waves, tsteps, n), _seidel(plain, tsteps, n)), (tsteps, n)


def test_wavefront_factor_is_the_smallest_that_frees_the_rows():
    sch = polyop.auto_schedule(diagonal, ZEN4, sizes={"n": 400})
    assert sch.explanation.knob("S0:wavefront_skew").chosen == 1
    A = np.random.default_rng(0).standard_normal((33, 33))
    compare(polyop.build(sch), diagonal, {"n": 33, "A": A})  # bit for bit with CPython


def test_wavefront_knob_overrides():
    sizes = SEIDEL.sizes["SMALL"]
    off = polyop.auto_schedule(SEIDEL.kernel, ZEN4, sizes=sizes, knobs={"S0:wavefront_skew": None})
    assert "skew" not in str(off)
    wider = polyop.auto_schedule(SEIDEL.kernel, ZEN4, sizes=sizes, knobs={"S0:wavefront_skew": 3})
    assert "skew(i, j, 3)" in str(wider)
    plain = polyop.kernel(SEIDEL.kernel.py_func)
    assert np.array_equal(_seidel(polyop.build(wider), 3, 21), _seidel(plain, 3, 21))
    with pytest.raises(polyop.ScheduleError, match="wavefront"):
        polyop.auto_schedule(SEIDEL.kernel, ZEN4, sizes=sizes, knobs={"S0:wavefront_skew": 9})


def test_no_wavefront_for_chains_already_interleaved():
    assert chain_distance(polyop.Schedule(interleaved), "S0", "j") == 8
    sch = polyop.auto_schedule(interleaved, ZEN4, sizes={"n": 400})
    knob = sch.explanation.knob("S0:wavefront_skew")
    assert knob.chosen is None and "8 interleaved chains" in knob.why


def test_no_wavefront_when_one_would_not_stay_in_cache():
    # 20 000 rows: a wavefront over i touches more lines than half of Zen 4's L2
    sch = polyop.auto_schedule(SEIDEL.kernel, ZEN4, sizes={"tsteps": 10, "n": 20000})
    knob = sch.explanation.knob("S0:wavefront_skew")
    assert knob.chosen is None and "half the L2" in knob.why
    assert "skew" not in str(sch)
