"""Pictures of schedules: execution order, tiles, wavefronts, refusals.

``order`` numbers every instance by when it runs under a schedule: the rank
of its time in the schedule tree's flattened map (``tree.get_map()``) at the
given sizes. Instances that differ only in the values of parallel (or
vector) loops run together: they form one *wavefront*, share one number and
one colour. Instances that share the values of every loop outside a split's
inner loop (``split``, ``tile``) form one *tile*, outlined. ``compare`` puts
two such pictures side by side, ``violation`` highlights the instance pair
of a broken dependence.

Loop values, loop kinds and tiles come from walking the isl schedule tree
(bands under the ``Schedule``'s loop marks) at the given sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import islpy as isl

from ..deps import dependences
from ..errors import ArgumentError
from ..kinds import LoopKind
from ..program import as_program
from .domains import (
    KIND_COLORS,
    Layout,
    draw_arrows,
    draw_points,
    layout,
    new_axes,
    put_legend,
    style_axes,
)
from .points import (
    Instance,
    check_sizes,
    check_statements,
    dependence_pairs,
    deps_mode,
    fix,
    instances,
    parse_instance,
    parse_sizes,
    points_of,
    schedule_times,
)

_T = isl.schedule_node_type
#: number the points in the picture up to this many instances
MAX_NUMBERED = 150


@dataclass(frozen=True)
class Step:
    """Where an instance sits in a schedule: its rank in execution order, its
    wavefront (rank among the groups that run together) and its tile (``None``
    outside split loops)."""

    rank: int
    wave: int
    tile: tuple | None


def _as_schedule(obj):
    """A ``Schedule`` of ``obj`` (a kernel runs in its original order)."""
    from ..schedule import Schedule

    return obj if isinstance(obj, Schedule) else Schedule(obj)


def steps(sch, sizes: Mapping[str, int], stmts: list[str]) -> dict[Instance, Step]:
    """Each instance of ``stmts`` → its ``Step`` under the ``Schedule`` ``sch``
    at ``sizes`` (checked by the caller).

    Example (a 2×2 tiling of a 4×4 nest: four tiles of four instances)::

        >>> import polyop
        >>> @polyop.kernel
        ... def add(A: "f64[4, 4]"):
        ...     for i in range(4):
        ...         for j in range(4):
        ...             A[i, j] += 1.0
        >>> sch = polyop.Schedule(add)
        >>> i, j = sch.get_loops("S0")
        >>> io, ii = sch.split(i, 2)
        >>> st = steps(sch, {}, ["S0"])
        >>> len({s.tile for s in st.values()}), st[("S0", (2, 1))].rank
        (2, 9)
    """
    plan = sch.lowering_plan()
    times = schedule_times(sch.tree, sizes, stmts)
    paths = _paths(sch.tree, sizes, set(times))
    kinds = {k: v.kind for k, v in plan.loop_records.items()}
    strips = {k for k, v in plan.loop_records.items() if v.strip is not None}
    order = sorted(times, key=lambda inst: times[inst])
    waves: dict[tuple, int] = {}
    out: dict[Instance, Step] = {}
    for rank, inst in enumerate(order):
        path = paths.get(inst, [])
        key = tuple(v for mark, v in path if kinds.get(mark) not in (LoopKind.PARALLEL,
                                                                     LoopKind.VECTOR))
        wave = waves.setdefault(key, len(waves))
        cut = next((k for k, (mark, _) in enumerate(path) if mark in strips), None)
        tile = tuple(v for _, v in path[:cut]) if cut is not None else None
        out[inst] = Step(rank, wave, tile)
    return out


def _paths(tree: isl.Schedule, sizes: Mapping[str, int],
           keep: set[Instance]) -> dict[Instance, list[tuple[str | None, int]]]:
    """Each instance → the (loop mark id, value) of every band member above it,
    outermost first, sequence positions included (mark ``None``)."""
    out: dict[Instance, list[tuple[str | None, int]]] = {i: [] for i in keep}
    domain = tree.get_domain()  # filters alone may be unbounded (a whole statement)

    def members(node: isl.ScheduleNode) -> dict[Instance, tuple[int, ...]]:
        rel = node.band_get_partial_schedule_union_map().intersect_domain(node.get_domain())
        maps: list[isl.Map] = []
        fix(rel, sizes).foreach_map(maps.append)
        found: dict[Instance, tuple[int, ...]] = {}
        for m in maps:
            n_in = m.dim(isl.dim_type.in_)
            for p in points_of(m):
                found[(m.get_tuple_name(isl.dim_type.in_), p[:n_in])] = p[n_in:]
        return found

    def visit(node: isl.ScheduleNode, insts: set[Instance], mark: str | None) -> None:
        t = node.get_type()
        if not insts or t == _T.leaf:
            return
        if t == _T.band:
            values = members(node)
            for inst in insts:
                for v in values.get(inst, ()):
                    out[inst].append((mark, v))
            mark = None
        elif t == _T.mark:
            mark = node.mark_get_id().get_name()
        if t in (_T.sequence, _T.set):
            for k in range(node.n_children()):
                child = node.child(k)
                chosen = insts & _set_points(child.filter_get_filter().intersect(domain), sizes)
                for inst in chosen:
                    out[inst].append((None, k))
                visit(child, chosen, None)
            return
        if t == _T.filter:
            insts = insts & _set_points(node.filter_get_filter().intersect(domain), sizes)
        for k in range(node.n_children()):
            visit(node.child(k), insts, mark)

    visit(tree.get_root(), set(keep), None)
    return out


def _set_points(us: isl.UnionSet, sizes: Mapping[str, int]) -> set[Instance]:
    sets: list[isl.Set] = []
    fix(us, sizes).foreach_set(sets.append)
    return {(s.get_tuple_name(), p) for s in sets for p in points_of(s)}


def _loop_notes(sch) -> str:
    """The loops that are not serial, as ``parallel: i; vector: j``."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in sch.loop_info().values():
        if kind != LoopKind.SERIAL:
            by_kind.setdefault(LoopKind(kind).primitive, []).append(name)
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in by_kind.items())


