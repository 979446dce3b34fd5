"""GPU mapping for ``auto_schedule`` on ``cuda`` and ``opencl`` targets.

Per statement nest (deepest statements first, as on the CPU) the decisions
are, in order, each a ``Knob`` applied through the legality-checked
``polyop.Schedule`` primitives (a refused one is recorded and undone, so the
schedule stays legal):

1. ``fission``: distribute the loops above an imperfect nest, so that the
   statement's loops form one perfect band (more loops to map, one kernel
   per band);
2. ``bind``: up to two loops the legality check finds parallel. Inside the
   band they move outermost where that is legal, so loops carrying a
   reduction run sequentially inside each thread; where it is not (a
   stencil's time loop) the loops above them stay on the host, one launch
   per iteration. A loop above the band that is parallel is mapped alone.
   Of three or more, the pair keeps the loop of most unit-stride accesses;
   a third is bound too (``blockIdx.z``) when two give fewer than
   ``4 * THREADS`` threads per multiprocessor at the sizes assumed;
3. ``block``: threads per block along each bound loop: the loop whose
   accesses are unit-stride gets ``threadIdx.x`` (coalescing) and a multiple
   of the warp size; the product stays within the target's threads per
   block. Each bound loop is split by its block size, the strips bound to
   ``blockIdx`` and the iterations in a strip to ``threadIdx``;
4. ``reduction_tile`` and ``promote``: where a sequential loop right inside
   the thread loops reads arrays that several threads of a block read too
   (GEMM's ``A[i, k]`` along ``j``), that loop is split by a constant (a
   constant footprint box) and ``promote_shared`` copies those arrays'
   boxes into shared memory at the block-level tile loop, when the estimated
   footprint fits the target's shared memory per block; the result is
   lowered for the target (promotion, barriers, proof) and undone if that
   fails;
5. ``registers``: after a promotion, the arrays the threads accumulate along
   the reduction (GEMM's ``C[i, j]``) stay in a register per thread across
   its tiles (``cache_write(..., scope="local")`` at the innermost block
   loop), checked the same way.

Promotion comes after every nest is mapped: each step is checked by lowering
the whole program, which a later nest's fission or binding would change.

A statement with no parallel loop is left unbound: the back end runs it in a
kernel of one thread, so its data stays on the device (``docs/gpu.md``).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def mm(n: int, A: "f32[n, n]", B: "f32[n, n]", C: "f32[n, n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             for k in range(n):
    ...                 C[i, j] += A[i, k] * B[k, j]
    >>> sch = polyop.auto_schedule(mm, "cuda")
    >>> print(sch)
    schedule of mm:
      split(i, 8)
      split(j, 32)
      reorder(i_outer, j_outer, i_inner, j_inner)
      bind(i_outer, 'blockIdx.y')
      bind(j_outer, 'blockIdx.x')
      bind(i_inner, 'threadIdx.y')
      bind(j_inner, 'threadIdx.x')
      split(k, 16)
      reorder(k_outer, i_inner, j_inner, k_inner)
      promote_shared(k_outer, budget=49152)
      cache_write(C, scope='local', at=j_outer) -> C_local
    >>> sch.explanation.knob("S0:block").chosen   # threadIdx.x on j: B[k, j], C[i, j]
    (8, 32)
"""

from __future__ import annotations

import numpy as np

from ..errors import PolyopError, ScheduleError
from .heuristic import _order, _perfect_suffix, _unit_stride
from .knobs import Context
from .model import access_groups, band_extents
from .outer import enclosed_statements, parallel_legal

#: threads per block aimed at: enough warps to hide latency, small enough
#: for several blocks per multiprocessor
THREADS = 256
#: the reduction tile lengths tried, preferred first
REDUCTION_TILES = (16, 8, 32, 4)


def schedule_gpu(ctx: Context) -> None:
    """Map every nest of ``ctx.sch`` to GPU blocks and threads (module docstring)."""
    sch = ctx.sch
    depth = {s.name: len(s.iterators) for s in sch.program.statements}
    pending: list[tuple[str, list, dict[str, int]]] = []
    for stmt in sorted(depth, key=lambda s: (-depth[s], _order(s))):
        if _bound(sch, stmt):
            continue
        if depth[stmt] == 0:
            ctx.decide(f"{stmt}:bind", [()], (), "the statement is in no loop: it runs "
                       "in a kernel of one thread")
            continue
        _fission(ctx, stmt)
        mapped = _map_nest(ctx, stmt)
        if mapped is not None:
            pending.append((stmt, *mapped))
    # promotion last: each step is checked by lowering the whole program, which
    # later fission or binding of other nests would change
    for stmt, threads, its in pending:
        _promote(ctx, stmt, threads, its)


