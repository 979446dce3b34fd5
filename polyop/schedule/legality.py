"""Legality of a schedule tree against a program's exact dependences.

Two conditions, both checked exactly with isl:

- *order*: for every dependence ``s → t`` the new schedule runs ``s`` strictly
  before ``t`` (``S(s) <lex S(t)``); the violating pairs are
  ``D ∩ (S ⪰lex S)`` (``UnionMap.lex_ge_union_map``);
- *coincidence*: a loop marked parallel or vector carries no dependence: for
  every dependence between instances under that loop whose outer schedule is
  equal, the loop's own value is equal too. Dependences on a local scalar are
  ignored there when the scalar can be privatised (no value flows between
  iterations of the loop, nor into or out of it).

A violation is explained with a concrete pair of instances, sampled by isl from
the violating set (the lexicographically first pair at the sampled sizes), the
array element they both touch, and the loop at fault.

Example (``Schedule.check`` runs these checks; interchanging reverses a dependence)::

    >>> import polyop
    >>> @polyop.kernel
    ... def t(n: int, A: "f64[n, n]"):
    ...     for i in range(1, n):
    ...         for j in range(n - 1):
    ...             A[i, j] = A[i - 1, j + 1]
    >>> sch = polyop.Schedule(t, check=False)
    >>> i, j = sch.get_loops("S0")
    >>> sch.interchange(i, j)
    >>> v = sch.check()
    >>> print(v[0].source, "->", v[0].sink)
    S0[i=1, j=1] -> S0[i=2, j=0]
    >>> v[0].kind, v[0].array, v[0].element, v[0].loop
    ('RAW', 'A', 'A[1, 1]', 'j')
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from ..deps import Dependences
from ..instances import element_text as _element
from ..instances import sample_pair as _sample
from ..ir import reduction_update
from ..program import Program

_VERBS = {"RAW": ("writes", "reads"), "WAR": ("reads", "writes"), "WAW": ("writes", "writes")}


@dataclass(frozen=True)
class Violation:
    """One broken dependence, with a concrete pair of statement instances."""

    kind: str
    array: str
    source: str
    sink: str
    element: str
    loop: str | None
    carried: bool
    sizes: str
    #: the pair is two updates of one reduction statement (``X[f] += e``)
    reduction: bool = False
    #: the sink reads, after a parallel loop, a temporary written inside it
    escapes: bool = False

    @property
    def verbs(self) -> tuple[str, str]:
        return _VERBS[self.kind]

    def describe(self, primitive: str) -> str:
        sv, tv = self.verbs
        where = f" (with {self.sizes})" if self.sizes else ""
        if self.escapes:
            return (f"{primitive}: {self.source} writes {self.element}, which {self.sink} "
                    f"reads after loop {self.loop}; each thread of a parallel loop has its "
                    f"own copy of the temporary {self.array}, so the value would be lost"
                    f"{where}")
        if self.carried:
            hint = ""
            if self.reduction and primitive.startswith("parallel"):
                hint = (f"; {self.source.split('[')[0]} is a reduction into {self.array}: "
                        f"parallel({self.loop}, reduction='atomic') opts in to reordering it")
            return (f"{primitive}: loop {self.loop} carries a {self.kind} dependence on "
                    f"{self.array}: {self.source} ({sv} {self.element}) must run before "
                    f"{self.sink} ({tv} {self.element}), but they are different iterations "
                    f"of {self.loop}{where}{hint}")
        at = f" at loop {self.loop}" if self.loop else ""
        return (f"{primitive} would run {self.sink} ({tv} {self.element}) before "
                f"{self.source} ({sv} {self.element}): {self.kind} dependence on "
                f"{self.array} reversed{at}{where}")

    def __str__(self) -> str:
        return self.describe("schedule")

    def _repr_html_(self) -> str:
        """Jupyter's view: the dependence and the instance pair (``polyop.viz.html``)."""
        from ..viz.html import violation_html

        return violation_html(self)


def order_violations(program: Program, deps: Dependences, tree: isl.Schedule,
                     loop_of_dim) -> list[Violation]:
    """Dependences the schedule ``tree`` runs out of order (one sample each).

    ``loop_of_dim(stmt, dim)`` names the loop of a flattened schedule dimension.
    """
    smap = tree.get_map()
    if _surely_ordered(deps, smap):
        return []
    later_or_same = smap.lex_ge_union_map(smap)
    out = []
    for kind, array, dep in deps.items():
        bad = dep.intersect(later_or_same)
        if bad.is_empty():
            continue
        src, dst, sizes, pair = _sample(program, bad)
        sv = _schedule_vector(smap, pair.domain())
        tv = _schedule_vector(smap, pair.range())
        dim = next((k for k, (a, b) in enumerate(zip(sv, tv)) if a != b), None)
        loop = loop_of_dim(pair.get_tuple_name(isl.dim_type.in_), dim) if dim is not None \
            else None
        out.append(Violation(kind, array, src, dst, _element(program, kind, array, pair),
                             loop, False, sizes))
    return out


