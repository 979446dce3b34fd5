"""Unroll-and-jam of a reduction: several rows' sums in flight at once (the
knob ``<stmt>:jam``).

atax's ``tmp[i] += A[i, j] * x[j]`` sums each row over ``j``, one add after
the other: the innermost loop carries the sum, cannot be vectorised without
reassociating it (which would change the result), and runs at one
multiply-add per latency of the FP unit (4 cycles on Zen 4) instead of two
a cycle. Splitting the row loop ``i`` by ``U`` and moving its strip inside
``j``, fully unrolled (``i_outer, j, i_inner``), runs ``U`` rows' sums side
by side: ``U`` independent chains, each still summed in ``j``'s order, so
the result is bit for bit the same. The ``U`` sums are kept in a local
buffer across ``j`` (``cache_write(..., scope="local")``, registers for
LLVM): stored once per strip, not at every ``j``, where a strip's elements
may share a cache line with the neighbouring strip another thread sums.
``U`` covers the latency times the units (``CHAINS``); on Zen 4 (f64,
MEDIUM, 1 thread) atax ran 0.142 ms without, 0.096 with 4 rows, 0.084 with
8 and 0.085 with 16 (LLVM then packed the rows' loads into gathers; without
them 0.048 ms with 8 rows: ``polyop.codegen.jit.prefer_no_gather``).

Taken for a band whose innermost loop carries a dependence, when every
statement of the band accumulates (reads the element it writes) over that
loop and its write moves with the loop just outside it (the rows), and the
legality check lets the rows' strip move inside the sum's loop.
``polyop.autoschedule.heuristic`` distributes a two-loop nest (``fission``)
where that gives such a band (atax's row sums beside its other nests), and
its order model counts a jammable order at one instance a cycle, not one
per add latency, against orders whose vector loop a transposed copy will
make contiguous at ``lanes`` a cycle (syrk keeps its copy; gesummv's two
row sums, read down the columns in ``j, i`` without a copy, are jammed:
0.048 -> 0.023 ms on Zen 4).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def gemv(n: int, A: "f64[n, n]", x: "f64[n]", y: "f64[n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             y[i] += A[i, j] * x[j]
    >>> sch = polyop.auto_schedule(gemv, "cpu -mcpu=znver4 -num-cores=1", sizes={"n": 400})
    >>> sch.explanation.knob("S0:jam").chosen
    8
    >>> print(sch)
    schedule of gemv:
      split(i, 8)
      reorder(i_outer, j, i_inner)
      unroll(i_inner)
      cache_write(y, scope='local', at=i_outer) -> y_local
"""

from __future__ import annotations

from ..errors import ScheduleError
from .outer import distribute_shared, enclosed_statements
from .strips import _base, _moved_by

#: rows summed side by side: an FMA's latency (4 cycles) times two units
CHAINS = 8


def accumulates_over(sch, stmts, inner: str, outer: str) -> bool:
    """Whether every statement of ``stmts`` reads the element it writes (an
    accumulation), its write does not move with the loop ``inner`` and moves
    with the loop ``outer`` (iterator names)."""
    for s in stmts:
        st = sch.program.statement(s)
        if len(st.writes) != 1 or not st.writes[0].index:
            return False
        w = st.writes[0]
        moved = _moved_by(w)
        if inner in moved or outer not in moved or not any(
                r.array == w.array and r.index == w.index for r in st.reads):
            return False
    return True


def jammable(ctx, stmts, inner: str, outer: str) -> bool:
    """Whether rows ``outer`` (iterator name) of ``stmts`` can be run side by
    side inside ``inner``: every statement sums over ``inner``
    (``accumulates_over``), or the statements carry a chain along ``inner``
    through temporaries that ``polyop.autoschedule.heuristic`` expanded over
    ``outer`` (``ctx.rows_freed``: deriche's ``ym1``, ``ym2`` along a row)."""
    if accumulates_over(ctx.sch, stmts, inner, outer):
        return True
    return all(ctx.rows_freed.get(s) == outer for s in stmts)


def distribute_for_jam(ctx, stmt: str) -> None:
    """One core: when the inner loop of ``stmt``'s two-loop nest holds row
    sums beside statements that are not (bicg's ``q[i]`` summed over ``j``
    beside ``s[j] += r[i] * A[i, j]``), distribute the shared loops (knob
    ``<stmt>:distribute``), kept when every sum then has a nest of its own
    to be jammed. (Several cores: ``outer.distribute_for_cores``.)"""
    sch = ctx.sch
    loops = sch.get_loops(stmt)
    if ctx.target.cores > 1 or len(loops) != 2:
        return
    rows, red = loops[0].name, loops[1].name
    inside = enclosed_statements(sch)[loops[1].id]
    sums = {t for t in inside if accumulates_over(sch, [t], red, rows)}
    if not sums or sums == inside:
        return  # nothing to jam, or every statement is a sum (jammed together)
    knob = ctx.decide(f"{stmt}:distribute", [False, True], True,
                      f"the rows' sums {', '.join(sorted(sums))} over {red} share it with "
                      "statements that are not sums: distributed, to be jammed")
    if not knob.chosen:
        return
    start = len(sch.trace)
    for t in sorted(inside, key=sch.stmts.index):
        distribute_shared(sch, t, knob)
    nests = enclosed_statements(sch)
    if not all(nests[sch.get_loops(t)[0].id] == {t} for t in sums):
        sch.undo(len(sch.trace) - start)
        knob.applied = False
        knob.why += ": the sums did not get nests of their own, taken back"


def jam(ctx, lead: str, stmts, inner_loops: list, extent: int) -> list:
    """Apply the knob ``<lead>:jam`` to the band's point loops ``inner_loops``
    (``extent``: the trip count of the loop outside the innermost); returns
    the new point loops."""
    sch = ctx.sch
    if len(inner_loops) < 2:
        return inner_loops
    rows, red = inner_loops[-2], inner_loops[-1]
    able = extent >= 2 * CHAINS and jammable(ctx, stmts, _base(red.name), _base(rows.name))
    knob = ctx.decide(
        f"{lead}:jam", [None, 2, 4, CHAINS, 2 * CHAINS] if able else [None],
        CHAINS if able else None,
        f"{red.name} carries the sums or chains of the rows {rows.name}: {CHAINS} rows run "
        "side by side (unroll-and-jam), each in its own order" if able else
        "no sum or chain over the innermost loop of independent rows",
        accepts=lambda v: isinstance(v, int) and v > 1)
    if knob.chosen is None:
        return inner_loops
    from ..api import lower  # a promotion is exact or refused at lowering

    start = len(sch.trace)
    try:
        o, i = sch.split(rows, int(knob.chosen))
        sch.reorder(o, red, i)
        sch.unroll(i)
        # what a row carries from one iteration of the inner loop to the next
        # (its sum, its chain's temporaries), kept in registers
        carried = [w.array for s in stmts for w in sch.program.statement(s).writes
                   if _base(red.name) not in _moved_by(w)]
        for array in dict.fromkeys(carried):
            sch.cache_write(array, scope="local", at=o)
        lower(sch, validate=False)  # (the build validates the final schedule's code)
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - start)
        knob.refuse(exc)
        return inner_loops
    return inner_loops[:-2] + [o, red, i]

