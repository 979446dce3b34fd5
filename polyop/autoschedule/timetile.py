"""Time tiling of multi-statement stencils: fuse, shift, skew, tile.

A stencil such as PolyBench's jacobi-2d runs, inside a time loop ``t``,
several sweeps that read what the previous one wrote::

    for t:                        isl's tileable band (``TILING_OPTIONS``):
        for i: for j: S0              S0: (t, 2t + i,     2t + j)
        for i: for j: S1              S1: (t, 2t + i + 1, 2t + j + 1)

Tiled one time step at a time, every step streams the whole grid through the
cache. isl's scheduler, asked for permutable bands rather than outer
parallelism, finds one band over ``t`` and the space loops for all the
statements: each space member is ``a_k * t + x_k + c_{s,k}`` (a skew ``a_k``
common to all statements, a shift ``c_{s,k}`` per statement). ``time_tile``
recognises that shape and realises it with the public, legality-checked
primitives, level by level: ``shift`` each statement's loop by ``c_{s,k}``,
``fuse`` the sibling loops, then ``skew(t, x_k, a_k)``; the band is then
permutable, so ``split`` + ``reorder`` make parallelogram tiles of ``T`` time
steps by ``S_k`` (skewed) space points. Inside a tile, ``fission`` of the
point loops gives each statement its own innermost loop again, which is
``vectorize``-d (the fused loop carries the forward dependence from S0 to S1).
Tiles of one wavefront run in parallel: ``skew`` the outer space tile loop
by the time tile loop, ``reorder`` it outermost and make the time tile loop
``parallel`` (two tiles of a wavefront differ in time tile and so in space
tile by opposite amounts, and every tile dependence goes forward in both).

Every step is checked by ``polyop.Schedule``; a refusal undoes the whole
time tiling and the statements go back to the per-nest heuristic.

The decision is the cost model's (``time_model``): the footprint of a
parallelogram tile of array group ``g`` is ``prod_k (S_k + a_k (T - 1) +
spread_k)`` elements (``polyop.autoschedule.model``'s box of the accesses in
the skewed loops), and the tiles are counted over the parallelogram, not its
bounding box. Time is a roofline: refill traffic at the bandwidth of the
level the arrays come from (the L3 when they fit it, else memory) against the
instances at ``LOADS_PER_CYCLE`` memory operations a cycle, ``lanes`` at a
time. A stencil whose arrays fit the L3 comes out compute-bound, and time
tiling is then not chosen. Measured at PolyBench MEDIUM on a Zen 3 (1 thread,
interleaved with the default schedule, ``benchmarks/results/autoschedule_timetile.json``),
time tiles forced on ran at 0.77x the default's speed on jacobi-1d, 0.81x on
jacobi-2d and 0.62x on heat-3d (the arrays fit the L2 or the L3, whose
bandwidth keeps up with the sweeps; the tiles' partial-tile code and shorter
vector loops cost more than the refills they save), so the model's "no" there
is the measured answer. Compiling a time-tiled nest also costs isl seconds
(10-40 s at those tile sizes).

Not handled: statements of different depths under the time loop (fdtd-2d's
``ey[0, j]`` row, which isl places at ``i = 0`` of the fused band: no
primitive embeds a statement at one iteration of another's loop, and
``compute_at`` is not time-aware), which get a knob saying so; a single
statement (seidel-2d) is the heuristic's own ``skew`` decision.

Example (the knob forced on; the model keeps it off at this size)::

    >>> import polyop
    >>> @polyop.kernel
    ... def jac(T: int, n: int, A: "f64[n]", B: "f64[n]"):
    ...     for t in range(T):
    ...         for i in range(1, n - 1):
    ...             B[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0
    ...         for i in range(1, n - 1):
    ...             A[i] = (B[i - 1] + B[i] + B[i + 1]) / 3.0
    >>> tgt = "cpu -mcpu=haswell -num-cores=2"
    >>> sch = polyop.auto_schedule(jac, tgt, sizes={"T": 50, "n": 100},
    ...                            knobs={"S0:time_tile": True, "S0:time_tiles": (4, 16)})
    >>> print(sch)
    schedule of jac:
      shift(S1, i, 1)
      fuse(i, i)
      skew(t, i, 2)
      split(t, 4)
      split(i, 16)
      reorder(t_outer, i_outer, t_inner, i_inner)
      skew(t_outer, i_outer, 1)
      reorder(i_outer, t_outer)
      parallel(t_outer)
      fission(i_inner)
      vectorize(i_inner)
      vectorize(i_inner)
    >>> polyop.auto_schedule(jac, tgt, sizes={"T": 50, "n": 100}
    ...                      ).explanation.knob("S0:time_tile").chosen
    False
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ScheduleError
from .isl_sched import TILING_OPTIONS, isl_schedule
from .model import (
    BYTES_PER_CYCLE,
    DEFAULT_SIZE,
    LINE,
    BandModel,
    Group,
    access_affine,
    band_extents,
)
from .outer import enclosed_statements

#: memory operations (loads and stores) a core issues per cycle (two on the
#: x86 and Arm cores polyop targets); a stencil instance costs its accesses
LOADS_PER_CYCLE = 2
#: bytes per cycle refilled from the L3 into a core's L2 (about twice the
#: memory figure ``model.BYTES_PER_CYCLE``; one Zen 3 core moves ~32 B/cycle)
L3_BYTES_PER_CYCLE = 32
#: time tiling must cut the modelled time by this factor (as tiling in the heuristic)
GAIN = 1.5
#: a wavefront's tile loops are skewed too, and isl's AST generation time grows
#: with the slant ``S_1 / (a_1 T)`` of the tiles it skews (jacobi-1d, 16 x 128:
#: 87 s against 2 s without the wavefront; 16 x 64: 13 s; 32 x 256 gave up):
#: with a wavefront the outer space tile is at most this many times ``a_1 T``
WAVEFRONT_SLANT = 2
#: tile sizes tried: time steps, and (skewed) space points per loop
TIME_STEPS = (2, 4, 8, 16)
SPACE_POINTS = (8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Stencil:
    """A recognised stencil: the time loop's statements (kernel order), the
    number of space loops, isl's skew ``a_k`` per space loop and shift
    ``c_{s,k}`` per statement and space loop, and isl's band as text."""

    stmts: tuple[str, ...]
    depth: int
    skew: tuple[int, ...]
    shifts: dict[str, tuple[int, ...]]
    text: str


