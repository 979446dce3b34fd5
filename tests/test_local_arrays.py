"""Local arrays (``acc = np.zeros((6, 16), np.float32)`` / ``polyop.local``),
named integer constants, and ``polyop.prefetch`` in the kernel language:
results against CPython running the same function, the model (bounds,
dependences), errors, and parallel loops over local arrays."""

import re

import numpy as np
import pytest

import polyop
from polyop.codegen import parallel

rng = np.random.default_rng(7)


def same_as_python(kernel, *args):
    """Run ``kernel`` compiled and its plain Python function on copies of the
    arguments; assert every array comes out bit-identical."""
    a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
    b = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
    kernel(*a)
    kernel.py_func(*b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), (x, y)
    return a


# -- semantics ----------------------------------------------------------------------


@polyop.kernel
def row_prefix(n: int, A: "f64[n, 5]", out: "f64[n, 5]"):
    for i in range(n):
        t = np.zeros((5,), np.float64)  # zero again at every i
        for j in range(5):
            for q in range(j + 1):
                t[j] += A[i, q]
        for j in range(5):
            out[i, j] = t[j] * 0.5


def test_zero_filled_at_each_declaration():
    A = rng.standard_normal((9, 5))
    out = same_as_python(row_prefix, 9, A, np.zeros((9, 5)))[2]
    assert np.allclose(out, np.cumsum(A, axis=1) * 0.5)


MR, NR = 3, 4


@polyop.kernel
def tile_product(n: int, A: "f32[n, 3]", B: "f32[n, 4]", C: "f32[3, 4]"):
    acc = polyop.local((MR, NR), polyop.f32)
    for k in range(n):
        for i in range(MR):
            for j in range(NR):
                acc[i, j] += A[k, i] * B[k, j]
    for i in range(MR):
        for j in range(NR):
            C[i, j] = acc[i, j]


def test_2d_tile_with_named_constants():
    A = rng.standard_normal((17, 3)).astype(np.float32)
    B = rng.standard_normal((17, 4)).astype(np.float32)
    C = same_as_python(tile_product, 17, A, B, np.zeros((3, 4), np.float32))[3]
    assert np.allclose(C, A.T @ B, rtol=1e-5)
    assert tile_product.program.arrays["acc"].shape == ("3", "4")


@polyop.kernel
def widen(n: int, x: "f64[n, NR]", y: "f64[n, NR + 1]"):
    for i in range(n):
        for j in range(NR):
            y[i, j + 1] = x[i, j] * NR


def test_named_constants_in_shapes_bounds_and_values():
    assert widen.program.arrays["y"].shape == ("n", "4 + 1")
    y = same_as_python(widen, 3, rng.standard_normal((3, 4)), np.zeros((3, 5)))[2]
    assert np.all(y[:, 0] == 0)
    with pytest.raises(polyop.ArgumentError, match=r"\[n, 4 \+ 1\] = \(3, 5\)"):
        widen(3, np.zeros((3, 4)), np.zeros((3, 4)))


def test_constant_indexed_tile_lives_in_registers():
    ir = tile_product.compile().llvm_ir
    assert "alloca" not in ir  # SROA turned the 3x4 tile into values


@polyop.kernel
def dtype_forms(n: int, out: "i64[4]", x: "f32[n]"):
    a = np.zeros(2, dtype=np.int64)
    b = np.zeros((2, 2, 2), "float32")
    c = polyop.local(3, "f64")
    for i in range(n):
        a[i % 2] += 1
        b[i % 2, 1, i % 2] += x[i]
        c[2] += 1.0
    out[0] = a[0]
    out[1] = a[1]
    out[2] = int(b[1, 1, 1] * 0.0 + c[2])
    out[3] = int(c[0])


def test_dtype_and_shape_forms():
    out = same_as_python(dtype_forms, 7, np.zeros(4, np.int64),
                         rng.standard_normal(7).astype(np.float32))[1]
    assert out.tolist() == [4, 3, 7, 0]
    arrays = dtype_forms.program.arrays
    assert (arrays["a"].dtype.name, arrays["a"].shape) == ("i64", ("2",))
    assert (arrays["b"].dtype.name, arrays["b"].shape) == ("f32", ("2", "2", "2"))
    assert (arrays["c"].dtype.name, arrays["c"].shape) == ("f64", ("3",))


def test_local_in_model_and_dependences():
    text = str(tile_product.program)
    assert "array acc: f32[3, 4]  (temporary)" in text
    deps = polyop.dependences(tile_product)
    assert "acc" in {array for _, array, _ in deps.items()}


def test_local_out_of_bounds_is_a_bounds_error():
    @polyop.kernel
    def overrun(n: int, x: "f64[n]"):
        t = np.zeros((4,), np.float64)
        for j in range(5):
            t[j] = 1.0
        for i in range(n):
            x[i] = t[0]

    with pytest.raises(polyop.BoundsError,
                       match=r"writes t\[j\] out of bounds.*t\[4\].*shape \[4\]"):
        overrun.compile()


