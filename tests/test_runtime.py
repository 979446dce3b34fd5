"""Kernel calls through the compiled checks (``polyop.fastcall``): every check
of the Python path (``CompiledKernel._checked_call``) holds there too, with
the same error, and nothing about a call is cached from the previous one."""

import gc
import threading
import weakref

import numpy as np
import pytest

import polyop
import polyop.fastcall
from polyop import ArgumentError


@polyop.kernel
def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] += a * x[i]


@polyop.kernel
def last(n: int, m: int, A: "f64[n, m]", out: "f64[m]"):
    assert m <= 1000
    for j in range(m):
        out[j] = A[n - 1, j]


@polyop.kernel
def mixed(n: int, k: "i32", s: "f32", x: "f32[n]", idx: "i32[n]"):
    for i in range(n):
        x[i] = x[i] * s + k
        idx[i] = idx[i] + k


def _calls(f):
    """The call through the compiled checks and the Python path's."""
    return [("compiled", f), ("python", f._checked_call)]


def _same_error(f, *args, **kwargs) -> str:
    """Both paths raise the same ArgumentError; returns its message."""
    messages = []
    for _, call in _calls(f):
        with pytest.raises(ArgumentError) as info:
            call(*args, **kwargs)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    return messages[0]


def test_the_compiled_checks_are_in_use():
    ok, why = polyop.fastcall.status()
    assert ok, why
    f = axpy.compile()
    assert f._fast is not None
    assert type(f).__call__ is f._fast  # the call goes straight to C
    assert isinstance(f, polyop.runtime.CompiledKernel)


def test_calls_compute_what_numpy_does():
    f = axpy.compile()
    x, y = np.arange(8.0), np.ones(8)
    f(8, 0.5, x, y)
    np.testing.assert_array_equal(y, 1 + 0.5 * np.arange(8.0))
    f(a=2, x=x, y=y)  # keywords, n inferred, an int for a float scalar
    np.testing.assert_array_equal(y, 1 + 2.5 * np.arange(8.0))
    axpy(np.int64(8), np.float32(1.0), x, y)  # numpy scalars: valid, via the Python path
    np.testing.assert_array_equal(y, 1 + 3.5 * np.arange(8.0))
    axpy(0, 1.0, np.zeros(0), np.zeros(0))


@pytest.mark.parametrize("case, args, message", [
    ("dtype", lambda x, y: (8, 1.0, x.astype(np.float32), y), "argument x: dtype float32"),
    ("byte order", lambda x, y: (8, 1.0, x.astype(">f8"), y), "argument x: dtype >f8"),
    ("rank", lambda x, y: (8, 1.0, x.reshape(2, 4), y), "argument x: expected 1 dimensions"),
    ("shape", lambda x, y: (8, 1.0, x[:7].copy(), y), r"argument x: shape (7,) does not"),
    ("size", lambda x, y: (9, 1.0, x, y), "argument x: shape (8,) does not match [n] = (9,)"),
    ("strides", lambda x, y: (4, 1.0, x[::2], y[:4]), "argument x: array must be C-contig"),
    ("read-only", lambda x, y: (8, 1.0, x, _read_only(y)), "the kernel writes y but the arr"),
    ("overlap", lambda x, y: (8, 1.0, y, y), "arguments x and y overlap in memory"),
    ("partial overlap", lambda x, y: (4, 1.0, _buf[2:6], _buf[:4]), "x and y overlap"),
    ("not an array", lambda x, y: (8, 1.0, list(x), y), "argument x: expected a numpy array"),
    ("float size", lambda x, y: (8.0, 1.0, x, y), "argument n: size parameter must be an int"),
    ("bool size", lambda x, y: (True, 1.0, x, y), "argument n: size parameter must be an int"),
    ("huge size", lambda x, y: (2**63, 1.0, x, y), "argument n: 9223372036854775808 does not"),
    ("string scalar", lambda x, y: (8, "1", x, y), "argument a: expected a real number"),
    ("too many", lambda x, y: (8, 1.0, x, y, y), "axpy() takes 4 arguments but 5 were given"),
    ("missing", lambda x, y: (8, 1.0, x), "axpy() missing argument 'y'"),
])
def test_every_check_through_both_paths(case, args, message):
    x, y = np.arange(8.0), np.ones(8)
    got = _same_error(axpy.compile(), *args(x, y))
    assert message in got, case
    np.testing.assert_array_equal(y, 1.0)  # nothing ran


