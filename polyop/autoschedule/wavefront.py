"""Wavefronts: a recurrence's independent instances side by side (the knob
``<stmt>:wavefront_skew``).

seidel-2d's ``A[i, j] = (A[i-1, j-1] + ... + A[i, j-1] + ... + A[i+1, j+1]) / 9``
reads, at ``j``, the value it wrote at ``j - 1``: the innermost loop is a
*recurrence*, each instance waiting for the previous one's additions and
division (~30 cycles on Zen 4), and the loop outside it (``i``) carries
dependences too, so neither a parallel nor a jammed loop is there to hide
the latency. Within one time step the dependences between instances have
the distances ``(i, j)`` = ``(0, 1), (1, -1), (1, 0), (1, 1)``: skewing
``j`` by ``2·i`` (``skew(i, j, 2)``: the *wavefront* ``w = 2i + j``) and
moving it outside ``i`` leaves every dependence carried by ``w``, so the
instances of one wavefront (``i`` with ``j = w - 2i``) are independent and
the core overlaps them: one instance per few cycles, bound by the loads
and the divider. Each instance still computes the same expression in the
same order, so the results are bit for bit those of the kernel as written
(Zen 4, MEDIUM, 1 thread: 136 ms as written, 23.6 with wavefronts).

Taken for a band of one statement whose innermost loop carries a flow
dependence of the statement on itself at one constant distance with every
other loop equal (``chain_distance``: a chain, not floyd-warshall's row
``k`` read by every later column), shorter than ``jam.CHAINS`` (a distance
of 8 already interleaves 8 chains), when no loop of the band is coincident,
the band is untiled, the smallest skew factor (1 to ``MAX_FACTOR``) with
which the legality check accepts the skew and the interchange makes the
new innermost loop parallel, and one wavefront's lines fit half the L2
(neighbouring wavefronts then reuse them). The new innermost loop reads
each row at another column: its accesses are not unit-stride, so it is
not vectorised.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def sweep(n: int, A: "f64[n, n]"):
    ...     for i in range(1, n - 1):
    ...         for j in range(1, n - 1):
    ...             A[i, j] = (A[i - 1, j] + A[i, j - 1] + A[i + 1, j - 1]) / 3.0
    >>> sch = polyop.auto_schedule(sweep, "cpu -mcpu=znver4 -num-cores=1", sizes={"n": 400})
    >>> sch.explanation.knob("S0:wavefront_skew").chosen
    2
    >>> print(sch)
    schedule of sweep:
      skew(i, j, 2)
      reorder(j, i)
"""

from __future__ import annotations

import islpy as isl

from ..errors import ScheduleError
from .jam import CHAINS
from .outer import parallel_legal
from .strips import _base

#: the largest skew factor tried
MAX_FACTOR = 4
#: cache lines one instance is taken to touch per access group (a line of
#: each row read, and one more where a row's offsets straddle two)
LINES_PER_GROUP = 2


def chain_distance(sch, stmt: str, iterator: str) -> int | None:
    """The distance ``d`` such that every flow dependence of ``stmt`` on
    itself between instances equal in all its other iterators goes from
    ``iterator = v`` to ``v + d``, for one constant ``d``; None when there
    is no such dependence or the distances vary (a value read by many later
    instances rather than a chain).

    >>> import polyop
    >>> @polyop.kernel
    ... def prefix(n: int, A: "f64[n]"):
    ...     for i in range(1, n):
    ...         A[i] += A[i - 1]
    >>> chain_distance(polyop.Schedule(prefix), "S0", "i")
    1
    """
    names = list(sch.program.statement(stmt).iterators)
    if iterator not in names:
        return None
    deltas = None
    maps: list = []
    sch.deps.raw.foreach_map(maps.append)
    for m in maps:
        if m.get_tuple_name(isl.dim_type.in_) == stmt == m.get_tuple_name(isl.dim_type.out):
            d = m.deltas()
            deltas = d if deltas is None else deltas.union(d)
    if deltas is None:
        return None
    pos = names.index(iterator)
    for k in range(len(names)):
        if k != pos:
            deltas = deltas.fix_val(isl.dim_type.set, k, 0)
    # the distances along ``iterator`` alone, for any sizes
    deltas = deltas.project_out(isl.dim_type.set, pos + 1, len(names) - pos - 1) \
        .project_out(isl.dim_type.set, 0, pos)
    deltas = deltas.project_out(isl.dim_type.param, 0, deltas.dim(isl.dim_type.param))
    if deltas.is_empty():
        return None
    value = deltas.sample_point().get_coordinate_val(isl.dim_type.set, 0).to_python()
    one = isl.Set.universe(deltas.get_space()).fix_val(isl.dim_type.set, 0, value)
    return int(value) if deltas.is_subset(one) else None


