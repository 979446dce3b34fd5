"""Coalescing two nested loops into one, the indices recovered by division.

A loop pass (``ir.Stmt -> ir.Stmt``) for ``Schedule.fuse`` of a loop ``a``
directly enclosing a loop ``b`` whose extent is not a constant (TVM's
``fuse``): isl cannot express ``a · extent(b) + b`` with a symbolic extent as
an affine schedule, so the schedule keeps the pair as one two-member band
(same order, legality checked on the pair) and this pass rewrites the loop
nest isl generated for it::

    for (a = la; a < ua; a += 1)
      for (b = lb; b < ub; b += 1)
        S(a, b)

becomes, with ``e = ub - lb``::

    for (f = 0; f < max(ua - la, 0) * max(e, 0); f += 1)
      S(la + f // e, lb + f % e)

In: ``For`` nodes named as a coalesced loop whose body is exactly one
``For`` with step 1 and bounds that do not use the outer iterator. Out: one
``For`` (the outer loop's kind) running the same iterations in the same
order; the division is only evaluated inside the loop, where ``ub - lb >
0``. A nest of another shape (isl separated it under conditions) is left
nested, which runs the same instances in the same order.

Example::

    >>> import polyop
    >>> from polyop import ir
    >>> inner = ir.For("b", ir.Const(0), ir.Var("m"), 1, ir.Store("A", (ir.Var("a"), ir.Var("b")),
    ...                ir.Const(1.0, polyop.f64)))
    >>> print(coalesce_loops(ir.For("a", ir.Const(0), ir.Var("n"), 1, inner), {"a"}))
    for (a = 0; a < max(n, 0) * max(m, 0); a += 1)
      A[a // m][a % m] = 1.0;
"""

from __future__ import annotations

from . import ir
from .types import INDEX


def coalesce_loops(node: ir.Stmt, names: set[str]) -> ir.Stmt:
    """``node`` with every loop named in ``names`` coalesced with the loop
    directly inside it, where the nest allows (see the module docstring)."""
    if not names:
        return node

    def go(n):
        n = ir.map_children(n, go) if isinstance(n, (ir.For, ir.If, ir.Block)) else n
        if isinstance(n, ir.For) and n.var in names:
            return _coalesced(n) or n
        return n

    return go(node)


def _coalesced(outer: ir.For) -> ir.For | None:
    inner = outer.body
    while isinstance(inner, ir.Block) and len(inner.stmts) == 1:
        inner = inner.stmts[0]
    if not isinstance(inner, ir.For) or outer.step != 1 or inner.step != 1:
        return None
    uses = {v.name for e in (inner.start, inner.stop) for v in ir.walk(e)
            if isinstance(v, ir.Var)}
    if outer.var in uses:  # the inner range changes with the outer loop
        return None
    extent = _sub(inner.stop, inner.start)
    trips = ir.Bin("mul", _at_least_zero(_sub(outer.stop, outer.start)),
                   _at_least_zero(extent), INDEX)
    f = ir.Var(outer.var, INDEX)
    body = ir.substitute(inner.body, {
        outer.var: _add(outer.start, ir.Bin("fdiv", f, extent, INDEX)),
        inner.var: _add(inner.start, ir.Bin("mod", f, extent, INDEX))})
    return ir.For(outer.var, ir.Const(0, INDEX), trips, 1, body, outer.kind, outer.loop_id)


def _sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if isinstance(b, ir.Const) and b.value == 0:
        return a
    return ir.Bin("sub", a, b, INDEX)


def _add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if isinstance(a, ir.Const) and a.value == 0:
        return b
    return ir.Bin("add", a, b, INDEX)


def _at_least_zero(e: ir.Expr) -> ir.Expr:
    if isinstance(e, ir.Const):
        return ir.Const(max(e.value, 0), INDEX)
    return ir.Bin("max", e, ir.Const(0, INDEX), INDEX)
