"""Iteration domains as points, dependences as arrows (``polyop.viz.domain``).

One picture, one axes: each statement's instances at the given sizes as
integer points (one marker per statement, nudged apart when several share a
point), and each dependence pair as an arrow from source to sink, coloured by
kind (RAW red, WAR blue, WAW green), another shade per array, the
legend naming both. A statement with more than two loops is projected onto
two of its iterators (``dims``); instances that land on one point are drawn
once, larger, and arrows inside one point are left out (the legend counts
them).

The drawing helpers here (layout, points, arrows) are shared with
``polyop.viz.schedules``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..deps import KINDS, dependences
from ..errors import ArgumentError
from ..program import Program, as_program
from .points import (
    Instance,
    check_sizes,
    check_statements,
    dependence_pairs,
    deps_mode,
    instances,
)

KIND_COLORS = {"RAW": "#d62728", "WAR": "#1f77b4", "WAW": "#2ca02c"}
#: per kind, one shade per array (the first is the kind's colour)
KIND_SHADES = {"RAW": ("#d62728", "#ff7f0e", "#8c2d04", "#e377c2"),
               "WAR": ("#1f77b4", "#17becf", "#08306b", "#9467bd"),
               "WAW": ("#2ca02c", "#bcbd22", "#00441b", "#7f7f7f")}
KIND_NAMES = {"RAW": "RAW (flow)", "WAR": "WAR (anti)", "WAW": "WAW (output)"}
STMT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
STMT_COLORS = ("#333333", "#8c564b", "#9467bd", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
               "#ff7f0e")
#: an arrow leaves this fraction of its length out at each end, so that its
#: head stops at the sink's marker instead of under it
ARROW_SHRINK = 0.12
#: per kind, how far (data units, to the left of the arrow's direction) its
#: arrows are moved aside, so that a RAW, a WAR and a WAW pair joining the same
#: two points show as three parallel arrows instead of one hiding the others
KIND_OFFSETS = {"RAW": 0.0, "WAR": 0.09, "WAW": -0.09}
#: the legend's title, per ``deps`` mode: which pairs the arrows are
DEPS_TITLES = {"direct": "arrows: nearest source per sink and element (deps='direct')",
               "all": "arrows: every dependent pair, memory-based (deps='all')"}


@dataclass(frozen=True)
class Layout:
    """Where each instance is drawn: two chosen iterators per statement, and a
    small offset per statement when several are drawn together."""

    dims: dict[str, tuple[int | None, int | None]]
    offsets: dict[str, tuple[float, float]]
    xlabel: str
    ylabel: str
    projected: dict[str, str]

    def pos(self, inst: Instance) -> tuple[float, float]:
        name, values = inst
        (a, b), (dx, dy) = self.dims[name], self.offsets[name]
        return ((values[a] if a is not None else 0) + dx,
                (values[b] if b is not None else 0) + dy)


def layout(program: Program, stmts: list[str], dims: Sequence[int | str] | None) -> Layout:
    """The ``Layout`` of ``stmts``: ``dims`` two iterator positions or names
    (default the first two loops), the same for every statement."""
    if dims is not None and (isinstance(dims, str) or len(dims) != 2):
        raise ArgumentError(f"dims must name two iterators (names or positions), not {dims!r}",
                            "dims")
    chosen: dict[str, tuple[int | None, int | None]] = {}
    projected: dict[str, str] = {}
    for name in stmts:
        its = program.statement(name).iterators
        if dims is None:
            pair = tuple(k if k < len(its) else None for k in (0, 1))
        else:
            pair = tuple(_dim_index(d, its, name) for d in dims)
        chosen[name] = pair  # type: ignore[assignment]
        hidden = [v for k, v in enumerate(its) if k not in pair]
        if hidden:
            projected[name] = ", ".join(hidden)
    offsets = {name: (0.0, 0.0) for name in stmts}
    if len(stmts) > 1:  # statements sharing a point stay apart, in a small ring
        ring = [(-0.13, 0.13), (0.13, -0.13), (0.13, 0.13), (-0.13, -0.13),
                (0.0, 0.18), (0.0, -0.18), (0.18, 0.0), (-0.18, 0.0)]
        offsets = {name: ring[k % len(ring)] for k, name in enumerate(stmts)}

    def label(axis: int) -> str:
        names = []
        for name in stmts:
            k = chosen[name][axis]
            its = program.statement(name).iterators
            names.append(its[k] if k is not None else "–")
        distinct = list(dict.fromkeys(names))
        if len(distinct) == 1:
            return distinct[0]
        return ", ".join(f"{n} ({s})" for n, s in zip(names, stmts))

    return Layout(chosen, offsets, label(0), label(1), projected)


def _dim_index(d: int | str, its: tuple[str, ...], stmt: str) -> int | None:
    if isinstance(d, str):
        if d not in its:
            raise ArgumentError(f"dims: statement {stmt} has no iterator {d!r} (its iterators: "
                                f"{', '.join(its) or 'none'}); pick stmts=[...] or other dims",
                                "dims")
        return its.index(d)
    if isinstance(d, bool) or not isinstance(d, int) or d < 0:
        raise ArgumentError(f"dims: {d!r} is neither an iterator name nor a position", "dims")
    return d if d < len(its) else None


def new_axes(ax, size: tuple[float, float] = (6.4, 5.0)):
    """``(figure, axes)``: ``ax``'s, or a new figure's (no pyplot state)."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def style_axes(ax, lay: Layout, title: str) -> None:
    """Integer ticks, equal scales, the iterators as axis labels, a title."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_aspect("equal", adjustable="box")
    ax.margins(0.12)
    ax.grid(True, color="#dddddd", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.set_xlabel(lay.xlabel)
    ax.set_ylabel(lay.ylabel)
    ax.set_title(title, fontsize=10)


def draw_points(ax, lay: Layout, insts: Mapping[str, list[tuple[int, ...]]],
                colors: Callable[[Instance], float] | None = None, cmap=None, norm=None,
                labels: bool = True):
    """Each statement's instances as one scatter (``gid`` the statement name),
    coloured by ``colors(instance)`` through ``cmap`` when given; returns the
    last scatter (for a colour bar)."""
    last = None
    for k, (name, pts) in enumerate(insts.items()):
        where = Counter(lay.pos((name, p)) for p in pts)
        xy = list(where)
        sizes = [36 * (1 + 0.5 * (where[q] > 1)) for q in xy]
        label = f"{name}: {len(pts)} instances" if labels else None
        if name in lay.projected:
            label = f"{label}, projected ({lay.projected[name]} hidden)" if labels else None
        kw: dict = dict(marker=STMT_MARKERS[k % len(STMT_MARKERS)], s=sizes, zorder=3,
                        label=label, edgecolors="black", linewidths=0.5)
        if colors is not None:
            first = {}
            for p in pts:
                first.setdefault(lay.pos((name, p)), colors((name, p)))
            kw.update(c=[first[q] for q in xy], cmap=cmap, norm=norm)
        else:
            kw.update(color=STMT_COLORS[k % len(STMT_COLORS)])
        last = ax.scatter([q[0] for q in xy], [q[1] for q in xy], **kw)
        last.set_gid(f"stmt:{name}")
    return last


def draw_arrows(ax, lay: Layout, pairs: Mapping[tuple[str, str], list[tuple[Instance, Instance]]],
                legend: bool = True) -> None:
    """One quiver per (kind, array) (``gid`` ``"RAW:A"``): an arrow from each
    source to its sink, both ends shortened by ``ARROW_SHRINK`` and moved
    aside by the kind's ``KIND_OFFSETS``; the kind's colour, in another shade
    per array."""
    def color(kind: str, array: str) -> str:
        shades = KIND_SHADES[kind]
        arrays = sorted(a for k, a in pairs if k == kind)
        return shades[arrays.index(array) % len(shades)]
    for (kind, array), ps in sorted(pairs.items(), key=lambda kv: (KINDS.index(kv[0][0]),
                                                                     kv[0][1])):
        segs = {(lay.pos(s), lay.pos(t)) for s, t in ps}
        inside = sum(1 for a, b in segs if a == b)
        segs = sorted((a, b) for a, b in segs if a != b)
        label = f"{KIND_NAMES[kind]} on {array}: {len(ps)} pairs"
        if inside:
            label += f" ({inside} within a point)"
        if not segs:
            ax.plot([], [], color=color(kind, array), label=label if legend else None)
            continue
        side = [_aside(a, b, KIND_OFFSETS[kind]) for a, b in segs]
        x = [a[0] + ARROW_SHRINK * (b[0] - a[0]) + dx for (a, b), (dx, _) in zip(segs, side)]
        y = [a[1] + ARROW_SHRINK * (b[1] - a[1]) + dy for (a, b), (_, dy) in zip(segs, side)]
        u = [(1 - 2 * ARROW_SHRINK) * (b[0] - a[0]) for a, b in segs]
        v = [(1 - 2 * ARROW_SHRINK) * (b[1] - a[1]) for a, b in segs]
        q = ax.quiver(x, y, u, v, angles="xy", scale_units="xy", scale=1,
                      color=color(kind, array), width=0.004, headwidth=4, headlength=5,
                      zorder=2, alpha=0.85, label=label if legend else None)
        q.set_gid(f"{kind}:{array}")


def _aside(a: tuple[float, float], b: tuple[float, float], by: float) -> tuple[float, float]:
    """The vector of length ``by`` perpendicular to ``a → b``, to its left."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    norm = (dx * dx + dy * dy) ** 0.5
    return (-dy * by / norm, dx * by / norm)


