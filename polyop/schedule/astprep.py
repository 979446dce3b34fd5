"""Preparing a schedule tree for isl's AST generator.

Per-band AST options are set here, from the ``Schedule``'s loop records:

- loops marked by ``unroll`` get isl's ``unroll`` loop type, so the generated
  AST has one copy of the body per iteration;
- the inner loop of a ``split`` (or ``tile``) by ``f`` has *full strips*, where
  it runs exactly ``f`` iterations, and *partial strips* (at most one per
  outer iteration, at an end of the range). The full strips are *isolated*
  (isl's ``isolate`` option): isl generates them apart, with the constant
  bounds ``0 <= v < f``, so hot loops carry no ``min``/``max``. The test "is
  this strip full?" is put on the outermost band where its outcome is fixed:
  the band just inside the innermost loop it depends on, not inside loops
  that do not change it. A register tile ``(i_inner, j_inner)`` below a
  ``k`` loop is tested once per tile, outside ``k``; left in ``k``'s body,
  the test keeps LLVM from holding the tile in registers (1000³ GEMM with
  6 × 16 tiles: 85 → 94 GFLOP/s, AVX2). Where the loop the test depends on
  has a sequence for its body (a tile's init, update and epilogue), that
  loop itself is split into full and partial tiles, so the init and the
  epilogue get constant bounds as well (a convolution's 4 × 24 epilogue:
  5% of its time). Otherwise each band carries at most one such test where
  it can: tested together, two strips' tests leave the band's "rest" (one
  strip partial) with the other test inside the inner loops. A strip whose
  bands are all taken joins the outermost of them rather than testing in
  its own loop's body: a register tile whose rows are unrolled (their test
  on ``k``'s band) and whose columns are a vector strip then runs its full
  tiles with constant bounds, both tests outside ``k`` (PolyBench's gemm
  with 8 × 16 tiles: the column test had been inside ``k``, in every row).
- an *unrolled* strip loop (``unroll`` after ``split``, or ``unroll(loop, f)``)
  has its full strips isolated once more, on the band directly enclosing it
  (the ``outer`` loop, or whichever loop a reorder put there): isl splits that
  loop into one over the full strips only, each ``f`` copies of the body with
  no guard, and the rest (``atomic``: one piece), so the partial strip runs
  once, after the loop, as at most ``f - 1`` guarded copies (none with a
  constant range, say 18 split by 4). Left in the loop, the full-strip test
  and the guarded partial copies beside the unrolled ones cost up to 2x
  (measured on i-k-j matmuls, AVX2). Not done when the enclosing loop is
  ``parallel`` (its partial strip would run serially after the parallel
  loop).
- a *vector* strip directly inside the loop its test depends on (``split(k,
  8)`` then ``vectorize(k_inner)``, nothing between them) is isolated on that
  loop the same way: the loop runs the full strips, each straight-line
  vector code with no test, and the partial strip once, after it. A
  reduction's partial sums factored over the strip (``rfactor(s, k_inner)``,
  kept in a local buffer) then stay in one vector register across the loop:
  left in the loop, the partial strip's variable offsets into the buffer
  kept LLVM from promoting it, and the sums went through memory at every
  iteration (bicg with ``q``'s row sums factored over ``j``'s strips of 8,
  Zen 4, f64, 410 x 390: 92 -> 36 us); an i-k-j matmul with ``j`` split
  by 8, 16 or 32 and vectorised ran 1.2-1.55x faster (f64, 400, one Zen 4
  core: 14.0 -> 9.1, 10.9 -> 9.0, 10.0 -> 8.4 ms). (Before polyop emitted
  vector code itself, this hoisting let LLVM's loop vectorizer pick a strided
  form of the outer loop, 2x slower; explicit vector code is not vectorised
  again.) A vector strip below other loops (a register tile's columns
  inside ``k``) keeps the rule above: its test on the outermost band where
  the outcome is fixed.

For ``n`` split by 4 and unrolled, the full strips run in one loop with no
guards, the partial strip once, after it (``polyop.lower``); the band options
say so (the outer band isolates the full strips, the inner one is unrolled)::

    >>> import polyop
    >>> @polyop.kernel
    ... def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
    ...     for k in range(n):
    ...         out[0] += x[k] * y[k]
    >>> sch = polyop.Schedule(dot)
    >>> k_inner = sch.unroll(sch.get_loops("S0")[0], 4)
    >>> print(polyop.lower(sch))
    void dot(int64_t n, double x[n], double y[n], double out[1]) {
      for (k_outer = 0; k_outer < n // 4; k_outer += 1) {
        out[0] = out[0] + x[4 * k_outer] * y[4 * k_outer];
        out[0] = out[0] + x[4 * k_outer + 1] * y[4 * k_outer + 1];
        out[0] = out[0] + x[4 * k_outer + 2] * y[4 * k_outer + 2];
        out[0] = out[0] + x[4 * k_outer + 3] * y[4 * k_outer + 3];
      }
      if (n % 4 >= 1) {
        out[0] = out[0] + x[-(n % 4) + n] * y[-(n % 4) + n];
        if (n % 4 >= 2) {
          out[0] = out[0] + x[-(n % 4) + n + 1] * y[-(n % 4) + n + 1];
          if ((n + 1) % 4 == 0)
            out[0] = out[0] + x[n - 1] * y[n - 1];
        }
      }
    }
    >>> outer = prepare_for_ast(sch.tree, sch._loops).get_root().child(0).child(0)
    >>> print(outer.band_get_ast_build_options())
    [n] -> { isolate[[] -> [i0]] : i0 >= 0 and 4i0 <= -4 + n; atomic[0] }
    >>> print(outer.child(0).child(0).band_get_ast_build_options())
    { unroll[0]; [isolate[] -> unroll[0]] }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import islpy as isl

from ..kinds import LoopKind
from .tree import find_mark

_T = isl.schedule_node_type
ATOMIC = isl.ast_loop_type.atomic
UNROLL = isl.ast_loop_type.unroll


class _Host(NamedTuple):
    """A band that can isolate a strip's full strips, with its request."""

    ident: str
    request: isl.Set
    splits: bool = False  # the test depends on this band's own loop


