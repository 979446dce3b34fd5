"""Parallelism the band-by-band heuristic cannot see: the outermost legal loop
of a nest whose statements ended up with no parallel loop, and nests
distributed so that a statement gets one.

``polyop.autoschedule.heuristic`` schedules perfect bands and takes the
parallel loop from isl's coincidence flags, which speak of isl's own (fused,
shifted) schedule. Two cases slip through and leave a nest serial, so a
2-thread run gains nothing on it:

- the parallel loop is *above* the band: a loop that also holds scalar
  statements (deriche's ``for i: ym1 = 0 ... for j: y1[i, j] = ...``), which
  the band (the perfect suffix ``j``) does not contain;
- isl fused statements that the kernel keeps apart and shifted them against
  each other, so in isl's schedule a loop carries a dependence while in the
  kernel's it does not.

This pass takes, for each statement without a parallel loop, its outermost
loop, unless it only encloses innermost (vector-sized) work or a parallel
loop already, and asks ``Schedule.parallel`` (the legality check, on the
kernel's actual schedule) whether it carries a dependence. Deeper loops are
left alone: inside a serial loop a region forks once per iteration of it.
Whether a region is worth its fork is decided at run time
(``polyop.codegen.parallel``'s minimum work).

``distribute_for_cores`` runs before a statement's band is scheduled: when
no loop around it may run in parallel only because it shares them with
other statements (atax's ``tmp[i]`` sum over ``j`` beside ``y[j]``'s sum
over ``i``; bicg's two sums in one ``j`` loop), the shared loops are
distributed (``fission``, legality-checked) and kept when the statement's
own nest then has a parallel loop; ``polyop.autoschedule.strips`` moves
it outermost where it is not.

Example (the i loop holds a scalar reset and a row recurrence along j)::

    >>> import polyop
    >>> @polyop.kernel
    ... def rows(n: int, A: "f64[n, n]", y: "f64[n, n]"):
    ...     for i in range(n):
    ...         s = 0.0
    ...         for j in range(n):
    ...             s = s + A[i, j]
    ...             y[i, j] = s
    >>> sch = polyop.Schedule(rows)
    >>> parallelise_outer(sch)
    ['i']
"""

from __future__ import annotations

from ..errors import ScheduleError
from ..kinds import LoopKind


def parallel_legal(sch, loop) -> bool:
    """Whether the legality check lets ``loop`` run in parallel (tried, then undone)."""
    try:
        sch.parallel(loop)
    except ScheduleError:
        return False
    sch.undo()
    return True


def distribute_for_cores(ctx, stmt: str) -> None:
    """Distribute the loops ``stmt`` shares with other statements, from the
    outermost in, when none of its loops may run in parallel as they are;
    kept (knob ``<stmt>:distribute``) only when then the loop nest of
    ``stmt`` alone, or its outermost loop, has a parallel loop (module
    docstring)."""
    sch = ctx.sch
    loops = sch.get_loops(stmt)
    if ctx.target.cores < 2 or stmt in ctx.serial or len(loops) < 2 or \
            len(enclosed_statements(sch)[loops[0].id]) < 2 or \
            any(parallel_legal(sch, lp) for lp in loops):
        return
    knob = ctx.decide(f"{stmt}:distribute", [False, True], True,
                      f"{ctx.target.cores} cores, and no loop around {stmt} may run in "
                      "parallel beside the statements it shares them with: "
                      "distributed from the outermost loop in")
    if not knob.chosen:
        return
    start = len(sch.trace)
    distribute_shared(sch, stmt, knob)
    loops = sch.get_loops(stmt)
    alone = enclosed_statements(sch)[loops[0].id] == {stmt}
    found = [lp.name for lp in loops if (alone or lp.depth == 0) and parallel_legal(sch, lp)]
    if len(sch.trace) > start and found:
        knob.applied = True
        knob.why += f": {found[0]} may then run in parallel"
    else:
        sch.undo(len(sch.trace) - start)
        knob.applied = False
        knob.why += ": no loop of its nest may run in parallel after it, taken back"


def distribute_shared(sch, stmt: str, knob) -> None:
    """``fission`` of the loops ``stmt`` shares with other statements, from the
    outermost in, until it has a nest of its own or the legality check
    refuses one (recorded on ``knob``; what went through stays)."""
    try:
        while True:
            inside = enclosed_statements(sch)
            shared = [lp for lp in sch.get_loops(stmt) if len(inside[lp.id]) > 1]
            if not shared:
                break
            sch.fission(shared[0])
    except ScheduleError as exc:
        knob.refuse(exc)


def parallelise_outer(sch, serial: set[str] = frozenset()) -> list[str]:
    """Make the outermost legal loop of every statement that has no parallel
    loop parallel (see the module docstring), leaving alone every loop around
    a statement of ``serial``; returns the names of the loops made parallel,
    in order."""
    done: list[str] = []
    tried: set[str] = set()
    for stmt in sch.stmts:
        loops = sch.get_loops(stmt)
        if stmt in serial or not loops or loops[0].id in tried:
            continue
        lp = loops[0]
        tried.add(lp.id)
        kinds, below = sch.loop_info(), enclosed_statements(sch)[lp.id]
        if below & serial or any(kinds[q.id][1] == LoopKind.PARALLEL for s in below
                                 for q in sch.get_loops(s)):
            continue  # kept serial by the caller, or a parallel loop runs inside already
        if all(sch.get_loops(s)[-1].id == lp.id for s in below):
            continue  # only innermost work below: too fine to fork for
        # only the outermost level: a region inside a serial loop forks once per
        # iteration of it, and its outlined body was measured slower at one
        # thread too (fdtd-2d's rows inside ``t``: 1.25x)
        try:
            sch.parallel(lp)
            done.append(lp.name)
        except ScheduleError:
            pass
    return done


def enclosed_statements(sch) -> dict[str, set[str]]:
    """Loop id → the statements it encloses."""
    out: dict[str, set[str]] = {}
    for s in sch.stmts:
        for lp in sch.get_loops(s):
            out.setdefault(lp.id, set()).add(s)
    return out
