"""Structural rewrites of schedule trees: fusion, linearisation, fission, compute_at.

These primitives move statements between loops rather than changing one
loop's iteration order, so they work on the plain-Python tree of
``polyop.schedule.tree``. Each function takes the tree's root node and loop
mark ids and returns the new root; it raises ``ScheduleError`` when the tree
does not have the required shape. Legality against the dependences is checked
afterwards by ``Schedule``, like every other primitive.

Example::

    >>> import polyop
    >>> from polyop.schedule.tree import from_isl, to_isl
    >>> @polyop.kernel
    ... def two(n: int, A: "f64[n]", B: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 1.0
    ...     for j in range(n):
    ...         B[j] = A[j]
    >>> domain, root = from_isl(polyop.Schedule(two).tree)
    >>> root = fuse_siblings(root, "L0", "L1", {"L0": "i", "L1": "j"})
    >>> print(polyop.lower(two, to_isl(domain, root)))
    void two(int64_t n, double A[n], double B[n]) {
      for (c0 = 0; c0 < n; c0 += 1) {
        A[c0] = 1.0;
        B[c0] = A[c0];
      }
    }
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from ..errors import ScheduleError
from .tree import Band, Node, Seq, from_isl, marks, restrict, to_isl


def rewrite(node: Node, fn: Callable[[Node], Node | None]) -> Node:
    """Top-down rewrite: the first nodes for which ``fn`` returns a node are replaced."""
    out = fn(node)
    if out is not None:
        return out
    if isinstance(node, Band):
        return Band(node.mark, node.part, rewrite(node.child, fn))
    if isinstance(node, Seq):
        return Seq(tuple((f, rewrite(c, fn)) for f, c in node.children))
    return node


def find_band(node: Node, mark: str) -> Band | None:
    if isinstance(node, Band):
        return node if node.mark == mark else find_band(node.child, mark)
    if isinstance(node, Seq):
        for _, c in node.children:
            found = find_band(c, mark)
            if found is not None:
                return found
    return None


def _seq(children: list[tuple[isl.UnionSet, Node]]) -> Node:
    """A sequence of ``children``, with nested sequences spliced in."""
    flat = []
    for f, c in children:
        if isinstance(c, Seq):
            flat += [(f.intersect(g), d) for g, d in c.children]
        else:
            flat.append((f, c))
    return flat[0][1] if len(flat) == 1 else Seq(tuple(flat))


def fuse_siblings(root: Node, a: str, b: str, names: dict[str, str]) -> Node:
    """Loop fusion: adjacent sibling loops ``a`` then ``b`` become one loop ``a``
    whose body runs ``a``'s body, then ``b``'s, at each iteration."""
    done = []

    def fn(node: Node) -> Node | None:
        if not isinstance(node, Seq):
            return None
        kids = list(node.children)
        pos = {c.mark: k for k, (_, c) in enumerate(kids) if isinstance(c, Band)}
        if a not in pos and b not in pos:
            return None
        if a not in pos or b not in pos or pos[b] != pos[a] + 1:
            raise ScheduleError(f"fuse({names[a]}, {names[b]}): the loops are neither "
                                "directly nested nor adjacent siblings (the second must "
                                "directly follow the first)")
        (fa, ba), (fb, bb) = kids[pos[a]], kids[pos[b]]
        part = ba.part.intersect_domain(fa).union_add(bb.part.intersect_domain(fb))
        body = _seq([(fa, ba.child), (fb, bb.child)])
        kids[pos[a]:pos[b] + 1] = [(fa.union(fb), Band(a, part, body))]
        done.append(True)
        return _seq(kids)

    new = rewrite(root, fn)
    if not done:
        raise ScheduleError(f"fuse({names[a]}, {names[b]}): the loops are neither "
                            "directly nested nor adjacent siblings")
    return new


def linearize(root: Node, a: str, b: str, mark: str, stride: int, low: int) -> Node:
    """TVM's fuse: ``a`` directly enclosing ``b`` → one loop over
    ``stride · a + (b - low)``, where ``b - low`` always lies in ``[0, stride)``."""
    lin = isl.Map(f"{{ [a, b] -> [{stride} * a + b - {low}] }}")

    def fn(node: Node) -> Node | None:
        if not (isinstance(node, Band) and node.mark == a):
            return None
        inner = node.child
        assert isinstance(inner, Band) and inner.mark == b
        pair = isl.UnionMap.from_multi_union_pw_aff(node.part.flat_range_product(inner.part))
        part = isl.MultiUnionPwAff.from_union_map(pair.apply_range(isl.UnionMap.from_map(lin)))
        return Band(mark, part, inner.child)

    return rewrite(root, fn)


def fission(root: Node, a: str, fresh: Callable[[str], str],
            names: dict[str, str]) -> tuple[Node, list[str], list[str]]:
    """Loop distribution: the perfect nest from ``a`` down to the first sequence
    is copied once per part of that sequence. Returns the new root, the marks of
    the distributed loops (now gone) and the outermost new mark of each part."""
    gone: list[str] = []
    heads: list[str] = []

    def chain_of(band: Band) -> tuple[list[Band], Seq]:
        chain: list[Band] = []
        node: Node = band
        while isinstance(node, Band):
            chain.append(node)
            node = node.child
        if not isinstance(node, Seq):
            raise ScheduleError(f"fission({names[a]}): the loop body is a single "
                                "statement; there is nothing to distribute")
        return chain, node

    def fn(node: Node) -> Node | None:
        if not (isinstance(node, Band) and node.mark == a):
            return None
        chain, seq = chain_of(node)
        gone.extend(b.mark for b in chain if b.mark)
        parts = []
        for f, body in seq.children:
            new: Node = body
            for b in reversed(chain):
                new = Band(fresh(b.mark) if b.mark else None, b.part.intersect_domain(f), new)
            heads.append(new.mark)
            parts.append((f, new))
        return Seq(tuple(parts))

    new_root = rewrite(root, fn)
    return new_root, gone, heads  # to_isl splices nested sequences


def compute_at(tree: isl.Schedule, band: isl.ScheduleNode, producer: isl.UnionSet,
               writes: isl.UnionMap, reads: isl.UnionMap,
               fresh: Callable[[str], str], after: bool = False) -> isl.Schedule:
    """Move the instances of ``producer`` (one statement's domain) whose values
    are read inside the loop ``band`` (the band node under the loop's mark)
    into that loop's body.

    Each moved instance runs at the iteration of ``band`` (and of the loops
    around it) where the first instance under ``band`` that reads what it
    writes runs, ahead of that iteration's body; its own loops go with it.
    Instances nothing inside the loop reads stay where they were (their loops
    keep their marks, the moved copies get ``fresh`` ones). Nothing is
    recomputed: every instance still runs exactly once.

    With ``after`` (``reverse_compute_at``) the roles turn: ``producer`` is a
    consumer whose ``reads`` are written (``writes``) inside the loop; each of
    its instances runs at the iteration where the last of those writes runs,
    after that iteration's body.
    """
    inside = band.get_domain()
    if after:
        links = reads.apply_range(writes.intersect_domain(inside).reverse())
    else:
        links = writes.apply_range(reads.intersect_domain(inside).reverse())
    time = band.get_prefix_schedule_union_map().flat_range_product(
        band.band_get_partial_schedule_union_map())
    place = links.apply_range(time)
    place = place.lexmax() if after else place.lexmin()
    moved = place.domain().intersect(producer)
    mark = band.parent().mark_get_id().get_name()
    if moved.is_empty():
        raise ScheduleError("nothing inside the loop writes what the statement reads" if after
                            else "nothing inside the loop reads what the statement writes")
    place = isl.MultiUnionPwAff.from_union_map(place.intersect_domain(moved))

    domain, root = from_isl(tree)
    rest = domain.subtract(moved)
    others = restrict(root, domain.subtract(producer))
    shared = set(marks(others)) if others is not None else set()
    own = restrict(root, moved)
    while isinstance(own, Band) and own.mark in shared:
        own = own.child
    if not producer.subtract(moved).is_empty():
        own = _renamed(own, fresh)

    def along(node: Node, depth: int) -> Node:
        if isinstance(node, Seq):
            kids = [(f.union(moved), along(c, depth)) if _holds(c, mark) else (f, c)
                    for f, c in node.children]
            return Seq(tuple(kids))
        assert isinstance(node, Band)
        # one place dimension per member (a fused band has several)
        members = node.part.dim(isl.dim_type.out)
        at = isl.MultiUnionPwAff.from_union_pw_aff(place.get_union_pw_aff(depth))
        for k in range(1, members):
            at = at.flat_range_product(
                isl.MultiUnionPwAff.from_union_pw_aff(place.get_union_pw_aff(depth + k)))
        part = node.part.intersect_domain(rest).union_add(at)
        if node.mark == mark:
            parts = [(moved, own), (rest.intersect(inside), node.child)]
            child = _seq(parts[::-1] if after else parts)
        else:
            child = along(node.child, depth + members)
        return Band(node.mark, part, child)

    return to_isl(domain, along(restrict(root, rest), 0))


def _renamed(node: Node, fresh: Callable[[str], str]) -> Node:
    if isinstance(node, Band):
        return Band(fresh(node.mark) if node.mark else None, node.part,
                    _renamed(node.child, fresh))
    return node


def _holds(node: Node, mark: str) -> bool:
    return find_band(node, mark) is not None