@dataclass
class _Strip:
    """What one strip loop (the inner loop of a split, a cache panel's loop)
    needs isolated."""

    ident: str
    depth: int  # how many loops enclose it
    full: isl.Set  # flat outer points at which the strip runs all of 0 .. f-1
    own: isl.Set  # flat (outer point, value) points of the full strips
    parent: str | None  # the enclosing loop asked to isolate its full strips
    # without a parent: the bands that may isolate the full strips, outermost
    # first (the last is the strip's own band, with ``own``)
    hosts: list[_Host] = field(default_factory=list)


@dataclass
class _Band:
    """The AST options wanted for one band (keyed by its loop mark id)."""

    requests: list[isl.Set] = field(default_factory=list)  # isolate their intersection
    loop_type: isl.ast_loop_type | None = None  # for the non-isolated part
    isolate_loop_type: isl.ast_loop_type | None = None  # for the isolated part
    encloses_strip: bool = False


def prepare_for_ast(tree: isl.Schedule, loops: dict, isolate: bool = True) -> isl.Schedule:
    """``tree`` with the unroll and isolate options of the loops in ``loops``
    (mark id → ``LoopInfo``); with ``isolate`` false, no full strip is isolated
    (the cheap form, when isolating costs isl too much).

    The options are worked out on ``tree`` first (options do not change prefix
    schedules), then set band by band. A band asked to isolate by its own strip
    and by the strip below it isolates the points both ask for. A strip whose
    enclosing loop isolates exactly its full strips needs no isolate of its
    own: in the enclosing loop's isolated part isl knows the strips are full
    (constant bounds), in the rest that none is; an isolate there would only
    add tests on the outer loops (inside a partial tile, say).
    """
    bands: dict[str, _Band] = {}
    strips: list[_Strip] = []
    serial = {k for k, v in loops.items() if v.kind == LoopKind.SERIAL}  # loops a test may split
    for ident, info in loops.items():
        if info.kind != LoopKind.UNROLL and not info.strip:
            continue
        mark = find_mark(tree.get_root(), ident)
        if mark is None:
            continue
        opts = bands.setdefault(ident, _Band())
        if info.kind == LoopKind.UNROLL:
            opts.loop_type = opts.isolate_loop_type = UNROLL
        runs = _runs(mark.child(0)) if info.strip and isolate else None
        if runs is None:
            continue
        full = _full_outer_points(runs, info.strip)
        if full.is_empty() or full.is_equal(runs.domain()):
            continue  # no strip is full, or none is partial
        parent = _enclosing_loop(mark) if info.kind == LoopKind.UNROLL else None
        if parent is not None and parent in loops and loops[parent].kind == LoopKind.PARALLEL:
            parent = None  # keep the partial strip in the parallel loop
        strip = _Strip(ident, runs.dim(isl.dim_type.in_), _flat_set(full),
                       _flat(runs.intersect_domain(full)), parent)
        if parent is None:
            strip.hosts = _hosts(mark, strip.full, _flat_set(runs.domain()), serial)
            outer = _enclosing_loop(mark)
            if not strip.hosts and info.kind == LoopKind.VECTOR and outer in serial:
                # tested in its own outer loop's body: split that loop instead
                strip.parent = outer
            else:
                strip.hosts.append(_Host(ident, strip.own))
        strips.append(strip)
    claimed: set[str] = set()
    for s in strips:
        if s.parent is not None:
            bands[s.ident].requests.append(s.own)
            up = bands.setdefault(s.parent, _Band())
            up.requests.append(s.full)
            up.encloses_strip = True
            claimed |= {s.ident, s.parent}
    # A loop split into full and partial tiles takes every test that can go
    # on its band: its full tiles then run with constant bounds throughout.
    # Otherwise one test per band, outer tests on outer bands: where two
    # strips are tested on one band, its "rest" would test neither outside
    # the inner loops.
    free = [s for s in strips if s.parent is None]
    splitting = {s.hosts[0].ident for s in free if s.hosts[0].splits}
    for s in sorted(free, key=lambda s: (not s.hosts[0].splits, len(s.hosts))):
        outer = s.hosts[:-1]
        host = next((h for h in outer if h.ident not in claimed
                     or (h is s.hosts[0] and h.ident in splitting)),
                    outer[0] if outer else s.hosts[-1])
        claimed.add(host.ident)
        bands.setdefault(host.ident, _Band()).requests.append(host.request)
    points = {ident: _flat(r) for ident in bands
              if (r := _runs(find_mark(tree.get_root(), ident).child(0))) is not None}
    for s in sorted(strips, key=lambda s: s.depth):  # enclosing loops first
        if s.parent is None or s.parent not in points:
            continue
        if _fits(points[s.parent], s.full) and _isolated(
                points[s.parent], bands[s.parent].requests).is_equal(
                points[s.parent].intersect(s.full)):
            mine = bands[s.ident]
            mine.requests = [r for r in mine.requests if r is not s.own]
    for ident, opts in bands.items():
        band = find_mark(tree.get_root(), ident).child(0)
        if opts.requests and ident in points:
            isolated = _isolated(points[ident], opts.requests)
            if not isolated.is_empty():
                band = band.band_set_ast_build_options(_isolate_option(isolated))
                if opts.encloses_strip and opts.loop_type is None:
                    opts.loop_type = ATOMIC  # the rest of the loop in one piece
        if opts.loop_type is not None:
            band = band.band_member_set_ast_loop_type(0, opts.loop_type)
        if opts.isolate_loop_type is not None:
            band = band.band_member_set_isolate_ast_loop_type(0, opts.isolate_loop_type)
        tree = band.get_schedule()
    return tree


