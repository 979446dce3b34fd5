"""The kernel language means what the same code means in CPython + NumPy 2.

Each kernel here is run compiled and as plain Python (``k.py_func``) on the
same data, and its model is checked against the brute-force oracle
(``tests.oracle``) where the model is what is at stake.
"""

import islpy as isl
import numpy as np
import pytest

import polyop
from polyop import FrontendError, IllegalScheduleError
from tests.oracle import run_recorded
from tests.test_dependence_oracle import check_against_isl, make_args


def run_both(kernel, build, args: dict) -> tuple[dict, dict]:
    """``args`` after the compiled ``build`` and after CPython's ``py_func``."""
    mine = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    ref = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    build(**mine)
    kernel.py_func(**ref)
    return mine, ref


def assert_same(kernel, build, args: dict) -> None:
    mine, ref = run_both(kernel, build, args)
    for name, v in ref.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(mine[name], v, err_msg=name)


# -- downward loops ----------------------------------------------------------------------
@polyop.kernel
def back_substitution(n: int, U: "f64[n, n]", x: "f64[n]", b: "f64[n]"):
    for i in range(n - 1, -1, -1):
        x[i] = b[i]
        for j in range(i + 1, n):
            x[i] -= U[i, j] * x[j]
        x[i] = x[i] / U[i, i]


@polyop.kernel
def strided_down(n: int, A: "f64[n, n]"):
    for i in range(n - 1, 0, -2):
        for j in range(i, -1, -3):
            A[i, j] = A[i - 1, j] + A[i, j // 2]
        for j in range(0, i):
            A[j, i] += A[i, j]


def _schedule_order(kernel, sizes: dict) -> list:
    """The instances in the order of the kernel's original schedule (isl)."""
    from tests.oracle import _params_set, _tuple_points

    prog = kernel.program
    times = prog.schedule.get_map().intersect_domain(prog.domain) \
        .intersect_params(_params_set(prog, sizes))
    maps = []
    times.foreach_map(maps.append)
    timed = []
    for m in maps:
        for inst, (_, t) in _tuple_points(m):
            timed.append((t + (0,) * (8 - len(t)), inst))
    return [inst for _, inst in sorted(timed)]


@pytest.mark.parametrize("kernel", [back_substitution, strided_down], ids=lambda k: k.__name__)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 8])
def test_downward_loop_model_matches_cpython(kernel, n):
    args = make_args(kernel, dict(n=n))
    if kernel is back_substitution:
        args["U"] += 3 * np.eye(n)
    check_against_isl(kernel, args, kernel.__name__)  # domains, accesses, dependences
    executed = [e.instance for e in run_recorded(kernel, args)]
    assert _schedule_order(kernel, dict(n=n)) == executed  # schedule order = CPython's
    assert_same(kernel, kernel, args)


def test_downward_loop_domain_and_schedule():
    s = strided_down.program.statements[0]
    assert s.domain.is_equal(polyop_set("[n] -> { S0[i, j] : 0 < i < n and 0 <= j <= i and "
                                        "(n - 1 - i) mod 2 = 0 and (i - j) mod 3 = 0 }"))
    sch = polyop.Schedule(back_substitution)
    assert [lp.name for lp in sch.get_loops("S1")] == ["i", "j"]


def polyop_set(text: str):
    import islpy as isl

    return isl.Set(text)


def test_downward_loop_with_schedule_primitives():
    n = 11
    args = make_args(back_substitution, dict(n=n))
    args["U"] += 3 * np.eye(n)
    sch = polyop.Schedule(back_substitution)
    i, j = sch.get_loops("S1")
    sch.split(i, 4)  # strip-mining keeps the order: legal
    sch.split(j, 3)
    assert_same(back_substitution, polyop.build(sch), args)
    for primitive in (lambda s, i: s.reverse(i), lambda s, i: s.parallel(i)):
        sch = polyop.Schedule(back_substitution)
        i = sch.get_loops("S1")[0]
        with pytest.raises(IllegalScheduleError, match="RAW"):
            primitive(sch, i)  # x[j] is produced by the earlier (larger) i