_buf = np.zeros(8)


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("kwargs, message", [
    (dict(a=1.0, x=np.zeros(8), y=np.zeros(7)), "argument y: shape (7,) does not match"),
    (dict(a=1.0, x=np.zeros(8), y=np.zeros(8), z=1), "unexpected argument 'z'"),
    (dict(a=1.0, y=np.zeros(8)), "axpy() missing argument 'n'"),
    (dict(a=1.0, x=np.zeros((2, 4)), y=np.zeros(8)), "argument x: expected 1 dimensions"),
])
def test_keyword_and_inference_checks_through_both_paths(kwargs, message):
    assert message in _same_error(axpy.compile(), **kwargs)
    with pytest.raises(ArgumentError, match="multiple values for argument 'n'"):
        axpy(8, n=8, a=1.0, x=np.zeros(8), y=np.zeros(8))


def test_a_second_call_with_the_same_signature_is_checked_again():
    f = axpy.compile()
    x, y = np.arange(8.0), np.zeros(8)
    for _ in range(3):
        f(8, 1.0, x, y)
    with pytest.raises(ArgumentError, match=r"argument y: shape \(7,\)"):
        f(8, 1.0, x, np.zeros(7))  # same types, ranks and flags: shape still checked
    with pytest.raises(ArgumentError, match="is read-only"):
        f(8, 1.0, x, _read_only(y))
    with pytest.raises(ArgumentError, match="overlap"):
        f(8, 1.0, y, y)
    f(4, 1.0, x[:4], y[:4])  # views: a different address, a smaller size
    np.testing.assert_array_equal(y, np.where(np.arange(8) < 4, 4.0, 3.0) * x)


def test_read_only_arguments_may_share_memory():
    @polyop.kernel
    def add(n: int, a: "f64[n]", b: "f64[n]", out: "f64[n]"):
        for i in range(n):
            out[i] = a[i] + b[i]

    a, out = np.arange(5.0), np.zeros(5)
    for _, call in _calls(add.compile()):
        out[:] = 0.0
        call(5, a, a, out)  # a read twice: allowed
        np.testing.assert_array_equal(out, 2 * a)
    assert "overlap" in _same_error(add.compile(), 5, a, out, out)


def test_assumptions_and_preconditions_through_both_paths():
    f = last.compile()
    A = np.arange(12.0).reshape(3, 4)
    out = np.zeros(4)
    f(3, 4, A, out)
    np.testing.assert_array_equal(out, A[2])
    assert "violate the precondition 'n > 0 or m = 0'" in _same_error(
        f, 0, 4, np.zeros((0, 4)), np.zeros(4))
    f(0, 0, np.zeros((0, 0)), np.zeros(0))  # m = 0: the precondition holds
    assert "violate the kernel's assumption 'assert m <= 1000'" in _same_error(
        f, 1, 1001, np.zeros((1, 1001)), np.zeros(1001))


def test_integer_and_f32_scalars_are_converted_as_the_python_path_does():
    results = []
    for _, call in _calls(mixed.compile()):
        x = np.linspace(0, 1, 7, dtype=np.float32)
        idx = np.arange(7, dtype=np.int32)
        call(7, 3, 0.1, x, idx)  # 0.1 rounded to f32, 3 as i32
        results.append((x, idx))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    x = np.linspace(0, 1, 7, dtype=np.float32)
    np.testing.assert_array_equal(results[0][0], x * np.float32(0.1) + np.float32(3))