def recognise(ctx) -> tuple[Stencil | None, str]:
    """The stencil of ``ctx.sch`` (see the module docstring), or None and why not."""
    sch = ctx.sch
    inside = enclosed_statements(sch)
    for stmt in sch.stmts:
        loops = sch.get_loops(stmt)
        if len(loops) >= 2 and len(inside[loops[0].id]) >= 2:
            break
    else:
        return None, ""  # no outer loop encloses several statements in loops of their own
    stmts = tuple(s for s in sch.stmts if s in inside[loops[0].id])
    depths = {s: len(sch.get_loops(s)) for s in stmts}
    if len(set(depths.values())) != 1:
        if ctx.tiling_isl is None:
            ctx.tiling_isl = isl_schedule(sch.program, TILING_OPTIONS)
        # a time loop: isl keeps the outer loop outermost and skews others by it
        skewed = all(ctx.tiling_isl.get(s) and ctx.tiling_isl[s][0].coeffs[0] == 1 and
                     not any(ctx.tiling_isl[s][0].coeffs[1:]) for s in stmts) and \
            any(m.coeffs[0] and any(m.coeffs[1:])
                for s in stmts for m in ctx.tiling_isl[s][1:])
        # only a time-tiling candidate (isl skews its loops) gets a knob saying why not
        return None, ("" if not skewed else "isl skews these statements' loops into one "
                      "tileable band, but they have different loop depths under the time loop "
                      f"({', '.join(f'{s}: {d}' for s, d in depths.items())}): fuse and "
                      "shift cannot give every statement a loop of the band")
    d = depths[stmts[0]] - 1
    if ctx.tiling_isl is None:
        ctx.tiling_isl = isl_schedule(sch.program, TILING_OPTIONS)
    skew: tuple[int, ...] | None = None
    shifts: dict[str, tuple[int, ...]] = {}
    for s in stmts:
        ms = ctx.tiling_isl.get(s, [])
        if len(ms) < d + 1 or any(m.band != ms[0].band or not m.permutable for m in ms[:d + 1]):
            return None, f"isl found no permutable band over the {d + 1} loops of {s}"
        if ms[0].coeffs != (1,) + (0,) * d or ms[0].const:
            return None, f"isl's outer member for {s} is {ms[0].text}, not the time loop"
        row = []
        for k in range(1, d + 1):
            want = tuple(1 if j == k else ms[k].coeffs[0] if j == 0 else 0
                         for j in range(d + 1))
            if ms[k].coeffs != want or ms[k].coeffs[0] < 0:
                return None, f"isl's member {ms[k].text} of {s} is not a shifted, skewed loop"
            row.append(ms[k].coeffs[0])
        if skew is not None and tuple(row) != skew:
            return None, "isl skews the statements' loops by different factors"
        skew = tuple(row)
        shifts[s] = tuple(ms[k].const for k in range(1, d + 1))
    assert skew is not None
    if not any(skew):
        return None, "isl's band needs no skew: the per-nest heuristic tiles it"
    text = "; ".join(f"{s}: ({', '.join(m.text for m in ctx.tiling_isl[s][:d + 1])})"
                     for s in stmts)
    return Stencil(stmts, d, skew, shifts, text), ""


