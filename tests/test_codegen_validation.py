"""The generated loop nest runs exactly what the schedule says (``polyop.validate``),
and AST generation is bounded (``polyop.budget``)."""

import warnings

import islpy as isl
import numpy as np
import pytest

import polyop
from polyop import CodegenError
from polyop.astgen import build_ast
from polyop.budget import BudgetExceeded
from polyop.pipeline import lower_ir
from polyop.validate import SAMPLED_SIZES, validate_ast, validate_within
from tests.fuzz_support import strided_or  # if j < i - 1 or j > i + 2 or (i % 4 == 1 ...)


@polyop.kernel
def cross(n: int, A: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            if i == j or i + j == n - 1 or (i < 2 and j > n - 3):
                A[i, j] = A[i, j] + 1.0


@polyop.kernel
def prefix(n: int, A: "f64[n]"):
    for i in range(1, n):
        A[i] = A[i] + A[i - 1]


def _same_as_cpython(f, kernel, sizes):
    for n in sizes:
        a = np.arange(n * n, dtype=np.float64).reshape(n, n)
        b = a.copy()
        f(n, a)
        kernel.py_func(n, b)
        np.testing.assert_array_equal(a, b, err_msg=f"n={n}")


def test_split_under_a_disjunctive_guard_updates_every_element():
    """isl once dropped A[0, n-1] and A[1, n-1] for every n >= 4 here: nested
    one-member bands over overlapping pieces of the domain."""
    sch = polyop.Schedule(cross)
    _, j = sch.get_loops("S0")
    sch.split(j, 2)
    _same_as_cpython(polyop.build(sch), cross, range(13))


def test_tile_under_a_disjunctive_guard_builds_and_is_right():
    """Once stuck for ever in isl's subtraction while isolating full tiles."""
    sch = polyop.Schedule(cross)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 3, 2)
    _same_as_cpython(polyop.build(sch), cross, range(13))


def test_isl_ast_over_overlapping_pieces_is_caught_by_the_validation():
    """The same tree over the model's own (overlapping) domain: the validation,
    not luck, stands between isl's wrong AST and the user."""
    sch = polyop.Schedule(cross)
    _, j = sch.get_loops("S0")
    sch.split(j, 2)
    with pytest.raises(CodegenError) as info:
        validate_ast(build_ast(sch.program, sch.tree), sch.program, sch.deps)
    e = info.value
    assert (e.stmt, e.problem) == ("S0", "missing")
    assert e.instance.startswith("S0[i=") and "misses S0[" in str(e)


def _strided_or_matches_cpython(sch) -> None:
    f = polyop.build(sch)
    rng = np.random.default_rng(3)
    for n in range(14):
        A, x = rng.random((n, n)), rng.random(n)
        x2 = x.copy()
        f(n, A, x)
        strided_or.py_func(n, A, x2)
        np.testing.assert_array_equal(x, x2, err_msg=f"n={n}")


def test_a_wrong_isl_ast_is_asked_for_again_another_way():
    """Found by the schedule fuzzer: skewed and tiled by 4 x 3, isl's AST of
    the tree over the disjoint domain pieces (variant 0) misses S0[2, 0] at
    n = 3; lowering validates, asks isl with atomic loops, and that AST is
    right."""
    from polyop.schedule.plan import VARIANTS, ast_ready

    sch = polyop.Schedule(strided_or)
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 1)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 4, 3)
    plan = sch.lowering_plan()
    trees = [ast_ready(plan.schedule, plan.loop_records, variant=v) for v in range(VARIANTS)]
    assert all(t.get_domain().is_equal(plan.schedule.get_domain()) for t in trees)
    assert ["atomic" in str(t) for t in trees] == [False, True, False, True]
    with pytest.raises(CodegenError) as info:
        validate_within(build_ast(plan.program, trees[0]), plan.program, plan.deps, 10**7)
    assert info.value.problem == "missing"
    _strided_or_matches_cpython(sch)  # built from a variant that validates