def test_downward_loop_reversed_is_refused_or_reported():
    @polyop.kernel
    def k(n: int, A: "f64[n + 1]"):
        for i in range(n - 1, -1, -1):
            A[i] = A[i + 1] * 0.5 + 1.0

    args = make_args(k, dict(n=9))
    sch = polyop.Schedule(k)
    with pytest.raises(IllegalScheduleError):
        sch.reverse(sch.get_loops("S0")[0])  # A[i + 1] is written before A[i] reads it
    sch = polyop.Schedule(k, check=False)
    sch.reverse(sch.get_loops("S0")[0])
    assert sch.check()  # the violation is reported
    assert_same(k, k, args)


@pytest.mark.parametrize("step, needle", [("0", "step of loop i is 0"),
                                          ("n", "must be a non-zero integer constant")])
def test_bad_loop_step(step, needle, tmp_path):
    src = f"def k(n: int, A: 'f64[n]'):\n    for i in range(0, n, {step}):\n        A[i] = 0.0\n"
    ns: dict = {}
    path = tmp_path / "kern.py"
    path.write_text(src)
    exec(compile(src, str(path), "exec"), ns)
    with pytest.raises(FrontendError, match=needle):
        _ = polyop.kernel(ns["k"]).program


# -- local scalars read before they are assigned ------------------------------------------
def _unbound(fn) -> FrontendError:
    with pytest.raises(FrontendError) as info:
        _ = polyop.kernel(fn).program
    assert "may be read before it is assigned" in str(info.value)
    assert "UnboundLocalError" in str(info.value)
    return info.value


def test_scalar_assigned_only_inside_a_loop_read_after_it():
    def last(n: int, A: "f64[n]", out: "f64[1]"):
        for i in range(n):
            s = A[i]
        out[0] = s

    err = _unbound(last)
    assert err.line == last.__code__.co_firstlineno + 3
    assert "S1[] with n=0" in str(err)  # the size where CPython fails too
    with pytest.raises(UnboundLocalError):
        last(0, np.zeros(0), np.zeros(1))  # the Python function, for the record

    def guarded(n: int, A: "f64[n]", out: "f64[1]"):
        assert n >= 1
        for i in range(n):
            s = A[i]
        out[0] = s

    k = polyop.kernel(guarded)
    assert_same(k, k, dict(n=4, A=np.arange(4.0), out=np.zeros(1)))


def test_scalar_assigned_on_one_branch_only():
    def k(n: int, A: "f64[n]"):
        for i in range(n):
            if i > 0:
                s = A[i]
            A[i] = s * 2.0

    err = _unbound(k)
    assert "S1[i=0]" in str(err) and "'s'" in str(err)

    def k2(n: int, A: "f64[n]"):  # the first iteration assigns it: fine in CPython too
        for i in range(n):
            if i == 0:
                s = 1.0
            A[i] += s
            s = A[i]

    kern = polyop.kernel(k2)
    assert_same(kern, kern, dict(n=5, A=np.arange(5.0)))


def test_scalar_updated_in_a_loop_that_may_not_run():
    def k(n: int, m: int, A: "f64[n, m]", out: "f64[n]"):
        for i in range(n):
            for j in range(m):
                if j == 0:
                    s = 0.0
                s += A[i, j]
            out[i] = s

    err = _unbound(k)
    assert "m=0" in str(err)


# -- integer division: never a crash, NumPy 2's values -------------------------------------
_DIVMOD_SCRIPT = r'''
import numpy as np, polyop

def check(dtype):
    t = {"int64": "i64", "int32": "i32"}[dtype]
    ann = f"{t}[n]"

    def divmod_k(n: int, a: ann, b: ann, q: ann, r: ann):
        for i in range(n):
            q[i] = a[i] // b[i]
            r[i] = a[i] % b[i]

    k = polyop.kernel(divmod_k)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    a = np.array([7, -7, 7, -7, 0, lo, lo, hi, lo, 5, -5, 1, lo], dtype)
    b = np.array([2, 2, -2, -2, 0, -1, 0, 0, 1, -1, -1, lo, 3], dtype)
    q, r = np.full_like(a, 99), np.full_like(a, 99)
    k(len(a), a, b, q, r)
    rq, rr = np.full_like(a, 99), np.full_like(a, 99)
    with np.errstate(all="ignore"):
        k.py_func(len(a), a, b, rq, rr)  # numpy scalars: NumPy 2's rules
        assert np.array_equal(rq, a // b) and np.array_equal(rr, a % b)
    assert np.array_equal(q, rq), (dtype, q, rq)
    assert np.array_equal(r, rr), (dtype, r, rr)

check("int64")
check("int32")
print("ok")
'''


