"""polyop.viz: the pictures show the model's facts, and the HTML views are sound.

Every fact drawn is checked against an independent source: the points of a
domain against the instances CPython runs (``tests.oracle.run_recorded``),
the arrows against the brute-force dependence oracle, the execution order
against CPython's order (original schedule) or the loop order a schedule
states, the tiles and wavefronts against their definitions computed here
from the iterators. The figures are read back from their matplotlib artists
(scatter offsets, quiver vectors, tile polygons), never from polyop's own
lists. The HTML is parsed with ``html.parser`` and must be well-formed.
"""

from __future__ import annotations

import html.parser

import matplotlib
import numpy as np
import pytest

import polyop
import polyop.viz
from polyop.viz import html as vhtml
from polyop.viz.domains import ARROW_SHRINK, DEPS_TITLES, KIND_OFFSETS, layout
from polyop.viz.schedules import steps
from tests.oracle import (
    nearest_dependences,
    oracle_dependences,
    oracle_instances,
    run_recorded,
)

matplotlib.use("Agg")


@polyop.kernel
def tri(n: int, A: "f64[n, n]", x: "f64[n]"):
    for i in range(n):
        for j in range(i + 1):
            if (i + j) % 3 != 1:
                A[i, j] += A[i, j - 1] if j > 0 else x[i]
        x[i] = A[i, i] * 2.0


@polyop.kernel
def sweep(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n):
            A[i, j] = A[i - 1, j] + A[i, j - 1]


