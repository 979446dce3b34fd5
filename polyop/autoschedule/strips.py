"""Parallel strips: one parallel region around a band whose parallel loop is
not its outermost loop.

``polyop.autoschedule.heuristic`` orders a band's loops for one thread's
cache traffic, and that order may put a loop that carries a dependence
outside the only loops that do not (covariance's ``k, i, j``: ``k`` carries
the sum, ``i`` and ``j`` are free). Making ``i`` parallel there forks a team
once per iteration of ``k``: 260 regions a call at MEDIUM, each a few
microseconds of work, so the fork and the wait for the slower thread eat most
of the second thread's gain. When the band is permutable, the free loop can
be strip-mined and its strip loop moved outermost instead
(``i_outer, k, i_inner, j``): one region a call, and each thread keeps its
strip of the result in cache across the whole ``k`` loop.

- ``strip_middle``: a free loop between a serial outer loop and the innermost
  loop (on by default: the strip keeps the vector loop and its unit-stride
  accesses; measured on covariance, correlation and syr2k it is no slower at
  one thread);
- ``strip_inner``: only the innermost loop is free (trmm's ``i, k, j``, mvt's
  second nest ``j, i``): its strips, the band's only parallel loop. Each
  strip re-reads what the whole rows shared, but a schedule for several
  cores runs on several. When the loop's bounds involve no other loop, its
  iterations do the same work and there is one strip a core; and a strip
  that the statement accumulates into across the loops inside the strip
  loop is kept in registers there (``_accumulate``). Zen 4, MEDIUM, 21
  interleaved rounds, 2 threads against the 1-core schedule at 1 thread:
  trmm 1.44x with two strips of 64 a core, 1.88x with one of 120 kept in
  registers (and then 0.361 ms at one thread, against 0.379 for the 1-core
  schedule); gemver 1.66 -> 1.76x, mvt 1.81 -> 1.86x with one strip a core.
  When the band's outermost loop is legal in parallel in the kernel's own
  order (isl's flags speak of its fused schedule), the heuristic makes that
  loop parallel instead. For a band isl did not find permutable, the
  legality check says which loops are free, and judges the strip loop's
  move outermost (deriche's column passes, ``i`` carrying the recurrence
  down each column, ``j`` free: Zen 4, MEDIUM, 2 threads, against the same
  schedule without these strips in one process, 31-41 interleaved rounds:
  8-15 % less time in three of four runs, level in the fourth).

Strips of a row walk: where the band is two loops, a serial one walking
the rows and the strip (deriche's column filters, ``i, j_inner``; the
column sums of atax, bicg, mvt, gemver, correlation's and covariance's
means), each element is read once and a wide strip buys no reuse; its
width is then ``ROW_WALK_LINES`` cache lines (at least 4 vectors), a dozen
or more strips dealt round-robin that the pool evens out, instead of one a
core. Measured on Zen 4 (one process, 25 interleaved rounds, inputs
refilled by the calling thread before each call): deriche's forward column
filter alone at 720 × 480 took 139 µs at 1 thread and 162 at 2 in strips of
240 (the threads' CPU time 66 + 153 µs, against 127 for one thread), 85
and 64 in strips of 32 (73 against 54 + 52); a column sum ``y[j] +=
A[i, j] * x[i]`` at 720 × 480, 2 threads, 137 µs in strips of 240 (the
worker's CPU 132 µs, the caller's 19), 67 in strips of 32. The
cause of the wide strips' cost is not measured (the VM has no hardware
counters). PolyBench at MEDIUM, 2 threads against the 1-core schedule at 1
thread, two runs of 21 rounds, strips of 240/208/200/120 → 32: deriche
1.28/1.03 → 1.70/1.44×, atax 1.52/1.28 → 1.70/1.64×, bicg 1.33/1.30 →
1.61/1.36×, correlation 1.77/1.60 → 1.80/1.71×, mvt 1.70/1.56 →
1.76/1.52×, gemver 1.57/1.46 → 1.59/1.43×, covariance 1.80/1.63 →
1.75/1.61×. Bands of more loops (trmm's ``i, k, j_inner``: each strip
re-read down ``k`` for every ``i``) keep one strip a core, unless the
statement accumulates its strip across the loops inside it: then the strip
is ``ACCUMULATOR_VECTORS`` vectors wide, a one-row micro-tile held in
registers (``_accumulate``) whose column block of the rows it reads stays in
L1 (trmm at MEDIUM: 16 doubles × 200 rows, 25 KiB), many strips dealt to the
cores. Zen 5, MEDIUM, one process, 41 interleaved rounds, against the 1-core
schedule at 1 thread (318 µs): strips of 120 (one a core, 15 vectors in
registers) 0.85× at 1 thread and 1.63× at 2, of 40 0.91/1.74×, of 24
1.02/1.91×, of 16 1.08/1.95×; in the PolyBench benchmark (2 threads against
the 1-core schedule) trmm went from 1.18× to 2.26×, no other kernel's
schedule changed. The model above ranks the wide strip first (it counts
``A``'s column re-read once a strip), so this width is a measured rule, not
the model's; Zen 4 and AVX2 machines have not measured it.

Strip counts of ``strip_middle``: ``STRIPS_PER_CORE`` strips a core, so
that the pool's work-sharing (``polyop.codegen.threadpool``: chunks dealt
round-robin, the leftovers taken by whichever thread is free) can even out
triangular bands,
whose strips differ in work. Modelled, 2 threads on 8 strips of a triangle
finish 1.78x (rows growing, syr2k) to 1.94x (rows shrinking, covariance)
faster than one; 16 strips would give 1.88-1.98x but cost ~3 % at one thread
(covariance, syr2k, correlation at MEDIUM: each strip re-reads the samples).

Example (a covariance-like update: ``k`` carries the sum over samples)::

    >>> import polyop
    >>> @polyop.kernel
    ... def cov(n: int, m: int, d: "f64[n, m]", c: "f64[m, m]"):
    ...     for k in range(n):
    ...         for i in range(m):
    ...             for j in range(m):
    ...                 c[i, j] += d[k, i] * d[k, j]
    >>> sch = polyop.auto_schedule(cov, "cpu -mcpu=znver3 -num-cores=2", sizes={"n": 260, "m": 240})
    >>> [str(k.chosen) for k in sch.explanation.knobs if k.name == "S0:parallel_strip_middle"]
    ['30']
    >>> "i_outer" in str(polyop.lower(sch)).split("for (k")[0]
    True
"""

