"""Register tiles: an accumulation kept in vector registers across its
reduction loop (the knob ``<stmt>:register_tile``).

In gemm's ``i, k, j`` order, ``C[i, j] += alpha * A[i, k] * B[k, j]``
loads and stores a vector of ``C`` for every vector multiply-add: the loop
runs at the rate of the stores, not of the arithmetic. A *register tile*
cuts the written array's loops ``i`` and ``j`` into ``mr`` rows and ``nv``
vectors of columns and moves the reduction loop ``k`` between the tile loops
and the tile (``i_outer, j_outer, k, i_inner, j_inner``): the tile's
``mr · nv`` vectors of ``C`` then change with neither ``k`` nor anything
inside it, and ``cache_write(C, scope="local", at=j_outer)`` keeps them in a
buffer that LLVM holds in registers: loaded once before ``k``, stored once
after. Each ``k`` step reads ``nv`` vectors of ``B`` and ``mr`` scalars of
``A`` (broadcast) for ``mr · nv`` vector operations. The rows are unrolled,
the columns vectorised; full tiles run with constant bounds
(``polyop.schedule.astprep``), the partial ones at the edges with guards.
A statement that only updates those elements before, in a nest of its own
(gemm's ``C[i, j] *= beta``, 2mm's ``tmp[i, j] = 0``), moves into the tile
(``compute_at``, where the legality check allows it): it then works on the
buffer, and on several cores each thread updates the rows it accumulates
into. Run as a pass of its own, half of ``C`` was written by the other core
(the pass's rows split differently), and on the 2-core Zen 4 VM, whose
two-thread speed switches between two levels, gemm at MEDIUM on 2 threads
ran 57.7 rather than 63.4 GFLOP/s at the slower level; with the update in
the tile, 62.7 and 64.1.

Sizes: ``mr · nv`` accumulators, ``nv`` vectors of ``B`` and a broadcast in
the target's vector registers (the rule of ``polyop.ops.matmul.register_rows``),
with ``nv`` = 3 vectors, fewer when the columns are fewer, and at most 8
rows: PolyBench's gemm at MEDIUM on Zen 4 (AVX-512, f64, 1 thread; the
schedule without a tile 0.87-1.27 ms across runs) ran 8 × 3 in 0.64 ms,
6 × 3 and 4 × 3 0.65, 8 × 2 0.67 and 14 × 2 0.72 (the same loops without
``cache_write``, ``C`` loaded and stored at every ``k``: 1.0-1.5 ms).
Inside cache tiles, the tile divides the tile sizes of the loops they cut
(no cache tile with a partial register tile); a loop left in one cache tile
is split like an untiled one. gemm at MEDIUM for a 256 KiB L2 (AVX2 code,
cache tiles (64, 4, 220), ``j``'s 220 columns in one tile): 8 × 1 when the
tile had to divide 220 too, 4 × 3 now, 1.81 -> 1.47 ms on one Zen 4 core.

Taken for a band of one statement that isl found permutable, when the
statement accumulates (reads its write's element) over a loop its write
does not move, the innermost loop is the vectorised one, a loop the write
moves (the rows) is coincident, and the three loops' bounds involve no other
loop (a rectangle; a triangle's rows would have different columns).
"""

from __future__ import annotations

from ..errors import ScheduleError
from .strips import _base, _equal_work, _moved_by

#: rows of a register tile at most (more gained nothing on gemm, above)
MAX_ROWS = 8
#: vectors of columns wanted
VECTORS = 3


