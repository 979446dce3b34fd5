"""``Schedule.expand``: temporaries given one copy per iteration of some loops.

Every built schedule is compared bit for bit with CPython running the kernel
(small integer data stored as floats: sums are exact in any order).
"""

import json

import numpy as np
import pytest

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.kernels import compare
from tests.polybench.blas import kernel_symm as symm

RNG = np.random.default_rng(11)


def ints(shape, lo=-9, hi=10):
    return RNG.integers(lo, hi, shape).astype("float64")


@polyop.kernel
def prefix(n: int, m: int, x: "f64[n, m]", y: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            if j == 0:
                s = 0.0
            s = s + x[i, j]
            y[i, j] = s


@polyop.kernel
def twice(n: int, m: int, x: "f64[n, m]", y: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            s = 2.0 * x[i, j]
            y[i, j] = s + 1.0


@polyop.kernel
def rows(n: int, m: int, A: "f64[n, m]", out: "f64[n, m]"):
    for i in range(n):
        acc = np.zeros((4,), np.float64)
        for j in range(m):
            acc[j % 4] = acc[j % 4] + A[i, j]
            out[i, j] = acc[j % 4]


def symm_args(m, n):
    return {"m": m, "n": n, "alpha": 3.0, "beta": 2.0, "C": ints((m, n)), "A": ints((m, m)),
            "B": ints((m, n))}


def test_symm_expanded_distributed_and_interchanged_matches_cpython():
    sch = polyop.Schedule(symm)
    i, j = sch.get_loops("S0")
    assert sch.expand("temp2", j) == "temp2_x"
    sch.fission(j)
    _, j1, k = sch.get_loops("S1")
    sch.reorder(k, j1)
    sch.vectorize(sch.get_loops("S1")[-1])
    code = str(polyop.lower(sch))
    assert "temp2_x[j]" in code and "double temp2;" not in code
    f = polyop.build(sch)
    for m, n in ((1, 1), (5, 3), (17, 33), (40, 9)):
        compare(f, symm, symm_args(m, n))


def test_fission_of_the_unexpanded_scalar_is_refused():
    sch = polyop.Schedule(symm)
    with pytest.raises(IllegalScheduleError, match="temp2"):
        sch.fission(sch.get_loops("S0")[1])


def test_expanded_over_both_loops_and_a_split_one():
    sch = polyop.Schedule(symm)
    i, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 4)
    name = sch.expand("temp2", i, jo, ji, name="t")
    assert name == "t"
    assert "t[i, j_outer, j_inner]" in str(polyop.lower(sch)).replace("][", ", ")
    sch.fission(ji)
    compare(polyop.build(sch), symm, symm_args(9, 11))


def test_local_array_expanded_over_the_outer_loop():
    sch = polyop.Schedule(rows)
    (i, _), = [sch.get_loops(s)[:2] for s in ("S1",)]
    sch.expand("acc", i)
    sch.parallel(i)  # each i its own accumulators in the scratch array
    compare(polyop.build(sch), rows, {"n": 6, "m": 10, "A": ints((6, 10)),
                                      "out": np.zeros((6, 10))})


def test_value_carried_across_iterations_is_refused_with_the_pair():
    sch = polyop.Schedule(prefix)
    i, j = sch.get_loops("S1")
    with pytest.raises(ScheduleError, match=r"S[12]\[i=\d+, j=\d+\] .*reads the "
                                            r"value of s that S[01]\[.*another iteration"):
        sch.expand("s", j)
    assert not sch.trace  # the refused call left the schedule as it was
    sch.expand("s", i)  # over the rows, where each sum starts again
    compare(polyop.build(sch), prefix, {"n": 4, "m": 7, "x": ints((4, 7)),
                                        "y": np.zeros((4, 7))})


def test_arguments_unknown_arrays_and_outside_statements_are_refused():
    sch = polyop.Schedule(symm)
    i, j = sch.get_loops("S0")
    with pytest.raises(ScheduleError, match="C is an argument"):
        sch.expand("C", i)
    with pytest.raises(ScheduleError, match="nope is not an array"):
        sch.expand("nope", i)
    with pytest.raises(ScheduleError, match="name the loops"):
        sch.expand("temp2")
    k = sch.get_loops("S1")[2]
    with pytest.raises(ScheduleError, match=r"temp2 that S0\[.*S0 runs outside the loops"):
        sch.expand("temp2", k)
    with pytest.raises(ScheduleError, match="taken"):
        sch.expand("temp2", j, name="C")


def test_parallel_loop_not_expanded_over_shares_the_scratch_array():
    sch = polyop.Schedule(twice)
    i, j = sch.get_loops("S0")
    sch.fork().parallel(i)  # legal: each thread has its own local s
    sch.expand("s", j)
    with pytest.raises(IllegalScheduleError, match="s_x"):
        sch.parallel(i)  # both threads would use s_x[j]
    sch.parallel(j)
    compare(polyop.build(sch), twice, {"n": 3, "m": 50, "x": ints((3, 50)),
                                       "y": np.zeros((3, 50))})


def test_trace_replays_through_json():
    sch = polyop.Schedule(symm)
    i, j = sch.get_loops("S0")
    sch.expand("temp2", j, name="t2")
    sch.fission(j)
    again = polyop.Schedule.from_json(json.loads(json.dumps(sch.trace_json())), symm)
    assert again.program.arrays == sch.program.arrays
    assert polyop.lower(again) == polyop.lower(sch)


def test_auto_schedule_expands_the_temporary_that_alone_refuses_fission():
    target = "cpu -mcpu=znver4 -num-cores=1"
    sch = polyop.auto_schedule(symm, target, sizes={"m": 40, "n": 48})
    knob = sch.explanation.knob("S1:expand")
    assert knob.chosen and knob.applied and "temp2" in knob.why
    assert "expand(temp2, j)" in str(sch) and "fission(j)" in str(sch)
    f = polyop.build(sch)
    for m, n in ((1, 1), (7, 5), (40, 48)):
        compare(f, symm, symm_args(m, n))
    off = polyop.auto_schedule(symm, target, sizes={"m": 40, "n": 48},
                               knobs={"S1:expand": False})
    assert "expand" not in str(off)
    assert "refused" in off.explanation.knob("S1:fission").why


def test_only_the_statements_inside_the_loops_get_the_expanded_array():
    """ludcmp's ``w`` serves four nests; its second ``j`` loop gets its own."""
    from tests.polybench import BENCHES

    bench = BENCHES["ludcmp"]
    sch = polyop.Schedule(bench.kernel)
    i, j = sch.get_loops("S3")[:2]  # w = A[i, j] of the loop over j >= i
    sch.expand("w", j)
    assert {"w", "w_x"} <= set(sch.program.arrays)
    sch.fission(j)
    _, jj, k = sch.get_loops("S4")
    sch.reorder(k, jj)
    assert "w_x[j] = w_x[j] - A[i][k] * A[k][j]" in str(polyop.lower(sch))
    for n in (1, 2, 9):
        compare(polyop.build(sch), bench.kernel, bench.init({"n": n}))
