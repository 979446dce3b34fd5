"""The cost model of ``auto_schedule``: cache traffic of a loop band as a
sympy expression of its tile sizes.

A *band* is a perfect nest of loops ``v_0 … v_{d-1}`` (outermost first) around
some statements. Every array access is affine in the iterators (isl's access
relation); over one tile, which runs ``T_k`` consecutive values of each loop,
an access group (one array, one linear part; constant offsets such as a
stencil's ``±1`` widen it) touches a box whose extent along each array
dimension is ``sum_k |a_k| (T_k - 1) + 1 + spread``. Measured in cache lines
(the last dimension is contiguous: ``(bytes + line - elem) / line`` lines)
that is the group's *footprint* ``F_g(T)``; the tile's footprint is
``F(T) = sum_g F_g(T)``.

If ``F(T)`` fits in the cache, each tile loads its footprint once, so the
band's *traffic* is ``Q(T) = sum_g F_g(T) * prod_k N_k / T_k``, with one
refinement: a group that does not depend on the innermost tile loop stays in
cache from one tile to the next and is counted once per iteration of the
loops outside it. An untiled band is the special case ``T_k = 1`` for the
outer loops and ``T_k = N_k`` for the largest suffix of loops whose footprint
fits, which is how the model compares loop orders and decides whether
tiling pays: ``Q(untiled) / min_T Q(T)`` under ``F(T) * line <= capacity``.
Where a group slides along the innermost tile loop (a stencil's rows
``i - 1 .. i + 1``), the next tile finds the overlap in cache and loads only
the new part. Time is a roofline (``cycles``): the larger of the traffic at
``BYTES_PER_CYCLE`` and one statement instance per cycle (``lanes`` per cycle
when vectorized; one per ``LATENCY`` cycles when the innermost loop carries a
dependence), so a compute-bound band gains nothing from tiling.
The minimum is found by enumerating a grid of tile sizes (powers of two,
multiples of the vector length for the innermost loop, and ``N_k``: no tile)
through the lambdified expression, so it is exact on that grid and cheap.

Example (a matrix product's update nest ``i, k, j``)::

    >>> m = BandModel.build(
    ...     ["i", "k", "j"], [200, 240, 220],
    ...     [Group("C", ((1, 0, 0), (0, 0, 1)), (0, 0), 8),
    ...      Group("A", ((1, 0, 0), (0, 1, 0)), (0, 0), 8),
    ...      Group("B", ((0, 1, 0), (0, 0, 1)), (0, 0), 8)])
    >>> print(m.footprint)
    T_i*(T_j + 7)/8 + T_i*(T_k + 7)/8 + T_k*(T_j + 7)/8
    >>> best = m.best_tiles(capacity=256 * 1024, lanes=4)
    >>> m.untiled_traffic(256 * 1024) / m.traffic(best) > 10
    True
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import islpy as isl
import numpy as np

if TYPE_CHECKING:
    import sympy

LINE = 64  # bytes per cache line
#: lines refilled from beyond the L2 per cycle and core, in bytes (a typical
#: sustained figure; the model only compares schedules of one band with it)
BYTES_PER_CYCLE = 16
#: cycles of a floating-point add: an innermost loop that carries a dependence
#: issues one instance per that many cycles (without fast-math, nothing reassociates)
LATENCY = 4
#: the size every parameter gets when the caller gives no sizes
DEFAULT_SIZE = 512


@dataclass(frozen=True)
class Group:
    """Accesses of one array with one linear part: ``coeffs[d][k]`` is the
    coefficient of band loop ``k`` in array dimension ``d``; ``spread[d]`` the
    range of the constant offsets along ``d``; ``elem`` bytes per element."""

    array: str
    coeffs: tuple[tuple[int, ...], ...]
    spread: tuple[int, ...]
    elem: int

    def depends(self, k: int) -> bool:
        return any(row[k] for row in self.coeffs)


@dataclass
class BandModel:
    """Footprint and traffic of a band (see the module docstring)."""

    loops: tuple[str, ...]
    extents: tuple[int, ...]
    groups: tuple[Group, ...]
    statements: int
    T: tuple[sympy.Symbol, ...]
    N: tuple[sympy.Symbol, ...]
    group_fp: tuple[sympy.Expr, ...]
    footprint: sympy.Expr
    traffic_expr: sympy.Expr
    _fp_fns: list = field(default_factory=list, repr=False)
    _slide_fns: list = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, loops, extents, groups, statements: int = 1) -> BandModel:
        """The model of a band with loops ``loops`` (names, outermost first),
        trip counts ``extents``, access ``groups`` and ``statements`` in its body."""
        import sympy  # here: importing sympy costs most of a second, paid only when used

        T = tuple(sympy.Symbol(f"T_{v}", positive=True, integer=True) for v in loops)
        N = tuple(sympy.Symbol(f"N_{v}", positive=True, integer=True) for v in loops)
        fps = [_footprint(g, T) for g in groups]
        fp = sympy.Add(*fps)
        tiles = sympy.Mul(*[n / t for n, t in zip(N, T)])
        model = cls(tuple(loops), tuple(int(e) for e in extents), tuple(groups), statements, T, N,
                    tuple(fps), fp, fp * tiles)
        model._fp_fns = [sympy.lambdify(T, f, "math") for f in fps]
        # the same footprints without the offsets' spread along each loop: what a
        # tile adds when it slides along that loop (a stencil's rows overlap)
        for k in range(len(T)):
            slid = [sympy.lambdify(T, _footprint(g, T, k) if g.depends(k) else f, "math")
                    for g, f in zip(groups, fps)]
            model._slide_fns.append(slid)
        return model

    # -- evaluation --------------------------------------------------------------------------
    def group_footprints(self, tiles) -> list[float]:
        return [f(*tiles) for f in self._fp_fns]

    def fits(self, tiles, capacity: int) -> bool:
        return sum(self.group_footprints(tiles)) * LINE <= capacity

    def traffic(self, tiles) -> float:
        """Cache lines loaded by the band with tile sizes ``tiles`` (the
        group that is invariant in the innermost tile loop loaded once per
        iteration of the loops outside it)."""
        tiled = [k for k, (t, n) in enumerate(zip(tiles, self.extents)) if t < n]
        last = tiled[-1] if tiled else None
        slid = [f(*tiles) for f in self._slide_fns[last]] if tiled else []
        total = 0.0
        for j, (g, fp) in enumerate(zip(self.groups, self.group_footprints(tiles))):
            mult = 1.0
            for k in tiled:
                if k == last and not g.depends(k):
                    continue
                mult *= math.ceil(self.extents[k] / tiles[k])
            if tiled and g.depends(last):
                # the next tile along the innermost tile loop finds the overlap
                # (a stencil's neighbour rows) in cache: one full load, then the rest
                n = math.ceil(self.extents[last] / tiles[last])
                total += mult / n * (fp + (n - 1) * slid[j])
            else:
                total += fp * mult
        return total

    def cycles(self, tiles, lanes: int, carried: bool = False) -> float:
        """A roofline estimate of the band's time in cycles: the larger of its
        traffic at ``BYTES_PER_CYCLE`` and its instances: one per cycle,
        ``lanes`` at a time when the innermost loop is vectorized, or one per
        ``LATENCY`` cycles when the innermost loop carries a dependence (a
        reduction's chain of dependent adds)."""
        iterations = math.prod(self.extents) * max(1, self.statements)
        per = LATENCY if carried else 1 / max(1, lanes)
        return max(self.traffic(tiles) * LINE / BYTES_PER_CYCLE, iterations * per)

    def untiled(self, capacity: int) -> tuple[int, ...]:
        """The untiled band as tile sizes: the largest suffix of loops whose
        footprint fits runs whole (at least the innermost loop)."""
        d = len(self.loops)
        for m in range(d):
            tiles = (1,) * m + self.extents[m:]
            if self.fits(tiles, capacity):
                return tiles
        return (1,) * (d - 1) + self.extents[d - 1:]

    def untiled_traffic(self, capacity: int) -> float:
        return self.traffic(self.untiled(capacity))

    def best_tiles(self, capacity: int, lanes: int, min_vectors: int = 4) -> tuple[int, ...]:
        """The tile sizes of least traffic that fit ``capacity`` bytes, on the
        grid of the module docstring; ties go to fewer tiled loops, then to
        larger tiles. The innermost tile is at least ``min_vectors`` vectors
        of ``lanes`` elements wide: narrower, the vector loop's start-up and
        remainder cost more than the lines the model saves."""
        return self.ranked_tiles(capacity, lanes, min_vectors)[0]

    def ranked_tiles(self, capacity: int, lanes: int, min_vectors: int = 4,
                     keep: int = 4) -> list[tuple[int, ...]]:
        """The ``keep`` best tile sizes (``best_tiles``'s order), best first."""
        grids = []
        for k, n in enumerate(self.extents):
            base = lanes * min_vectors if k == len(self.extents) - 1 else 4
            cands = {n} | {base << p for p in range(9) if base << p < n}
            grids.append(sorted(cands))
        scored = []
        for tiles in itertools.product(*grids):
            if not self.fits(tiles, capacity):
                continue
            split = sum(t < n for t, n in zip(tiles, self.extents))
            scored.append(((round(self.traffic(tiles), 6), split, -math.prod(tiles)), tiles))
        scored.sort()
        return [t for _, t in scored[:keep]] or [tuple(self.extents)]

    def formula(self) -> str:
        """``F(T)`` and ``Q(T)`` as text, for the explanation."""
        import sympy

        return f"F(T) = {self.footprint} lines;  Q(T) = {sympy.simplify(self.traffic_expr)}"


def _footprint(g: Group, T, slide: int | None = None):
    """``F_g(T)`` in lines; with ``slide``, without the offsets' spread along
    the array dimensions that loop ``slide`` moves."""
    import sympy

    dims = [sum(abs(c) * (t - 1) for c, t in zip(row, T)) + 1 +
            (0 if slide is not None and row[slide] else s)
            for row, s in zip(g.coeffs, g.spread)]
    if not dims:
        return sympy.Integer(1)
    last = (dims[-1] * g.elem + LINE - g.elem) / LINE  # lines along the contiguous dim
    return sympy.simplify(sympy.Mul(*dims[:-1]) * last)


# -- a band's extents and access groups, read from the program ------------------------------

def band_extents(program, stmts, pos, sizes) -> list[int]:
    """Trip counts of a band's loops at ``sizes`` (``pos[s]``: the iterator of each
    band loop in statement ``s``), the largest over the statements."""
    ext = [1] * len(next(iter(pos.values())))
    for s in stmts:
        dom = program.statement(s).domain
        for k in range(dom.dim(isl.dim_type.param)):
            name = dom.get_dim_name(isl.dim_type.param, k)
            dom = dom.fix_val(isl.dim_type.param, k, isl.Val(int(sizes.get(name,
                                                                                  DEFAULT_SIZE))))
        for b, p in enumerate(pos[s]):
            try:
                lo = dom.dim_min_val(p).to_python()
                hi = dom.dim_max_val(p).to_python()
                ext[b] = max(ext[b], int(hi - lo + 1))
            except Exception:  # noqa: BLE001  (empty or unbounded: no information)
                ext[b] = max(ext[b], DEFAULT_SIZE)
    return ext


def access_groups(program, stmts, pos) -> list[Group]:
    """Access groups of the band: one per array and linear part."""
    found: dict[tuple, list[tuple[int, ...]]] = {}
    elem: dict[str, int] = {}
    for s in stmts:
        st = program.statement(s)
        for acc in (*st.reads, *st.writes):
            arr = program.arrays[acc.array]
            if arr.ndim == 0:
                continue  # a scalar: a register
            rows, consts = access_affine(acc.relation, len(st.iterators))
            lin = tuple(tuple(r[p] for p in pos[s]) for r in rows)
            found.setdefault((acc.array, lin), []).append(consts)
            elem[acc.array] = np.dtype(arr.dtype.numpy).itemsize
    out = []
    for (array, lin), consts in sorted(found.items()):
        spread = tuple(max(c[d] for c in consts) - min(c[d] for c in consts)
                       for d in range(len(lin)))
        out.append(Group(array, lin, spread, elem[array]))
    return out


def access_affine(rel, n: int) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    """The linear part (one row per array dimension over ``n`` iterators) and the
    constant offsets of an access relation (its first piece)."""
    pieces = []
    isl.PwMultiAff.from_map(rel).foreach_piece(lambda _s, ma: pieces.append(ma))
    ma = pieces[0]
    rows, consts = [], []
    for d in range(ma.dim(isl.dim_type.out)):
        aff = ma.get_aff(d)
        rows.append(tuple(aff.get_coefficient_val(isl.dim_type.in_, k).to_python()
                          for k in range(n)))
        consts.append(aff.get_constant_val().to_python())
    return rows, tuple(consts)
