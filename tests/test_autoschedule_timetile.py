"""Time tiling of multi-statement stencils in ``auto_schedule``
(``polyop.autoschedule.timetile``): the fused, shifted, skewed, tiled
schedule matches CPython at awkward sizes and 1 and 2 threads, the schedule
really holds the time tiles, the model's choice is explained, and the knob
off gives the schedule the per-nest heuristic gives without the pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import polyop
from polyop.autoschedule import heuristic
from polyop.codegen.parallel import get_num_threads, set_num_threads
from polyop.errors import ScheduleError
from polyop.kinds import LoopKind
from tests.polybench import BENCHES

AVX2 = "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=2"
AVX512 = "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=2"

#: kernel -> (forced tile sizes, size sets: tmax 0/1/2 and sizes no tile divides)
CASES = {
    "jacobi-1d": ((4, 16), [(0, 7), (1, 9), (2, 30), (7, 45)]),
    "jacobi-2d": ((2, 4, 8), [(0, 6), (1, 7), (2, 11), (5, 13)]),
    "heat-3d": ((2, 4, 4, 8), [(0, 5), (1, 6), (2, 7), (3, 9)]),
}


def _sizes(bench, values):
    return dict(zip(bench.kernel.program.params, values))


def _build(sch):
    # isl gives up validating the tiled loop nest of a time-tiled stencil (over
    # its operation budget, with a warning): the tests compare with CPython
    return polyop.build(sch, validate=False)


def _run(f, bench, sizes):
    args = bench.init(sizes)
    ref = copy.deepcopy(args)
    bench.kernel.py_func(**ref)
    f(**args)
    return args, ref


def _cases():
    for name in CASES:  # heat-3d's 4-deep tiled nest takes isl ~20 s to generate
        yield pytest.param(name, marks=(pytest.mark.slow,) if name == "heat-3d" else (),
                           id=name)


@pytest.mark.parametrize("name", _cases())
def test_time_tiled_stencil_matches_cpython(name):
    bench = BENCHES[name]
    tiles, size_sets = CASES[name]
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"],
                               knobs={"S0:time_tile": True, "S0:time_tiles": tiles})
    assert sch.check() == []
    f = _build(sch)
    before = get_num_threads()
    try:
        for threads in (1, 2):
            set_num_threads(threads)
            for values in size_sets:
                args, ref = _run(f, bench, _sizes(bench, values))
                for o in bench.outputs:
                    np.testing.assert_allclose(
                        args[o], ref[o], rtol=1e-12, atol=1e-14,
                        err_msg=f"{name} {values} {threads} threads: {o}\n{sch}")
    finally:
        set_num_threads(before)


def test_schedule_holds_the_time_tiles():
    bench = BENCHES["jacobi-2d"]
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"],
                               knobs={"S0:time_tile": True, "S0:time_tiles": (4, 8, 32)})
    lines = str(sch).splitlines()[1:]
    # isl's band (t, 2t + i, 2t + j) with S1 shifted by one in i and j
    assert [x.strip() for x in lines[:6]] == [
        "shift(S1, i, 1)", "fuse(i, i)", "shift(S1, j, 1)", "fuse(j, j)",
        "skew(t, i, 2)", "skew(t, j, 2)"]
    assert "split(t, 4)" in str(sch) and "split(i, 8)" in str(sch) and "split(j, 32)" in str(sch)
    # parallelogram tiles of t x i x j, the wavefront parallel across time tiles
    assert "reorder(t_outer, i_outer, j_outer, t_inner, i_inner, j_inner)" in str(sch)
    assert "skew(t_outer, i_outer, 1)" in str(sch) and "parallel(t_outer)" in str(sch)
    loops = [lp.name for lp in sch.get_loops("S0")]
    assert loops == ["i_outer", "t_outer", "j_outer", "t_inner", "i_inner", "j_inner"]
    assert sch.get_loops("S0")[:4] == sch.get_loops("S1")[:4]  # one tile holds both
    ex = sch.explanation
    assert ex.knob("S0:time_tile").chosen is True and ex.knob("S0:time_tile").applied
    assert "2*t + i + 1" in ex.knob("S0:time_tile").why  # isl's band, explained
    assert ex.knob("S0:wavefront").chosen is True
    assert "F(T)" in ex.knob("S0:time_tiles").formula
    kinds = {name: kind for name, kind in sch.loop_info().values()}
    assert kinds["t_outer"] == LoopKind.PARALLEL


def test_knob_off_gives_the_old_schedule(monkeypatch):
    for name in ("jacobi-1d", "jacobi-2d"):
        bench = BENCHES[name]
        sizes = bench.sizes["MEDIUM"]
        off = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes,
                                   knobs={"S0:time_tile": False})
        with monkeypatch.context() as m:
            m.setattr(heuristic, "time_tile", lambda ctx: set())
            old = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes)
        assert str(off) == str(old)
        assert "skew" not in str(off) and "fuse" not in str(off)
        assert [(k.name, k.chosen) for k in off.explanation.knobs
                if not k.name.endswith(":time_tile")] == \
            [(k.name, k.chosen) for k in old.explanation.knobs]


def test_model_keeps_compute_bound_stencils_untiled():
    # MEDIUM: the arrays fit the L3, the sweeps are compute-bound (measured:
    # time tiles 5-10 % slower there), so the model says no and says why
    bench = BENCHES["jacobi-2d"]
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"])
    knob = sch.explanation.knob("S0:time_tile")
    assert knob.chosen is False and "compute" in knob.why and "needs 1.5x" in knob.why
    assert "skew" not in str(sch)
    assert "S0:time_tile" in str(sch.explanation)


def test_model_chooses_time_tiles_when_memory_bound():
    # arrays far beyond the L3, 8 lanes: the sweeps wait for memory
    bench = BENCHES["jacobi-2d"]
    sch = polyop.auto_schedule(bench.kernel, AVX512, sizes={"tsteps": 1000, "n": 20000})
    ex = sch.explanation
    assert ex.knob("S0:time_tile").chosen is True and ex.knob("S0:time_tile").applied
    tiles = ex.knob("S0:time_tiles").chosen
    assert len(tiles) == 3 and tiles[0] > 1
    assert "skew(t, i, 2)" in str(sch) and "parallel(t_outer)" in str(sch)


def test_one_core_target_has_no_wavefront():
    bench = BENCHES["jacobi-1d"]
    sch = polyop.auto_schedule(bench.kernel, "cpu -mcpu=haswell -num-cores=1",
                               sizes=bench.sizes["MEDIUM"],
                               knobs={"S0:time_tile": True, "S0:time_tiles": (4, 16)})
    assert sch.explanation.knob("S0:wavefront").chosen is False
    assert "parallel" not in str(sch) and "skew(t, i, 2)" in str(sch)
    f = _build(sch)
    args, ref = _run(f, bench, {"tsteps": 9, "n": 37})
    for o in bench.outputs:
        np.testing.assert_allclose(args[o], ref[o], rtol=1e-12)


def test_fdtd_2d_explains_why_not_and_stays_correct():
    bench = BENCHES["fdtd-2d"]
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=bench.sizes["MEDIUM"])
    knob = sch.explanation.knob("S0:time_tile")
    assert knob.chosen is False and "different loop depths" in knob.why
    f = polyop.build(sch)
    before = get_num_threads()
    try:
        for threads in (1, 2):
            set_num_threads(threads)
            for values in [(0, 5, 6), (1, 7, 9), (2, 10, 13)]:
                args, ref = _run(f, bench, _sizes(bench, values))
                for o in bench.outputs:
                    np.testing.assert_allclose(args[o], ref[o], rtol=1e-12, atol=1e-14)
    finally:
        set_num_threads(before)


def test_a_refused_step_undoes_the_whole_time_tiling(monkeypatch):
    bench = BENCHES["jacobi-1d"]
    sizes = bench.sizes["MEDIUM"]
    old = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes, knobs={"S0:time_tile": False})
    real = polyop.Schedule.fission

    def refuse(self, loop):  # the last structural step fails: all before it is taken back
        if loop.name == "i_inner":
            raise ScheduleError("fission(i_inner): refused for the test")
        return real(self, loop)

    monkeypatch.setattr(polyop.Schedule, "fission", refuse)
    sch = polyop.auto_schedule(bench.kernel, AVX2, sizes=sizes,
                               knobs={"S0:time_tile": True, "S0:time_tiles": (4, 16)})
    knob = sch.explanation.knob("S0:time_tile")
    assert knob.applied is False and "refused for the test" in knob.why
    assert str(sch) == str(old) and sch.check() == []