from __future__ import annotations

from typing import Any

import islpy as isl

from .. import ir
from ..errors import ScheduleError

#: strips per core of a loop moved outermost to be the parallel loop
STRIPS_PER_CORE = 4

#: the width, in cache lines, of ``strip_inner``'s strips of a two-loop band
#: (a serial loop walking the rows, the strip): see the module docstring
ROW_WALK_LINES = 4
#: the width, in vectors, of a strip kept in registers (module docstring)
ACCUMULATOR_VECTORS = 2


def _base(name: str) -> str:
    return name.split("_")[0]


def _moved_by(access) -> set[str]:
    """The variables (iterators, sizes) an access's subscripts use: the loops
    that move it are among them."""
    return {v.name for x in access.index for v in ir.walk(x) if isinstance(v, ir.Var)}


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def strip_middle(ctx, lead: str, inner_loops: list, tile_loops: list, coincident: set[str],
                 extents: list[int]) -> tuple[list, list]:
    """When the outermost loop of an untiled, permutable band carries a
    dependence and a loop between it and the innermost does not, strip-mine
    that loop into ``STRIPS_PER_CORE * cores`` strips and move the strip loop
    outermost (see the module docstring). ``extents`` are the trip counts of
    ``inner_loops`` the model assumed. Returns the band's new (inner loops,
    tile loops): the strip loop is the first tile loop."""
    if tile_loops or len(inner_loops) < 3 or _base(inner_loops[0].name) in coincident:
        return inner_loops, tile_loops
    q = next((k for k in range(1, len(inner_loops) - 1)
              if _base(inner_loops[k].name) in coincident), None)
    if q is None:
        return inner_loops, tile_loops
    target, extent = inner_loops[q], int(extents[q])
    strips = STRIPS_PER_CORE * ctx.target.cores
    width = -(-extent // strips)
    able = extent >= 2 * ctx.target.cores and width < extent
    outer = ", ".join(lp.name for lp in inner_loops[:q])
    knob = ctx.decide(
        f"{lead}:parallel_strip_middle", [None, width] if able else [None],
        width if able else None,
        f"{target.name} is parallel but {outer} outside it is not: a region inside "
        f"would fork once per iteration of {outer}; {strips} strips of {width} iterations "
        f"of {target.name} ({extent}) as the outermost, parallel loop fork once a call"
        if able else f"{target.name} ({extent} iterations) is too short to strip",
        accepts=_int)
    if knob.chosen is None:
        return inner_loops, tile_loops
    try:
        o, r = ctx.sch.split(target, int(knob.chosen))
    except ScheduleError as exc:
        knob.refuse(exc)
        return inner_loops, tile_loops
    rest = inner_loops[:q] + [r] + inner_loops[q + 1:]
    try:
        ctx.sch.reorder(o, *rest)
    except ScheduleError as exc:
        ctx.sch.undo()  # the split alone would only cost: back to the unsplit loop
        knob.refuse(exc)
        return inner_loops, tile_loops
    return rest, [o]


def strip_inner(ctx, lead: str, inner_loops: list, tile_loops: list, coincident: set[str],
                model, cache: int, lanes: int) -> tuple[list, list]:
    """When only the innermost loop of a band is parallel (``coincident``:
    isl's flags, or the legality check's for a band isl did not find
    permutable; trmm's
    ``i, k, j``: ``i`` and ``k`` carry the update's dependences, every column
    ``j`` is independent; mvt's ``j, i``: ``j`` carries the sum), split it
    into strips and move the strip loop outermost, so one parallel region
    covers the whole band instead of none (the knob
    ``<lead>:parallel_strip``, on by default: see the module docstring for
    what the strips cost at one thread and gain at two). In a band of two
    loops (a row walk), strips ``ROW_WALK_LINES`` cache lines wide; else one
    strip a core when every iteration of the loop has the same work (its
    bounds involve no other loop: ``_equal_work``), two a core otherwise,
    for the pool to even out; the width rounded up to whole vectors and
    whole cache lines (no line of a row starting on one is written by two
    threads). The explanation gives the band ``model``'s traffic of the
    strips (each an untiled band of its own, in a ``cache`` of that many
    bytes) against the untiled band's.
    A strip is then accumulated in registers where it can be
    (``_accumulate``). Returns the band's new (inner loops, tile loops)."""
    from .model import LINE, BandModel

    sch, cores = ctx.sch, ctx.target.cores
    inner, extent = inner_loops[-1], int(model.extents[-1])
    equal = _equal_work(sch, lead, _base(inner.name))
    strip = -(-extent // (cores if equal else 2 * cores))
    # whole vectors, and whole cache lines of the narrowest elements: where a
    # row starts on a line, no line of it is written by two threads
    elem = min(g.elem for g in model.groups)
    unit = max(lanes, LINE // elem)

    def whole(width: int) -> int:
        return -(-width // unit) * unit

    wide = strip = whole(strip)
    share = ("one a core (its iterations do the same work)" if equal else
             "two a core (for the pool to even out)")
    able = _base(inner.name) in coincident and strip < extent and strip >= 4 * lanes
    # a strip walked down its rows by one serial loop reads each element once:
    # a narrow one costs no reuse there, and many even out the threads
    # (module docstring)
    narrow = whole(max(4 * lanes, ROW_WALK_LINES * LINE // elem))
    if not tile_loops and len(inner_loops) == 2 and narrow < strip:
        strip = narrow
        share = (f"{ROW_WALK_LINES} cache lines wide (each row of a strip is read once, "
                 f"down {inner_loops[0].name}: many strips for the pool to even out)")
    # a strip accumulated in registers across the loops inside it (trmm's
    # B[i, strip] over k) is a micro-tile of one row: ACCUMULATOR_VECTORS
    # vectors wide, many strips dealt to the cores (module docstring)
    acc = whole(ACCUMULATOR_VECTORS * lanes)
    if able and equal and len(inner_loops) > 2 and acc < strip and \
            -(-extent // acc) >= cores and \
            _accumulator_at(ctx, lead, inner_loops[:-1], acc, lanes) is not None:
        strip = acc
        share = (f"{ACCUMULATOR_VECTORS} vectors wide, kept in registers across the loops "
                 "inside it (a one-row micro-tile; many strips dealt to the cores)")
    why = ("a loop outside the innermost is parallel, or the innermost is not (or too "
           "short to strip)")
    if able:
        q0 = model.untiled_traffic(cache)
        one = BandModel.build(model.loops, [*model.extents[:-1], strip], model.groups,
                              model.statements)
        q1 = -(-extent // strip) * one.untiled_traffic(cache)
        why = (f"no loop outside {inner.name} is parallel; {-(-extent // strip)} strips of "
               f"{strip} iterations of {inner.name} ({extent}), {share}"
               f", as the outermost, parallel loop would fork once; modelled traffic "
               f"{q1:.4g} lines against {q0:.4g} untiled ({q1 / q0 if q0 else 1:.3g}x); they "
               "cost up to 1.7x at one thread (trmm) but make the band parallel on these "
               "cores")
    # the other widths for a tuner to try (the default, the wide strip and its
    # halves in whole lines down to 4 vectors): which width a band runs
    # fastest at is a matter of measurement
    candidates = [None]
    if able:
        widths, width = [strip, wide], wide // 2
        while width > 4 * lanes:
            widths.append(whole(width))
            width //= 2
        if len(inner_loops) > 2:  # the micro-tile widths, where a strip can accumulate
            widths += [acc, whole(3 * lanes)]
        candidates += dict.fromkeys([*widths, whole(4 * lanes)])
    knob = ctx.decide(f"{lead}:parallel_strip", candidates, strip if able else None, why,
                      accepts=_int)
    if knob.chosen is None:
        return inner_loops, tile_loops
    try:
        outer, rest = sch.split(inner, int(knob.chosen))
    except ScheduleError as exc:
        knob.refuse(exc)
        return inner_loops, tile_loops
    try:
        sch.reorder(outer, *tile_loops, *inner_loops[:-1], rest)
    except ScheduleError as exc:
        sch.undo()  # the split alone would only cost: back to the unsplit loop
        knob.refuse(exc)
        return inner_loops, tile_loops
    _accumulate(ctx, lead, inner_loops[:-1], int(knob.chosen), lanes)
    return inner_loops[:-1] + [rest], [outer] + tile_loops


def _accumulator_at(ctx, lead: str, outer_loops: list, strip: int, lanes: int):
    """The loop of ``outer_loops`` (the loops inside the strip loop, outside
    the strip) inside which the statement's one write does not move, so that
    its strip can be kept in registers there; ``None`` when there is none, or
    the strip is not whole vectors that fit half the vector registers."""
    stmt = ctx.sch.program.statement(lead)
    loops = [_base(lp.name) for lp in outer_loops]
    if len(stmt.writes) != 1 or strip % lanes or \
            strip // lanes > ctx.target.vector_registers // 2:
        return None
    moving = _moved_by(stmt.writes[0])
    for depth in range(len(loops) - 1, -1, -1):  # the loops the write does not move
        if loops[depth] not in stmt.iterators:
            return None
        if loops[depth] in moving:
            return outer_loops[depth] if depth < len(loops) - 1 else None
    return None


def _equal_work(sch, stmt: str, iterator: str) -> bool:
    """Whether the domain of ``stmt`` bounds ``iterator`` by constants and
    sizes alone: then every iteration of its loop runs the same instances of
    the loops around and inside it (trmm's ``j``, beside the triangle of ``i``
    and ``k``). A bound or a guard that also involves another iterator, or an
    existential variable (a stride, a modulo), says no."""
    statement = sch.program.statement(stmt)
    domain, names = statement.domain, list(statement.iterators)
    if iterator not in names:
        return False
    pos = names.index(iterator)
    for part in domain.get_basic_sets():
        for c in part.get_constraints():
            if c.get_coefficient_val(isl.dim_type.set, pos).is_zero():
                continue
            others = [(isl.dim_type.set, d) for d in range(len(names)) if d != pos] + \
                [(isl.dim_type.div, d) for d in range(part.dim(isl.dim_type.div))]
            if any(not c.get_coefficient_val(kind, d).is_zero() for kind, d in others):
                return False
    return True


def _accumulate(ctx, lead: str, outer_loops: list, strip: int, lanes: int) -> None:
    """Keep the strip a statement accumulates into in registers across the
    loops that do not move it (the knob ``<lead>:strip_accumulator``): trmm's
    ``B[i, strip]`` gathers ``A[k, i] * B[k, strip]`` over every ``k``, and
    without help LLVM loads and stores it at each ``k`` (it cannot tell the
    row ``i`` written from the rows ``k`` read). ``cache_write(B,
    scope="local", at=i)`` promotes the written strip alone
    (``polyop.promotion``: its written group) into a buffer that LLVM keeps in
    vector registers, loaded once before ``k`` and stored once after. Taken
    when the statement has one write, the write does not
    depend on the innermost of ``outer_loops`` (the loops inside the strip
    loop, outside the strip), and the strip fits half the target's vector
    registers; trmm at MEDIUM on Zen 4, 2 threads: 0.231 -> 0.212 ms (one
    strip a core)."""
    sch = ctx.sch
    stmt = sch.program.statement(lead)
    registers = strip // lanes if strip % lanes == 0 else None
    at = _accumulator_at(ctx, lead, outer_loops, strip, lanes)
    array = stmt.writes[0].array if stmt.writes else ""
    able = at is not None
    knob = ctx.decide(
        f"{lead}:strip_accumulator", [None, "local"] if able else [None],
        "local" if able else None,
        f"{array}'s strip of {strip} ({registers} vectors) does not move inside "
        f"{at.name if at else '?'}: kept in registers there (cache_write {array}, "
        f"scope 'local')" if able else
        "no strip written in place across an inner loop that fits the registers")
    if knob.chosen is None:
        return
    from ..api import lower  # the promotion is exact or refused at lowering

    try:
        sch.cache_write(array, scope="local", at=at)
        lower(sch, validate=False)  # (the build validates the final schedule's code)
    except ScheduleError as exc:
        if sch.trace and sch.trace[-1].primitive == "cache_write":
            sch.undo()
        knob.refuse(exc)


#: an even tile count may cost at most this much modelled time at one thread
EVEN_COST = 1.05


def split_efficiency(n: int, tile: int, cores: int) -> float:
    """How evenly ``cores`` threads share ``n`` iterations cut into tiles of
    ``tile`` (the last one partial), each tile to the thread with least
    work so far (the pool's work sharing hands out whole tiles): the
    work over ``cores`` times the busiest thread's.

    >>> split_efficiency(200, 64, 2)   # 64, 64 | 64, 8
    0.78125
    >>> split_efficiency(200, 50, 2)
    1.0
    """
    load = [0] * cores
    for lo in range(0, n, tile):
        load[load.index(min(load))] += min(tile, n - lo)
    return n / (cores * max(load))


def even_tiles(knob, model, order: list, tiles: tuple, coincident: set[str], cores: int,
               lanes: int, carried: bool) -> tuple:
    """The model's ``tiles`` with the parallel tile loop's tiles resized so
    that ``cores`` threads get even shares (gemm at MEDIUM on a 256 KiB L2:
    ``i`` tiles of 64 over 200 rows leave 2 threads 128 and 72 rows: tiles of
    50 split them 100/100), when that costs at most ``EVEN_COST``x the
    modelled time; the reason goes into ``knob.why``. ``order`` is the band's
    loops, ``lanes`` and ``carried`` the innermost loop's vector width and
    whether it carries a dependence (for the model's time)."""
    k = next((k for k, (lp, t, n) in enumerate(zip(order, tiles, model.extents))
              if t < n and _base(lp.name) in coincident), None)
    if k is None or cores < 2:
        return tiles
    n, t = int(model.extents[k]), int(tiles[k])
    count = -(-n // t)
    t2 = -(-n // (cores * -(-count // cores)))
    if k == len(tiles) - 1:
        t2 = -(-t2 // lanes) * lanes  # the vector loop: whole vectors
    e0, e1 = split_efficiency(n, t, cores), split_efficiency(n, t2, cores)
    if e1 <= e0 + 0.02:
        return tiles
    new = (*tiles[:k], t2, *tiles[k + 1:])
    c0, c1 = model.cycles(tiles, lanes, carried), model.cycles(new, lanes, carried)
    if c1 > EVEN_COST * c0:
        knob.why += (f"; {order[k].name}'s tiles of {t} split {n} iterations {e0:.2f} evenly "
                     f"over {cores} cores, but tiles of {t2} cost {c1 / c0:.3g}x the "
                     "modelled time: kept")
        return tiles
    knob.why += (f"; {order[k].name}'s tiles {t} -> {t2} so that {cores} cores share its {n} "
                 f"iterations evenly ({e0:.2f} -> {e1:.2f}; modelled time {c1 / c0:.3g}x)")
    return new