def _draw_order(ax, sch, fixed: dict[str, int], names: list[str], lay: Layout,
                tiles: bool, deps: str | None, numbers: bool | None) -> dict[Instance, Step]:
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    program = sch.program
    insts = instances(program, fixed, names)
    st = steps(sch, fixed, names)
    parallel = any(s.wave != s.rank for s in st.values()) or _loop_notes(sch)
    n_steps = max((s.wave for s in st.values()), default=0) + 1
    norm = Normalize(0, max(n_steps - 1, 1))
    cmap = colormaps["viridis"]
    if deps:
        draw_arrows(ax, lay, dependence_pairs(dependences(program), fixed, names, mode=deps))
    if tiles:
        _draw_tiles(ax, lay, st)
    if not parallel:  # the path through the instances, in execution order
        path = sorted(st, key=lambda i: st[i].rank)
        ax.plot([lay.pos(i)[0] for i in path], [lay.pos(i)[1] for i in path], color="#999999",
                linewidth=0.8, zorder=1, label="execution order")
    sc = draw_points(ax, lay, insts, colors=lambda i: st[i].wave, cmap=cmap, norm=norm)
    total = sum(len(v) for v in insts.values())
    if numbers or (numbers is None and total <= MAX_NUMBERED and not lay.projected):
        for inst, s in st.items():
            x, y = lay.pos(inst)
            shade = cmap(norm(s.wave))
            light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.5
            ax.annotate(str(s.wave), (x, y), xytext=(0, 9), textcoords="offset points",
                        ha="center", fontsize=7, color="black" if light else "#222222",
                        zorder=4)
    if sc is not None:
        what = "wavefront (instances that run together)" if parallel else "execution step"
        from matplotlib.ticker import MaxNLocator

        bar = ax.figure.colorbar(sc, ax=ax, label=what, shrink=0.8)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    return st


def _draw_tiles(ax, lay: Layout, st: Mapping[Instance, Step]) -> None:
    """Each tile as the outline of its instances, padded (``gid`` ``tile:<n>``)."""
    from matplotlib.patches import Polygon

    groups: dict[tuple, list[Instance]] = {}
    for inst, s in st.items():
        if s.tile is not None:
            groups.setdefault(s.tile, []).append(inst)
    for k, (_, members) in enumerate(sorted(groups.items())):
        corners = [(x + dx, y + dy) for x, y in (lay.pos(i) for i in members)
                   for dx in (-0.35, 0.35) for dy in (-0.35, 0.35)]
        hull = _hull(corners)
        poly = Polygon(hull, closed=True, fill=True, facecolor=("#ff7f0e", 0.06),
                       edgecolor="#e6550d", linewidth=1.2, zorder=1,
                       label="tile (same outer loop values)" if k == 0 else None)
        poly.set_gid(f"tile:{k}")
        ax.add_patch(poly)


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain), counter-clockwise."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _title(sch, fixed: Mapping[str, int]) -> str:
    trace = [t.strip() for t in str(sch).splitlines()[1:]]
    trace = [t for t in trace if not t.startswith("(")]  # "(original order)"
    at = ", ".join(f"{k}={v}" for k, v in fixed.items())
    lines = [f"{sch.program.name}" + (f" at {at}" if at else "") + ": "
             + (", ".join(trace) if trace else "original order")]
    notes = _loop_notes(sch)
    if notes:
        lines.append(notes)
    return "\n".join(lines)