def put_legend(ax, deps: str | None = None) -> None:
    """The legend under the axes, where it hides no point; with arrows drawn
    in mode ``deps``, its title says which pairs they are."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False,
                  title=DEPS_TITLES.get(deps or ""), title_fontsize=8)


def domain(obj, sizes: Mapping[str, int] | None = None, stmts: Sequence[str] | str | None = None,
           deps: bool | str = "direct", ax=None, dims: Sequence[int | str] | None = None):
    """Draw the iteration domains of ``obj`` (a kernel, ``Schedule`` or program)
    at ``sizes`` (every size parameter, e.g. ``{"n": 5}``), with the dependences
    between the drawn statements as arrows.

    ``deps="direct"`` (the default) draws, for each sink instance, element
    it accesses and kind, one arrow from the nearest source in the original
    order (the last write before a read or a write, the last read before a
    write): a stencil's neighbourhood, without the transitive pairs;
    ``deps="all"`` every pair of the memory-based dependences (all earlier
    accesses to the element: a stencil's picture fills with long arrows);
    ``deps=False`` none. The legend's title says which.

    ``stmts`` picks statements (default all); ``dims`` the two iterators to draw
    (names or positions, default the first two: deeper nests are projected);
    ``ax`` an existing matplotlib axes to draw into. Points and dependence pairs
    come from isl at those sizes. Returns the matplotlib ``Figure``.

    Raises ``ArgumentError`` before drawing for a missing or unknown size, an
    unknown statement, iterator or ``deps`` mode, or more points
    (``points.MAX_POINTS``) or arrows (``points.MAX_ARROWS``) than a picture
    can show.

    Example::

        >>> import polyop, polyop.viz
        >>> @polyop.kernel
        ... def prefix(n: int, A: "f64[n, n]"):
        ...     for i in range(1, n):
        ...         for j in range(n):
        ...             A[i, j] += A[i - 1, j]
        >>> fig = polyop.viz.domain(prefix, sizes={"n": 4})
        >>> len(fig.axes)
        1
        >>> [c.get_gid() for c in fig.axes[0].collections]
        ['stmt:S0', 'RAW:A']
    """
    program = as_program(obj)
    mode = deps_mode(deps)
    fixed = check_sizes(program, sizes)
    names = check_statements(program, stmts)
    lay = layout(program, names, dims)
    insts = instances(program, fixed, names)
    pairs = dependence_pairs(dependences(program), fixed, names, mode=mode) if mode else {}
    fig, ax = new_axes(ax)
    draw_points(ax, lay, insts)
    draw_arrows(ax, lay, pairs)
    at = ", ".join(f"{k}={v}" for k, v in fixed.items())
    what = "iteration domain" + ("s" if len(names) > 1 else "")
    style_axes(ax, lay, f"{program.name}: {what}" + (f" at {at}" if at else "")
               + (f" and {mode} dependences" if mode else ""))
    put_legend(ax, mode)
    return fig
