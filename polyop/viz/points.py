"""Statement instances and dependence pairs at concrete sizes, for drawing.

Pictures show integer points, so every relation of the model (domains,
dependences, schedules) is fixed at the sizes the caller gives and enumerated
by isl. The checks a drawing needs happen here, before anything is drawn:
every size parameter given (and no unknown one), the kernel's assumptions
holding, the statements known, and no more points than a picture can show.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def tri(n: int, A: "f64[n, n]"):
    ...     for i in range(n):
    ...         for j in range(i + 1):
    ...             A[i, j] += 1.0
    >>> inst = instances(tri.program, {"n": 3}, ["S0"])
    >>> inst["S0"]
    [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import islpy as isl

from ..errors import ArgumentError
from ..program import Program

#: at most this many statement instances in one picture (beyond, nothing is readable)
MAX_POINTS = 2000
#: at most this many dependence arrows in one picture
MAX_ARROWS = 3000
#: the dependences a picture can draw (``deps=``): per sink its nearest source, or every pair
DEPS_MODES = ("direct", "all")
#: per dependence kind, the accesses of its source and of its sink
ROLES = {"RAW": ("writes", "reads"), "WAR": ("reads", "writes"), "WAW": ("writes", "writes")}

Instance = tuple[str, tuple[int, ...]]
Pairs = dict[tuple[str, str], list[tuple[Instance, Instance]]]


def check_sizes(program: Program, sizes: Mapping[str, int] | None) -> dict[str, int]:
    """``sizes`` as plain ints, checked: one value per size parameter of
    ``program``, no other name, and the kernel's assumptions hold (``None``:
    no sizes, for a kernel without size parameters)."""
    sizes = {} if sizes is None else sizes
    if not isinstance(sizes, Mapping):
        raise ArgumentError(f"sizes must be a dict of the size parameters "
                            f"({', '.join(program.params) or 'none'}), not {sizes!r}", "sizes")
    unknown = [k for k in sizes if k not in program.params]
    if unknown:
        raise ArgumentError(f"sizes: {', '.join(map(repr, unknown))} is not a size parameter of "
                            f"{program.name} (its sizes: {', '.join(program.params) or 'none'})",
                            "sizes")
    missing = [p for p in program.params if p not in sizes]
    if missing:
        given = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ArgumentError(f"sizes: no value for {', '.join(missing)} of {program.name} "
                            f"(given: {given or 'nothing'}); pass sizes={{"
                            + ", ".join(f"'{p}': 4" for p in program.params) + "}", "sizes")
    out: dict[str, int] = {}
    for p in program.params:
        v = sizes[p]
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise ArgumentError(f"sizes: {p}={v!r} is not an integer", "sizes")
        out[p] = int(v)
    if fix(program.context, out).is_empty():
        text = ", ".join(f"{k}={v}" for k, v in out.items())
        why = ", ".join(f"'assert {a}'" for a in program.assumptions) or \
            "that sizes are non-negative"
        raise ArgumentError(f"sizes {text} violate the kernel's assumption {why}", "sizes")
    return out


def fix(obj, sizes: Mapping[str, int]):
    """``obj`` (an isl set, map or their union) at ``sizes``: its size
    parameters fixed, then dropped (the result has none)."""
    if sizes:
        names = ", ".join(sizes)
        eqs = " and ".join(f"{k} = {v}" for k, v in sizes.items())
        obj = obj.intersect_params(isl.Set(f"[{names}] -> {{ : {eqs} }}"))
    return obj.project_out_all_params()


def check_statements(program: Program, stmts: Iterable[str] | str | None) -> list[str]:
    """The statement names to draw: all of ``program``'s when ``stmts`` is None."""
    names = [s.name for s in program.statements]
    if stmts is None:
        return names
    chosen = [stmts] if isinstance(stmts, str) else list(stmts)
    for s in chosen:
        if s not in names:
            raise ArgumentError(f"stmts: unknown statement {s!r} of {program.name} "
                                f"(statements: {', '.join(names)})", "stmts")
    if not chosen:
        raise ArgumentError("stmts: no statement chosen", "stmts")
    return chosen


def points_of(s: isl.Set | isl.Map) -> list[tuple[int, ...]]:
    """The integer points of a bounded set (or a map's wrapped pairs), sorted."""
    if isinstance(s, isl.Map):
        s = s.wrap()
    n = s.dim(isl.dim_type.set)
    out: list[tuple[int, ...]] = []

    def add(pt: isl.Point) -> None:
        out.append(tuple(pt.get_coordinate_val(isl.dim_type.set, k).to_python()
                         for k in range(n)))

    s.foreach_point(add)
    return sorted(out)


def _count(s: isl.Set) -> int:
    try:
        return s.count_val().to_python()
    except (isl.Error, ValueError):  # cannot count: enumerate (bounded at fixed sizes)
        return len(points_of(s))


def instances(program: Program, sizes: Mapping[str, int], stmts: list[str],
              limit: int = MAX_POINTS) -> dict[str, list[tuple[int, ...]]]:
    """Per statement, its instances (iterator values) at ``sizes``, sorted;
    ``ArgumentError`` beyond ``limit`` instances in all, naming what to shrink."""
    chosen = {name: fix(program.statement(name).domain, sizes) for name in stmts}
    counts = {name: _count(d) for name, d in chosen.items()}
    total = sum(counts.values())
    if total > limit:
        each = ", ".join(f"{k}: {v}" for k, v in counts.items())
        text = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ArgumentError(
            f"too many points to draw: {total} instances at {text} ({each}); a picture "
            f"shows at most {limit}: pass smaller sizes, or fewer statements with stmts=[...]",
            "sizes")
    return {name: points_of(d) for name, d in chosen.items()}


