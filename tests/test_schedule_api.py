"""Schedule primitives as people call them: reorder of a partly imperfect nest,
the loops of a statement that runs in two copies."""

import numpy as np
import pytest

import polyop
from polyop import ScheduleError
from tests.kernels import run_both
from tests.test_schedule_structure import blur


@polyop.kernel
def init_then_nest(n: int, m: int, A: "f64[n, m]", B: "f64[n, m, m]", s: "f64[n]"):
    for i in range(n):
        s[i] = 0.0
        for j in range(m):
            for k in range(m):
                B[i, j, k] = A[i, j] * 2.0 + B[i, j, k] + s[i]


def _args(n=3, m=4):
    rng = np.random.default_rng(0)
    return dict(n=n, m=m, A=rng.random((n, m)), B=rng.random((n, m, m)), s=rng.random(n))


def test_reorder_with_the_outer_loop_in_place_needs_no_perfect_nest_around_it():
    sch = polyop.Schedule(init_then_nest)
    i, j, k = sch.get_loops("S1")
    sch.reorder(i, k, j)  # i keeps its place; the init sits between i and j
    assert [lp.name for lp in sch.get_loops("S1")] == ["i", "k", "j"]
    run_both(sch, init_then_nest, _args())


def test_reorder_that_moves_a_loop_across_a_statement_is_refused():
    sch = polyop.Schedule(init_then_nest)
    i, j, k = sch.get_loops("S1")
    with pytest.raises(ScheduleError, match="not perfectly nested inside i"):
        sch.reorder(k, i)
    with pytest.raises(ScheduleError, match="not perfectly nested inside i"):
        sch.reorder(k, j, i)
    assert str(sch) == "schedule of init_then_nest:\n  (original order)"


def test_reorder_of_loops_in_other_branches_is_refused():
    sch = polyop.Schedule(blur)
    (i0, _), (_, j1) = sch.get_loops("S0"), sch.get_loops("S1")
    with pytest.raises(ScheduleError, match="does not enclose"):
        sch.reorder(j1, i0)


def test_loops_of_every_copy_after_compute_at():
    sch = polyop.Schedule(blur)
    i, j = sch.get_loops("S1")
    sch.compute_at("S0", j)  # the first column of T for m == 1 runs apart
    main, *others = sch.get_loops("S0", copies=True)
    assert main == sch.get_loops("S0")  # the copy with the instances comes first
    assert main[:2] == [i, j] and len(others) == 1 and others[0][0] != i
    assert sch.get_loops("S1", copies=True) == [[i, j]]


@polyop.kernel
def grid(n: int, m: int, A: "f64[n, m]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            A[i, j] = A[i, j] * 2.0 + B[i, j]


@polyop.kernel
def lower_triangle(n: int, A: "f64[n, n]"):
    for i in range(n):
        for j in range(i + 1):
            A[i, j] = A[i, j] + i - j


@pytest.mark.parametrize("parallel", [False, True])
def test_fuse_of_a_symbolic_extent_is_one_loop_with_division(parallel):
    sch = polyop.Schedule(grid)
    i, j = sch.get_loops("S0")
    f = sch.fuse(i, j)
    if parallel:
        sch.parallel(f)
    loops = [x for x in polyop.ir.walk(polyop.lower(sch).body) if isinstance(x, polyop.ir.For)]
    assert [x.var for x in loops] == ["i_j_fused"]
    rng = np.random.default_rng(2)
    for n, m in [(0, 3), (3, 0), (1, 1), (5, 7), (7, 5)]:
        run_both(sch, grid, dict(n=n, m=m, A=rng.random((n, m)), B=rng.random((n, m))))
    with pytest.raises(ScheduleError, match="not transformed further"):
        sch.split(f, 4)
    with pytest.raises(ScheduleError, match="not transformed further"):
        sch.vectorize(f)


def test_fuse_whose_inner_range_follows_the_outer_loop_stays_correct():
    sch = polyop.Schedule(lower_triangle)
    i, j = sch.get_loops("S0")
    sch.fuse(i, j)  # j's range moves with i: the loops stay nested in the code
    rng = np.random.default_rng(3)
    for n in (0, 1, 6):
        run_both(sch, lower_triangle, dict(n=n, A=rng.random((n, n))))


def test_parallel_fused_loop_that_carries_a_reduction_is_illegal():
    from tests.kernels import matmul_ikj

    sch = polyop.Schedule(matmul_ikj)
    _, k, j = sch.get_loops("S0")
    kj = sch.fuse(k, j)
    with pytest.raises(polyop.IllegalScheduleError) as info:
        sch.parallel(kj)
    assert (info.value.kind, info.value.array) == ("RAW", "C")
