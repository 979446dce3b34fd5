"""Layouts of caches: a layout is a Python function from an array's indices to
the cache's (``lambda i, j: (j, i)``, ``lambda i: (i // 8, i % 8)``), traced on
symbolic indices into loop-IR index expressions; ``layout_text`` writes one
back as source (``polyop.isl_ir.index_text``), which is how a schedule's trace
records it.

Example::

    >>> layout_text(lambda i, j: (j // 4, i, j % 4))
    'lambda i0, i1: ((i1 // 4), i0, (i1 % 4), )'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .. import ir
from ..errors import ScheduleError
from ..isl_ir import index_text
from ..types import INDEX


def apply_layout(layout: Callable, formal: list[ir.Expr], what: str) -> tuple[ir.Expr, ...]:
    if not callable(layout):
        raise ScheduleError(f"{what}: the layout must be a function of the array's "
                            f"indices (lambda i, j: ...), got {type(layout).__name__}")
    try:
        sig = inspect.signature(layout)
    except (TypeError, ValueError):
        sig = None  # no signature to check (a builtin): the call says what is wrong
    if sig is not None:  # the wrong arity: say so, not Python's TypeError from the call
        try:
            sig.bind(*formal)
        except TypeError:
            names = ", ".join(f"i{k}" for k in range(len(formal)))
            raise ScheduleError(f"{what}: the layout must take one index per dimension "
                                f"of the array ({len(formal)}: lambda {names}: ...), but "
                                f"its signature is {sig}") from None
    out = layout(*[LayoutIndex(v) for v in formal])
    if not isinstance(out, (tuple, list)):
        out = (out,)
    result = []
    for e in out:
        if isinstance(e, int) and not isinstance(e, bool):
            e = LayoutIndex(ir.Const(e, INDEX))
        if not isinstance(e, LayoutIndex):
            raise ScheduleError(f"{what}: the layout must return integer expressions of its "
                                f"arguments, got {type(e).__name__}")
        result.append(e.expr)
    return tuple(result)


class LayoutIndex:
    """An index expression in a layout: ``+ - *`` (by constants), ``//`` and ``%``
    (by positive constants) build loop-IR expressions."""

    def __init__(self, expr: ir.Expr):
        self.expr = expr

    @staticmethod
    def _of(v) -> ir.Expr:
        if isinstance(v, LayoutIndex):
            return v.expr
        if isinstance(v, int) and not isinstance(v, bool):
            return ir.Const(v, INDEX)
        raise TypeError(f"layout: expected an index or an int, got {type(v).__name__}")

    def _bin(self, op: str, a, b) -> LayoutIndex:
        return LayoutIndex(ir.Bin(op, self._of(a), self._of(b), INDEX))

    def _by_constant(self, op: str, c) -> LayoutIndex:
        if not isinstance(c, int) or isinstance(c, bool) or c <= 0:
            raise TypeError(f"layout: {'//' if op == 'fdiv' else '%'} needs a positive "
                            "integer constant")
        return self._bin(op, self, c)

    def __add__(self, o): return self._bin("add", self, o)
    def __radd__(self, o): return self._bin("add", o, self)
    def __sub__(self, o): return self._bin("sub", self, o)
    def __rsub__(self, o): return self._bin("sub", o, self)
    def __mul__(self, o): return self._bin("mul", self, o)
    def __rmul__(self, o): return self._bin("mul", o, self)
    def __neg__(self): return LayoutIndex(ir.Neg(self.expr, INDEX))
    def __floordiv__(self, c): return self._by_constant("fdiv", c)
    def __mod__(self, c): return self._by_constant("mod", c)


def layout_text(layout: Callable) -> str:
    """A (valid) layout function as the lambda text of the index expressions it
    computes."""
    n = len(inspect.signature(layout).parameters)
    names = [f"i{k}" for k in range(n)]
    out = apply_layout(layout, [ir.Var(v, INDEX) for v in names], "layout")
    return f"lambda {', '.join(names)}: ({''.join(index_text(e) + ', ' for e in out)})"
