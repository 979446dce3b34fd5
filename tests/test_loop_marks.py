"""Loop kinds (parallel, vectorize, unroll) stay with the loop they were given to."""

import numpy as np
import pytest

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.kernels import matmul_ikj, recurrence, run_both
from tests.test_schedule import gemm_args as _args


def _kinds(sch, stmt="S0"):
    return [(lp.name, sch._loops[lp.id].kind) for lp in sch.get_loops(stmt)]


def test_split_carries_parallel_out_and_vector_in():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    sch.parallel(i)
    sch.vectorize(j)
    sch.split(i, 2)
    sch.split(j, 4)
    assert _kinds(sch) == [("i_outer", "parallel"), ("i_inner", "serial"), ("k", "serial"),
                           ("j_outer", "serial"), ("j_inner", "vector")]
    text = str(polyop.lower(sch))
    assert "// parallel" in text and "vector" in text
    run_both(sch, matmul_ikj, _args())


def test_tile_of_a_parallel_loop_keeps_the_outer_tile_loop_parallel():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    sch.parallel(i)
    sch.tile(i, k, 2, 2)
    assert _kinds(sch)[0] == ("i_outer", "parallel")
    run_both(sch, matmul_ikj, _args())


def test_split_of_a_loop_that_carries_the_reduction_keeps_its_opt_in():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    sch.parallel(k, reduction="atomic")
    assert str(sch).splitlines()[-1].strip() == "parallel(k, reduction='atomic')"
    ko, _ = sch.split(k, 2)
    assert sch._loops[ko.id].reduction == "atomic"
    run_both(sch, matmul_ikj, _args(nk=7), exact=False)


def test_a_loop_has_one_kind():
    sch = polyop.Schedule(matmul_ikj)
    _, _, j = sch.get_loops("S0")
    sch.vectorize(j)
    with pytest.raises(ScheduleError, match="already marked vectorize"):
        sch.parallel(j)
    assert _kinds(sch)[-1] == ("j", "vector")
    sch.vectorize(j)  # the same kind again is no change


def test_vector_loop_stays_innermost():
    sch = polyop.Schedule(matmul_ikj)
    _, k, j = sch.get_loops("S0")
    sch.vectorize(j)
    before = str(sch.tree)
    with pytest.raises(ScheduleError, match="vectorized loop j"):
        sch.interchange(k, j)
    assert str(sch.tree) == before


def test_vectorize_has_no_reduction_opt_in():
    sch = polyop.Schedule(recurrence)
    _, j = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.vectorize(j)
    assert "reduction='atomic'" not in str(info.value)


@polyop.kernel
def two_stores(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        A[i] = A[i] * 2.0
        B[i] = B[i] + A[i]


def test_vectorize_of_an_innermost_loop_with_two_statements():
    sch = polyop.Schedule(two_stores)
    (i,) = sch.get_loops("S0")
    sch.vectorize(i)
    rng = np.random.default_rng(1)
    run_both(sch, two_stores, dict(n=13, A=rng.random(13), B=rng.random(13)))


@pytest.mark.parametrize("factor, words", [
    (2**63, "out of range"), (True, "must be an integer"), (2.5, "must be an integer"),
    (0, "positive"), (-3, "positive"), ("4", "must be an integer")])
def test_bad_factors_are_schedule_errors(factor, words):
    sch = polyop.Schedule(matmul_ikj)
    _, k, j = sch.get_loops("S0")
    with pytest.raises(ScheduleError, match=words):
        sch.split(k, factor)
    if words != "positive":  # an offset may be 0 or negative
        with pytest.raises(ScheduleError, match=words):
            sch.shift("S0", j, factor)
    assert str(sch) == "schedule of matmul_ikj:\n  (original order)"


def test_numpy_integers_are_factors():
    sch = polyop.Schedule(matmul_ikj)
    i, k, _ = sch.get_loops("S0")
    sch.split(k, np.int64(2))
    sch.skew(i, sch.get_loops("S0")[1], np.int32(1))
    run_both(sch, matmul_ikj, _args())


def test_repr_of_a_stale_handle_says_why():
    sch = polyop.Schedule(matmul_ikj)
    i, _, _ = sch.get_loops("S0")
    sch.split(i, 2)
    assert repr(i) == "Loop(i, stale: split into i_outer, i_inner)"


def test_unroll_by_a_factor_of_a_vector_loop_is_refused_before_splitting():
    sch = polyop.Schedule(matmul_ikj)
    _, _, j = sch.get_loops("S0")
    sch.vectorize(j)
    tree = sch.tree
    with pytest.raises(ScheduleError, match="already marked vectorize"):
        sch.unroll(j, 2)
    assert sch.tree is tree
