"""Skewing a band so that isl's tileable form of it can be tiled (time tiling
of a stencil whose space loops depend on the time step): the ``<stmt>:skew``
knob of ``polyop.autoschedule.heuristic``."""

from __future__ import annotations

from ..errors import ScheduleError
from .isl_sched import TILING_OPTIONS, isl_schedule
from .model import BandModel, Group


def skew_band(ctx, stmt: str, pos: list[int], band, names, extents, groups,
              cache: int, capacity: int, lanes: int, tile_gain: float):
    """Time tiling: when isl, asked for tileable bands rather than outer
    parallelism (``TILING_OPTIONS``), skews the band's loops into a permutable
    band ``v'_k = v_k + sum_{b<k} M[k][b] v_b``, decide whether skewing then
    tiling pays and, if so, apply the skews (``skew`` keeps the order of
    instances, so each is legal; the tiling after it is checked as usual).
    Skewing is taken when it cuts the modelled time ``tile_gain`` times.
    Returns the skewed band's extents and access groups, or None."""
    if ctx.tiling_isl is None:
        ctx.tiling_isl = isl_schedule(ctx.sch.program, TILING_OPTIONS)
    members = ctx.tiling_isl.get(stmt, [])
    bands = [[m for m in members if m.band == b] for b in sorted({m.band for m in members})]
    d = len(band)
    found = next((ms for ms in bands if len(ms) == d and ms[0].permutable), None)
    if found is None:
        return None
    others = [k for k in range(len(found[0].coeffs)) if k not in pos]
    M = [[m.coeffs[p] for p in pos] for m in found]
    if any(m.coeffs[k] for m in found for k in others) or \
            any(M[k][k] != 1 or any(M[k][b] for b in range(k + 1, d)) for k in range(d)):
        return None  # not a unit lower-triangular skew of the kernel's loops
    if all(M[k][b] == 0 for k in range(d) for b in range(k)):
        return None  # no skew: isl's band is the kernel's loops
    inv = _unit_lower_inverse(M)
    # accesses in the skewed loops: a . v = a . M^-1 . v'
    g2 = [Group(g.array, tuple(tuple(sum(r[b] * inv[b][k] for b in range(d)) for k in range(d))
                               for r in g.coeffs), g.spread, g.elem) for g in groups]
    ext2 = [sum(abs(M[k][b]) * extents[b] for b in range(d)) for k in range(d)]
    model = BandModel.build(names, ext2, g2)
    c0 = model.cycles(model.untiled(cache), 1, True)
    c1 = model.cycles(model.best_tiles(capacity, lanes), 1, True)
    gain = c0 / c1 if c1 else 1.0
    text = ", ".join(m.text for m in found)
    knob = ctx.decide(f"{stmt}:skew", [False, True], gain >= tile_gain,
                      f"isl's tileable band for time tiling is ({text}); tiling it would cut "
                      f"the modelled time {gain:.3g}x (needs {tile_gain}x)")
    if not knob.chosen:
        return None
    try:
        for k in range(d - 1, 0, -1):  # innermost first: each adds unskewed outer loops
            for b in range(k):
                if M[k][b]:
                    ctx.sch.skew(band[b], band[k], M[k][b])
    except ScheduleError as exc:
        knob.refuse(exc)
        return None
    return ext2, g2


def _unit_lower_inverse(M: list[list[int]]) -> list[list[int]]:
    """The inverse of a unit lower-triangular integer matrix (integer too)."""
    d = len(M)
    inv = [[int(i == j) for j in range(d)] for i in range(d)]
    for i in range(d):
        for j in range(i):
            inv[i][j] = -sum(M[i][k] * inv[k][j] for k in range(j, i))
    return inv


