"""Property-based fuzzing of the schedule primitives (see ``tests/fuzz_support.py``)."""

import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.fuzz_support import (
    CASES,
    STATS,
    Case,
    Op,
    check_violation,
    floyd,
    fuzz_example,
    run_and_compare,
    scale,
    seidel2d_5pt,
    skew_clash,
    strided_band,
)

pytestmark = pytest.mark.usefixtures("three_threads")


def _fuzz(case: Case, examples: int, max_ops: int, derandomize: bool,
          first: str | None = None) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(data=st.data())
    def run(data):
        fuzz_example(case, data, max_ops, first)

    run()


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_fuzz(name):
    """The default run: derandomized, so that CI sees the same examples every time."""
    case = CASES[name]
    _fuzz(case, case.examples, max_ops=4, derandomize=True)


#: kernels with a reduction or a temporary, and the rewriting primitive
#: (``rfactor``, ``inline``) every example of theirs starts with
REWRITES = [("scalar_reduction", "rfactor"), ("column_sums", "rfactor"),
            ("gemm_beta", "rfactor"), ("pb-2mm", "rfactor"), ("pb-atax", "rfactor"),
            ("temp_chain", "inline"), ("scalar_reduction", "inline")]


@pytest.mark.parametrize("name, first", REWRITES)
def test_schedule_fuzz_after_a_rewrite(name, first):
    """Random schedules after a random ``rfactor`` or ``inline`` (often refused:
    the statement or loop drawn does not allow it), derandomized."""
    _fuzz(CASES[name], 12, max_ops=4, derandomize=True, first=first)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_schedule_fuzz_many(name):
    """Ten times as many random examples, sequences of up to 6 primitives."""
    case = CASES[name]
    _fuzz(case, 10 * case.examples, max_ops=6, derandomize=False)


@pytest.fixture(autouse=True, scope="module")
def _report():
    t0 = time.perf_counter()
    yield
    print(f"\nschedule fuzz: {STATS.examples} examples in {time.perf_counter() - t0:.1f} s; "
          f"primitives accepted {STATS.accepted}, illegal {STATS.illegal} "
          f"({STATS.violations_checked} violations confirmed), refused {STATS.refused}; "
          f"{STATS.builds} builds; accepted by primitive {STATS.by_primitive}")


def test_legality_check_time_on_largest_polybench_kernel():
    """Times one exact legality check on the PolyBench kernel with the most
    statements and dependence relations (printed, never asserted)."""
    from tests.polybench import BENCHES

    def size(name):
        deps = polyop.dependences(BENCHES[name].kernel)
        return (len(BENCHES[name].kernel.program.statements),
                sum(rel.n_map() for _, _, rel in deps.items()))

    name = max(BENCHES, key=size)
    kernel = BENCHES[name].kernel
    sch = polyop.Schedule(kernel)
    stmt = max(sch.stmts, key=lambda s: len(sch.get_loops(s)))
    outer = sch.get_loops(stmt)[0]
    t0 = time.perf_counter()
    sch.split(outer, 4)                 # always legal: the commit runs one check
    t1 = time.perf_counter()
    report = sch.check()
    t2 = time.perf_counter()
    assert isinstance(report, list) and report == []
    n_stmts, n_maps = size(name)
    print(f"\nlegality check on {name} ({n_stmts} statements, {n_maps} dependence maps): "
          f"split() with its check {1e3 * (t1 - t0):.0f} ms, check() {1e3 * (t2 - t1):.0f} ms")


def test_fuzz_found_generated_loop_name_clash():
    """Found by the fuzzer on deriche (local scalar ``c1``): a skewed loop kept
    isl's name ``c1`` and the build failed with "loop variable 'c1' shadows
    another name"."""
    sch = polyop.Schedule(skew_clash)
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 1)            # legal: no dependences at all
    f = polyop.build(sch)
    rng = np.random.default_rng(0)
    A, c1 = rng.random((5, 5)), rng.random(5)
    want = A + c1
    f(5, A, c1)
    np.testing.assert_array_equal(A, want)


# found by the fuzzer on floyd-warshall: isl could not take the lexmin of the sample
def test_fuzz_found_lexmin_crash_in_violation_sample():
    sch = polyop.Schedule(floyd)
    k, i, j = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.tile(k, j, 2, 2)
    assert info.value.kind == "RAW" and info.value.array == "P"
    assert sch.check() == []


# found by the fuzzer on gesummv: an unroll mark isl can no longer honour is dropped
# with a warning at build
def test_fuzz_found_unrolled_loop_loses_constant_trip_count():
    sch = polyop.Schedule(scale)
    (i,) = sch.get_loops("S0")
    io, ii = sch.split(i, 2)
    sch.unroll(ii)
    try:
        sch.skew(io, ii, 1)
        sch.interchange(io, ii)
    except ScheduleError:
        return                   # refusing the transformation is a fine outcome too
    with pytest.warns(UserWarning, match="cannot unroll loop"):
        f = polyop.build(sch)    # built without unrolling ii
    A = np.arange(7.0)
    f(7, A)
    np.testing.assert_array_equal(A, 2.0 * np.arange(7.0))


