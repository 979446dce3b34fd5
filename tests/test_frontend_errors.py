"""Bad input is rejected early with the right error type and a message naming the culprit."""

import math

import numpy as np
import pytest

import polyop
from polyop import ArgumentError, BoundsError, FrontendError
from polyop.bounds import check_bounds


def parse_error(fn) -> FrontendError:
    with pytest.raises(FrontendError) as info:
        _ = polyop.kernel(fn).program
    err = info.value
    assert err.filename.endswith("test_frontend_errors.py")
    return err


def test_non_affine_subscript_names_array_and_iterators():
    def k(n: int, A: "f64[n, n]", x: "f64[n]"):
        for i in range(n):
            for j in range(n):
                x[i] = A[i * j, j]

    err = parse_error(k)
    assert "A[i * j, j]" in str(err)
    assert "not affine in (i, j)" in str(err)
    assert err.line == k.__code__.co_firstlineno + 3


def test_indirect_subscript_is_not_affine():
    def k(n: int, A: "f64[n]", idx: "i64[n]"):
        for i in range(n):
            A[idx[i]] = 1.0

    assert "A[idx[i]]" in str(parse_error(k))


def test_non_affine_loop_bound():
    def k(n: int, A: "f64[n]"):
        for i in range(n):
            for j in range(i * i):
                A[i] = 0.0

    err = parse_error(k)
    assert "bound 'i * i' of loop j is not affine" in str(err)


def test_data_dependent_if_rejected_with_hint():
    def k(n: int, A: "f64[n]"):
        for i in range(n):
            if A[i] > 0.0:
                A[i] = 0.0

    err = parse_error(k)
    assert "condition 'A[i] > 0.0' is not affine" in str(err)
    assert "a if cond else b" in str(err)


@pytest.mark.parametrize("body, needle", [
    ("while n > 0:\n        n = n - 1", "while loop is not supported"),
    ("for i in [1, 2]:\n        A[i] = 0.0", "only range(hi)"),
    ("for i in range(0, n, n):\n        A[i] = 0.0", "non-zero integer constant"),
    ("A[0] = len(A)", "len(A) is not part of the kernel language: use the extent it "
                      "stands for, n (A has shape [n])"),
    ("A[0] = A.shape[0]", "A.shape[0] is not part of the kernel language: use the extent "
                          "it stands for, n"),
    ("for i in range(len(A)):\n        A[i] = 0.0", "use the extent it stands for, n"),
    ("for i in range(A.shape[0]):\n        A[i] = 0.0", "use the extent it stands for, n"),
    ("A[0:2] = 0.0", "slice in subscript of A"),
    ("A[0][0] = 0.0", "chained subscript"),
    ("B[0] = 1.0", "'B' is not an array argument"),
    ("A[0] = q", "name 'q' is not defined"),
    ("n = 3", "cannot assign to 'n'"),
    ("s += 1.0", "updated before it is assigned"),
    ("A[0, 1] = 1.0", "A has 1 dimensions but is subscripted with 2"),
    ("print(n)", "call statement 'print(n)' is not supported"),
    ("n + 1", "expression statement is not supported"),
    ("for i in range(2 ** 70):\n        A[0] = 0.0", "does not fit in a 64-bit integer"),
    ("for i in range(n):\n        s = A[i]\n        A[s] = 0.0", "'s' is a local scalar"),
])
def test_unsupported_constructs(body, needle, tmp_path):
    src = (f"import polyop\n\n@polyop.kernel\ndef k(n: int, A: 'f64[n]'):\n    {body}\n")
    path = tmp_path / "kern.py"
    path.write_text(src)
    ns = {"__file__": str(path)}
    exec(compile(src, str(path), "exec"), ns)
    with pytest.raises(FrontendError) as info:
        _ = ns["k"].program
    assert needle in str(info.value)
    assert 5 <= info.value.line <= 5 + body.count("\n")  # a line of the construct
    assert f"kern.py:{info.value.line}:" in str(info.value)
    assert "line " not in str(info.value)  # file:line:col once, not the line again


def test_missing_annotation():
    def k(n, A: "f64[n]"):
        A[0] = 1.0

    assert "argument 'n' needs an annotation" in str(parse_error(k))