def order(schedule, sizes: Mapping[str, int] | None = None,
          stmts: Sequence[str] | str | None = None,
          tiles: bool = True, deps: bool | str = False, numbers: bool | None = None, ax=None,
          dims: Sequence[int | str] | None = None):
    """Draw the execution order of ``schedule`` (a ``polyop.Schedule``, or a
    kernel: its original order) at ``sizes``: each instance coloured and
    numbered by its step; on parallel or vector loops, by its wavefront (the
    instances that run together share a number). Tiles (instances that share
    the loops outside a split's inner loop) are outlined; the loops that are
    not serial are named under the title. ``deps="direct"`` (or ``True``)
    adds the dependence arrows from each sink's nearest source, ``deps="all"``
    every memory-based pair (as in ``polyop.viz.domain``); ``numbers``
    forces the step numbers on or off (default: on up to ``MAX_NUMBERED``
    instances). ``stmts``, ``dims`` and ``ax`` as in
    ``polyop.viz.domain``. Returns the ``Figure``.

    Example::

        >>> import polyop, polyop.viz
        >>> @polyop.kernel
        ... def add(n: int, A: "f64[n, n]"):
        ...     for i in range(n):
        ...         for j in range(n):
        ...             A[i, j] += 1.0
        >>> sch = polyop.Schedule(add)
        >>> i, j = sch.get_loops("S0")
        >>> sch.interchange(i, j)
        >>> fig = polyop.viz.order(sch, sizes={"n": 4})
        >>> len(fig.axes)  # the picture and its colour bar
        2
    """
    sch = _as_schedule(schedule)
    mode = deps_mode(deps)
    fixed = check_sizes(sch.program, sizes)
    names = check_statements(sch.program, stmts)
    lay = layout(sch.program, names, dims)
    fig, ax = new_axes(ax, (6.4, 5.6))
    _draw_order(ax, sch, fixed, names, lay, tiles, mode, numbers)
    style_axes(ax, lay, _title(sch, fixed))
    put_legend(ax, mode)
    return fig


def compare(before, after, sizes: Mapping[str, int] | None = None,
            stmts: Sequence[str] | str | None = None,
            tiles: bool = True, deps: bool | str = False,
            dims: Sequence[int | str] | None = None):
    """Draw the execution orders of two schedules of one kernel side by side
    (``before`` may be the kernel itself: its original order), as ``order``
    draws each. Returns the ``Figure`` (two pictures, two colour bars).

    Example::

        >>> import polyop, polyop.viz
        >>> @polyop.kernel
        ... def sweep(n: int, A: "f64[n, n]"):
        ...     for i in range(1, n):
        ...         for j in range(1, n):
        ...             A[i, j] = A[i - 1, j] + A[i, j - 1]
        >>> after = polyop.Schedule(sweep)
        >>> i, j = after.get_loops("S0")
        >>> after.skew(i, j, 1)
        >>> fig = polyop.viz.compare(sweep, after, sizes={"n": 5})
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes[:2]]
        ['sweep at n=5: original order', 'sweep at n=5: skew(i, j, 1)']
    """
    from matplotlib.figure import Figure

    a, b = _as_schedule(before), _as_schedule(after)
    mode = deps_mode(deps)
    if a.program.name != b.program.name:
        raise ArgumentError(f"compare: schedules of two kernels ({a.program.name}, "
                            f"{b.program.name}); compare two schedules of one kernel", "after")
    fixed = check_sizes(a.program, sizes)
    names = check_statements(a.program, stmts)
    check_statements(b.program, names)
    fig = Figure(figsize=(12, 5.6), layout="constrained")
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for ax, sch in ((left, a), (right, b)):
        lay = layout(sch.program, names, dims)
        _draw_order(ax, sch, fixed, names, lay, tiles, mode, None)
        style_axes(ax, lay, _title(sch, fixed))
        put_legend(ax, mode)
    return fig


def _roomier(program, v, src: Instance, dst: Instance, sampled: dict[str, int],
             names: list[str], most: int = 100) -> dict[str, int]:
    """Sizes a little larger than ``sampled`` (isl samples the smallest), every
    size grown by the same amount, where the pair is still a ``v.kind``
    dependence on ``v.array`` and at most ``most`` instances are drawn; else
    ``sampled``."""
    rel = dependences(program).by_array[v.kind][v.array]
    pair = isl.Map(f"{{ {src[0]}[{', '.join(map(str, src[1]))}] -> "
                   f"{dst[0]}[{', '.join(map(str, dst[1]))}] }}")
    for grow in (4, 3, 2, 1):
        bigger = {k: x + grow for k, x in sampled.items()}
        try:
            check_sizes(program, bigger)
            instances(program, bigger, names, limit=most)
        except ArgumentError:
            continue
        if not fix(rel, bigger).intersect(isl.UnionMap.from_map(pair)).is_empty():
            return bigger
    return sampled