def deps_mode(deps: bool | str | None) -> str | None:
    """The dependences a picture draws: ``"direct"`` (nearest source of each
    sink), ``"all"`` (the memory-based relation) or ``None`` (no arrows);
    ``True`` means ``"direct"``, ``False`` none.

    >>> deps_mode(True), deps_mode("all"), deps_mode(False)
    ('direct', 'all', None)
    """
    if deps is None or deps is False:
        return None
    if deps is True:
        return "direct"
    if isinstance(deps, str) and deps in DEPS_MODES:
        return deps
    raise ArgumentError(f"deps must be one of {', '.join(map(repr, DEPS_MODES))}, True or "
                        f"False, not {deps!r}", "deps")


def nearest_sources(rel: isl.UnionMap, order: isl.UnionMap, source_access: isl.UnionMap,
                    sink_access: isl.UnionMap) -> isl.UnionMap:
    """The pairs of ``rel`` (source → sink) whose source is, for its sink and
    an element both access, the last one to run in ``order`` (instance →
    time, injective). ``source_access`` and ``sink_access`` (instance →
    element) are the accesses that make ``rel`` a dependence: writes and
    reads for RAW.

    Per element, not per array: a stencil's sink reads several elements, and
    each one's last writer is a dependence the picture must show (the one
    pointing back in space is what forbids tiling). Per sink and element the
    candidate sources are carried into the time space, where sources of every
    statement compare lexicographically; ``lexmax`` is the latest.

    >>> rel = isl.UnionMap("{ S[i] -> S[j] : 0 <= i < j < 4 }")
    >>> acc = isl.UnionMap("{ S[i] -> A[0] }")
    >>> print(nearest_sources(rel, isl.UnionMap("{ S[i] -> [i] }"), acc, acc))
    { S[i] -> S[i' = 1 + i] : 0 <= i <= 2 }
    """
    # [sink -> element] -> source, for the sources of rel that access the element
    candidates = sink_access.range_map().apply_range(source_access.reverse()).intersect(
        sink_access.domain_map().apply_range(rel.reverse()))
    latest = candidates.apply_range(order).lexmax().apply_range(order.reverse())
    return latest.reverse().apply_range(sink_access.domain_map())


def dependence_pairs(deps, sizes: Mapping[str, int], stmts: list[str],
                     limit: int = MAX_ARROWS, mode: str = "all") -> Pairs:
    """``(kind, array)`` → the dependent instance pairs (source, sink) between
    statements of ``stmts`` at ``sizes``, from isl's dependences ``deps``:
    every pair (``mode="all"``, memory-based), or per sink and element it
    accesses only the nearest source of each kind in the original order
    (``mode="direct"``: the last write before a read or a write, the last
    read before a write), chosen among all statements before ``stmts``
    filters."""
    keep = set(stmts)
    out: Pairs = {}
    total = 0
    program = deps.program
    order = fix(program.schedule.get_map(), sizes) if mode == "direct" else None
    for kind, array, rel in deps.items():
        maps: list[isl.Map] = []
        rel = fix(rel, sizes)
        if order is not None:
            source, sink = (fix(getattr(program, role)(array), sizes) for role in ROLES[kind])
            rel = nearest_sources(rel, order, source, sink)
        rel.foreach_map(maps.append)
        pairs: list[tuple[Instance, Instance]] = []
        for m in maps:
            a, b = m.get_tuple_name(isl.dim_type.in_), m.get_tuple_name(isl.dim_type.out)
            if a not in keep or b not in keep:
                continue
            n_in = m.dim(isl.dim_type.in_)
            total += _count(m.wrap())
            if total > limit:
                raise ArgumentError(
                    f"too many dependences to draw: more than {limit} instance pairs at "
                    f"{', '.join(f'{k}={v}' for k, v in sizes.items())}; pass smaller sizes, "
                    "fewer statements (stmts=[...])"
                    + (", deps='direct'" if mode == "all" else "") + " or deps=False", "sizes")
            pairs += [((a, p[:n_in]), (b, p[n_in:])) for p in points_of(m)]
        if pairs:
            out[(kind, array)] = sorted(pairs)
    return out


def schedule_times(tree: isl.Schedule, sizes: Mapping[str, int],
                   stmts: list[str]) -> dict[Instance, tuple[int, ...]]:
    """Each instance of ``stmts`` → its time (the schedule tree's flattened map,
    ``tree.get_map()``) at ``sizes``: sorting by time gives the execution order."""
    keep = set(stmts)
    maps: list[isl.Map] = []
    fix(tree.get_map().intersect_domain(tree.get_domain()), sizes).foreach_map(maps.append)
    out: dict[Instance, tuple[int, ...]] = {}
    for m in maps:
        name = m.get_tuple_name(isl.dim_type.in_)
        if name not in keep:
            continue
        n_in = m.dim(isl.dim_type.in_)
        for p in points_of(m):
            out[(name, p[:n_in])] = p[n_in:]
    return out


def parse_sizes(text: str) -> dict[str, int]:
    """Sizes written as ``n=4, m=3`` (a violation's ``sizes``) as a dict.

    >>> parse_sizes("n=4, m=3")
    {'n': 4, 'm': 3}
    """
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        out[name.strip()] = int(value)
    return out


def parse_instance(text: str) -> Instance:
    """An instance written as ``S0[i=1, j=2]`` as ``("S0", (1, 2))``.

    >>> parse_instance("S0[i=1, j=2]")
    ('S0', (1, 2))
    """
    name, _, rest = text.partition("[")
    values = [int(p.partition("=")[2]) for p in rest.rstrip("]").split(",") if p.strip()]
    return name.strip(), tuple(values)
