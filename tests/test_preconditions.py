"""Accesses out of bounds only for some sizes: preconditions derived with isl,
shown in the model and the lowered code, checked at every call; accesses out
of bounds for every large size stay compile-time ``BoundsError`` s
(``polyop.bounds``)."""

import numpy as np
import pytest

import polyop
from polyop import ArgumentError, BoundsError
from polyop.bounds import check_bounds
from tests.polybench import BENCHES


@pytest.mark.parametrize("name, text, access", [
    ("correlation", "m > 0", "corr[m - 1, m - 1]"),
    ("durbin", "n > 0", "y[0]"),
    ("fdtd-2d", "nx > 0 or tmax = 0 or ny = 0", "ey[0, j]"),
])
def test_polybench_as_written_has_preconditions(name, text, access):
    kernel = BENCHES[name].kernel
    pre = check_bounds(kernel.program)
    assert text in {p.text for p in pre}
    assert access in {p.access for p in pre}
    assert f"requires {text}" in str(kernel.program)
    assert f"// requires: {text}\n" in str(polyop.lower(kernel))


def test_printed_model_lists_preconditions_before_anything_asks_for_them():
    @polyop.kernel
    def last(n: int, A: "f64[n]"):
        A[n - 1] = 1.0

    text = str(last.program)  # a fresh program: the model asks the proof itself
    assert "requires n > 0  (S0, line" in text and "writes A[n - 1])" in text
    pre = check_bounds(last.program)
    assert check_bounds(last.program) is pre  # proven once per program


def test_precondition_violated_names_condition_statement_access_and_sizes():
    bench = BENCHES["correlation"]
    args = bench.init({"m": 0, "n": 3})
    with pytest.raises(ArgumentError) as info:
        bench.kernel(**args)
    msg = str(info.value)
    assert "precondition 'm > 0'" in msg
    assert "corr[m - 1, m - 1] = 1.0" in msg and "writes corr[m - 1, m - 1]" in msg
    assert "m=0, n=3" in msg
    assert info.value.argument == "m > 0"


def test_disjunctive_precondition_holds_through_either_side():
    @polyop.kernel
    def first_row(tsteps: int, n: int, A: "f64[n, 4]", f: "f64[tsteps]"):
        for t in range(tsteps):
            for j in range(4):
                A[0, j] = A[0, j] + f[t]

    pre = check_bounds(first_row.program)
    assert {(p.kind, p.access, p.text) for p in pre} == {
        ("writes", "A[0, j]", "n > 0 or tsteps = 0"), ("reads", "A[0, j]", "n > 0 or tsteps = 0")}
    for tsteps, n in ((3, 2), (0, 0), (2, 1)):
        f = np.arange(tsteps, dtype=np.float64) + 0.5
        a, ref = np.ones((n, 4)), np.ones((n, 4))
        first_row(tsteps, n, a, f)
        first_row.py_func(tsteps, n, ref, f)
        np.testing.assert_array_equal(a, ref)
    with pytest.raises(ArgumentError,
                       match=r"tsteps=2, n=0 violate the precondition 'n > 0 or tsteps = 0'"):
        first_row(2, 0, np.ones((0, 4)), np.ones(2))


def test_precondition_checked_by_built_schedules_and_allows_transformations():
    @polyop.kernel
    def ends(n: int, A: "f64[n]", B: "f64[n]"):
        for i in range(n):
            B[i] = A[i] + A[n - 1]

    sch = polyop.Schedule(ends)
    (i,) = sch.get_loops("S0")
    sch.split(i, 4)
    f = polyop.build(sch)
    a, b = np.arange(7.0), np.zeros(7)
    f(7, a, b)
    np.testing.assert_array_equal(b, a + 6.0)
    # with n = 0 the loop is empty: A[n - 1] is never read, so no precondition
    assert check_bounds(ends.program) == ()
    f(0, np.zeros(0), np.zeros(0))


def test_constant_index_beyond_small_sizes_is_a_precondition():
    @polyop.kernel
    def sixth(n: int, A: "f64[n]"):
        A[5] = 1.0

    assert [p.text for p in check_bounds(sixth.program)] == ["n >= 6"]
    a = np.zeros(6)
    sixth(6, a)
    assert a[5] == 1.0
    with pytest.raises(ArgumentError, match="n=5"):
        sixth(5, np.zeros(5))


def test_out_of_bounds_for_every_large_size_is_a_compile_time_error():
    @polyop.kernel
    def shifted(n: int, A: "f64[n]", B: "f64[n]"):
        for i in range(n):
            B[i] = A[i + 1]

    with pytest.raises(BoundsError, match=r"reads A\[i \+ 1\]"):
        shifted.compile()


def test_out_of_bounds_for_large_unbounded_size_despite_a_bounded_one():
    # n is bounded by the assert, m is not: A[m] is out of bounds for every m
    @polyop.kernel
    def past_end(n: int, m: int, A: "f64[m]", B: "f64[n]"):
        assert n <= 8
        for i in range(n):
            B[i] = A[m]

    with pytest.raises(BoundsError, match=r"reads A\[m\]"):
        past_end.compile()


def test_kernel_without_sizes_out_of_bounds_is_a_compile_time_error():
    @polyop.kernel
    def fixed(A: "f64[4]"):
        for i in range(5):
            A[i] = 0.0

    with pytest.raises(BoundsError, match=r"writes A\[i\]"):
        fixed.compile()


def test_tensor_expression_precondition():
    n, m = polyop.var("n"), polyop.var("m")
    A = polyop.placeholder((n,), "float64", name="A")
    C = polyop.compute((m,), lambda i: A[n - 1] * 2.0, name="C")
    f = polyop.build(C, [A, C])
    assert "// requires: n > 0 or m = 0" in str(polyop.lower(C, [A, C]))
    a, c = np.arange(3.0), np.zeros(4)
    f(a, c)
    np.testing.assert_array_equal(c, np.full(4, 4.0))
    f(np.zeros(0), np.zeros(0))
    with pytest.raises(ArgumentError, match="precondition"):
        f(np.zeros(0), np.zeros(2))