@pytest.mark.parametrize("ann, needle", [
    ("int8[n]", "element type 'int8' is not supported (supported: f32, f64, i32, i64)"),
    ("bool[n]", "element type 'bool' is not supported"),
    ("f16[n]", "element type 'f16' is not supported"),
    (np.float16, "element type 'float16' is not supported"),
    ("float64[n]", "write the element type 'float64' as 'f64'"),
    (np.int32, "write the element type 'int32' as 'i32'"),
    (float, "a float scalar is annotated \"f64\""),
    ("matrix", "annotation 'matrix' is not understood"),
])
def test_unsupported_element_types_are_named(ann, needle):
    def k(n: int, A):
        pass

    k.__annotations__["A"] = ann
    err = parse_error(k)
    assert needle in str(err) and "argument 'A'" in str(err)
    assert "needs an annotation" not in str(err)


def test_indirect_subscript_names_the_index_array():
    def k(n: int, A: "f64[n]", idx: "i64[n]"):
        for i in range(n):
            A[idx[i]] = 1.0

    err = parse_error(k)
    assert "reads array idx" in str(err) and "indirect" in str(err)


def test_negative_index_is_out_of_bounds_with_a_hint():
    @polyop.kernel
    def k(n: int, A: "f64[n]", B: "f64[n, n]"):
        for i in range(n):
            A[i] = A[-1] + B[i, -2]

    with pytest.raises(BoundsError, match=r"negative indices do not count from the end in "
                                          r"a kernel: write A\[n - 1\], not A\[-1\]"):
        k.compile()

    @polyop.kernel
    def k2(n: int, B: "f64[n, n]"):
        for i in range(n):
            B[i, i - 1] = 1.0

    with pytest.raises(BoundsError, match="write n - 1, not -1, in dimension 1 of B"):
        k2.compile()


def test_huge_constant_power_is_a_bound():
    @polyop.kernel
    def k(n: int, A: "f64[n]"):
        for i in range(10 ** 12):
            if i < n:
                A[i] = 2.0

    a = np.zeros(5)
    k(5, a)
    np.testing.assert_array_equal(a, 2.0)


def test_lambda_kernel():
    k = polyop.kernel(lambda n, A: None)
    with pytest.raises(FrontendError, match="a lambda cannot be a kernel: define the kernel "
                                            "with def"):
        _ = k.program


@pytest.mark.parametrize("body", [
    "for i in range(0):\n        A[i] = 0.0",
    "for i in range(n):\n        if n < 0:\n            A[i] = 0.0",
    "A[0] = 1.0\n    for i in range(n, 0):\n        A[i] = 0.0",
    "assert n >= 4\n    if n < 2:\n        A[0] = 0.0",
])
def test_statement_that_never_runs(body, tmp_path):
    src = f"def k(n: int, A: 'f64[n]'):\n    {body}\n"
    path = tmp_path / "kern.py"
    path.write_text(src)
    ns = {}
    exec(compile(src, str(path), "exec"), ns)
    with pytest.raises(FrontendError, match=r"never runs: its loops and conditions leave it "
                                            r"no instance for any sizes.*Remove it") as info:
        _ = polyop.kernel(ns["k"]).program
    assert info.value.line == src.count("\n")  # the last line: the dead statement


def test_float_into_int_array():
    def k(n: int, A: "i32[n]"):
        for i in range(n):
            A[i] = 0.5

    assert "float value stored into integer array A" in str(parse_error(k))


def test_object_annotations_and_math_aliases():
    sqrt = math.sqrt

    @polyop.kernel
    def k(n: int, a: polyop.f64, A: polyop.f64["n"]):
        for i in range(n):
            A[i] = sqrt(a) + i

    x = np.zeros(4)
    k(4, 9.0, x)
    np.testing.assert_array_equal(x, [3.0, 4.0, 5.0, 6.0])


# -- bounds ---------------------------------------------------------------------------

def test_out_of_bounds_read_reported_with_instance():
    @polyop.kernel
    def k(n: int, A: "f64[n]", B: "f64[n]"):
        for i in range(n):
            B[i] = A[i + 1]

    with pytest.raises(BoundsError) as info:
        k.compile()
    e = info.value
    assert (e.stmt, e.array) == ("S0", "A")
    assert e.instance.startswith("S0[i=")
    assert "A[i + 1]" in str(e) and "has shape [n]" in str(e)


