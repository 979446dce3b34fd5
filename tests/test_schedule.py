"""Schedule primitives: classic legal and illegal cases, explained violations."""

import numpy as np
import pytest

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.kernels import matmul_ikj as gemm
from tests.kernels import recurrence, run_both
from tests.polybench import BENCHES


def gemm_args(ni=13, nj=11, nk=9):
    rng = np.random.default_rng(0)
    return dict(ni=ni, nj=nj, nk=nk, C=rng.random((ni, nj)), A=rng.random((ni, nk)),
                B=rng.random((nk, nj)))


def test_handles_and_statements():
    sch = polyop.Schedule(gemm)
    assert sch.stmts == ["S0"]
    i, k, j = sch.get_loops("S0")
    assert (i.name, k.name, j.name) == ("i", "k", "j")
    assert repr(k) == "Loop(k, depth=1)"
    with pytest.raises(ScheduleError, match="unknown statement 'S9'"):
        sch.get_loops("S9")


def test_interchange_of_2d_recurrence_is_illegal_with_real_instances():
    sch = polyop.Schedule(recurrence)
    i, j = sch.get_loops("S0")
    before = sch.tree
    with pytest.raises(IllegalScheduleError) as info:
        sch.interchange(i, j)
    e = info.value
    assert (e.kind, e.array) == ("RAW", "A")
    assert e.source.startswith("S0[i=") and e.sink.startswith("S0[i=")
    assert str(e).startswith("interchange(i, j) would run S0[")
    assert "RAW dependence on A reversed" in str(e)
    # the pair is a real dependence of the program
    deps = polyop.dependences(recurrence).raw
    assert not deps.is_empty()
    assert sch.tree is before and str(sch).endswith("(original order)")


@polyop.kernel
def first_row(T: int, n: int, m: int, A: "f64[n, m]"):
    for t in range(T):
        for j in range(m):
            A[0, j] = A[0, j] + 1.0


def test_violations_are_named_at_sizes_a_call_accepts():
    """``A[0, j]`` needs n > 0 (checked at every call): the instances of a
    refused schedule are named at such sizes, never at n = 0 (the fuzzer's
    oracle could not run fdtd-2d's ``ey[0, j]`` at nx = 0)."""
    sch = polyop.Schedule(first_row)
    with pytest.raises(IllegalScheduleError) as info:
        sch.parallel(sch.get_loops("S0")[0])
    sizes = [dict(kv.split("=") for kv in v.sizes.split(", ")) for v in info.value.violations]
    assert sizes and all(int(s["n"]) > 0 and int(s["T"]) >= 2 for s in sizes), sizes


def test_skew_makes_interchange_legal():
    sch = polyop.Schedule(recurrence)
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 2)
    sch.interchange(i, j)
    n = 9
    run_both(sch, recurrence, dict(n=n, A=np.random.default_rng(1).random((n, n))))


def test_parallel_inner_loop_of_recurrence_is_illegal():
    sch = polyop.Schedule(recurrence)
    i, j = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError, match=r"parallel\(j\): loop j carries a RAW"):
        sch.parallel(j)
    assert sch.check() == []


def test_gemm_tiling_and_interchange_are_legal():
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 4, 3)
    # named loops take the slots the split loops occupied; k keeps its place
    assert [lp.name for lp in sch.get_loops("S0")] == ["i_outer", "j_outer", "k",
                                                       "i_inner", "j_inner"]
    sch.interchange(k, jo)
    run_both(sch, gemm, gemm_args())
    with pytest.raises(ScheduleError, match="stale"):
        sch.split(i, 2)


def test_split_reverse_and_unroll_keep_results():
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 4)
    sch.unroll(ji)
    sch.reverse(i)
    run_both(sch, gemm, gemm_args())
    with pytest.raises(ScheduleError, match="no constant trip count"):
        sch.unroll(k)


def test_reversing_a_carried_loop_is_illegal():
    sch = polyop.Schedule(recurrence)
    i, _ = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError, match=r"reverse\(i\) would run"):
        sch.reverse(i)


def test_parallel_k_of_gemm_is_illegal_but_i_is_legal():
    sch = polyop.Schedule(gemm)
    i, k, j = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.parallel(k)
    assert info.value.kind in ("RAW", "WAR", "WAW") and info.value.array == "C"
    sch.vectorize(j)
    assert "vector" in str(polyop.lower(sch))
    assert str(sch).splitlines()[-1].strip() == "vectorize(j)"   # the trace names primitives


def test_check_false_admits_and_reports():
    sch = polyop.Schedule(recurrence, check=False)
    i, j = sch.get_loops("S0")
    sch.interchange(i, j)
    report = sch.check()
    assert report and {v.kind for v in report} == {"RAW"}


@pytest.mark.parametrize("name", ["jacobi-1d", "jacobi-2d"])
def test_time_tiling_of_jacobi_needs_skew(name):
    bench = BENCHES[name]
    sch = polyop.Schedule(bench.kernel)
    t, i = sch.get_loops("S0")[:2]
    with pytest.raises((IllegalScheduleError, ScheduleError)):
        sch.interchange(t, i)


def test_shift_of_one_statement_breaking_order_is_illegal():
    sch = polyop.Schedule(BENCHES["jacobi-1d"].kernel)
    t, i = sch.get_loops("S1")
    with pytest.raises(IllegalScheduleError):
        sch.shift("S1", t, -1)