def _bound(sch, stmt: str) -> bool:
    kinds = sch.lowering_plan().loops
    return any(kinds[lp.id][1].is_gpu for lp in sch.get_loops(stmt))


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160]


def _fission(ctx: Context, stmt: str) -> None:
    sch = ctx.sch
    loops = sch.get_loops(stmt)
    band = _perfect_suffix(sch, loops)
    if len(band) == len(loops):
        return
    knob = ctx.decide(f"{stmt}:fission", [False, True], True,
                      f"distribute {', '.join(lp.name for lp in loops[:len(loops) - len(band)])} "
                      "so that the statement's loops form one perfect band (more loops to "
                      "map to blocks and threads)")
    if not knob.chosen:
        return
    for lp in loops[:len(loops) - len(band)][::-1]:
        try:
            sch.fission(lp)
        except ScheduleError as exc:
            knob.applied = False
            knob.why += f" (fission({lp.name}) refused: {_first_line(exc)})"
            break


def _separate(ctx: Context, stmt: str) -> list:
    """The parallel loops of ``stmt``; where there are none and the nest's
    body holds several statements, its loops are first distributed, innermost
    first, so that each statement gets loops of its own (bicg's two sums
    along ``j`` and along ``i``, each parallel along the other loop)."""
    sch = ctx.sch
    loops = sch.get_loops(stmt)
    par = [lp for lp in loops if parallel_legal(sch, lp)]
    if par or len(enclosed_statements(sch)[loops[-1].id]) < 2:
        return par
    knob = ctx.decide(f"{stmt}:separate", [False, True], True,
                      "no loop is parallel for all the statements of the nest together: "
                      "distribute its loops so that each statement is mapped on its own")
    if not knob.chosen:
        return par
    mark = len(sch.trace)
    try:
        for lp in loops[::-1]:
            sch.fission(lp)
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - mark)
        knob.refuse(exc)
        return par
    return [lp for lp in sch.get_loops(stmt) if parallel_legal(sch, lp)]


def _map_nest(ctx: Context, stmt: str) -> tuple[list, dict[str, int]] | None:
    sch = ctx.sch
    par = _separate(ctx, stmt)
    loops = sch.get_loops(stmt)
    band = _perfect_suffix(sch, loops)
    above = loops[:len(loops) - len(band)]
    names = [lp.name for lp in loops]
    # the candidates: the outermost parallel loop above the band alone, or
    # one or two parallel loops of the band
    cands: list[tuple[str, ...]] = [()]
    in_band = [lp for lp in par if lp in band]
    if len(in_band) >= 3:
        # of more than two, the pair keeps the loop of most unit-stride accesses
        # (threadIdx.x on it: coalesced), the others staying in the thread
        stmts = enclosed_statements(sch)[band[-1].id]
        groups = access_groups(sch.program, sorted(stmts, key=_order),
                               {s: [loops.index(lp) for lp in in_band] for s in stmts})
        unit = [_unit_stride(groups, k)[0] for k in range(len(in_band))]
        best = max(range(len(in_band)), key=lambda k: (unit[k], k))
        if best >= 2:
            in_band.insert(1, in_band.pop(best))
    if in_band:
        cands += [tuple(lp.name for lp in in_band[:2])] if len(in_band) >= 2 else []
        cands += [(lp.name,) for lp in in_band]
    cands += [(lp.name,) for lp in par if lp in above]
    default = cands[1] if len(cands) > 1 else ()
    few = ""
    if len(in_band) >= 3:
        # a third loop on the z axis only when two leave the device short of threads
        cands.insert(1, tuple(lp.name for lp in sorted(in_band[:3], key=band.index)))
        stmts = enclosed_statements(sch)[in_band[2].id]
        ext = band_extents(sch.program, stmts, {s: [loops.index(lp) for lp in in_band[:3]]
                                                for s in stmts}, ctx.sizes)
        want = THREADS * (ctx.target.gpu.sm_count or 1) * 4
        if ext[0] * ext[1] < want:
            default = cands[1]
            few = (f"; {in_band[0].name} x {in_band[1].name} give {ext[0] * ext[1]} threads at "
                   f"the sizes assumed (< {want}): {in_band[2].name} bound too (a 3-D grid)")
    if default:
        why = (f"the legality check finds {', '.join(lp.name for lp in par)} parallel; "
               f"bound: {', '.join(default)}{few}")
        first = names.index(default[0])
        host = [lp.name for lp in loops[:first] if lp not in band]
        if host and all(lp not in par for lp in loops[:first]):
            verb = "stays" if len(host) == 1 else "stay"
            why += f"; {', '.join(host)} above {verb} on the host (one launch per iteration)"
        seq = [lp.name for lp in loops if lp not in par]
        if seq and not host:
            verb = "carries" if len(seq) == 1 else "carry"
            why += f"; {', '.join(seq)} {verb} dependences: sequential inside each thread"
    else:
        why = ("no loop of the nest can run in parallel (legality check): it runs in a "
               "kernel of one thread")
    knob = ctx.decide(f"{stmt}:bind", cands, default, why)
    chosen = [loops[names.index(n)] for n in knob.chosen]
    if not chosen:
        return None
    # each loop's iterator index: its depth, before this nest is reordered or
    # split (fission keeps depths); split loops inherit it
    its = {lp.id: k for k, lp in enumerate(loops)}
    mark = len(sch.trace)
    try:
        threads = _bind(ctx, stmt, chosen, band, its)
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - mark)
        knob.refuse(exc)
        return None
    return threads, its


