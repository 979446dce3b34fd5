"""A plain-Python view of polyop's schedule trees, for structural rewrites.

The schedule trees ``Schedule`` manipulates have three kinds of nodes below
the domain root: one-member *bands* (loops), each under a mark naming its
``Loop`` handle; *sequences* of filtered children; and leaves. Rewrites that
move statements between loops (fusion, fission, compute_at) are awkward with
isl's cursor-style ``ScheduleNode`` API and short on this immutable mirror of
the tree: convert with ``from_isl``, rebuild a new tree from its parts, and
turn it back into an ``isl.Schedule`` with ``to_isl``.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, A: "f64[n]", B: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 0.0
    ...         B[i] = A[i]
    >>> sch = polyop.Schedule(k)
    >>> domain, root = from_isl(sch.tree)
    >>> root.mark, type(root.child).__name__, len(root.child.children)
    ('L0', 'Seq', 2)
    >>> print(root.part)
    [n] -> [{ S0[i] -> [(i)]; S1[i] -> [(i)] }]
    >>> to_isl(domain, root).plain_is_equal(sch.tree)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from ..program import union_all

_T = isl.schedule_node_type


@dataclass(frozen=True)
class Leaf:
    """The end of a branch: the statement instances reaching it run here."""


@dataclass(frozen=True)
class Band:
    """One loop: a one-member partial schedule under the mark ``mark``."""

    mark: str | None
    part: isl.MultiUnionPwAff
    child: Node


@dataclass(frozen=True)
class Seq:
    """Children run one after the other; each has a filter (a set of instances)."""

    children: tuple[tuple[isl.UnionSet, Node], ...]


Node = Leaf | Band | Seq


def from_isl(tree: isl.Schedule) -> tuple[isl.UnionSet, Node]:
    """The domain of ``tree`` and its root node (below the domain node)."""
    root = tree.get_root()
    return tree.get_domain(), _node(root.child(0)) if root.n_children() else Leaf()


def _node(n: isl.ScheduleNode) -> Node:
    t = n.get_type()
    if t == _T.leaf:
        return Leaf()
    if t == _T.mark:
        band = n.child(0)
        assert band.get_type() == _T.band, "a loop mark must sit above a band"
        return Band(n.mark_get_id().get_name(), band.band_get_partial_schedule(),
                    _node(band.child(0)))
    if t == _T.band:
        return Band(None, n.band_get_partial_schedule(), _node(n.child(0)))
    if t in (_T.sequence, _T.set):
        kids = []
        for k in range(n.n_children()):
            f = n.child(k)
            kids.append((f.filter_get_filter(), _node(f.child(0))))
        return Seq(tuple(kids))
    raise AssertionError(f"unexpected schedule node type {t}")


def to_isl(domain: isl.UnionSet, node: Node) -> isl.Schedule:
    """Build the isl schedule tree of ``node`` over the instances ``domain``."""
    if isinstance(node, Leaf):
        return isl.Schedule.from_domain(domain)
    if isinstance(node, Band):
        sched = to_isl(domain, node.child).insert_partial_schedule(node.part)
        if node.mark is not None:
            sched = sched.get_root().child(0).insert_mark(isl.Id(node.mark)).get_schedule()
        return sched
    parts = [(domain.intersect(f), child) for f, child in node.children]
    parts = [(d, c) for d, c in parts if not d.is_empty()]
    if not parts:
        return isl.Schedule.from_domain(domain)
    out = None
    for d, child in parts:
        s = to_isl(d, child)
        out = s if out is None else out.sequence(s)
    return out


def domain_of(node: Node, domain: isl.UnionSet) -> isl.UnionSet:
    """The instances of ``domain`` that reach ``node``'s leaves (all of them, for
    a loop or leaf; the union of filters for a sequence)."""
    if isinstance(node, Seq):
        out = isl.UnionSet.empty(domain.get_space())
        for f, _ in node.children:
            out = out.union(domain.intersect(f))
        return out
    return domain


def restrict(node: Node, keep: isl.UnionSet) -> Node | None:
    """``node`` with only the instances in ``keep``; ``None`` when none are left.

    Loops and sequences that lose all their instances disappear, and a sequence
    left with one child is replaced by that child.
    """
    if isinstance(node, Leaf):
        return node
    if isinstance(node, Band):
        part = node.part.intersect_domain(keep)
        if part.domain().is_empty():
            return None
        child = restrict(node.child, keep)
        return Band(node.mark, part, child if child is not None else Leaf())
    kids = []
    for f, child in node.children:
        f2 = f.intersect(keep)
        if f2.is_empty():
            continue
        c = restrict(child, f2)
        kids.append((f2, c if c is not None else Leaf()))
    if not kids:
        return None
    return kids[0][1] if len(kids) == 1 else Seq(tuple(kids))


def marks(node: Node) -> list[str]:
    """The loop marks in ``node``'s subtree, outermost first."""
    if isinstance(node, Leaf):
        return []
    if isinstance(node, Band):
        return ([node.mark] if node.mark else []) + marks(node.child)
    return [m for _, child in node.children for m in marks(child)]