@polyop.kernel
def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            C[i, j] *= 0.5
            for k in range(n):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def jac(T: int, n: int, A: "f64[n]", B: "f64[n]"):
    for t in range(T):
        for i in range(1, n - 1):
            B[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0
        for i in range(1, n - 1):
            A[i] = B[i]


@polyop.kernel
def seidel(T: int, n: int, A: "f64[n]"):
    for t in range(T):
        for i in range(1, n - 1):
            A[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0


@polyop.kernel
def t(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(n - 1):
            A[i, j] = A[i - 1, j + 1]


def _args(k, n: int, sizes: dict | None = None) -> dict:
    out: dict = {}
    for a in k.program.arguments:
        if a.kind == "size":
            out[a.name] = (sizes or {}).get(a.name, n)
        elif a.name in k.program.arrays:
            out[a.name] = np.ones(tuple(n for _ in k.program.arrays[a.name].shape))
        else:
            out[a.name] = 1.0
    return out


def _scatter(ax, stmt: str):
    (sc,) = [c for c in ax.collections if c.get_gid() == f"stmt:{stmt}"]
    return sc


def _positions(ax, stmt: str) -> set[tuple[float, float]]:
    return {(round(x, 6), round(y, 6)) for x, y in _scatter(ax, stmt).get_offsets()}


def _arrows(ax) -> dict[str, set[tuple[tuple[float, float], tuple[float, float]]]]:
    """Each quiver (gid ``KIND:array``) as its set of (source, sink) positions,
    undoing the shortening of both ends."""
    out = {}
    for c in ax.collections:
        if isinstance(c, matplotlib.quiver.Quiver):
            du, dv = c.U / (1 - 2 * ARROW_SHRINK), c.V / (1 - 2 * ARROW_SHRINK)
            # moved aside to the left of the arrow by the kind's offset
            side = KIND_OFFSETS[c.get_gid().split(":")[0]] / np.hypot(du, dv)
            x0 = c.X - ARROW_SHRINK * du + dv * side
            y0 = c.Y - ARROW_SHRINK * dv - du * side
            out[c.get_gid()] = {((round(a, 6), round(b, 6)), (round(a + u, 6), round(b + v, 6)))
                                for a, b, u, v in zip(x0, y0, du, dv)}
    return out


def _rounded(p):
    return (round(p[0], 6), round(p[1], 6))


# -- domains and dependences ---------------------------------------------------------------
def test_domain_points_are_the_instances_cpython_runs():
    n = 6
    fig = polyop.viz.domain(tri, sizes={"n": n})
    ax = fig.axes[0]
    ran = oracle_instances(run_recorded(tri, _args(tri, n)))
    lay = layout(tri.program, ["S0", "S1"], None)
    for stmt in ("S0", "S1"):
        expected = {_rounded(lay.pos(inst)) for inst in ran if inst[0] == stmt}
        assert _positions(ax, stmt) == expected
    # the guard drops (i + j) % 3 == 1: counted by hand here, named in the legend
    count = sum(1 for i in range(n) for j in range(i + 1) if (i + j) % 3 != 1)
    labels = ax.get_legend_handles_labels()[1]
    assert f"S0: {count} instances" in labels and f"S1: {n} instances" in labels


@pytest.mark.parametrize("kernel, sizes", [(tri, {"n": 5}), (jac, {"T": 3, "n": 6}),
                                           (seidel, {"T": 3, "n": 7})],
                         ids=["tri", "jacobi", "seidel"])
@pytest.mark.parametrize("mode", ["direct", "all"])
def test_dependence_arrows_are_the_oracle_pairs(kernel, sizes, mode):
    """"all": every pair the brute-force oracle finds; "direct" (the default):
    per sink and (kind, array), only the latest source CPython ran."""
    kw = {} if mode == "direct" else {"deps": mode}
    ax = polyop.viz.domain(kernel, sizes=sizes, **kw).axes[0]
    stmts = [s.name for s in kernel.program.statements]
    lay = layout(kernel.program, stmts, None)
    args = _args(kernel, sizes["n"], sizes)
    events = run_recorded(kernel, args)
    all_pairs = oracle_dependences(kernel, args)
    oracle = nearest_dependences(events) if mode == "direct" else all_pairs
    if mode == "direct":  # each one of the memory-based pairs; fewer where a
        # rewritten element gives a later read several sources
        assert all(oracle[k] <= all_pairs[k] for k in oracle)
        writes = [w for e in events for w in e.writes]
        if len(writes) > len(set(writes)):
            assert sum(map(len, oracle.values())) < sum(map(len, all_pairs.values()))
    assert ax.get_legend().get_title().get_text() == DEPS_TITLES[mode]
    assert f"and {mode} dependences" in ax.get_title()
    drawn = _arrows(ax)
    assert set(drawn) == {f"{kind}:{array}" for kind, array in oracle}
    for (kind, array), pairs in oracle.items():
        expected = {(_rounded(lay.pos(s)), _rounded(lay.pos(d))) for s, d in pairs}
        assert drawn[f"{kind}:{array}"] == expected, (kind, array)
        assert any(label.startswith(f"{kind} ") and f" on {array}: {len(pairs)} pairs" in label
                   for label in ax.get_legend_handles_labels()[1])


def test_direct_stencil_arrows_are_its_three_neighbours():
    """Per element, not per array: each point of the in-place sweep gets the
    new value of its left neighbour and the old values of itself and its
    right neighbour, from the last sweep: (0, 1), (1, 0) and (1, -1) in
    (t, i), the last one the reason tiling is refused."""
    ax = polyop.viz.domain(seidel, sizes={"T": 4, "n": 8}, dims=("i", "t")).axes[0]
    raw = {(b[0] - a[0], b[1] - a[1]) for a, b in _arrows(ax)["RAW:A"]}
    assert raw == {(1.0, 0.0), (0.0, 1.0), (-1.0, 1.0)}  # (di, dt): space across


def test_deps_false_draws_no_arrow_and_stmts_picks_statements():
    fig = polyop.viz.domain(tri, sizes={"n": 4}, stmts=["S1"], deps=False)
    ax = fig.axes[0]
    assert not _arrows(ax)
    assert [c.get_gid() for c in ax.collections] == ["stmt:S1"]
    assert _positions(ax, "S1") == {(float(i), 0.0) for i in range(4)}  # 1-D: on the axis


def test_three_loops_are_projected_onto_the_chosen_iterators():
    n = 3
    fig = polyop.viz.domain(mm, sizes={"n": n}, stmts="S1", dims=("i", "k"))
    ax = fig.axes[0]
    assert _positions(ax, "S1") == {(float(i), float(k)) for i in range(n) for k in range(n)}
    assert ax.get_xlabel() == "i" and ax.get_ylabel() == "k"
    labels = ax.get_legend_handles_labels()[1]
    assert f"S1: {n ** 3} instances, projected (j hidden)" in labels
    # RAW on C from k to k + 1 (same i, j): drawn from (i, k) to (i, k + 1) ...
    assert ((0.0, 0.0), (0.0, 1.0)) in _arrows(ax)["RAW:C"]
    # ... and never an arrow from a point to itself
    assert all(a != b for pairs in _arrows(ax).values() for a, b in pairs)


def test_statement_markers_stay_apart_where_statements_share_a_point():
    fig = polyop.viz.domain(mm, sizes={"n": 2})
    ax = fig.axes[0]
    assert not _positions(ax, "S0") & _positions(ax, "S1")


# -- execution order -----------------------------------------------------------------------
def _numbers(ax) -> dict[tuple[float, float], int]:
    return {_rounded(a.xy): int(a.get_text()) for a in ax.texts if a.get_text().isdigit()}


def test_original_order_numbers_are_cpythons_order():
    n = 4
    fig = polyop.viz.order(tri, sizes={"n": n})
    ax = fig.axes[0]
    events = run_recorded(tri, _args(tri, n))
    ran = list(dict.fromkeys(e.instance for e in events))
    lay = layout(tri.program, ["S0", "S1"], None)
    assert _numbers(ax) == {_rounded(lay.pos(inst)): k for k, inst in enumerate(ran)}


def test_interchanged_order_runs_columns_first():
    n = 4
    sch = polyop.Schedule(sweep)
    i, j = sch.get_loops("S0")
    sch.interchange(i, j)
    ax = polyop.viz.order(sch, sizes={"n": n}).axes[0]
    expected = sorted(((i, j) for i in range(1, n) for j in range(1, n)), key=lambda p: p[::-1])
    assert _numbers(ax) == {(float(i), float(j)): k for k, (i, j) in enumerate(expected)}
    assert "interchange(i, j)" in ax.get_title()


def test_wavefronts_of_a_parallel_skewed_loop_are_anti_diagonals():
    sch = polyop.Schedule(sweep)
    i, j = sch.get_loops("S0")
    sch.skew(i, j, 1)
    sch.interchange(*sch.get_loops("S0"))
    sch.parallel(sch.get_loops("S0")[1])
    ax = polyop.viz.order(sch, sizes={"n": 5}).axes[0]
    numbers = _numbers(ax)
    assert numbers == {(float(i), float(j)): i + j - 2 for i in range(1, 5) for j in range(1, 5)}
    assert "parallel: i" in ax.get_title()
    assert "wavefront" in fig_colorbar_label(ax)


def fig_colorbar_label(ax) -> str:
    return " ".join(other.get_ylabel() for other in ax.figure.axes if other is not ax)


def test_tiles_outline_exactly_the_instances_of_each_tile():
    from matplotlib.patches import Polygon

    n = 6
    sch = polyop.Schedule(sweep)
    i, j = sch.get_loops("S0")
    sch.tile(i, j, 2, 3)
    ax = polyop.viz.order(sch, sizes={"n": n}).axes[0]
    tiles = [p for p in ax.patches if isinstance(p, Polygon) and str(p.get_gid()).startswith(
        "tile:")]
    points = [(i, j) for i in range(1, n) for j in range(1, n)]
    groups = {}
    for i, j in points:  # tile of (i, j): the outer loops' values, i // 2 and j // 3
        groups.setdefault((i // 2, j // 3), set()).add((i, j))
    inside = []
    for poly in tiles:
        hit = poly.get_path().contains_points(points)
        inside.append({p for p, h in zip(points, hit) if h})
    assert sorted(map(sorted, inside)) == sorted(map(sorted, groups.values()))


def test_steps_follow_the_schedule_map():
    sch = polyop.Schedule(mm)
    i, j = sch.get_loops("S1")[:2]
    sch.parallel(i)
    st = steps(sch, {"n": 2}, ["S0", "S1"])
    # parallel i: instances that differ in i only share a wavefront
    for (name, vals), s in st.items():
        twin = st[(name, (1 - vals[0],) + vals[1:])]
        assert twin.wave == s.wave and twin.rank != s.rank
    assert sorted(s.rank for s in st.values()) == list(range(2 * 2 + 2 ** 3))


def test_compare_draws_both_schedules():
    after = polyop.Schedule(sweep)
    i, j = after.get_loops("S0")
    after.skew(i, j, 1)
    fig = polyop.viz.compare(sweep, after, sizes={"n": 4})
    left, right = fig.axes[0], fig.axes[1]
    assert "original order" in left.get_title() and "skew(i, j, 1)" in right.get_title()
    assert _positions(left, "S0") == _positions(right, "S0")


def test_violation_highlights_the_broken_pair():
    sch = polyop.Schedule(t, check=False)
    i, j = sch.get_loops("S0")
    sch.interchange(i, j)
    (v,) = sch.check()
    fig = polyop.viz.violation(v, sch, sizes={"n": 4})
    ax = fig.axes[0]
    (ring,) = [c for c in ax.collections if c.get_gid() == "violation"]
    src = tuple(int(x.split("=")[1]) for x in v.source[3:-1].split(", "))
    dst = tuple(int(x.split("=")[1]) for x in v.sink[3:-1].split(", "))
    assert {_rounded(p) for p in ring.get_offsets()} == {tuple(map(float, src)),
                                                         tuple(map(float, dst))}
    numbers = _numbers(ax)  # the illegal order runs the sink first
    assert numbers[tuple(map(float, dst))] < numbers[tuple(map(float, src))]
    assert v.kind in ax.get_title() and v.array in ax.get_title()


def test_violation_from_the_error_of_a_refused_primitive():
    sch = polyop.Schedule(t)
    with pytest.raises(polyop.IllegalScheduleError) as info:
        sch.interchange(*sch.get_loops("S0"))
    err = info.value
    fig = polyop.viz.violation(err, t)  # at sizes grown from those the pair was found at
    ax = fig.axes[0]
    assert err.source in ax.get_title() and "original order" in ax.get_title()
    (ring,) = [c for c in ax.collections if c.get_gid() == "violation"]
    assert {_rounded(p) for p in ring.get_offsets()} == {(1.0, 1.0), (2.0, 0.0)}
    numbers = _numbers(ax)  # the original order runs the source first
    assert numbers[(1.0, 1.0)] < numbers[(2.0, 0.0)]
    with pytest.raises(polyop.ArgumentError, match="no instance at sizes"):
        polyop.viz.violation(err, t, sizes={"n": 2})


# -- errors before drawing -----------------------------------------------------------------
@pytest.mark.parametrize("call, words", [
    (lambda: polyop.viz.domain(mm, sizes={}), ["no value for n", "sizes="]),
    (lambda: polyop.viz.domain(mm, sizes={"n": 3, "m": 2}), ["'m' is not a size parameter"]),
    (lambda: polyop.viz.domain(mm, sizes={"n": 40}), ["too many points", "at most 2000",
                                                     "smaller sizes"]),
    (lambda: polyop.viz.domain(mm, sizes={"n": 3}, stmts=["S7"]),
     ["unknown statement 'S7'", "S0, S1"]),
    (lambda: polyop.viz.domain(mm, sizes={"n": 3}, dims=("i", "q")), ["no iterator 'q'"]),
    (lambda: polyop.viz.order(mm, sizes={"n": 2.5}), ["not an integer"]),
    (lambda: polyop.viz.violation("oops", mm), ["IllegalScheduleError or Violation"]),
    (lambda: polyop.viz.compare(mm, t, sizes={"n": 3}), ["two kernels (mm, t)"]),
    (lambda: polyop.viz.domain(mm, sizes={"n": 3}, deps="near"), ["deps must be one of",
                                                                  "'direct', 'all'"]),
    (lambda: polyop.viz.order(mm, sizes={"n": 3}, deps=1), ["not 1"]),
])
def test_bad_input_is_a_clear_error(call, words):
    with pytest.raises(polyop.ArgumentError) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_sizes_against_the_kernels_assumption():
    @polyop.kernel
    def big(n: int, A: "f64[n]"):
        assert n >= 3
        for i in range(n):
            A[i] = 0.0

    with pytest.raises(polyop.ArgumentError, match="assert n >= 3"):
        polyop.viz.domain(big, sizes={"n": 2})


def test_too_many_arrows_is_refused_with_the_way_out():
    @polyop.kernel
    def acc(n: int, s: "f64[1]", x: "f64[n]"):
        for i in range(n):
            s[0] += x[i]

    with pytest.raises(polyop.ArgumentError, match="deps='direct' or deps=False"):
        polyop.viz.domain(acc, sizes={"n": 100}, deps="all")
    # the ways out work: the direct pairs (3 per instance but the first) fit
    ax = polyop.viz.domain(acc, sizes={"n": 100}).axes[0]
    assert sum(len(v) for v in _arrows(ax).values()) == 3 * 99
    assert polyop.viz.domain(acc, sizes={"n": 100}, deps=False)


# -- HTML ----------------------------------------------------------------------------------
VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col"}


class _Checker(html.parser.HTMLParser):
    """Well-formedness: every element closed in order; collects the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> str:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.stack, checker.stack
    return "".join(checker.text)


def test_kernel_html_lists_statements_and_escapes_isl_text():
    page = tri._repr_html_()
    text = _parse(page)
    for s in tri.program.statements:
        assert s.name in text and str(s.source) in text
    assert "0 <= j <= i" in text  # the domain, as isl prints it ...
    assert "0 <= j <= i" not in page and "0 &lt;= j &lt;= i" in page  # ... escaped
    assert "RAW" in text and "S0 → S1" in text  # dependences, by statement pair
    assert "(i + j) % 3 != 1" in text  # the source, highlighted


def test_kernel_html_dependence_distances():
    # one distance at every size: a vector; several: the set, without isl's tuple name
    rows = _parse(vhtml.dependence_table(polyop.dependences(t)))
    assert "S0 → S0(1, -1){ S0[i, j] -> S0[i' = 1 + i, j' = -1 + j]" in rows
    rows = _parse(vhtml.dependence_table(polyop.dependences(sweep)))
    assert "S0 → S0[i, j = 1 - i] : " in rows  # (1, 0) and (0, 1), no vector alone


def test_kernel_html_of_a_kernel_outside_the_language_shows_the_error():
    @polyop.kernel
    def bad(n: int, A: "f64[n]"):
        for i in range(n):
            A[i] = A[A[i]]

    text = _parse(bad._repr_html_())
    assert "FrontendError" in text and "A[A[i]]" in text


def test_schedule_html_has_primitives_tree_and_code():
    sch = polyop.Schedule(mm)
    i, j = sch.get_loops("S1")[:2]
    sch.parallel(i)
    text = _parse(sch._repr_html_())
    assert "parallel(i)" in text and "(parallel)" in text
    assert "for i (parallel) = S0: i; S1: i" in text
    assert str(polyop.lower(sch)).splitlines()[0] in text  # the generated code, as C
    plain = _parse(polyop.Schedule(mm)._repr_html_())
    assert "original order" in plain


def test_refusal_html_names_the_pair():
    sch = polyop.Schedule(t)
    with pytest.raises(polyop.IllegalScheduleError) as info:
        sch.interchange(*sch.get_loops("S0"))
    err = info.value
    text = _parse(err._repr_html_())
    v = err.violations[0]
    for fact in (v.kind, v.array, v.element, v.source, v.sink, v.sizes):
        assert fact in text
    assert v.describe("schedule") in _parse(v._repr_html_())


def test_schedule_html_of_an_illegal_schedule_lists_its_violations():
    sch = polyop.Schedule(t, check=False)
    sch.interchange(*sch.get_loops("S0"))
    text = _parse(sch._repr_html_())
    assert "violated dependences" in text and sch.check()[0].source in text


def test_compiled_html_folds_ir_and_asm():
    @polyop.kernel
    def scale(n: int, x: "f64[n]"):
        for i in range(n):
            x[i] *= 2.0

    ck = scale.compile()
    page = ck._repr_html_()
    text = _parse(page)
    assert page.count("<details>") == 2 and "LLVM IR" in text and "assembly" in text
    assert "define" in text and "x[i] = x[i] * 2.0" in text


def test_html_escapes_everything_it_is_given():
    page = vhtml.table(["<a>"], [["x < y & \"z\""]])
    text = _parse(page)
    assert "<a>" in text and "x < y & \"z\"" in text and "<a>" not in page
    block = vhtml.code("if (a<b && c>d) x = \"<b>\";", "c")
    assert "<b>" not in block and "<b>" in _parse(block)


def test_a_kernel_without_sizes_needs_none():
    @polyop.kernel
    def fixed(A: "f64[3, 2]"):
        for i in range(3):
            for j in range(2):
                A[i, j] = 1.0

    ax = polyop.viz.order(fixed).axes[0]
    assert _numbers(ax) == {(float(i), float(j)): 2 * i + j for i in range(3) for j in range(2)}
