"""The decisions of ``auto_schedule``, nest by nest, as named knobs.

For each statement nest (deepest statements first) the heuristic decides, in
this order, and applies each decision with the public ``polyop.Schedule``
primitives (every one legality-checked; a refused one is recorded and the
nest keeps what it had):

1. ``fission``: distribute the loops above an imperfect nest so that the
   statement's loops form one perfect band (tiling and reordering need one);
   ``expand``: where only a temporary's one location keeps a loop from being
   distributed, one element of it per iteration (``polyop.autoschedule.expansion``);
   ``distribute``: on several cores, the loops a statement shares with others
   when none of them may run in parallel (``polyop.autoschedule.outer``);
2. ``skew`` (a band isl cannot tile as written, one statement): isl's
   skewed permutable band (time tiling of a stencil), applied with ``skew``
   when tiling it would pay;
3. ``order``: the loop order of the band: the permutation of least modelled
   time (``polyop.autoschedule.model``: a roofline of cache traffic and one
   statement instance per cycle, vector lanes at a time where the innermost
   loop is coincident and unit-stride, one per add latency where it carries
   a dependence), ties to the most unit-stride
   accesses in the innermost loop, then to the kernel's order; in a band
   isl did not find permutable, the orders are tried from the least
   modelled time until the legality check accepts one;
4. ``tiles``: tile sizes minimising the traffic under half the L2 cache, kept
   only when the model says tiling saves at least ``TILE_GAIN``× the time
   and isl's scheduler found the band permutable (tiling is then legal);
   otherwise the kernel's loops stay untiled: the default schedule's choice.
   With more than one core, the parallel tile loop's tiles are resized so
   that the cores get even shares (``polyop.autoschedule.strips.even_tiles``);
   ``parallel_strip_middle``: a band whose outer loop carries a dependence
   around a free loop gets that loop's strips outermost, so that it forks
   once, not once per outer iteration (``polyop.autoschedule.strips``);
5. ``transpose``: a band whose vector loop reads a read-only matrix down
   its columns (syrk's ``A[j, k]`` in ``j``) reads a transposed copy of it,
   made ahead of the band, when the band reads each element often enough
   (``polyop.autoschedule.layouts``); ``register_tile``: an accumulation
   over a loop its write does not move (gemm's ``C[i, j]`` over ``k``), in
   a rectangular permutable band whose innermost loop is vectorised, gets a
   tile of rows × vectors of columns held in vector registers across that
   loop, also on a CPU of step 6's exception
   (``polyop.autoschedule.registers``);
6. ``vectorize``: the innermost loop, when isl finds it coincident (in a
   band isl did not find permutable: the legality check) and its accesses
   are unit-stride; but an untiled band on a CPU that runs 512-bit
   operations in halves (Zen 4) is left to LLVM's vectorizer, which is
   asked for 256-bit vectors there (``Target.autovec_bits``): on Zen 4 at
   MEDIUM, 1 thread, jacobi-2d 4.14 -> 3.65 ms, gramschmidt 1.77 -> 1.68,
   covariance 1.17 -> 1.11, trmm 0.41 -> 0.38, no kernel slower;
   ``jam``: where the innermost loop carries independent rows' sums,
   several rows summed side by side (``polyop.autoschedule.jam``);
   ``wavefront`` (before it): where the innermost loop carries a chain and
   no loop of the untiled band is parallel (seidel-2d), the two inner loops
   skewed into wavefronts of independent instances
   (``polyop.autoschedule.wavefront``);
7. ``parallel``: the outermost loop of the band that carries no dependence
   (isl: coincident), when the target has more than one core; when isl
   flags none (its flags speak of its fused, shifted schedule), the band's
   outermost loop if the legality check allows it in the kernel's order;
8. ``unroll``: a factor for the innermost loop (default none: a vector
   loop's iterations are independent and overlap on the core unrolled or
   not; LLVM is told not to unroll it, ``polyop.codegen.llvm``).

Every decision is a ``Knob`` (name ``"<statement>:<decision>"``, candidate
values, the chosen one, why) so a tuner can re-run with others.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import ScheduleError
from .expansion import chained_temporaries, expand_for_fission, keep_if_rows_freed
from .jam import accumulates_over, distribute_for_jam, jam, jammable
from .knobs import Context
from .layouts import transposable, transpose_operands
from .model import BandModel, Group, access_groups, band_extents
from .outer import distribute_for_cores, enclosed_statements, parallel_legal, parallelise_outer
from .registers import register_tile
from .skew import skew_band
from .strips import even_tiles, strip_inner, strip_middle
from .timetile import time_tile
from .wavefront import wavefront

#: tiling must cut the modelled traffic by at least this factor
TILE_GAIN = 1.5


def schedule_nests(ctx: Context) -> None:
    """Apply the heuristic to every nest of ``ctx.sch`` (see the module docstring)."""
    program = ctx.sch.program
    depth = {s.name: len(s.iterators) for s in program.statements}
    done: set[str] = time_tile(ctx)  # a stencil's statements, time-tiled together
    for stmt in sorted(depth, key=lambda s: (-depth[s], _order(s))):
        if depth[stmt] < 1 or stmt in done or stmt in ctx.placed:
            continue
        band, members = _nest(ctx, stmt)
        done |= members
        if band:
            _schedule_band(ctx, stmt, band, members)
    knob = ctx.decide("outer_parallel", [False, True], ctx.target.cores > 1,
                      "statements left without a parallel loop get the outermost loop "
                      "the legality check finds parallel (a loop above their band, or "
                      "one isl's fused schedule does not show as coincident)"
                      if ctx.target.cores > 1 else "the target has one core")
    if knob.chosen:
        made = parallelise_outer(ctx.sch, ctx.serial)
        knob.why += f": {', '.join(made) or 'none found'}"


def _order(name: str) -> tuple:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def _perfect_suffix(sch, loops) -> list:
    inside = enclosed_statements(sch)
    inner = inside[loops[-1].id]
    k = len(loops) - 1
    while k > 0 and inside[loops[k - 1].id] == inner:
        k -= 1
    return loops[k:]


def _nest(ctx: Context, stmt: str):
    """The perfect band around ``stmt`` (after fission where chosen) and the
    statements in its body."""
    sch = ctx.sch
    distribute_for_cores(ctx, stmt)
    distribute_for_jam(ctx, stmt)
    loops = sch.get_loops(stmt)
    if not loops:
        return [], {stmt}
    band = _perfect_suffix(sch, loops)
    if len(band) < len(loops) and len(loops) >= 2:
        body = enclosed_statements(sch)[loops[1].id]
        sums = len(loops) == 2 and accumulates_over(sch, body, loops[1].name, loops[0].name)
        chained = chained_temporaries(sch, body) if len(loops) == 2 else []
        wanted = len(loops) >= 3 or sums or bool(chained)
        knob = ctx.decide(f"{stmt}:fission", [False, True], wanted,
                          "distribute the loops above the nest so that its "
                          f"{len(loops)} loops form one perfect, tileable band" +
                          (f" (rows summed over {loops[1].name}: a jam)" if sums else "") +
                          (f" (a chain through {', '.join(chained)} along {loops[1].name}: "
                           f"expanded over {loops[0].name}, its rows are independent)"
                           if chained and not sums else "")
                          if wanted else "a nest of fewer than 3 loops gains too little "
                          "from a longer band to split its loops")
        if knob.chosen:
            start = len(sch.trace)
            for lp in loops[:len(loops) - len(band)][::-1]:
                try:
                    sch.fission(lp)
                except ScheduleError as exc:
                    if expand_for_fission(ctx, stmt, lp, exc):
                        continue
                    knob.applied = False
                    knob.why += f" (fission({lp.name}) refused: {str(exc).splitlines()[0]})"
                    break
            loops = sch.get_loops(stmt)
            band = _perfect_suffix(sch, loops)
            # a chain's rows must now be independent, else nothing is gained
            if chained and not sums and len(sch.trace) > start and \
                    not keep_if_rows_freed(ctx, stmt, knob, start, band):
                band = _perfect_suffix(sch, sch.get_loops(stmt))
    members = enclosed_statements(sch)[band[-1].id]
    return band, members


def _positions(sch, stmts, band) -> dict[str, list[int]]:
    """For each statement of the band, the iterator index of each band loop
    (its depth among the statement's loops: the heuristic reorders a band only
    after fission, which keeps depths)."""
    out = {}
    for s in stmts:
        ids = [lp.id for lp in sch.get_loops(s)]
        out[s] = [ids.index(lp.id) for lp in band]
    return out


def _unit_stride(groups: list[Group], k: int) -> tuple[int, int]:
    """(unit-stride groups, groups varying) along band loop ``k``; unit stride
    is +1 along the contiguous dimension (a reversed access needs shuffles)."""
    unit = vary = 0
    for g in groups:
        if not g.depends(k):
            continue
        vary += 1
        last = g.coeffs[-1][k] if g.coeffs else 0
        if last == 1 and all(row[k] == 0 for row in g.coeffs[:-1]):
            unit += 1
    return unit, vary


def _vector_friendly(unit: int, vary: int) -> bool:
    """Whether explicit vector code pays: every access that moves with the loop
    is unit-stride. Loops with strided or reversed accesses are left to LLVM's
    own vectorizer, as in the default schedule (its cost model weighs gathers
    and shuffles; measured, forcing them was slower)."""
    return vary > 0 and unit == vary


def _permutable(ctx: Context, stmts, pos) -> bool:
    """Whether isl put every band loop, unskewed, in one permutable band, for
    every statement of the band (then any order and tiling are legal)."""
    for s in stmts:
        members = ctx.isl.get(s, [])
        bands = set()
        for p in pos[s]:
            m = next((m for m in members if m.iterator() == p and m.coeffs[p] == 1), None)
            if m is None or not m.permutable:
                return False
            bands.add(m.band)
        if len(bands) != 1:
            return False
    return True


def _schedule_band(ctx: Context, lead: str, band, stmts) -> None:
    sch, program, target = ctx.sch, ctx.sch.program, ctx.target
    stmts = sorted(stmts, key=_order)
    pos = _positions(sch, stmts, band)
    names = [lp.name for lp in band]
    extents = band_extents(program, stmts, pos, ctx.sizes)
    groups = access_groups(program, stmts, pos)
    if not groups:
        return
    dtype = max((program.arrays[g.array].dtype for g in groups),
                key=lambda d: np.dtype(d.numpy).itemsize)
    lanes = target.lanes(dtype.numpy)
    # the untiled nest keeps what fits in the whole L2 (LRU keeps data touched
    # every iteration); a tile gets half of it, the rest for the data streaming past
    cache, capacity = target.l2, target.l2 // 2
    permutable = _permutable(ctx, stmts, pos)
    d = len(band)
    if not permutable and d >= 2 and len(stmts) == 1:
        skewed = skew_band(ctx, stmts[0], pos[stmts[0]], band, names, extents, groups,
                           cache, capacity, lanes, TILE_GAIN)
        if skewed is not None:
            extents, groups = skewed
            permutable = True

    # -- loop order -------------------------------------------------------------------
    # a band isl did not find permutable may still be reordered where the
    # legality check allows it (lu's ``j, k`` update: k innermost reads a
    # column, j innermost a row); tiling it stays off
    perms = list(itertools.permutations(range(d))) if 1 < d <= (4 if permutable else 3) \
        else [tuple(range(d))]
    coincident = _coincident(ctx, stmts, pos, band)
    if any(ctx.rows_freed.get(s) == band[0].name for s in stmts):
        coincident.add(band[0].name)  # checked parallel by _nest
    scored = []
    for perm in perms:
        g2 = [Group(g.array, tuple(tuple(r[p] for p in perm) for r in g.coeffs), g.spread,
                    g.elem) for g in groups]
        model = BandModel.build([names[p] for p in perm], [extents[p] for p in perm], g2,
                                len(stmts))
        unit, vary = _unit_stride(g2, d - 1)
        carried = names[perm[-1]] not in coincident
        vec = not carried and _vector_friendly(unit, vary)
        if not carried and not vec and len(stmts) == 1 and lanes > 1:
            # a transposed copy will make the vector loop's reads contiguous (step 5)
            found = transposable(ctx, lead, names[perm[-1]], int(np.prod(extents)))
            vec = found is not None and found[1]
        # independent rows' sums side by side (step 6's jam) are not held to the add latency
        jammed = carried and d >= 2 and names[perm[-2]] in coincident and \
            jammable(ctx, stmts, names[perm[-1]], names[perm[-2]])
        cost = model.cycles(model.untiled(cache), lanes if vec else 1, carried and not jammed)
        scored.append(((round(cost, 3), -unit, perm != tuple(range(d))), perm, model))
    scored.sort(key=lambda x: x[0])
    cand_orders = [tuple(names[p] for p in perm) for _, perm, _ in scored]
    best = scored[0]
    why = (f"least modelled untiled time {best[0][0]:.4g} cycles (kernel's order: "
           f"{next(s[0][0] for s in scored if s[1] == tuple(range(d))):.4g}; roofline of "
           "the traffic Q below and one instance per cycle, vectorized where the innermost "
           "loop is coincident and unit-stride)"
           if len(scored) > 1 else "a single loop or too many: the kernel's order")
    if len(scored) > 1 and not permutable:
        why += ("; isl found no permutable band: the legality check decides, orders "
                "tried from the least modelled time")
    knob = ctx.decide(f"{lead}:order", cand_orders, cand_orders[0], why)
    start = cand_orders.index(knob.chosen)
    chosen = scored[start][1]
    # the caller's order alone; the model's, then (band not permutable) the
    # next ones until the legality check accepts one
    tries = [chosen] if knob.why == "set by the caller" or permutable else \
        [p for (_, p, _) in scored[start:]]
    perm = tuple(range(d))
    for p in tries:
        if p == tuple(range(d)):
            break
        try:
            sch.reorder(*[band[q] for q in p])
            perm = p
            break
        except ScheduleError as exc:
            knob.why += f" ({', '.join(names[q] for q in p)} refused: " \
                        f"{str(exc).splitlines()[0][:100]})"
    if perm != chosen and len(tries) == 1:
        knob.applied = False  # the caller's order, refused
    elif perm != chosen:
        knob.chosen = tuple(names[q] for q in perm)
    model = next(m for (_, p, m) in scored if p == perm)
    order = [band[p] for p in perm]

    # -- tiling -----------------------------------------------------------------------------
    inner_loops = list(order)
    tile_loops: list = []
    if d >= 2:
        ranked = model.ranked_tiles(capacity, lanes)
        untiled = model.untiled(cache)
        q0, q1 = model.traffic(untiled), model.traffic(ranked[0])
        inner = order[-1].name
        unit, vary = _unit_stride(list(model.groups), d - 1)
        carried = inner.split("_")[0] not in coincident
        vl = lanes if not carried and _vector_friendly(unit, vary) else 1
        c0, c1 = model.cycles(untiled, vl, carried), model.cycles(ranked[0], vl, carried)
        gain = c0 / c1 if c1 else 1.0
        pays = permutable and gain >= TILE_GAIN
        none = tuple(model.extents)
        cands = [none] + [t for t in ranked if t != none]
        why = (f"tiles cut the modelled time {gain:.3g}x ({c0:.4g} -> {c1:.4g} cycles; "
               f"traffic {q0:.4g} -> {q1:.4g} lines), footprint "
               f"{sum(model.group_footprints(ranked[0])) * 64 / 1024:.4g} KiB <= half "
               f"the L2 ({capacity // 1024} KiB)")
        if not permutable:
            why = "isl found no permutable band over these loops: tiling could be illegal"
        elif not pays:
            why = (f"tiling saves only {gain:.3g}x (< {TILE_GAIN}x) of the modelled time "
                   f"(traffic {q0:.4g} -> {q1:.4g} lines: the band is compute-bound or "
                   "already reuses its data)")
        knob = ctx.decide(f"{lead}:tiles", cands, ranked[0] if pays else none, why,
                          model.formula(), accepts=lambda v: _tile_sizes(v, d))
        tiles = knob.chosen
        if tiles != none and knob.why != "set by the caller" and target.cores > 1:
            tiles = knob.chosen = even_tiles(knob, model, order, tiles, coincident,
                                             target.cores, vl, carried)
        if tiles != none:
            outers, inners = [], []
            try:
                for lp, t, n in zip(order, tiles, model.extents):
                    if int(t) < n:
                        o, i = sch.split(lp, int(t))
                        outers.append(o)
                        inners.append(i)
                    else:
                        inners.append(lp)
                if outers:
                    sch.reorder(*outers, *inners)
                tile_loops, inner_loops = outers, inners
            except ScheduleError as exc:
                knob.refuse(exc)
                inner_loops = [lp for lp in sch.get_loops(stmts[0])][-d:]
                tile_loops = []

    # -- parallel strips (polyop.autoschedule.strips) -----------------------------------------
    # only for a band at the outermost level: inside a serial loop the strips
    # fork once per iteration of it (measured 1.3x slower on fdtd-2d at 1 thread)
    if target.cores > 1 and d >= 2 and (tile_loops + inner_loops)[0].depth == 0:
        # isl's flags speak of its own (fused) schedule: for a band it did not
        # find permutable, the legality check says which loops are free here
        # (deriche's column passes: ``i`` carries the recurrence, ``j`` is free),
        # and it judges the strip loop's move outermost too
        free = coincident if permutable else \
            {lp.name.split("_")[0] for lp in tile_loops + inner_loops if parallel_legal(sch, lp)}
        if not any(lp.name.split("_")[0] in free for lp in tile_loops + inner_loops[:-1]):
            # (``free`` already holds the legality check's answer where isl had none)
            if not permutable or not parallel_legal(sch, (tile_loops + inner_loops)[0]):
                inner_loops, tile_loops = strip_inner(ctx, lead, inner_loops, tile_loops,
                                                      free, model, cache, lanes)
        elif permutable:
            inner_loops, tile_loops = strip_middle(ctx, lead, inner_loops, tile_loops,
                                                   coincident, list(model.extents))

    # -- wavefront (polyop.autoschedule.wavefront) ------------------------------------------
    waved = False
    if not tile_loops and d >= 2 and inner_loops[-1].name.split("_")[0] not in coincident:
        waves = wavefront(ctx, lead, stmts, inner_loops, coincident, list(model.extents),
                          len(model.groups))
        waved, inner_loops = waves is not inner_loops, waves

    # -- vectorize --------------------------------------------------------------------------
    unit, vary = _unit_stride([Group(g.array, g.coeffs, g.spread, g.elem)
                               for g in model.groups], d - 1)
    if waved:  # its instances read rows at different columns: left to LLVM
        unit, vary = 0, len(model.groups)
    innermost = inner_loops[-1]
    carried = innermost.name.split("_")[0] not in coincident and not waved
    if carried and not permutable:  # isl's flags speak of its own schedule, not this order
        carried = not parallel_legal(sch, innermost)
    if lanes > 1 and not carried and not waved and len(stmts) == 1 and \
            not _vector_friendly(unit, vary) and \
            transpose_operands(ctx, lead, innermost.name.split("_")[0], int(np.prod(extents)),
                               lanes):
        unit = vary  # the columns read now contiguous (polyop.autoschedule.layouts)
    want = _vector_friendly(unit, vary) and lanes > 1 and not carried
    registers = None  # an accumulation's tile in registers (polyop.autoschedule.registers)
    if want and permutable and len(stmts) == 1 and len(inner_loops) >= 3:
        sizes = tiles if tile_loops else model.extents
        point = {lp.name.split("_")[0]: min(int(t), int(n))
                 for lp, t, n in zip(order, sizes, model.extents)}
        cut = {lp.name.split("_")[0] for lp, t, n in zip(order, sizes, model.extents)
               if t < n}  # untiled, sizes are the extents: none
        registers = register_tile(ctx, lead, inner_loops, coincident, lanes, point, cut)
        if registers is not None:
            inner_loops, innermost = registers, registers[-1]
    # an untiled band where 512-bit operations run in halves: LLVM's own
    # vectorizer, asked for 256 bits there, does the same loop faster (6.)
    plain = want and not tile_loops and registers is None and \
        target.autovec_bits < target.vector_bits
    knob = ctx.decide(f"{lead}:vectorize", [False, True], want and not plain,
                      f"{unit} of {vary} access groups varying in {innermost.name} are "
                      f"unit-stride ({lanes} lanes of {dtype})" +
                      ("; isl: the loop carries a dependence" if carried else "") +
                      (f"; untiled on a CPU that splits {target.vector_bits}-bit operations: "
                       f"left to LLVM's vectorizer at {target.autovec_bits} bits" if plain
                       else ""))
    if knob.chosen:
        try:
            sch.vectorize(innermost)
        except ScheduleError as exc:
            knob.refuse(exc)

    if carried and not tile_loops and registers is None and d >= 2:  # rows' sums side by side
        inner_loops = jam(ctx, lead, stmts, inner_loops, int(model.extents[-2]))

    # -- parallel ---------------------------------------------------------------------------
    outer = tile_loops + [lp for lp in inner_loops[:-1]]
    pref = [lp for lp in outer if lp.name.split("_")[0] in coincident] + \
        [lp for lp in outer if lp.name.split("_")[0] not in coincident]
    cands = [None] + [lp.name for lp in pref]
    veto = _serial_neighbour(ctx, stmts, tile_loops + inner_loops, extents) \
        if target.cores > 1 and pref else None
    default = pref[0].name if pref and target.cores > 1 and veto is None and \
        pref[0].name.split("_")[0] in coincident else None
    why = (f"{target.cores} cores; isl: coincident loops {sorted(coincident) or 'none'}"
           if target.cores > 1 else "the target has one core")
    if veto is not None:
        why += f"; kept serial: {veto}"
    elif target.cores > 1 and default is None:
        why += ": no loop of the band is parallel"
    knob = ctx.decide(f"{lead}:parallel", cands, default, why)
    if knob.chosen is None and knob.why == "set by the caller":
        ctx.serial |= set(stmts)
    if knob.chosen is not None:
        # the model's choice falls back to the next loop isl found coincident
        tried = [lp for lp in pref if lp.name == knob.chosen] + \
            ([lp for lp in pref if lp.name != knob.chosen and
              lp.name.split("_")[0] in coincident] if knob.chosen == default else [])
        for lp in tried:
            try:
                sch.parallel(lp)
                knob.chosen = lp.name
                knob.applied = True
                break
            except ScheduleError as exc:
                knob.applied = False
                knob.why += f"; {lp.name}: {str(exc).splitlines()[0][:120]}"
    elif target.cores > 1 and pref and knob.why != "set by the caller" and veto is None:
        # isl's flags speak of its own fused, shifted schedule (fdtd-2d's ey and
        # hz rows inside t: isl shifts hz by one row, so its i carries a
        # dependence); the kernel's own order may still run the rows in parallel
        try:
            sch.parallel(pref[0])
            knob.chosen = pref[0].name
            knob.why += (f"; but the legality check finds {pref[0].name} parallel in the "
                         "kernel's own order (isl's flags speak of its fused schedule)")
        except ScheduleError:
            pass

    # -- unroll -----------------------------------------------------------------------------
    knob = ctx.decide(f"{lead}:unroll", [None, 2, 4, 8], None,
                      "none: the vector loop's iterations are independent and overlap on "
                      "the core without it (and LLVM is told not to unroll that loop)")
    if knob.chosen is not None and len(inner_loops) >= 2:
        try:
            sch.unroll(inner_loops[-2], int(knob.chosen))
        except ScheduleError as exc:
            knob.refuse(exc)


def _serial_neighbour(ctx: Context, stmts, band, extents: list[int]) -> str | None:
    """Why a band (``band``: its loops as they are now, tiled or not) inside a
    serial loop should stay serial, or None.

    A parallel loop inside a serial one spreads what it writes over the
    cores at every step of the serial loop. When a statement beside it in
    that loop stays serial (its own outer loop carries a dependence) and
    touches those arrays with at least a quarter of the band's work, that
    data crosses between the cores at every step, for a few microseconds of
    work a thread (gramschmidt: the row update ``A[i, j] -= Q[i, k] * R[k, j]``
    parallel, the reduction ``R[k, j] += Q[i, k] * A[i, j]`` beside it
    serial: 0.87x on 2 threads at MEDIUM). A stencil's statements inside
    its time loop are all parallel, each thread keeping its rows: no veto."""
    sch, program = ctx.sch, ctx.sch.program
    loops = sch.get_loops(stmts[0])
    ids = [lp.id for lp in loops]
    depth = min(ids.index(lp.id) for lp in band)  # the band's outermost loop, as ordered now
    if depth == 0:
        return None  # not inside a loop
    around = loops[depth - 1]
    written = {a.array for s in stmts for a in program.statement(s).writes}
    read = {a.array for s in stmts for a in program.statement(s).reads}
    work = int(np.prod(extents))
    # the cheap tests first: a legality check is a dependence analysis
    for other in sorted(enclosed_statements(sch)[around.id] - set(stmts), key=_order):
        st = program.statement(other)
        shared = sorted({a.array for a in st.reads + st.writes} & written |
                        {a.array for a in st.writes} & read)
        inner = sch.get_loops(other)
        at = [lp.id for lp in inner].index(around.id)
        below = list(range(at + 1, len(st.iterators)))
        own = int(np.prod(band_extents(program, [other], {other: below}, ctx.sizes))) \
            if below else 1
        if not shared or 4 * own < work:
            continue
        if len(inner) > at + 1 and parallel_legal(sch, inner[at + 1]):
            continue  # it may run in parallel beside the band
        if parallel_legal(sch, around):
            return None  # the loop around may run in parallel itself
        return (f"{other} beside it in {around.name} stays serial and touches "
                f"{', '.join(shared)} ({own} iterations a step against the band's "
                f"{work}): they would cross between the cores at every step")
    return None


def _tile_sizes(v, d: int) -> bool:
    """Whether ``v`` is a tile size per band loop (positive integers; one at
    least the loop's extent leaves that loop untiled)."""
    return isinstance(v, tuple) and len(v) == d and \
        all(isinstance(t, int | np.integer) and not isinstance(t, bool) and t > 0 for t in v)


def _coincident(ctx: Context, stmts, pos, band) -> set[str]:
    """Names of band loops that isl marked coincident for every statement."""
    out = set()
    for b, lp in enumerate(band):
        ok = True
        for s in stmts:
            members = ctx.isl.get(s, [])
            k = next((k for k, m in enumerate(members) if m.iterator() == pos[s][b]), None)
            # a member's flag speaks of isl's order: it holds for the kernel's
            # loops only when every member above it is a plain loop too
            ok = ok and k is not None and members[k].coincident and \
                all(m.iterator() is not None for m in members[:k])
        if ok:
            out.add(lp.name)
    return out