@dataclass
class TimeModel:
    """The modelled time of the stencil untiled and with time tiles."""

    band: BandModel
    extents: tuple[int, ...]
    skew: tuple[int, ...]
    data: int
    per_step: int
    instances: int
    ops: int
    bandwidth: int
    lanes: int

    def tiles(self, sizes: tuple[int, ...]) -> int:
        """Parallelogram tiles: per band of ``T`` steps, the skewed space range
        ``N_k + a_k (T - 1)`` cut into ``S_k`` (not the bounding box's count)."""
        t, *space = sizes
        n = math.ceil(self.extents[0] / t)
        for e, a, s in zip(self.extents[1:], self.skew, space):
            n *= math.ceil((e + a * (t - 1)) / s)
        return n

    def traffic(self, sizes: tuple[int, ...] | None) -> float:
        """Lines refilled: untiled (None) every step streams every statement's
        arrays unless all of them fit the cache; tiled, each tile its footprint."""
        if sizes is None:
            return self.per_step * self.extents[0]
        return self.tiles(sizes) * sum(self.band.group_footprints(sizes))

    def cycles(self, sizes: tuple[int, ...] | None) -> float:
        compute = self.instances * self.ops / (LOADS_PER_CYCLE * self.lanes)
        return max(self.traffic(sizes) * LINE / self.bandwidth, compute)


