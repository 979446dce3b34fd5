"""C-like text of one loop-IR expression (``polyop.printer`` prints statements).

``//`` and ``%`` keep Python's floor semantics; ``min``/``max`` are functions;
inside a vectorised loop (a ``polyop.vector_plan.VectorPlan``) an access
contiguous in the loop is a slice and any other per-lane access a gather.

Example::

    >>> from polyop.ir import Bin, Load, Var
    >>> from polyop.types import f64, i64
    >>> i = Var("i", i64)
    >>> expr_to_c(Bin("fdiv", Bin("add", Load("A", (i,), f64), Var("x", f64), f64), i, f64))
    '(A[i] + x) // i'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import ir

if TYPE_CHECKING:  # a plan is only read here (duck-typed): no import of its module
    from .vector_plan import VectorPlan

_INFIX = {"add": ("+", 4), "sub": ("-", 4), "mul": ("*", 5), "div": ("/", 5),
          "fdiv": ("//", 5), "mod": ("%", 5)}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
CTYPE = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t", "bool": "bool"}


def expr_to_c(e: ir.Expr, prec: int = 0, plan: VectorPlan | None = None) -> str:
    """One expression; ``prec`` is the binding strength of the context; inside
    a vectorised loop (``plan``), per-lane accesses show as slices or gathers."""

    def sub(x: ir.Expr, p: int = 0) -> str:
        return expr_to_c(x, p, plan)

    if isinstance(e, ir.Const):
        return repr(e.value) if not isinstance(e.value, float) else _float(e.value)
    if isinstance(e, ir.Var):
        return e.name
    if isinstance(e, ir.Load):
        return access_to_c(e.array, e.index, plan, "gather")
    if isinstance(e, ir.Bin):
        if e.op in _INFIX:
            sym, p = _INFIX[e.op]
            s = f"{sub(e.a, p)} {sym} {sub(e.b, p + 1)}"
            return f"({s})" if p < prec else s
        return f"{e.op}({sub(e.a)}, {sub(e.b)})"
    if isinstance(e, ir.Call):
        return f"{e.fn}({', '.join(sub(a) for a in e.args)})"
    if isinstance(e, ir.Cast):
        return f"({CTYPE[e.dtype.name]}){sub(e.a, 9)}"
    text = operator_to_c(e, prec, sub)
    if text is None:
        raise AssertionError(f"unknown expression {e!r}")
    return text


def operator_to_c(e: ir.Expr, prec: int, sub: Callable[..., str]) -> str | None:
    """The text of the expressions every C dialect writes alike — comparisons,
    ``&&``/``||``, ``!``, unary ``-`` and ``?:`` — with ``sub(x, p)`` printing
    an operand at binding strength ``p``; ``None`` for any other expression
    (the printers of the loop nest and of GPU kernels share it)."""
    if isinstance(e, ir.Cmp):
        s = f"{sub(e.a, 3)} {_CMP[e.op]} {sub(e.b, 3)}"
        return f"({s})" if prec > 2 else s
    if isinstance(e, ir.Logic):
        p = 2 if e.op == "and" else 1
        s = f"{sub(e.a, p)} {'&&' if e.op == 'and' else '||'} {sub(e.b, p + 1)}"
        return f"({s})" if p < prec else s
    if isinstance(e, ir.Not):
        return f"!{sub(e.a, 9)}"
    if isinstance(e, ir.Neg):
        return f"-{sub(e.a, 9)}"
    if isinstance(e, ir.Select):
        s = f"{sub(e.cond, 1)} ? {sub(e.a, 1)} : {sub(e.b, 1)}"
        return f"({s})" if prec > 0 else s
    return None


def access_to_c(array: str, index: tuple, plan: VectorPlan | None, gather: str) -> str:
    """``A[i][j]``; in a vectorised loop ``A[i][j:j + 8]`` when contiguous in
    it, ``A[i][2 * j:2 * j + 16:2]`` at a small stride, ``gather(A[5 * j])``
    (or ``scatter``) otherwise."""
    subs = [expr_to_c(x) for x in index]
    kind = plan.access(index) if plan is not None and index else "uniform"
    if kind in ("contiguous", "strided"):
        step = plan.stride(index)
        end = ir.Bin("add", index[-1], ir.Const(step * plan.lanes), index[-1].dtype)
        subs[-1] = f"{subs[-1]}:{expr_to_c(end)}" + (f":{step}" if step > 1 else "")
    text = array + "".join(f"[{x}]" for x in subs)
    return f"{gather}({text})" if kind == "gather" else text


def _float(v: float) -> str:
    s = repr(v)
    return s if any(c in s for c in ".eni") else s + ".0"