def test_out_of_bounds_write_in_triangular_nest():
    @polyop.kernel
    def k(n: int, A: "f64[n, n]"):
        for i in range(n):
            for j in range(i + 2):
                A[i, j] = 0.0

    with pytest.raises(BoundsError) as info:
        polyop.lower(k)
    assert "writes A[i, j]" in str(info.value)
    assert info.value.instance.startswith("S0[i=")


def test_guarded_access_is_in_bounds():
    @polyop.kernel
    def k(n: int, A: "f64[n]"):
        for i in range(n + 5):
            if i < n:
                A[i] = 1.0

    a = np.zeros(3)
    k(3, a)
    assert a.tolist() == [1.0, 1.0, 1.0]


# -- call-time argument checks ------------------------------------------------------------

@polyop.kernel
def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] += a * x[i]


@pytest.mark.parametrize("args, kwargs, culprit, needle", [
    ((4, 2.0, np.ones(4, np.float32), np.ones(4)), {}, "x", "dtype float32"),
    ((4, 2.0, np.ones(5), np.ones(4)), {}, "x", "shape (5,) does not match [n] = (4,)"),
    ((4, 2.0, np.ones((4, 1)), np.ones(4)), {}, "x", "expected 1 dimensions"),
    ((4, 2.0, [1.0] * 4, np.ones(4)), {}, "x", "expected a numpy array"),
    ((4, 2.0, np.ones(8)[::2], np.ones(4)), {}, "x", "C-contiguous"),
    ((4.0, 2.0, np.ones(4), np.ones(4)), {}, "n", "must be an int"),
    ((4, "2", np.ones(4), np.ones(4)), {}, "a", "expected a real number"),
    ((4, 2.0, np.ones(4)), {}, "y", "missing argument 'y'"),
    ((4, 2.0, np.ones(4), np.ones(4)), {"z": 1}, "z", "unexpected argument 'z'"),
])
def test_argument_errors(args, kwargs, culprit, needle):
    with pytest.raises(ArgumentError) as info:
        axpy(*args, **kwargs)
    assert info.value.argument == culprit
    assert needle in str(info.value)


def test_aliasing_and_readonly_rejected():
    buf = np.ones(8)
    with pytest.raises(ArgumentError, match="x and y overlap"):
        axpy(4, 1.0, buf[:4], buf[2:6])
    y = np.ones(4)
    y.flags.writeable = False
    with pytest.raises(ArgumentError, match="writes y but the array is read-only"):
        axpy(4, 1.0, np.ones(4), y)
    x = np.ones(4)
    x.flags.writeable = False  # only read: allowed
    axpy(4, 1.0, x, np.zeros(4))


def test_keywords_and_inferred_sizes():
    x, y = np.arange(5.0), np.zeros(5)
    axpy(a=2.0, x=x, y=y)  # n inferred from x
    np.testing.assert_array_equal(y, 2.0 * x)
    axpy(5, 1.0, y=y, x=x)
    np.testing.assert_array_equal(y, 3.0 * x)


def test_assert_states_assumption_for_bounds_proof_and_calls():
    def unguarded(n: int, A: "f64[n]"):
        A[n - 1] = 1.0

    def guarded(n: int, A: "f64[n]"):
        assert n >= 1
        A[n - 1] = 1.0

    # without the assert, n = 0 is a boundary case: a precondition checked per call
    u = polyop.kernel(unguarded)
    assert [p.text for p in check_bounds(u.program)] == ["n > 0"]
    with pytest.raises(ArgumentError, match="precondition 'n > 0'"):
        u(0, np.zeros(0))
    k = polyop.kernel(guarded)
    assert check_bounds(k.program) == ()
    assert k.program.assumptions == ("n >= 1",)
    a = np.zeros(3)
    k(3, a)
    assert a[2] == 1.0
    with pytest.raises(ArgumentError, match="violate the kernel's assumption 'assert n >= 1'"):
        k(0, np.zeros(0))


def test_assert_on_data_is_rejected():
    def k(n: int, A: "f64[n]"):
        assert A[0] > 0

    assert "affine assumptions on size parameters" in str(parse_error(k))