def wavefront(ctx, lead: str, stmts, inner_loops: list, coincident: set[str],
              extents: list[int], groups: int) -> list:
    """Apply the knob ``<lead>:wavefront_skew`` to the untiled band ``inner_loops``
    (the band's loops in the chosen order, ``extents`` their trip counts,
    ``groups`` its access groups; see the module docstring). Returns the
    band's loops, the wavefront loop and the new innermost last when taken."""
    sch = ctx.sch
    if len(stmts) != 1 or len(inner_loops) < 2 or \
            any(_base(lp.name) in coincident for lp in inner_loops):
        return inner_loops
    outer, inner = inner_loops[-2], inner_loops[-1]
    distance = chain_distance(sch, lead, _base(inner.name))
    lines = int(extents[-2]) * groups * LINES_PER_GROUP
    fits = lines * 64 <= ctx.target.l2 // 2
    able = distance is not None and distance < CHAINS and fits
    why = (f"{inner.name} carries a chain (each instance reads the value written "
           f"{distance} iteration(s) before) and no loop of the band is parallel: "
           f"{outer.name} and {inner.name} skewed into wavefronts whose instances are "
           f"independent (one wavefront ~{lines * 64 // 1024} KiB, under half the L2)")
    if distance is None:
        why = f"{inner.name} carries no chain of one distance"
    elif distance >= CHAINS:
        why = (f"{inner.name} carries {distance} interleaved chains: enough in flight "
               "(a jam's count)")
    elif not fits:
        why = (f"a wavefront over {outer.name} would touch ~{lines * 64 // 1024} KiB, "
               "more than half the L2")
    start = len(sch.trace)
    factor = None
    if able:
        for f in range(1, MAX_FACTOR + 1):
            try:
                _skew_inward(sch, lead, outer, inner, f)
                if parallel_legal(sch, sch.get_loops(lead)[-1]):
                    factor = f
                    break
            except ScheduleError:
                pass
            sch.undo(len(sch.trace) - start)
        if factor is None:
            why = (f"no skew of {inner.name} by 1..{MAX_FACTOR} x {outer.name} makes "
                   "independent wavefronts")
        else:
            sch.undo(len(sch.trace) - start)  # applied below, as the knob says
    knob = ctx.decide(f"{lead}:wavefront_skew", [None, factor] if factor else [None], factor,
                      why, accepts=lambda v: isinstance(v, int) and not isinstance(v, bool) and
                      0 < v <= MAX_FACTOR)
    if knob.chosen is None:
        return inner_loops
    try:
        _skew_inward(sch, lead, outer, inner, int(knob.chosen))
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - start)
        knob.refuse(exc)
        return inner_loops
    return sch.get_loops(lead)[-len(inner_loops):]


def _skew_inward(sch, stmt: str, outer, inner, factor: int) -> None:
    """``inner += factor * outer``, then the skewed loop outside ``outer``:
    the wavefront loop, its instances innermost (the reorder is checked)."""
    sch.skew(outer, inner, factor)
    loops = sch.get_loops(stmt)
    sch.reorder(loops[-1], loops[-2])