def _bind(ctx: Context, stmt: str, chosen: list, band: list, its: dict[str, int]) -> list:
    """Move ``chosen`` outermost in the band where legal, split each by its
    block size and bind; returns the thread loops with their block sizes."""
    sch, facts = ctx.sch, ctx.target.gpu
    program = sch.program
    if len(chosen) > 1 or chosen[0] in band:
        rest = [lp for lp in band if lp not in chosen]
        lead = [lp for lp in rest if band.index(lp) < band.index(chosen[0])]
        for order in (chosen + rest, lead + chosen + [lp for lp in rest if lp not in lead]):
            if order == band:
                break
            try:
                sch.reorder(*order)
                break
            except ScheduleError:
                continue
        else:
            raise ScheduleError(f"the loops {', '.join(lp.name for lp in chosen)} cannot be "
                                "brought together at the top of the band")
        loops = sch.get_loops(stmt)
        chosen = [next(lp for lp in loops if lp.id == c.id) for c in chosen]
    # coalescing: threadIdx.x on the loop with most unit-stride accesses
    stmts = sorted(enclosed_statements(sch)[chosen[-1].id], key=_order)
    pos = {s: [its[c.id] for c in chosen] for s in stmts}
    groups = access_groups(program, stmts, pos)
    unit = [_unit_stride(groups, k)[0] for k in range(len(chosen))]
    x = max(range(len(chosen)), key=lambda k: (unit[k], k))
    warp = max(facts.warp_size, 1)
    total = max(warp, min(THREADS, facts.max_threads_per_block) // warp * warp)
    # no more threads than iterations at the sizes the caller assumes: a short
    # y loop leaves its threads to x (rows of at least 32, in whole warps)
    ext = band_extents(program, stmts, pos, ctx.sizes)
    if len(chosen) == 1:
        sizes = [min(total, facts.max_block[0], _up(ext[0], warp))]
    else:
        # y on the innermost of the others, z (with three) on the outermost
        others = [k for k in range(len(chosen)) if k != x]
        rest = int(np.prod([ext[k] for k in others]))
        bx = min(total, facts.max_block[0], _up(ext[x], warp),
                 max(_up(32, warp), total // _pow2(rest) // warp * warp))
        left = total // bx
        sizes = [bx] * len(chosen)
        by = max(1, min(_pow2(ext[others[-1]]), facts.max_block[1],
                        left if len(others) == 1 else max(1, left // 2)))
        sizes[others[-1]] = by
        if len(others) == 2:
            sizes[others[0]] = max(1, min(_pow2(ext[others[0]]), facts.max_block[2],
                                          left // by))
    cands = [tuple(sizes)] + [tuple(max(1, s // 2) for s in sizes)]
    knob = ctx.decide(
        f"{stmt}:block", cands, tuple(sizes),
        f"threads per block along {', '.join(c.name for c in chosen)}: {'x'.join(map(str, sizes))}"
        f" ({THREADS} aimed at, at most {facts.max_threads_per_block} per block, warps of "
        f"{facts.warp_size}, trip counts {', '.join(map(str, ext))} at the sizes assumed); "
        f"threadIdx.x on {chosen[x].name}: {unit[x]} unit-stride access group(s) (coalesced)",
        accepts=lambda v: isinstance(v, tuple) and len(v) == len(chosen) and
        all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in v) and
        int(np.prod(v)) <= facts.max_threads_per_block)
    sizes = list(knob.chosen)
    outers, inners = [], []
    for lp, b in zip(chosen, sizes):
        o, i = sch.split(lp, int(b))
        its[o.id] = its[i.id] = its[lp.id]
        outers.append(o)
        inners.append(i)
    if len(chosen) > 1:
        sch.reorder(*outers, *inners)
    axis = ["x"] * len(chosen)
    for k, a in zip(reversed([k for k in range(len(chosen)) if k != x]), "yz"):
        axis[k] = a
    for o, a in zip(outers, axis):
        sch.bind(o, f"blockIdx.{a}")
    for i, a in zip(inners, axis):
        sch.bind(i, f"threadIdx.{a}")
    return list(zip(inners, sizes))


def _up(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m``."""
    return -(-n // m) * m


def _pow2(n: int) -> int:
    """The least power of two at least ``n``."""
    return 1 << max(0, n - 1).bit_length()


def _promote(ctx: Context, stmt: str, threads: list, its: dict[str, int]) -> None:
    """Tile the reduction loop right inside the threads and promote the
    arrays its iterations share between threads (module docstring, step 4)."""
    sch, facts = ctx.sch, ctx.target.gpu
    program = sch.program
    loops = sch.get_loops(stmt)
    ids = [lp.id for lp in loops]
    last = ids.index(threads[-1][0].id)
    inside = enclosed_statements(sch)
    if last + 1 >= len(loops) or inside[loops[last + 1].id] != inside[loops[last].id]:
        return
    red = loops[last + 1]
    stmts = sorted(inside[red.id], key=_order)
    tloops = [next(lp for lp in loops if lp.id == t.id) for t, _ in threads]
    pos = {s: [its[lp.id] for lp in tloops + [red]] for s in stmts}
    groups = access_groups(program, stmts, pos)
    written = {a.array for s in program.statements if s.name in stmts for a in s.writes}
    r = len(tloops)
    shared = [g for g in groups if g.array not in written and g.depends(r)
              and any(not g.depends(k) for k in range(r))]
    if not shared:
        ctx.decide(f"{stmt}:promote", [False, True], False,
                   f"no array read along {red.name} is read by several threads of a block")
        return

    def footprint(tile: int) -> int:
        total = 0
        for g in shared:
            elems = tile * int(np.prod([b for k, (_, b) in enumerate(threads) if g.depends(k)]))
            total += elems * np.dtype(program.arrays[g.array].dtype.numpy).itemsize
        return total

    budget = facts.shared_memory_per_block
    fits = [t for t in REDUCTION_TILES if footprint(t) <= budget // 2]
    reuse = {g.array: int(np.prod([b for k, (_, b) in enumerate(threads) if not g.depends(k)]))
             for g in shared}
    tile_knob = ctx.decide(
        f"{stmt}:reduction_tile", [None, *REDUCTION_TILES], fits[0] if fits else None,
        f"split {red.name} so that the shared footprint is a constant box: "
        f"{footprint(fits[0]) if fits else footprint(min(REDUCTION_TILES))} bytes <= half the "
        f"{budget} bytes of shared memory per block" if fits else
        f"even {min(REDUCTION_TILES)} iterations of {red.name} overflow half the shared memory")
    tile = tile_knob.chosen
    knob = ctx.decide(
        f"{stmt}:promote", [False, True], tile is not None,
        f"{', '.join(f'{a} read by {n} threads of a block' for a, n in sorted(reuse.items()))}"
        f"; footprint {footprint(tile) if tile else '-'} bytes of {budget}")
    if tile is None or not knob.chosen:
        return
    mark = len(sch.trace)
    try:
        ro, ri = sch.split(red, int(tile))
        sch.reorder(ro, *tloops, ri)
        sch.promote_shared(ro, budget=budget)
        kernels = _lowered_kernels(sch, ctx.target)
        if not any(k.shared for k in kernels):
            raise ScheduleError("promote_shared found no array to promote")
    except PolyopError as exc:
        sch.undo(len(sch.trace) - mark)
        knob.applied = tile_knob.applied = False
        knob.why += f" (refused: {_first_line(exc)})"
        return
    # what the threads accumulate along the reduction: in registers across its tiles
    acc = sorted({g.array for g in groups if g.array in written})
    if not acc or any(g.depends(r) for g in groups if g.array in acc):
        return
    block = sch.get_loops(stmt)[[lp.id for lp in sch.get_loops(stmt)].index(ro.id) - 1]
    knob = ctx.decide(f"{stmt}:registers", [False, True], True,
                      f"{', '.join(acc)}: each thread's element stays in a register across "
                      f"the {red.name} tiles (cache_write scope='local' at {block.name}), "
                      "written back once")
    if not knob.chosen:
        return
    mark = len(sch.trace)
    try:
        for a in acc:
            sch.cache_write(a, scope="local", at=block)
        _lowered_kernels(sch, ctx.target)
    except PolyopError as exc:
        sch.undo(len(sch.trace) - mark)
        knob.refuse(exc)


def _lowered_kernels(sch, target) -> list:
    from ..api import lower  # the GPU lowering: promotion, barriers and proof
    return lower(sch, target=target).program.kernels
