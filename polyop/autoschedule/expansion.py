"""Temporaries expanded where they alone keep a nest from being distributed.

When ``fission`` of a loop is refused and every dependence it would break is
on a temporary (a local scalar or array: symm's ``temp2``, set for each
``(i, j)``, summed over ``k``, then read), the iterations share nothing but
that temporary's one location. The knob ``<stmt>:expand`` then gives the
temporary one element per iteration of the loop (``Schedule.expand``: it
refuses when a value flows from one iteration to another) and tries the
fission again; if that is refused too, both are taken back.

Measured on PolyBench at MEDIUM (Zen 4, 1 thread): symm's ``temp2``
expanded over ``j``, ``j`` distributed and moved inside ``k``, where it is
unit-stride in ``B``, ``C`` and ``temp2_x``: 3.7 -> 0.82 ms; ludcmp's ``w``
in its loop over ``j >= i`` likewise (the other three nests keep ``w``):
14.3 -> 8.9 ms.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def symm(m: int, n: int, C: "f64[m, n]", A: "f64[m, m]", B: "f64[m, n]"):
    ...     for i in range(m):
    ...         for j in range(n):
    ...             t = 0.0
    ...             for k in range(i):
    ...                 C[k, j] += B[i, j] * A[i, k]
    ...                 t += B[k, j] * A[i, k]
    ...             C[i, j] += t
    >>> sch = polyop.auto_schedule(symm, "cpu -mcpu=znver4 -num-cores=1",
    ...                            sizes={"m": 200, "n": 240})
    >>> print(sch.explanation.knob("S1:expand").chosen, "t_x[j]" in str(polyop.lower(sch)))
    True True
"""

from __future__ import annotations

from ..errors import IllegalScheduleError, ScheduleError
from .outer import enclosed_statements, parallel_legal


def expand_for_fission(ctx, stmt: str, loop, refused: ScheduleError) -> bool:
    """After ``fission(loop)`` was ``refused``: expand the temporaries behind
    every violated dependence over ``loop`` and retry (module docstring).
    True when the fission then went through."""
    sch = ctx.sch
    if not isinstance(refused, IllegalScheduleError):
        return False
    arrays = {v.array for v in refused.violations}
    program = sch.program
    if not arrays or not all(a in program.arrays and program.arrays[a].temporary
                             for a in arrays):
        return False
    names = ", ".join(sorted(arrays))
    knob = ctx.decide(f"{stmt}:expand", [False, True], True,
                      f"fission({loop.name}) is refused only by the temporaries {names}, "
                      "one location that every iteration reuses: one element per "
                      f"iteration of {loop.name} instead")
    if not knob.chosen:
        return False
    start = len(sch.trace)
    try:
        for a in sorted(arrays):
            sch.expand(a, loop)
        sch.fission(loop)
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - start)
        knob.refuse(exc)
        return False
    return True


def chained_temporaries(sch, stmts) -> list[str]:
    """The temporaries that statements ``stmts`` (a loop's body) both write
    and read: values carried from one iteration to the next (deriche's
    ``ym1``, ``ym2``, ``xm1`` along a row). Expanded over the loop outside,
    they let that loop be distributed from their initialisation and the
    rows run independently.

    >>> import polyop
    >>> @polyop.kernel
    ... def smooth(w: int, h: int, x: "f64[w, h]", y: "f64[w, h]"):
    ...     for i in range(w):
    ...         m = 0.0
    ...         for j in range(h):
    ...             y[i, j] = x[i, j] + 0.5 * m
    ...             m = y[i, j]
    >>> sch = polyop.Schedule(smooth)
    >>> chained_temporaries(sch, ["S1", "S2"])
    ['m']
    """
    program = sch.program
    written = {w.array for s in stmts for w in program.statement(s).writes}
    read = {r.array for s in stmts for r in program.statement(s).reads}
    return sorted(a for a in written & read if program.arrays[a].temporary)


def keep_if_rows_freed(ctx, stmt: str, fission, start: int, band) -> bool:
    """After the knob ``fission`` distributed (with ``expand_for_fission``,
    from trace entry ``start``) a nest whose inner loop carries a chain
    through temporaries, ``band`` the statement's band now: keep it when the
    legality check finds the row loop ``band[0]`` parallel, recording it in
    ``ctx.rows_freed`` for the statements of the band (isl's flags, computed
    before the expansion, do not know); otherwise take everything back,
    expansions included, and say so on the knobs. True when kept."""
    sch = ctx.sch
    rows = band[0].name
    if parallel_legal(sch, band[0]):
        for t in enclosed_statements(sch)[band[-1].id]:
            ctx.rows_freed[t] = rows
        return True
    sch.undo(len(sch.trace) - start)
    fission.applied = False
    fission.why += f" (taken back: {rows} still carries a dependence)"
    for k in ctx.knobs:
        if k.name == f"{stmt}:expand" and k.applied:
            k.applied = False
            k.why += " (taken back with the fission)"
    return False