def time_model(ctx, st: Stencil, lanes: int) -> TimeModel:
    """The model of the module docstring for stencil ``st`` at ``ctx.sizes``."""
    sch, program = ctx.sch, ctx.sch.program
    band = sch.get_loops(st.stmts[0])
    d = st.depth
    # before fusion each statement has loops of its own: the time loop, then
    # the space loops in iterator order
    extents = band_extents(program, st.stmts, {s: list(range(d + 1)) for s in st.stmts},
                       ctx.sizes)
    # array index x_k = x'_k - a_k t in the skewed loops; shifts widen the spread
    found: dict[tuple, list[tuple[int, ...]]] = {}
    elem: dict[str, int] = {}
    arrays_of: dict[str, set[str]] = {}
    ops = 0
    for s in st.stmts:
        stmt = program.statement(s)
        accs = [a for a in (*stmt.reads, *stmt.writes) if program.arrays[a.array].ndim]
        distinct = set()
        for acc in accs:
            rows, consts = access_affine(acc.relation, d + 1)
            lin = tuple((r[0] - sum(r[k + 1] * st.skew[k] for k in range(d)),
                         *r[1:]) for r in rows)
            off = tuple(c + sum(r[k + 1] * st.shifts[s][k] for k in range(d))
                        for r, c in zip(rows, consts))
            found.setdefault((acc.array, lin), []).append(off)
            distinct.add((acc.array, tuple(rows), consts, acc in stmt.writes))
            elem[acc.array] = np.dtype(program.arrays[acc.array].dtype.numpy).itemsize
            arrays_of.setdefault(s, set()).add(acc.array)
        ops = max(ops, len(distinct))
    groups = [Group(a, lin, tuple(max(c[j] for c in cs) - min(c[j] for c in cs)
                                  for j in range(len(lin))), elem[a])
              for (a, lin), cs in sorted(found.items())]
    names = [lp.name for lp in band]
    model = BandModel.build(names, extents, groups, len(st.stmts))
    size = {a: elem[a] * int(np.prod(_array_extent(program, a, ctx.sizes))) for a in elem}
    data = sum(size.values())
    per_step = 0 if data <= ctx.target.l2 else \
        sum(size[a] for s in st.stmts for a in arrays_of[s]) // LINE
    inst = math.prod(extents) * len(st.stmts)
    bandwidth = L3_BYTES_PER_CYCLE if data <= ctx.target.l3 else BYTES_PER_CYCLE
    return TimeModel(model, tuple(extents), st.skew, data, per_step, inst, ops, bandwidth,
                     lanes)


def _array_extent(program, array: str, sizes: dict[str, int]) -> list[int]:
    from ..runtime import eval_index

    env = {p: int(sizes.get(p, DEFAULT_SIZE)) for p in program.params}
    return [max(0, int(eval_index(e, env))) for e in program.arrays[array].extents]


def _ranked(tm: TimeModel, capacity: int, lanes: int, wavefront: bool,
            keep: int = 4) -> list[tuple[int, ...]]:
    grids = [[t for t in TIME_STEPS if t < tm.extents[0]] or [tm.extents[0]]]
    for k in range(1, len(tm.extents)):
        low = 4 * lanes if k == len(tm.extents) - 1 else 1
        grids.append([s for s in SPACE_POINTS if s >= low] or [SPACE_POINTS[-1]])
    scored = []
    for sizes in itertools.product(*grids):
        if sum(tm.band.group_footprints(sizes)) * LINE > capacity or \
                (wavefront and sizes[1] > WAVEFRONT_SLANT * max(1, tm.skew[0]) * sizes[0]):
            continue
        scored.append(((round(tm.traffic(sizes), 3), -math.prod(sizes)), sizes))
    scored.sort()
    return [s for _, s in scored[:keep]]