def test_integer_division_by_zero_and_overflow_never_crash(tmp_path):
    import subprocess
    import sys

    # in a child process: a SIGFPE there fails this test instead of killing pytest
    script = tmp_path / "divmod_script.py"
    script.write_text(_DIVMOD_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok"


def test_integer_division_by_data_zero_in_process():
    @polyop.kernel
    def k(n: int, a: "i64[n]", b: "i64[n]", q: "i64[n]"):
        for i in range(n):
            q[i] = a[i] // b[i] + a[i] % (b[i] - 1)

    args = dict(n=6, a=np.array([3, -3, 9, 0, 4, -8]), b=np.array([0, 1, 0, 0, 2, 1]),
                q=np.zeros(6, np.int64))
    with np.errstate(all="ignore"):
        assert_same(k, k, args)


def test_int_of_nan_and_out_of_range_is_numpy_astype():
    @polyop.kernel
    def k(n: int, x: "f64[n]", y: "f32[n]", out: "i64[n]", out32: "i64[n]"):
        for i in range(n):
            out[i] = int(x[i])
            out32[i] = int(y[i])

    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -2.5, 2.5, 2.0**63, -(2.0**63),
                  9.2e18, -0.9])
    out, out32 = np.zeros(len(x), np.int64), np.zeros(len(x), np.int64)
    k(len(x), x, x.astype(np.float32), out, out32)
    lo = np.iinfo(np.int64).min
    for src, got in ((x, out), (x.astype(np.float32), out32)):
        ok = np.isfinite(src) & (src >= -(2.0**63)) & (src < 2.0**63)
        expect = np.where(ok, np.trunc(np.where(ok, src, 0)).astype(np.int64), lo)
        np.testing.assert_array_equal(got, expect)
        with np.errstate(invalid="ignore"):
            assert np.array_equal(got[np.isnan(src)], src[np.isnan(src)].astype(np.int64)) \
                or np.dtype(np.intp).itemsize != 8  # x86's astype: the same minimum


# -- arithmetic: CPython + NumPy 2 (NEP 50 weak Python scalars) ----------------------------
def _f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_f32_local_scalar_accumulates_in_f32():
    @polyop.kernel
    def dot(n: int, A: "f32[n]", B: "f32[n]", out: "f32[2]"):
        s = 0.0            # a Python float until it meets A's float32
        for i in range(n):
            s += A[i] * B[i]
        out[0] = s
        t = 0.0            # only Python floats: stays a Python float (f64)
        for i in range(n):
            t += 0.1
        out[1] = t

    assert dot.program.arrays["s"].dtype == polyop.f32
    assert dot.program.arrays["t"].dtype == polyop.f64
    n = 1000
    args = dict(n=n, A=_f32(n) * 1000, B=_f32(n, seed=1), out=np.zeros(2, np.float32))
    mine, ref = run_both(dot, dot, args)
    np.testing.assert_array_equal(mine["out"], ref["out"])  # bit for bit
    wide = np.float32(np.dot(args["A"].astype(np.float64), args["B"].astype(np.float64)))
    assert mine["out"][0] != wide  # an f64 accumulator would give this instead


def test_math_result_is_a_python_float_and_numpy_functions_keep_width():
    import math

    @polyop.kernel
    def k(n: int, x: "f32[n]", y: "f32[n]", z: "f32[n]", w: "f64[n]"):
        for i in range(n):
            y[i] = math.exp(x[i]) * x[i]    # exp in f64, rounded, times x in f32
            z[i] = np.exp(x[i]) * x[i]      # float32 throughout
            w[i] = math.sqrt(x[i]) + x[i] / 3.0

    body = k.program.statements[0].body.value
    assert (body.a.dtype, body.dtype) == (polyop.f64, polyop.f32)
    assert k.program.statements[1].body.value.a.dtype == polyop.f32
    n = 64
    x = np.abs(_f32(n)) * 3 + 0.5
    args = dict(n=n, x=x, y=np.zeros(n, np.float32), z=np.zeros(n, np.float32),
                w=np.zeros(n))
    mine, ref = run_both(k, k, args)
    np.testing.assert_array_equal(mine["y"], ref["y"])
    np.testing.assert_array_equal(mine["w"], ref["w"])
    # numpy's float32 exp and LLVM's may differ in the last bit; both are float32
    np.testing.assert_allclose(mine["z"], ref["z"], rtol=2e-7)


