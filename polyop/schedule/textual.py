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
    >>> print(k.program.schedule.get_root().get_child(0).get_type())  # doctest: +SKIP
    band
"""

from __future__ import annotations

import islpy as isl

from ..program import Statement


def _statements(items) -> list[Statement]:
    out = []
    for x in items:
        out += [x] if isinstance(x, Statement) else _statements(x.children)
    return out


def _band(loop, params: isl.Space) -> isl.MultiUnionPwAff:
    upa = None
    for s in _statements(loop.children):
        pa = isl.PwAff.var_on_domain(isl.LocalSpace.from_space(s.domain.get_space()),
                                     isl.dim_type.set, loop.depth)
        if getattr(loop, "downward", False):  # range(hi, lo, -1) runs in -var order
            pa = pa.neg()
        u = isl.UnionPwAff.from_pw_aff(pa)
        upa = u if upa is None else upa.union_add(u)
    return isl.MultiUnionPwAff.from_union_pw_aff(upa)


def _build(items, params: isl.Space) -> isl.Schedule | None:
    result = None
    for x in items:
        if isinstance(x, Statement):
            sched = isl.Schedule.from_domain(isl.UnionSet.from_set(x.domain))
        else:
            inner = _build(x.children, params)
            if inner is None:
                continue  # a loop with no statements has nothing to schedule
            sched = inner.insert_partial_schedule(_band(x, params))
        result = sched if result is None else result.sequence(sched)
    return result


def textual_schedule(nest: list, params: isl.Space) -> isl.Schedule:
    """Schedule tree executing ``nest`` (statements and ``LoopNode``s) in source order."""
    sched = _build(nest, params)
    if sched is None:
        return isl.Schedule.empty(params)
    return sched