def time_tile(ctx) -> set[str]:
    """Time-tile the stencil of ``ctx.sch`` when the model says it pays (or a
    knob says so); returns the statements it scheduled (empty: none, the
    per-nest heuristic schedules everything as before)."""
    st, why_not = recognise(ctx)
    if st is None:
        if why_not:
            ctx.decide(f"{ctx.sch.stmts[0]}:time_tile", [False], False, why_not)
        return set()
    lead = st.stmts[0]
    program = ctx.sch.program
    dtype = max((program.arrays[a].dtype for a in program.arrays if program.arrays[a].ndim),
                key=lambda dt: np.dtype(dt.numpy).itemsize)
    lanes = ctx.target.lanes(dtype.numpy)
    tm = time_model(ctx, st, lanes)
    capacity = ctx.target.l2 // 2
    wavefront = ctx.overrides.get(f"{lead}:wavefront", ctx.target.cores > 1)
    ranked = _ranked(tm, capacity, lanes, bool(wavefront))
    c0 = tm.cycles(None)
    c1 = tm.cycles(ranked[0]) if ranked else c0
    gain = c0 / c1 if c1 else 1.0
    compute = tm.instances * tm.ops / (LOADS_PER_CYCLE * tm.lanes)
    where = "the L3" if tm.bandwidth == L3_BYTES_PER_CYCLE else "memory"
    why = (f"isl's tileable band {st.text}; arrays {tm.data / 1024:.4g} KiB "
           f"({'fit the L2: loaded once' if not tm.per_step else f'refilled from {where}'}"
           f"); time tiles would cut the modelled time {gain:.3g}x ({c0:.4g} -> {c1:.4g} "
           f"cycles; compute {compute:.4g} cycles at {tm.ops} memory operations per "
           f"instance, {LOADS_PER_CYCLE} a cycle, {lanes} lanes) (needs {GAIN}x)")
    knob = ctx.decide(f"{lead}:time_tile", [False, True], gain >= GAIN and bool(ranked), why)
    if knob.why == "set by the caller":
        knob.why += f" (the model: {why})"
    if not knob.chosen:
        return set()
    d = st.depth
    none = tuple(tm.extents)
    best = ranked[0] if ranked else none
    slant = f", S_1 <= {WAVEFRONT_SLANT} a_1 T (the wavefront's AST)" if wavefront else ""
    tknob = ctx.decide(f"{lead}:time_tiles", ranked or [none], best,
                       f"{best}: T time steps x S (skewed) space points of least traffic "
                       f"whose footprint fits half the L2 ({capacity // 1024} KiB){slant}: "
                       f"{tm.traffic(best):.4g} lines vs {tm.traffic(None):.4g} untiled",
                       tm.band.formula(), accepts=lambda v: _sizes_ok(v, d + 1))
    wknob = ctx.decide(f"{lead}:wavefront", [False, True], ctx.target.cores > 1,
                       "tiles of one wavefront (outer space tile + time tile) run in "
                       f"parallel on {ctx.target.cores} cores"
                       if ctx.target.cores > 1 else "the target has one core")
    if not wknob.chosen:
        ctx.serial |= set(st.stmts)  # no parallel loop wanted: the outer pass leaves them
    start = len(ctx.sch.trace)
    try:
        _apply(ctx.sch, st, tuple(int(v) for v in tknob.chosen), bool(wknob.chosen), lanes > 1)
    except ScheduleError as exc:
        ctx.sch.undo(len(ctx.sch.trace) - start)
        knob.applied = False
        knob.why += f" (refused: {str(exc).splitlines()[0][:160]}; the per-nest heuristic " \
            "schedules the statements)"
        return set()
    return set(st.stmts)


def _sizes_ok(v, n: int) -> bool:
    return isinstance(v, tuple) and len(v) == n and all(
        isinstance(t, int | np.integer) and not isinstance(t, bool) and t > 0 for t in v)


def _apply(sch, st: Stencil, sizes: tuple[int, ...], wavefront: bool, vector: bool) -> None:
    """shift + fuse level by level, skew, tile, wavefront, fission + vectorize."""
    for lvl in range(1, st.depth + 1):
        for s in st.stmts:
            if st.shifts[s][lvl - 1]:
                sch.shift(s, sch.get_loops(s)[lvl], st.shifts[s][lvl - 1])
        loops: list = []
        for s in st.stmts:
            lp = sch.get_loops(s)[lvl]
            if lp not in loops:
                loops.append(lp)
        fused = loops[0]
        for lp in loops[1:]:
            fused = sch.fuse(fused, lp)
    band = sch.get_loops(st.stmts[0])
    for k, a in enumerate(st.skew, start=1):
        if a:
            sch.skew(band[0], band[k], a)
    outers, inners = [], []
    for lp, size in zip(band, sizes):
        o, i = sch.split(lp, size)
        outers.append(o)
        inners.append(i)
    sch.reorder(*outers, *inners)
    if wavefront:
        sch.skew(outers[0], outers[1], 1)
        sch.reorder(outers[1], outers[0])
        sch.parallel(outers[0])
    if vector:
        sch.fission(inners[1])
        for s in st.stmts:
            sch.vectorize(sch.get_loops(s)[-1])