def test_a_condition_isl_writes_as_an_integer():
    """isl may write a guard that always holds as ``1`` inside an ``||``:
    the validation and the loop IR read it as true (the fuzzer's skew,
    tile, interchange and split of the same kernel)."""
    sch = polyop.Schedule(strided_or)
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 1)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 4, 3)
    a, b = sch.get_loops("S0")[:2]
    sch.interchange(a, b)
    sch.split(sch.get_loops("S0")[0], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # validating it may be over the budget
        _strided_or_matches_cpython(sch)


@pytest.mark.parametrize("tree, problem", [
    # every other instance
    ('{ domain: "[n] -> { S0[i] : 1 <= i < n and i % 2 = 0 }" }', "missing"),
    # one instance the kernel does not have
    ('{ domain: "[n] -> { S0[i] : 1 <= i <= n }" }', "extra"),
    # the whole loop twice
    ('{ domain: "[n] -> { S0[i] : 1 <= i < n }", child: { sequence: [ '
     '{ filter: "[n] -> { S0[i] }" }, { filter: "[n] -> { S0[i] }" } ] } }', "duplicated"),
    # the recurrence backwards
    ('{ domain: "[n] -> { S0[i] : 1 <= i < n }", child: { schedule: '
     '"[n] -> [{ S0[i] -> [(-i)] }]" } }', "misordered"),
])
def test_validation_names_the_fault(tree, problem):
    """Raw isl trees are not legality-checked: the validation alone stops them."""
    t = isl.Schedule(tree)
    with pytest.raises(CodegenError) as info:
        lower_ir(prefix, t)
    assert info.value.problem == problem and info.value.stmt == "S0"
    if problem == "misordered":  # the pair of a violated RAW dependence on A
        assert "RAW dependence on A" in str(info.value)
        assert " -> " in info.value.instance
    assert lower_ir(prefix, t, validate=False) is not None  # the opt-out


def test_isolation_over_budget_falls_back_with_a_warning(monkeypatch):
    sch = polyop.Schedule(cross)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 4, 4)
    # isolating full tiles costs more than generating without: find a budget between
    monkeypatch.setattr("polyop.pipeline.AST_OPERATIONS", 1)
    with pytest.raises(CodegenError, match="did not finish"):
        polyop.lower(sch)
    for budget in (20_000, 40_000, 80_000, 160_000, 320_000):
        monkeypatch.setattr("polyop.pipeline.AST_OPERATIONS", budget)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                f = polyop.build(sch)
            except CodegenError:
                continue
        if any("without isolation" in str(w.message) for w in caught):
            _same_as_cpython(f, cross, range(10))
            return
    pytest.fail("no budget between the two forms")