def test_weak_and_typed_integers_and_mixed_promotion():
    @polyop.kernel
    def k(n: int, a: "i32", B: "i32[n]", F: "f32[n]", q: "i64[n]", r: "f64[n]",
          t: "f64[n]"):
        for i in range(n):
            q[i] = (B[i] * (i + 1)) // 3      # i32 arithmetic (i is a Python int): wraps
            r[i] = F[i] * B[i]                # f32 with i32 typed: f64 (NumPy)
            t[i] = F[i] * a + 0.1             # a typed f32 * i32: f64

    n = 8
    B = np.array([2**30, -(2**30), 7, 2**31 - 1, -5, 3, 2**29, 1], np.int32)
    args = dict(n=n, a=np.int32(3), B=B, F=_f32(n) * 1e4, q=np.zeros(n, np.int64),
                r=np.zeros(n), t=np.zeros(n))
    with np.errstate(over="ignore"):
        mine, ref = run_both(k, k, args)
    for name in ("q", "r", "t"):
        np.testing.assert_array_equal(mine[name], ref[name], err_msg=name)
    assert (mine["q"] != (B.astype(np.int64) * np.arange(1, n + 1)) // 3).any()  # it wrapped


def test_int_local_scalar_becomes_float_and_f64_scalar_argument_is_weak():
    @polyop.kernel
    def k(n: int, alpha: "f64", A: "f32[n]", out: "f32[n]", acc: "f64[1]"):
        s = 0
        for i in range(n):
            s += A[i]                 # an int becomes A's float32, as in Python
            out[i] = alpha * A[i]     # a Python float times a float32: float32
        acc[0] = s

    assert k.program.arrays["s"].dtype == polyop.f32
    assert k.program.statements[2].body.value.dtype == polyop.f32
    n = 50
    args = dict(n=n, alpha=0.1, A=_f32(n), out=np.zeros(n, np.float32), acc=np.zeros(1))
    mine, ref = run_both(k, k, args)
    for name in ("out", "acc"):
        np.testing.assert_array_equal(mine[name], ref[name], err_msg=name)


ALPHA32 = np.float32(0.1)
NB = np.int64(4)


def test_numpy_scalar_constants():
    @polyop.kernel
    def k(n: int, x: "f64[n, NB]", y: "f64[n, NB]"):
        for i in range(n):
            for j in range(NB):
                y[i, j] = x[i, j] * ALPHA32 + NB

    assert k.program.arrays["x"].shape == ("n", "4")
    args = dict(n=3, x=np.random.default_rng(2).random((3, 4)), y=np.zeros((3, 4)))
    mine, ref = run_both(k, k, args)
    np.testing.assert_array_equal(mine["y"], ref["y"])
    assert (mine["y"] != args["x"] * 0.1 + 4).any()  # float32(0.1), not 0.1


# -- front-end cost: linear in the number of statements -----------------------------------
def test_many_statements_parse_without_quadratic_steps(tmp_path, monkeypatch):
    """2,000 straight-line statements. The two steps that were quadratic
    (``ast.get_source_segment`` splitting the whole source per statement,
    ``isl.Schedule.sequence`` intersecting every earlier filter per sibling)
    must not run at all; their replacements are checked by the result."""
    import importlib.util

    import islpy as isl

    n = 2000
    lines = ["def big(n: int, A: 'f64[2001]', B: 'f64[2001]'):"]
    lines += [f"    A[{k}] = B[{k}] * 2.0 + A[{k + 1}]" for k in range(n - 1)]
    lines += ["    A[0] = (B[0]  # é: a multi-line statement with non-ASCII text",
              "            + 1.0)"]
    path = tmp_path / "big_kernel.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("big_kernel", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    calls = {"segment": 0, "sequence": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    import ast
    monkeypatch.setattr(ast, "get_source_segment", counted("segment", ast.get_source_segment))
    monkeypatch.setattr(isl.Schedule, "sequence", counted("sequence", isl.Schedule.sequence))
    prog = polyop.kernel(mod.big).program
    assert calls == {"segment": 0, "sequence": 0}
    assert len(prog.statements) == n
    assert prog.statements[7].source == "A[7] = B[7] * 2.0 + A[8]"
    assert prog.statements[-1].source == \
        "A[0] = (B[0] # é: a multi-line statement with non-ASCII text + 1.0)"
    seq = prog.schedule.get_root().child(0)  # sequences of at most 128 siblings, nested
    assert seq.get_type() == isl.schedule_node_type.sequence and seq.n_children() == 16
    # source order: S0 before S1 before ... (the schedule map orders them)
    times = prog.schedule.get_map()
    for k in (0, 1, 127, 128, n - 1):
        assert times.intersect_domain(isl.UnionSet(f"[n] -> {{ S{k}[] }}")).is_equal(
            isl.UnionMap(f"[n] -> {{ S{k}[] -> [{k // 128}, {k % 128}] }}"))


# -- reads under a conditional -------------------------------------------------------------
@polyop.kernel
def border_copy(n: int, k: int, x: "f32[n]", out: "f32[n]"):
    for i in range(n):
        out[i] = x[i + k] * 2.0 if i + k < n and i + k >= 0 else -1.0


@polyop.kernel
def smooth_from_left(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        A[i] = 0.5 * (A[i - 1] + B[i]) if i >= 1 and i % 2 == 1 else B[i]


@polyop.kernel
def data_guard(n: int, x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] = x[i + 1] if y[i] > 0.0 else 0.0


def test_a_read_under_an_affine_test_is_one_only_where_it_holds():
    # CPython reads x[i + k] only where the test holds, and so does the
    # model: the bounds proof accepts the kernel, and the vector loop loads
    # x with a mask (no lane reads outside x)
    (read,) = border_copy.program.statements[0].reads
    assert read.relation.is_equal(read.relation.intersect_domain(
        border_copy.program.statements[0].domain))
    assert "k + i < n" in str(read.relation) or "i < n - k" in str(read.relation)
    sch = polyop.Schedule(border_copy)
    sch.vectorize(sch.get_loops("S0")[0])
    assert "not vectorised" not in str(polyop.lower(sch))
    f = polyop.build(sch)
    for n, k in ((0, 0), (1, 1), (19, 3), (40, -5), (33, 40)):
        x = np.arange(n, dtype=np.float32)
        assert_same(border_copy, f, dict(n=n, k=k, x=x, out=np.zeros(n, np.float32)))


def test_a_guarded_read_carries_no_dependence_where_its_test_fails():
    # A[i] reads A[i - 1] at odd i only: the model's only flow is from each
    # even i to the next (odd) one, as the oracle sees it; reversing the
    # loop is still refused (odd i needs i - 1 before it)
    check_against_isl(smooth_from_left, make_args(smooth_from_left, dict(n=7)),
                      "smooth_from_left")
    sch = polyop.Schedule(smooth_from_left)
    with pytest.raises(IllegalScheduleError):
        sch.reverse(sch.get_loops("S0")[0])
    n = 9
    args = dict(n=n, A=np.zeros(n), B=np.arange(n, dtype=np.float64))
    assert_same(smooth_from_left, polyop.build(sch), args)
    raw = polyop.dependences(smooth_from_left).raw
    want = isl.UnionMap("[n] -> { S0[i] -> S0[i + 1] : i mod 2 = 0 and 0 <= i <= n - 2 }")
    assert raw.is_equal(want), raw


def test_a_test_on_data_guards_nothing():
    # y[i] > 0.0 is not affine: x[i + 1] counts as read at every i, and
    # x[n] is out of bounds
    with pytest.raises(polyop.BoundsError, match=r"x\[i \+ 1\]"):
        data_guard.compile()