@pytest.mark.parametrize("decl, message", [
    ("t = np.zeros((n, 4), np.float32)", "not an integer constant"),
    ("t = np.zeros((4,), np.complex64)", "not one of float32"),
    ("t = np.zeros((0, 4), np.float32)", "is not positive"),
    ("t = np.zeros((1024, 1024), np.float64)", "bytes, more than"),
    ("t = np.zeros((4,))", "give a shape and a dtype"),
    ("x = np.zeros((4,), np.float32)", "x is already an array argument"),
    ("t, u = np.zeros((4,), np.float32)", "assigned to one name"),
])
def test_local_declaration_errors(decl, message, tmp_path):
    src = (f"import numpy as np\nimport polyop\n\n@polyop.kernel\n"
           f"def bad(n: int, x: 'f32[n]'):\n    {decl}\n    for i in range(n):\n"
           f"        x[i] = 0.0\n")
    path = tmp_path / "bad_local.py"
    path.write_text(src)
    namespace: dict = {"__name__": "bad_local"}
    exec(compile(src, str(path), "exec"), namespace)  # noqa: S102 - test source
    with pytest.raises(polyop.FrontendError, match=re.escape(message)):
        _ = namespace["bad"].program


def test_redeclaration_with_another_shape_and_use_without_subscript():
    @polyop.kernel
    def twice(n: int, x: "f32[n]"):
        t = np.zeros((4,), np.float32)
        t = np.zeros((5,), np.float32)  # noqa: F841
        for i in range(n):
            x[i] = 0.0

    with pytest.raises(polyop.FrontendError, match=r"already a local f32\[4\]"):
        _ = twice.program

    @polyop.kernel
    def whole(n: int, x: "f32[n]"):
        t = np.zeros((4,), np.float32)
        for i in range(n):
            x[i] = t

    with pytest.raises(polyop.FrontendError, match="used without a subscript"):
        _ = whole.program


# -- parallel loops: each worker gets its own copy ------------------------------------


def test_parallel_loop_privatises_local_array():
    sch = row_prefix.schedule()
    sch.parallel(sch.get_loops("S0")[0])
    f = polyop.build(sch)
    before = parallel.get_min_work()
    parallel.set_min_work(0)
    try:
        A = rng.standard_normal((4000, 5))
        out = np.zeros((4000, 5))
        f(4000, A, out)
    finally:
        parallel.set_min_work(before)
    ref = np.zeros((4000, 5))
    row_prefix.py_func(4000, A, ref)
    assert np.array_equal(out, ref)
    # the outlined chunk function allocates its own [5 x double]
    assert f.llvm_ir_unoptimized.count("alloca [5 x double]") >= 2


def test_parallel_loop_carrying_a_local_array_is_illegal():
    @polyop.kernel
    def carried(n: int, x: "f64[n]"):
        t = np.zeros((2,), np.float64)
        for i in range(n):
            t[1] = t[0] + x[i]
            t[0] = t[1]
            x[i] = t[1]

    sch = carried.schedule()
    with pytest.raises(polyop.IllegalScheduleError):
        sch.parallel(sch.get_loops("S1")[0])


# -- prefetch ---------------------------------------------------------------------


@polyop.kernel
def scaled_copy(n: int, x: "f32[n]", y: "f32[n]"):
    for i in range(n):
        if i + 16 < n:
            polyop.prefetch(x[i + 16])
            polyop.prefetch(y[i + 16], write=True)
        y[i] = 2.0 * x[i]


def test_prefetch_changes_nothing_and_emits_llvm_prefetch():
    x = rng.standard_normal(100).astype(np.float32)
    x.flags.writeable = False  # a prefetch is a read: read-only arrays are fine
    y = np.zeros(100, np.float32)
    scaled_copy(100, x, y)
    assert np.array_equal(y, 2.0 * x)
    ir = scaled_copy.compile().llvm_ir
    assert re.search(r"call void @llvm\.prefetch\.p0\(ptr .*, i32 0, i32 3, i32 1\)", ir)
    assert re.search(r"call void @llvm\.prefetch\.p0\(ptr .*, i32 1, i32 3, i32 1\)", ir)
    prefetch_stmt = scaled_copy.program.statements[0]
    assert prefetch_stmt.writes == () and len(prefetch_stmt.reads) == 1


def test_prefetch_out_of_bounds_and_malformed():
    @polyop.kernel
    def too_far(n: int, x: "f32[n]"):
        for i in range(n):
            polyop.prefetch(x[i + 1])
            x[i] = 0.0

    with pytest.raises(polyop.BoundsError, match="reads x"):
        too_far.compile()

    @polyop.kernel
    def no_element(n: int, x: "f32[n]"):
        for i in range(n):
            polyop.prefetch(i)

    with pytest.raises(polyop.FrontendError, match="one array element"):
        _ = no_element.program