@polyop.kernel
def two_steps(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        A[i] = A[i] + 1.0
    for i in range(n):
        B[i] = A[n - 1 - i]


def test_large_programs_skip_the_order_check_unless_dependences_are_known(monkeypatch):
    monkeypatch.setattr("polyop.validate.ORDER_CHECK_STATEMENTS", 1)
    k = polyop.kernel(two_steps.py_func)  # a fresh model: nothing cached
    backwards = isl.Schedule(
        '{ domain: "[n] -> { S0[i] : 0 <= i < n; S1[i] : 0 <= i < n }", child: { sequence: '
        '[ { filter: "[n] -> { S1[i] }" }, { filter: "[n] -> { S0[i] }" } ] } }')
    lower_ir(k, backwards)  # instances right, order unchecked: 2 statements > 1
    assert "dependences" not in k.program.meta
    polyop.dependences(k)  # once known (a Schedule computes them), they are used
    with pytest.raises(CodegenError, match="RAW dependence on A"):
        lower_ir(k, backwards)


def test_validation_over_budget_warns_and_the_code_still_runs(monkeypatch):
    monkeypatch.setattr("polyop.pipeline.VALIDATION_OPERATIONS", 1)
    sch = polyop.Schedule(cross)
    _, j = sch.get_loops("S0")
    sch.split(j, 2)
    with pytest.warns(UserWarning, match="not validated"):
        f = polyop.build(sch)
    _same_as_cpython(f, cross, range(6))


def test_long_straight_line_code_builds_and_matches_cpython(tmp_path):
    """600 statements: nested sequences of at most 128 in the textual schedule,
    every union taken in a balanced tree, no dependence computed just for the
    order check (more than 200 statements): each a quadratic cost once."""
    import importlib.util

    lines = [f"    A[{i % 7}] = A[{(i * 3 + 1) % 7}] * 0.5 + {i}.0\n" for i in range(600)]
    path = tmp_path / "straight.py"
    path.write_text("import polyop\n\n\n@polyop.kernel\ndef straight(A: 'f64[7]'):\n"
                    + "".join(lines))
    spec = importlib.util.spec_from_file_location("straight", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    f = polyop.build(module.straight)
    a = np.linspace(0.0, 1.0, 7)
    b = a.copy()
    f(a)
    module.straight.py_func(b)
    np.testing.assert_array_equal(a, b)


@polyop.kernel
def seidel(T: int, n: int, A: "f64[n]"):
    for t in range(T):
        for i in range(1, n - 1):
            A[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0


def _wavefront(bt: int, bi: int) -> polyop.Schedule:
    """Skewed tiles of a 1-D Gauss-Seidel run as wavefronts: the executed
    relation has dozens of pieces with integer divisions, and checking it for
    all sizes at once took isl 35-100 s (then gave up)."""
    sch = polyop.Schedule(seidel)
    sch.skew(*sch.get_loops("S0"), 1)
    to, io, _, _ = sch.tile(*sch.get_loops("S0"), bt, bi)
    sch.skew(to, io, 1)
    sch.interchange(*sch.get_loops("S0")[:2])
    sch.parallel(sch.get_loops("S0")[1])
    return sch


def test_validation_over_budget_checks_sampled_sizes_instead():
    sch = _wavefront(4, 64)
    plan = sch.lowering_plan()
    ast = build_ast(plan.program, sch.ast_tree())
    sizes = validate_within(ast, plan.program, plan.deps, 1_000_000)
    assert len(sizes) == SAMPLED_SIZES and len({tuple(s.items()) for s in sizes}) == len(sizes)
    # the tile sizes' neighbourhoods are among them: full and partial tiles
    assert {s["n"] for s in sizes} & {63, 64, 65} and {s["T"] for s in sizes} & {3, 4, 5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # validated (at sampled sizes): nothing to warn about
        f = polyop.build(sch)
    for T, n in [(0, 5), (3, 2), (9, 70), (13, 300)]:
        a = np.random.default_rng(T).random(n)
        b = a.copy()
        f(T, n, a)
        seidel.py_func(T, n, b)
        np.testing.assert_array_equal(a, b, err_msg=f"T={T}, n={n}")


def test_sampled_sizes_still_catch_a_wrong_ast(monkeypatch):
    # a schedule running the recurrence backwards, checked only at sampled sizes
    monkeypatch.setattr("polyop.validate._check", _all_sizes_over_budget(
        polyop.validate._check))
    t = isl.Schedule('{ domain: "[n] -> { S0[i] : 1 <= i < n }", child: { schedule: '
                     '"[n] -> [{ S0[i] -> [(-i)] }]" } }')
    with pytest.raises(CodegenError, match="RAW dependence on A") as info:
        lower_ir(prefix, t)
    assert info.value.problem == "misordered"


def _all_sizes_over_budget(check):
    """``_check`` that gives up on the parametric context (any size), as isl
    does on hard relations, and runs at fixed sizes."""
    def bounded(walk, program, deps, context):
        if context.is_equal(program.context):
            raise BudgetExceeded("isl gave up (test)")
        return check(walk, program, deps, context)
    return bounded