def test_scratch_arrays_of_a_schedule_through_the_compiled_checks():
    M, N, K = polyop.var("M"), polyop.var("N"), polyop.var("K")
    A = polyop.placeholder((M, K), "float64", name="A")
    B = polyop.placeholder((K, N), "float64", name="B")
    k = polyop.reduce_axis((0, K), name="k")
    C = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="C")
    sch = polyop.create_schedule(C)
    sch.cache_read(B, C, layout=lambda k, j: (j // 4, k, j % 4), pad=0.0, name="Bp")
    f = polyop.build(sch, [A, B, C])
    assert f.kernel.scratch == ("Bp",)
    for m, n, kk in ((5, 7, 3), (9, 4, 6), (5, 7, 3)):
        a, b = np.random.rand(m, kk), np.random.rand(kk, n)
        c = np.empty((m, n))
        f(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-12)
    assert type(f).__call__ is f._fast
    with pytest.raises(ArgumentError, match="takes 3 arguments"):
        f(a, b)
    with pytest.raises(ArgumentError, match="unexpected argument 'A'"):
        f(a, b, c, A=a)
    f(a, b, c, M=m)  # a size variable by keyword: checked against the shapes
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)
    with pytest.raises(ArgumentError, match="shape"):
        f(a, b, c, M=m + 1)
    with pytest.raises(ArgumentError, match="shape"):
        f(a, b, np.empty((m, n + 1)))


def test_sizes_not_inferable_from_an_extent_fall_back_to_isl():
    n = polyop.var("n")
    X = polyop.placeholder((n + 2,), "float64", name="X")
    Y = polyop.compute((n,), lambda i: X[i] + X[i + 2], name="Y")
    f = polyop.build(Y, [X, Y])
    x, y = np.arange(7.0), np.zeros(5)
    f(x, y)  # n = 5 from X's n + 2 = 7: the Python path solves it
    np.testing.assert_array_equal(y, x[:5] + x[2:])
    f(x, y, n=5)
    with pytest.raises(ArgumentError):
        f(x, np.zeros(4))


def test_calls_from_threads_at_once():
    f = axpy.compile()
    n = 200_000
    x = np.ones(n)
    ys = [np.zeros(n) for _ in range(4)]
    threads = [threading.Thread(target=lambda y=y: [f(n, 1.0, x, y) for _ in range(20)])
               for y in ys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for y in ys:
        np.testing.assert_array_equal(y, 20.0)


def test_a_compiled_kernel_is_freed():
    @polyop.kernel
    def fill(n: int, A: "f64[n]"):
        for i in range(n):
            A[i] = 1.0

    f = polyop.build(polyop.Schedule(fill))
    assert f._fast is not None
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None  # the dispatcher's reference back to its kernel is collected


def test_without_the_extension_calls_take_the_python_path(monkeypatch):
    monkeypatch.setattr(polyop.fastcall, "_extension", lambda: None)
    f = polyop.build(polyop.Schedule(axpy))
    assert f._fast is None
    x, y = np.arange(4.0), np.zeros(4)
    f(a=1.0, x=x, y=y)
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ArgumentError, match="overlap"):
        f(4, 1.0, y, y)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int8", "complex128"])
@pytest.mark.parametrize("alignment", [16, 64, 4096])
def test_aligned_copies_start_on_the_boundary(dtype, alignment):
    rng = np.random.default_rng(1)
    for shape in [(7,), (3, 5), (2, 3, 4), (0,), ()]:
        a = (rng.random(shape) * 100 + 1).astype(dtype)
        b = polyop.aligned(a, alignment)
        # an empty array has no data to align
        assert a.size == 0 or b.ctypes.data % alignment == 0
        assert b.flags.c_contiguous and b.flags.writeable
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
        b[...] = 0  # a copy: the original is untouched
        assert a.size == 0 or np.all(a != 0)


def test_aligned_rejects_an_alignment_that_is_not_a_power_of_two():
    with pytest.raises(polyop.ArgumentError, match="power of two, got 48"):
        polyop.aligned(np.ones(3), 48)


def test_tuning_inputs_are_aligned_to_a_cache_line():
    from polyop.tune.ops_tasks import matmul_task
    from polyop.tune.task import example_scale, kernel_inputs

    arrays = [a for a in kernel_inputs(example_scale.program, {"n": 9})
              if isinstance(a, np.ndarray)]
    arrays += matmul_task(33, 17, 9).inputs()
    assert len(arrays) == 5 and all(a.ctypes.data % 64 == 0 for a in arrays)