def _runs(band: isl.ScheduleNode) -> isl.Map | None:
    """Outer schedule point → the values the one-member ``band`` takes there
    (``None`` when the band runs over no instance)."""
    domain = band.get_domain()
    outer = band.get_prefix_schedule_union_map().intersect_domain(domain)
    here = band.band_get_partial_schedule_union_map().intersect_domain(domain)
    runs = outer.reverse().apply_range(here)
    if runs.is_empty():
        return None
    return isl.Map.from_union_map(runs)


def _full_outer_points(runs: isl.Map, factor: int) -> isl.Set:
    """The outer points at which ``runs`` takes every value of ``0 .. factor-1``."""
    values = isl.Set.universe(runs.get_space().range())
    values = values.lower_bound_val(isl.dim_type.set, 0, isl.Val(0))
    values = values.upper_bound_val(isl.dim_type.set, 0, isl.Val(factor - 1))
    every = isl.Map.from_domain_and_range(runs.domain(), values)
    return runs.domain().subtract(every.subtract(runs).domain())


def _flat(points: isl.Map) -> isl.Set:
    """``{ [p] -> [v] }`` as the anonymous flat set ``{ [p, v] }``."""
    return _flat_set(points.wrap().flatten())


def _flat_set(points: isl.Set) -> isl.Set:
    """``points`` with no tuple name (so that sets of outer points compare)."""
    return points.reset_tuple_id()