def violation(error, schedule, sizes: Mapping[str, int] | None = None, which: int = 0,
              dims: Sequence[int | str] | None = None, ax=None):
    """Draw a refused primitive: ``error`` is an ``IllegalScheduleError``, a
    ``Violation`` or the list ``Schedule.check()`` returns; ``schedule`` the
    schedule to draw it on: the illegal one (built with ``check=False``, the
    primitive applied) shows the order that breaks the dependence, the kernel
    its original order. The ``which``-th violation's source and sink are
    ringed in red and joined by a thick arrow; ``sizes`` default to those
    the violation was sampled at, grown a little where the pair stays one
    (isl samples the smallest). Returns the ``Figure``.

    Example::

        >>> import polyop, polyop.viz
        >>> @polyop.kernel
        ... def t(n: int, A: "f64[n, n]"):
        ...     for i in range(1, n):
        ...         for j in range(n - 1):
        ...             A[i, j] = A[i - 1, j + 1]
        >>> sch = polyop.Schedule(t, check=False)
        >>> i, j = sch.get_loops("S0")
        >>> sch.interchange(i, j)
        >>> v = sch.check()
        >>> fig = polyop.viz.violation(v, sch)
        >>> fig.axes[0].get_title().splitlines()[0]
        'RAW dependence on A broken: S0[i=1, j=1] must run before S0[i=2, j=0]'
    """
    found = getattr(error, "violations", error)
    found = list(found) if isinstance(found, (list, tuple)) else [found]
    if not found or not all(hasattr(v, "source") and hasattr(v, "kind") for v in found):
        raise ArgumentError(f"violation: expected an IllegalScheduleError or Violation(s), "
                            f"not {type(error).__name__}", "error")
    if not 0 <= which < len(found):
        raise ArgumentError(f"violation: which={which}, but there are {len(found)} "
                            "violations", "which")
    v = found[which]
    sch = _as_schedule(schedule)
    program = as_program(sch)
    src, dst = parse_instance(v.source), parse_instance(v.sink)
    names = check_statements(program, list(dict.fromkeys([src[0], dst[0]])))
    if sizes is None:
        fixed = _roomier(program, v, src, dst, check_sizes(program, parse_sizes(v.sizes)),
                         names)
    else:
        fixed = check_sizes(program, sizes)
    insts = instances(program, fixed, names)
    for inst, role in ((src, "source"), (dst, "sink")):
        if inst[1] not in insts[inst[0]]:
            raise ArgumentError(f"violation: the {role} {v.source if role == 'source' else v.sink}"
                                f" is no instance at sizes "
                                f"{', '.join(f'{k}={x}' for k, x in fixed.items())}; leave "
                                f"sizes out to draw at the violation's own ({v.sizes})", "sizes")
    lay = layout(program, names, dims)
    fig, ax = new_axes(ax, (6.4, 5.8))
    st = _draw_order(ax, sch, fixed, names, lay, tiles=False, deps=None, numbers=None)
    (x0, y0), (x1, y1) = lay.pos(src), lay.pos(dst)
    color = KIND_COLORS[v.kind]
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=5, arrowprops=dict(
        arrowstyle="-|>,head_width=0.4,head_length=0.8", color=color, linewidth=2.5,
        shrinkA=7, shrinkB=7))
    ring = ax.scatter([x0, x1], [y0, y1], s=260, facecolors="none", edgecolors=color,
                      linewidths=2.2, zorder=5, label=f"{v.kind} pair: {v.source} → {v.sink}")
    ring.set_gid("violation")
    for inst, text, (x, y) in ((src, "source", (x0, y0)), (dst, "sink", (x1, y1))):
        ax.annotate(f"{text}, step {st[inst].wave}", (x, y), xytext=(10, -14),
                    textcoords="offset points", fontsize=8, color=color, zorder=6,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor=color))
    sv, tv = v.verbs
    head = f"{v.kind} dependence on {v.array} broken: {v.source} must run before {v.sink}"
    detail = f"{v.source} {sv} {v.element}, {v.sink} {tv} it"
    if v.loop:
        detail += f"; at loop {v.loop}"
    style_axes(ax, lay, head + "\n" + detail + "\n" + _title(sch, fixed))
    put_legend(ax)
    return fig