# found by the fuzzer on seidel-2d: a strip's isolation request, made for a
# band of one loop, met a band of two after fuse and isl refused to
# intersect them (the build crashed inside isl)
def test_fuzz_found_isolation_request_for_a_fused_band():
    sch = polyop.Schedule(seidel2d_5pt)
    t, i, j = sch.get_loops("S0")
    sch.tile(t, j, 1, 1)
    t_outer, j_outer, i, *_ = sch.get_loops("S0")
    sch.fuse(j_outer, i)
    loops = sch.get_loops("S0")
    sch.skew(loops[0], loops[2], 1)
    f = polyop.build(sch)
    rng = np.random.default_rng(3)
    for tsteps, n in ((1, 3), (3, 6), (2, 9)):
        A = rng.random((n, n))
        want = A.copy()
        seidel2d_5pt.py_func(tsteps, n, want)
        f(tsteps, n, A)
        np.testing.assert_allclose(A, want, rtol=1e-12)


# found by the slow fuzz run on temp_chain: expand(t, j) after parallel(i) is
# refused (one t_x[j] for all i's threads would be a race) and its violation
# names t_x, which the fuzzer's oracle knows as t: the fuzzer looked for the
# expand among the accepted primitives only, not the refused one
def test_fuzz_found_violation_of_a_refused_expand_names_the_new_array():
    case = CASES["temp_chain"]
    sch = polyop.Schedule(case.kernel)
    parallel = Op("parallel", "S0", (0,))
    parallel.apply(sch)
    expand = Op("expand", "S0", (1,), ("t",))
    with pytest.raises(IllegalScheduleError) as info:
        expand.apply(sch)
    assert info.value.array == "t_x" and info.value.kind == "RAW"
    assert "loop i carries" in str(info.value)
    for v in info.value.violations:
        check_violation(case, [parallel], expand, v)


# found by the slow fuzz run on strided_band (a stride-2 loop under an ``or``
# guard): split by 3 twice with both inner loops unrolled, isl's code with
# full tiles isolated lost S0[20, 19] at n = 21 in every variant of the tree;
# validation caught it and the build failed. Now it asks isl again without
# isolation, says so, and the code is right
def test_fuzz_found_unrolled_strips_wrong_with_isolation_build_without_it():
    sch = polyop.Schedule(strided_band)
    sch.unroll(sch.get_loops("S0")[0], 3)
    sch.unroll(sch.get_loops("S0")[0], 3)
    with pytest.warns(UserWarning, match="missing S0.*without isolating full tiles"):
        f = polyop.build(sch)
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 20, 21, 22, 24, 25, 39, 42):
        A = rng.random((n, n))
        want = A.copy()
        strided_band.py_func(n, want)
        f(n, A)
        np.testing.assert_array_equal(A, want, err_msg=f"n={n}")


def test_ways_to_ask_isl_drop_isolation_before_unrolling():
    from polyop.pipeline import _attempts, lowering_plan
    from polyop.schedule.plan import VARIANTS

    sch = polyop.Schedule(scale)
    sch.unroll(sch.get_loops("S0")[0], 2)
    ways = _attempts(lowering_plan(sch), isolate=True)
    assert ways == [(iso, unroll, v) for iso, unroll in ((True, True), (False, True),
                                                         (False, False))
                    for v in range(VARIANTS)]
    assert _attempts(lowering_plan(polyop.Schedule(scale)), isolate=False) == \
        [(False, True, v) for v in range(VARIANTS)]


# found by the slow fuzz run on temp_chain: after tile, skew by 2 and split,
# the extent of j_inner has a piece isl writes as m/2 (m even there), which
# isl's max_val refuses: expand crashed with a bare isl.Error
def test_fuzz_found_expand_over_a_loop_with_a_rational_extent_piece():
    sch = polyop.Schedule(CASES["temp_chain"].kernel)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 1, 4)
    loops = sch.get_loops("S0")
    sch.skew(loops[1], loops[3], 2)
    sch.split(sch.get_loops("S0")[0], 1)
    before = str(sch)
    with pytest.raises(ScheduleError, match="extent of loop j_inner is not one affine.*"
                       "expand over the inner loop"):
        sch.expand("t", sch.get_loops("S0")[4])
    assert str(sch) == before