def _surely_ordered(deps: Dependences, smap: isl.UnionMap) -> bool:
    """Fast path: every dependence, mapped to (source time, sink time), goes
    forward in time. Comparing times in one space avoids building the
    statement-by-statement ``lex_ge_union_map``; ``False`` means "look closer"."""
    rels = [dep for _, _, dep in deps.items()]
    if not rels:
        return True
    every = rels[0]
    for dep in rels[1:]:
        every = every.union(dep)
    times: list[isl.Map] = []
    every.apply_domain(smap).apply_range(smap).foreach_map(times.append)
    for m in times:
        space = m.get_space()
        if space.dim(isl.dim_type.in_) != space.dim(isl.dim_type.out):
            return False
        if not m.intersect(isl.Map.lex_ge(space.domain())).is_empty():
            return False
    return True


def carried_violations(program: Program, deps: Dependences, band: isl.ScheduleNode,
                       loop: str, allowed: dict[str, isl.UnionMap] | None = None,
                       threads: bool = True) -> list[Violation]:
    """Dependences carried by the single-member ``band`` (a parallel/vector loop),
    except the instance pairs in ``allowed[array]`` (opted-in reductions).

    Temporaries written and read within one iteration are private to it. With
    ``threads`` (a parallel loop) each thread has its own copy, so a value must
    not be read after the loop; the lanes of a vector loop share the function's
    temporaries (a local scalar keeps its last lane's value), so it may.
    """
    dom = band.get_domain()
    across = _across(band)
    flows = {name: deps.value_flow(name) for name, a in program.arrays.items() if a.temporary}
    out = []
    for name, flow in flows.items() if threads else ():  # private copies must not leak
        leak = flow.intersect_domain(dom).subtract_range(dom)
        if not leak.is_empty():
            src, dst, sizes, pair = _sample(program, leak)
            out.append(Violation("RAW", name, src, dst, _element(
                program, "RAW", name, pair), loop, True, sizes, escapes=True))
    for kind, array, dep in deps.items():
        inside = dep.intersect_domain(dom).intersect_range(dom)
        carried = inside.intersect(across)
        if allowed and array in allowed:
            carried = carried.subtract(allowed[array])
        if carried.is_empty():
            continue
        if array in flows and _privatisable(flows[array], dom, across, threads):
            continue
        src, dst, sizes, pair = _sample(program, carried)
        name = pair.get_tuple_name(isl.dim_type.in_)
        reduction = name == pair.get_tuple_name(isl.dim_type.out) and \
            reduction_update(program.statement(name).body) is not None
        out.append(Violation(kind, array, src, dst, _element(program, kind, array, pair),
                             loop, True, sizes, reduction))
    return out


def reduction_pairs(program: Program, band: isl.ScheduleNode) -> dict[str, isl.UnionMap]:
    """Per array, the pairs of instances of one reduction statement (``X[f] += e``)
    under ``band``: what ``parallel(loop, reduction=...)`` may reorder."""
    dom = band.get_domain()
    out: dict[str, isl.UnionMap] = {}
    for s in program.statements:
        if reduction_update(s.body) is None:
            continue
        inst = isl.UnionSet.from_set(s.domain).intersect(dom)
        if inst.is_empty():
            continue
        pairs = isl.UnionMap.from_domain_and_range(inst, inst)
        out[s.body.array] = out.get(s.body.array, pairs).union(pairs)
    return out


def carried_statements(deps: Dependences, band: isl.ScheduleNode,
                       pairs: dict[str, isl.UnionMap]) -> set[str]:
    """The statements of ``pairs`` whose self-dependences ``band`` carries."""
    crossing = _across(band)
    names: set[str] = set()
    for _, array, dep in deps.items():
        if array in pairs:
            hit = dep.intersect(pairs[array]).intersect(crossing)
            hit.foreach_map(lambda m: names.add(m.get_tuple_name(isl.dim_type.in_)))
    return names


def _across(band: isl.ScheduleNode) -> isl.UnionMap:
    """Instance pairs in different iterations of the one-member ``band`` under
    the same iteration of every loop around it."""
    prefix = band.get_prefix_schedule_union_map()
    part = band.band_get_partial_schedule_union_map()
    return prefix.apply_range(prefix.reverse()).subtract(part.apply_range(part.reverse()))


def _privatisable(flow: isl.UnionMap, dom: isl.UnionSet, across: isl.UnionMap,
                  threads: bool = True) -> bool:
    """A temporary (value-based ``flow``) whose values pass from no iteration
    of the loop with instances ``dom`` to another; with ``threads``, none
    enters or leaves the loop either (each thread has its own copy)."""
    inside = flow.intersect_domain(dom).intersect_range(dom)
    if not inside.intersect(across).is_empty():
        return False
    crossing = flow.intersect_domain(dom).union(flow.intersect_range(dom)).subtract(inside)
    return not threads or crossing.is_empty()


def _schedule_vector(smap: isl.UnionMap, inst: isl.Set) -> list[int]:
    img = smap.intersect_domain(isl.UnionSet.from_set(inst)).range()
    pt = img.sample_point()
    s = isl.Set.from_point(pt)
    return [pt.get_coordinate_val(isl.dim_type.set, k).to_python()
            for k in range(s.dim(isl.dim_type.set))]
