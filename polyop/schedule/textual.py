"""The original (textual-order) schedule of a parsed loop nest as an isl schedule tree.

Each source loop becomes a one-member band whose partial schedule maps every
statement below it to that loop's iterator; siblings (loops and statements in
textual order) become a sequence node with one filter per child.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, A: "f64[n]", B: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 0.0
    ...         B[i] = A[i]
    >>> band = k.program.schedule.get_root().child(0)
    >>> print(band.band_get_partial_schedule())
    [n] -> [{ S0[i] -> [(i)]; S1[i] -> [(i)] }]
    >>> band.child(0).n_children()  # a sequence: S0's filter, then S1's
    2
"""

from __future__ import annotations

import islpy as isl

from ..program import Statement, balanced


def _statements(items) -> list[Statement]:
    out = []
    for x in items:
        out += [x] if isinstance(x, Statement) else _statements(x.children)
    return out


def _band(loop, params: isl.Space) -> isl.MultiUnionPwAff:
    pieces = []
    for s in _statements(loop.children):
        pa = isl.PwAff.var_on_domain(isl.LocalSpace.from_space(s.domain.get_space()),
                                     isl.dim_type.set, loop.depth)
        if getattr(loop, "downward", False):  # range(hi, lo, -1) runs in -var order
            pa = pa.neg()
        pieces.append(isl.UnionPwAff.from_pw_aff(pa))
    return isl.MultiUnionPwAff.from_union_pw_aff(
        balanced(pieces, lambda a, b: a.union_add(b)))


def _domain(item) -> isl.UnionSet:
    """The instances of a statement, or of every statement inside a loop."""
    sets = [isl.UnionSet.from_set(s.domain) for s in _statements([item])]
    return balanced(sets, lambda a, b: a.union(b))


#: the most siblings one sequence node holds: isl's AST generator restricts
#: the whole sequence to each child's filter, so a flat sequence of 10,000
#: statements took it 24 s, nested sequences of 128 about 1 s
_CHUNK = 128


def _fill(node: isl.ScheduleNode, items: list, params: isl.Space) -> isl.ScheduleNode:
    """Build the schedule of ``items`` (in source order) at leaf ``node``;
    returns the node at the same position.

    The tree is built top-down with one ``insert_sequence`` per list of
    siblings: ``isl.Schedule.sequence`` of two schedules intersects every
    child filter of one with the other's domain, which made a long straight
    run of statements quadratic (minutes for a few thousand)."""
    items = [x for x in items if isinstance(x, Statement) or _statements(x.children)]
    if not items:
        return node
    if len(items) == 1:
        return _fill_one(node, items[0], params)
    if len(items) > _CHUNK:  # nested sequences of at most _CHUNK siblings each
        chunks = [items[k:k + _CHUNK] for k in range(0, len(items), _CHUNK)]
        filters = [isl.UnionSetList.from_union_set(
            balanced([_domain(x) for x in chunk], lambda a, b: a.union(b)).universe())
            for chunk in chunks]
        node = node.insert_sequence(balanced(filters, lambda a, b: a.concat(b)))
        for k, chunk in enumerate(chunks):
            node = _fill(node.child(k).child(0), chunk, params).parent().parent()
        return node
    filters = [isl.UnionSetList.from_union_set(_domain(x).universe()) for x in items]
    node = node.insert_sequence(balanced(filters, lambda a, b: a.concat(b)))
    for k, x in enumerate(items):
        if not isinstance(x, Statement):
            node = _fill_one(node.child(k).child(0), x, params).parent().parent()
    return node


def _fill_one(node: isl.ScheduleNode, item, params: isl.Space) -> isl.ScheduleNode:
    if isinstance(item, Statement):
        return node
    # a loop: its band, with the schedule of its body below
    node = node.insert_partial_schedule(_band(item, params))
    return _fill(node.child(0), item.children, params).parent()


def textual_schedule(nest: list, params: isl.Space) -> isl.Schedule:
    """Schedule tree executing ``nest`` (statements and ``LoopNode``s) in source order."""
    stmts = _statements(nest)
    if not stmts:
        return isl.Schedule.empty(params)
    domain = balanced([isl.UnionSet.from_set(s.domain) for s in stmts],
                       lambda a, b: a.union(b))
    root = isl.Schedule.from_domain(domain).get_root()
    return _fill(root.child(0), nest, params).get_schedule()