def find_mark(node: isl.ScheduleNode, ident: str) -> isl.ScheduleNode | None:
    """The mark node ``ident`` at or below ``node`` (isl's node API)."""
    if node.get_type() == _T.mark and node.mark_get_id().get_name() == ident:
        return node
    for k in range(node.n_children()):
        found = find_mark(node.child(k), ident)
        if found is not None:
            return found
    return None


def reaches(node: isl.ScheduleNode, stmt: str) -> bool:
    """Whether instances of ``stmt`` pass through ``node`` (isl's node API)."""
    if node.get_type() == _T.filter:
        return contains(node.filter_get_filter(), stmt)
    return contains(node.get_domain(), stmt)


def contains(domain: isl.UnionSet, stmt: str) -> bool:
    """Whether ``domain`` has instances of statement ``stmt``."""
    found = []
    domain.foreach_set(lambda s: found.append(s.get_tuple_name() == stmt))
    return any(found)


def loop_values(band: isl.ScheduleNode) -> isl.Set:
    """The values a one-member ``band`` (a loop) takes over its instances."""
    return isl.Set.from_union_set(band.band_get_partial_schedule_union_map()
                                  .intersect_domain(band.get_domain()).range())


def with_disjoint_domain(tree: isl.Schedule) -> isl.Schedule:
    """``tree`` over the same instances, its domain given as disjoint pieces.

    Why: isl's AST generator (islpy 2026.2) loses instances when a band nested
    in another band runs over a domain whose basic sets overlap, as a guard
    with ``or`` produces. For ``if i == j or i + j == n - 1 or (i < 2 and j > n
    - 3)`` with ``j`` split by 2 into bands ``j // 2`` and ``j % 2``, it takes
    the inner loop ``j % 2`` for a single value on the overlap and drops
    ``A[0, n-1]`` and ``A[1, n-1]`` for every ``n >= 4``. The same schedule as
    one band, or over disjoint pieces, generates every instance. Options set
    on bands are lost: call this before setting them.

    >>> t = isl.Schedule('{ domain: "{ S[i] : 0 <= i < 4 or 2 <= i < 6 }" }')
    >>> with_disjoint_domain(t).get_domain().is_equal(t.get_domain())
    True
    """
    sets: list[isl.Set] = []
    tree.get_domain().foreach_set(sets.append)
    if all(s.n_basic_set() <= 1 for s in sets):  # one piece each: nothing overlaps
        return tree
    # each statement's instances split into pairwise disjoint basic sets
    pieces = union_all(isl.UnionSet.from_set(s.make_disjoint()) for s in sets)
    return to_isl(pieces, from_isl(tree)[1])