# found by the slow fuzz run on temp_chain: inlining the statement of an
# expanded temporary left t_x among the runtime's scratch arrays, and the
# build failed with a KeyError
def test_fuzz_found_inline_of_an_expanded_temporary_leaves_no_scratch_behind():
    kernel = CASES["temp_chain"].kernel
    sch = polyop.Schedule(kernel)
    assert sch.expand("t", sch.get_loops("S0")[0]) == "t_x"
    sch.inline("S0")
    assert "t_x" not in sch.program.meta["scratch"] and "t_x" not in sch.program.arrays
    f = polyop.build(sch)
    rng = np.random.default_rng(2)
    A, B = rng.random((4, 5)), rng.random((4, 5))
    want_A, want_B = A.copy(), B.copy()
    kernel.py_func(4, 5, want_A, want_B)
    f(4, 5, A, B)
    np.testing.assert_allclose(A, want_A, rtol=1e-15)
    np.testing.assert_allclose(B, want_B, rtol=1e-15)


# found by the slow cache fuzz run on gemm_beta: inlining the copy statement of
# a cache_read was accepted, but the consumer's reads of the cache record no
# index, so its body kept loading A_cache and the build failed ("unknown
# array"); inline now finds the loads in the consumer's body
def test_fuzz_found_inline_of_a_cache_copy_rewrites_the_consumers_loads():
    kernel = CASES["gemm_beta"].kernel
    sch = polyop.Schedule(kernel)
    cache = sch.cache_read("A", ["S1"])
    sch.inline(cache)
    assert "A_cache" not in str(polyop.lower(sch))
    run_and_compare(CASES["gemm_beta"], sch, seed=4)


# found by the slow cache fuzz run on gemm_beta: a cache_read's copy computed
# at k_outer of a 3 x 3 tile; isl's AST generator failed outright ("cannot
# handle void expression") on the tree with isolated full tiles, and the build
# crashed with a bare isl.Error. It is now one more way of asking isl that
# failed: the next (atomic loops) generates code that validates
def test_fuzz_found_isl_failing_on_a_variant_asks_the_next_way():
    case = CASES["gemm_beta"]
    sch = polyop.Schedule(case.kernel)
    cache = sch.cache_read("A", ["S1"])
    loops = sch.get_loops("S1")
    sch.tile(loops[1], loops[2], 3, 3)
    sch.compute_at(cache, sch.get_loops("S1")[1])
    run_and_compare(case, sch, seed=6)
    for ni, nj, nk in ((1, 2, 3), (2, 5, 7), (3, 3, 6)):
        run_and_compare(replace(case, sizes={"ni": ni, "nj": nj, "nk": nk}), sch, seed=ni)


# found by the slow fuzz run on checker (``%`` guards joined by ``or``): the
# tile loop j_outer fused with the fused tile loops (i_inner, j_inner) is
# legal, but isl's AST for it needs 5-10 million operations, past the default
# budget in every way of asking. The error says so and names the setting that
# allows more; with it, the code is right
def test_fuzz_found_schedule_past_the_ast_budget_builds_with_a_larger_one(monkeypatch):
    case = CASES["checker"]
    sch = polyop.Schedule(case.kernel)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 4, 4)
    loops = sch.get_loops("S0")
    sch.fuse(loops[2], loops[3])
    sch.split(sch.get_loops("S0")[0], 1)
    loops = sch.get_loops("S0")
    sch.fuse(loops[2], loops[3])
    monkeypatch.setenv("POLYOP_AST_OPERATIONS", "1000")
    with pytest.raises(polyop.CodegenError, match="did not finish in 1000 operations.*"
                       "POLYOP_AST_OPERATIONS allows more"):
        polyop.build(sch)
    monkeypatch.setenv("POLYOP_AST_OPERATIONS", "many")
    with pytest.raises(polyop.SettingError, match="POLYOP_AST_OPERATIONS='many'"):
        polyop.build(sch)
    monkeypatch.setenv("POLYOP_AST_OPERATIONS", "20000000")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its validation, too, is past its budget)
        f = polyop.build(sch)
    rng = np.random.default_rng(3)
    for n, m in ((1, 1), (2, 3), (5, 7), (9, 14), (17, 6), (24, 31)):
        A, B = rng.random((n, m)), rng.random((n, m))
        want = A.copy(), B.copy()
        case.kernel.py_func(n, m, *want)
        f(n, m, A, B)
        np.testing.assert_array_equal(A, want[0], err_msg=f"n={n}, m={m}")
        np.testing.assert_array_equal(B, want[1], err_msg=f"n={n}, m={m}")


def test_no_way_of_asking_isl_gives_a_codegen_error(monkeypatch):
    import islpy as isl

    def fail(*args, **kwargs):
        raise isl.Error("cannot handle void expression (simulated)")

    monkeypatch.setattr("polyop.pipeline.build_ast", fail)
    with pytest.raises(polyop.CodegenError, match="isl could not generate code for scale in "
                       "any way: cannot handle void expression"):
        polyop.lower(polyop.Schedule(scale))