def register_tile(ctx, lead: str, inner_loops: list, coincident: set[str], lanes: int,
                  extents: dict[str, int], tiled: set[str]) -> list | None:
    """Apply the register tile of the knob ``<lead>:register_tile`` to the
    band's point loops ``inner_loops`` (``extents``: their iteration counts
    by iterator; ``tiled``: the iterators that cache tiles cut, whose tile
    sizes the register tile then divides, so that no cache tile has a partial
    register tile; a loop in one cache tile, uncut, may end in a partial one,
    as an untiled loop does); returns the new point loops (the vector loop
    last), or None when there is no tile (not applicable, turned off, or
    refused)."""
    sch, target = ctx.sch, ctx.target
    stmt = sch.program.statement(lead)
    plan = _plan(sch, stmt, inner_loops, coincident)
    array = stmt.writes[0].array if stmt.writes else "?"
    regs = target.vector_registers
    fits = [(mr, nv) for nv in (1, 2, 3, 4) for mr in range(1, MAX_ROWS + 1)
            if mr * nv + nv + 1 <= regs]
    default = None
    if plan is not None:
        rows, red, cols = plan
        n_rows, n_cols = extents[_base(rows.name)], extents[_base(cols.name)]
        nvs = range(max(1, min(VECTORS, -(-n_cols // lanes))), 0, -1)
        nv = next((v for v in nvs if _base(cols.name) not in tiled
                   or n_cols % (v * lanes) == 0), None)
        if nv is not None:
            mrs = range(min(MAX_ROWS, (regs - 1 - nv) // nv, n_rows), 0, -1)
            mr = next((m for m in mrs if _base(rows.name) not in tiled or n_rows % m == 0), None)
            default = (mr, nv) if mr else None
    if plan is None:
        why = ("no accumulation over a loop its write does not move, with a coincident "
               "row loop, rectangular bounds and a vector loop innermost")
    elif default is None:
        why = (f"no tile of whole vectors divides the cache tiles' {n_cols} columns of "
               f"{_base(cols.name)}")
    else:
        why = (f"{array} accumulates over {_base(red.name)}, which its write does not move: "
               f"a tile of {default[0]} rows of {_base(rows.name)} x {default[1]} vectors of "
               f"{_base(cols.name)} in registers across {_base(red.name)} (accumulators, "
               f"operands and a broadcast within the {regs} vector registers), "
               f"cache_write({array}, 'local') at the tile")
    knob = ctx.decide(f"{lead}:register_tile", [None] + (fits if plan else []), default, why)
    if knob.chosen is None or plan is None:
        return None
    mr, nv = knob.chosen
    rows, red, cols = plan
    start = len(sch.trace)
    try:
        ro, ri = sch.split(rows, mr)
        co, ci = sch.split(cols, nv * lanes)
        others = [lp for lp in inner_loops if lp not in (rows, red, cols)]
        sch.reorder(*others, ro, co, red, ri, ci)
        sch.unroll(ri)
        moved = []
        for other in _element_updates(sch, stmt):
            try:  # an earlier pass over the tile's elements (C *= beta), run per tile
                sch.compute_at(other, co)
            except ScheduleError:
                continue
            moved.append(other)
        sch.cache_write(array, scope="local", at=co)
        from ..api import lower  # the promotion is exact or refused at lowering

        lower(sch, validate=False)  # (the build validates the final schedule's code)
    except ScheduleError as exc:
        sch.undo(len(sch.trace) - start)
        knob.refuse(exc)
        return None
    ctx.placed.update(moved)
    if moved:
        knob.why += (f"; {', '.join(moved)}, which only update{'s' if len(moved) == 1 else ''} "
                     f"the elements of {array} before, computed in the tile")
    return [*others, ro, co, red, ri, ci]


def _element_updates(sch, stmt) -> list[str]:
    """The other statements whose one write is ``stmt``'s element, in a nest
    of exactly that element's loops (gemm's ``C[i, j] *= beta``, 2mm's
    ``tmp[i, j] = 0``): each tile's elements can be updated in the tile,
    just before they are accumulated into, when the legality check agrees."""
    write = stmt.writes[0]
    out = []
    for other in sch.program.statements:
        if other.name == stmt.name or len(other.writes) != 1:
            continue
        w = other.writes[0]
        if w.array == write.array and w.text == write.text and \
                set(other.iterators) == _moved_by(w):
            out.append(other.name)
    return out


def _plan(sch, stmt, inner_loops: list, coincident: set[str]):
    """(rows, reduction, columns) loops of ``inner_loops`` for a register
    tile of ``stmt``, or None (module docstring)."""
    if len(stmt.writes) != 1 or len(inner_loops) < 3:
        return None
    write = stmt.writes[0]
    if not any(r.array == write.array and r.text == write.text for r in stmt.reads):
        return None  # not an accumulation into the written element
    moved = _moved_by(write)
    bases = [_base(lp.name) for lp in inner_loops]
    if len(set(bases)) != len(bases) or not set(bases) <= set(stmt.iterators):
        return None  # strips or tiles of one iterator twice: not a plain band
    cols = inner_loops[-1]
    red = next((lp for lp in reversed(inner_loops[:-1]) if _base(lp.name) not in moved), None)
    rows = next((lp for lp in reversed(inner_loops[:-1]) if _base(lp.name) in moved
                 and _base(lp.name) in coincident), None)
    if red is None or rows is None or _base(cols.name) not in moved:
        return None
    if not all(_equal_work(sch, stmt.name, _base(lp.name)) for lp in (rows, red, cols)):
        return None
    return rows, red, cols
