"""Affine tensor expressions → isl: indices, extents, bounds and guards.

Indices into tensors, shapes and reduce-axis bounds must be (quasi-)affine in
the axes and size variables: integer constants, ``+``, ``-``, multiplication
by a constant, ``//`` and ``%`` by a positive constant, ``minimum``/``maximum``.
``pwaff`` raises ``NotAffine`` (the offending sub-expression and why) for
anything else; the callers turn it into a ``FrontendError`` naming the tensor.

Conditions of ``if_then_else`` need not be affine. ``condition`` returns an
under- and an over-approximation of the set where a condition holds: exact
for affine comparisons, (empty, universe) for data-dependent ones, combined
through ``&``, ``|`` and ``~``. Reads in a chosen branch are restricted to the
over-approximation, which keeps padding reads provably in bounds.

Example::

    >>> import islpy as isl
    >>> from polyop.te.expr import Var
    >>> space = isl.Set("[n] -> { [i] : }").space
    >>> n = Var("n")
    >>> print(pwaff((n + 1) // 2, isl.affs_from_space(space), lambda v: v.name))
    [n] -> { [i] -> [(floor((1 + n)/2))] }
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from ..ir import BOOL
from .expr import Binary, Compare, Const, Expr, IterVar, Logical, Neg, Not, Read, Var, to_str


class NotAffine(Exception):
    """``expr`` (a sub-expression) is not affine, for the reason ``why``."""

    def __init__(self, expr: Expr, why: str):
        self.expr, self.why = expr, why
        super().__init__(f"'{to_str(expr)}': {why}")


def pwaff(e: Expr, affs: dict, name_of: Callable[[Expr], str | None]) -> isl.PwAff:
    """``e`` as an ``isl.PwAff``; ``affs`` is ``isl.affs_from_space(space)`` and
    ``name_of`` names the dimension or parameter of a ``Var``/``IterVar``
    (``None``: not usable here)."""
    if isinstance(e, Const):
        if e.dtype == BOOL or e.dtype.is_float or isinstance(e.value, float):
            raise NotAffine(e, "a non-integer constant")
        return affs[0] + int(e.value)
    if isinstance(e, (Var, IterVar)):
        name = name_of(e)
        if name is None or name not in affs:
            raise NotAffine(e, f"{e.name} is not an axis or size variable in scope")
        return affs[name]
    if isinstance(e, Neg):
        return -pwaff(e.a, affs, name_of)
    if isinstance(e, Read):
        raise NotAffine(e, f"it reads tensor {e.tensor.name} (data-dependent index)")
    if isinstance(e, Binary):
        return _binary(e, affs, name_of)
    if e.dtype.is_float:
        raise NotAffine(e, "a floating-point value")
    raise NotAffine(e, f"{type(e).__name__.lower()} is not affine")


def _constant(pa: isl.PwAff) -> int | None:
    if pa.is_cst() and pa.n_piece() == 1:
        val = pa.as_aff().get_constant_val()
        if val.is_int():
            return val.to_python()
    return None


def _binary(e: Binary, affs: dict, name_of) -> isl.PwAff:
    if e.op == "div":
        raise NotAffine(e, "true division '/' (use '//' for floor division)")
    if e.dtype.is_float:
        raise NotAffine(e, "a floating-point value")
    a, b = pwaff(e.a, affs, name_of), pwaff(e.b, affs, name_of)
    if e.op == "add":
        return a + b
    if e.op == "sub":
        return a - b
    if e.op == "min":
        return a.min(b)
    if e.op == "max":
        return a.max(b)
    if e.op == "mul":
        ca, cb = _constant(a), _constant(b)
        if cb is not None:
            return a.scale_val(isl.Val(cb))
        if ca is not None:
            return b.scale_val(isl.Val(ca))
        raise NotAffine(e, "a product of two non-constant terms")
    if e.op in ("fdiv", "mod"):
        c = _constant(b)
        if c is None or c <= 0:
            raise NotAffine(e, "division or modulo by something other than a positive "
                               "integer constant")
        if e.op == "fdiv":
            return a.scale_down_val(isl.Val(c)).floor()
        return a.mod_val(isl.Val(c))
    raise NotAffine(e, f"operator {e.op} is not affine")


def condition(e: Expr, affs: dict, name_of, universe: isl.Set) -> tuple[isl.Set, isl.Set]:
    """(under, over): sets of points where ``e`` surely / possibly holds."""
    empty = universe.subtract(universe)
    if isinstance(e, Const) and e.dtype == BOOL:
        return (universe, universe) if e.value else (empty, empty)
    if isinstance(e, Compare):
        try:
            a, b = pwaff(e.a, affs, name_of), pwaff(e.b, affs, name_of)
        except NotAffine:
            return empty, universe
        fn = {"lt": a.lt_set, "le": a.le_set, "gt": a.gt_set, "ge": a.ge_set,
              "eq": a.eq_set, "ne": a.ne_set}[e.op]
        s = fn(b).intersect(universe)
        return s, s
    if isinstance(e, Logical):
        ua, oa = condition(e.a, affs, name_of, universe)
        ub, ob = condition(e.b, affs, name_of, universe)
        if e.op == "and":
            return ua.intersect(ub), oa.intersect(ob)
        return ua.union(ub), oa.union(ob)
    if isinstance(e, Not):
        u, o = condition(e.a, affs, name_of, universe)
        return universe.subtract(o), universe.subtract(u)
    return empty, universe


def python_text(e: Expr) -> str:
    """Python source of an affine extent (``n + 2``), parsable by ``ast``."""
    return to_str(e)