def _enclosing_loop(mark: isl.ScheduleNode) -> str | None:
    """The mark id of the loop whose band directly encloses ``mark`` (nothing
    between them but the mark), if any."""
    parent = mark.parent()
    if parent.get_type() != _T.band or parent.band_n_member() != 1:
        return None
    above = parent.parent()
    if above.get_type() != _T.mark:
        return None
    return above.mark_get_id().get_name()


def _hosts(mark: isl.ScheduleNode, full: isl.Set, outer: isl.Set,
           serial: set[str]) -> list[_Host]:
    """The loop bands above the strip at ``mark`` that can test whether it is
    full (``full``: the flat ``outer`` points where it is) because the test
    does not change in the loops between them and the strip: from the band
    just inside the innermost loop the test depends on, down to the strip's
    enclosing band; each with its isolate request. When that loop's body is
    not one band (an init, the update and an epilogue in sequence), its own
    band comes first, if it is in ``serial``: isolating the full strips there
    splits the loop, so the whole body of a full tile has constant bounds."""
    depth = full.dim(isl.dim_type.set)
    d = next(d for d in range(depth + 1)
             if d == depth or _extend(full.project_out(isl.dim_type.set, d, depth - d),
                                      depth - d).intersect(outer).is_subset(full))
    proj = full.project_out(isl.dim_type.set, d, depth - d)
    out: list[_Host] = []
    node = mark.parent()
    while d < depth and node.get_tree_depth() > 0:
        if node.get_type() == _T.mark and node.child(0).get_type() == _T.band:
            here = node.child(0).get_schedule_depth()
            if here < d - 1:
                break
            ident = node.mark_get_id().get_name()
            if here == d - 1:
                below = node.child(0).child(0)
                if ident in serial and below.get_type() != _T.mark:
                    out.append(_Host(ident, proj, splits=True))
                break
            out.append(_Host(ident, _extend(proj, here - d + 1)))
        node = node.parent()
    return out[::-1]


def _extend(points: isl.Set, n: int) -> isl.Set:
    """``points`` with ``n`` unconstrained trailing dimensions."""
    return points.add_dims(isl.dim_type.set, n)


def _fits(points: isl.Set, request: isl.Set) -> bool:
    """Whether ``request`` speaks of ``points``' flat (outer point, value)
    shape: a band of several members (after ``fuse``) has more values than
    a strip's request made for one."""
    return points.dim(isl.dim_type.set) == request.dim(isl.dim_type.set)


def _isolated(points: isl.Set, requests: list[isl.Set]) -> isl.Set:
    """The flat (outer point, value) ``points`` of a band that every request
    in ``requests`` asks to isolate; none when a request does not fit the
    band's shape (isolating nothing only costs the full tiles' constant
    bounds: the loop nest is the same computation)."""
    for r in requests:
        if not _fits(points, r):
            return points.subtract(points)
        points = points.intersect(r)
    return points


def _isolate_option(isolated: isl.Set) -> isl.UnionSet:
    """isl's ``isolate[[outer] -> [value]]`` option for the flat set ``isolated``."""
    depth = isolated.dim(isl.dim_type.set) - 1
    iso = isl.Map.from_range(isolated).move_dims(isl.dim_type.in_, 0, isl.dim_type.out, 0,
                                                 depth)
    return isl.UnionSet.from_set(iso.wrap().set_tuple_name("isolate"))
