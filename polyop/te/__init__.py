"""Tensor expressions (TVM-style ``compute``/``reduce_axis``) lowered to polyop's model.

A graph of tensor expressions is lowered to the same ``Program`` as a
``@polyop.kernel`` loop nest, so schedules (``polyop.Schedule``), legality
checking, bounds proofs and code generation are shared.

- ``polyop.te.expr``: expression nodes, operators, NumPy-2 typing, printing;
- ``polyop.te.ops``: constants, size variables, ``if_then_else``, math;
- ``polyop.te.tensor``: ``placeholder``, ``compute``, ``reduce_axis``, reductions;
- ``polyop.te.affine``: affine indices/extents/guards → isl;
- ``polyop.te.lower``: the graph → ``Program`` (one statement per stage, init
  and update statements for reductions);
- ``polyop.te.build``: ``create_schedule``, ``build``, ``lower`` and the
  callable ``TEFunction``.

Example::

    >>> import numpy as np, polyop
    >>> M, N, K = polyop.var("M"), polyop.var("N"), polyop.var("K")
    >>> A = polyop.placeholder((M, K), "float64", name="A")
    >>> B = polyop.placeholder((K, N), "float64", name="B")
    >>> k = polyop.reduce_axis((0, K), name="k")
    >>> C = polyop.compute((M, N), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k),
    ...                    name="C")
    >>> sch = polyop.create_schedule(C)
    >>> [s for s in sch.stmts]
    ['C_init', 'C']
    >>> f = polyop.build(sch, [A, B, C])
    >>> a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.empty((2, 4))
    >>> f(a, b, c); c[0, 0]
    np.float64(3.0)
"""

from .build import TEFunction, build, create_schedule, is_te, lower
from .expr import Expr, IterVar, Var, logical_and, logical_not, logical_or
from .lowering import lower_program
from .ops import (
    absolute,
    const,
    cos,
    exp,
    if_then_else,
    log,
    maximum,
    minimum,
    sin,
    sqrt,
    tanh,
    var,
)
from .tensor import Tensor, compute, placeholder, reduce_axis, reduction


def reduce_sum(expr, axis) -> Expr:
    """Sum of ``expr`` over the reduce axis (or axes) ``axis``; exported as ``polyop.sum``.

    Example: ``polyop.sum(A[i, k] * B[k, j], axis=k)``.
    """
    return reduction("sum", expr, axis)


def reduce_max(expr, axis) -> Expr:
    """Maximum of ``expr`` over ``axis`` (identity -inf, or the integer type's
    minimum); exported as ``polyop.max``."""
    return reduction("max", expr, axis)


def reduce_min(expr, axis) -> Expr:
    """Minimum of ``expr`` over ``axis`` (identity +inf, or the integer type's
    maximum); exported as ``polyop.min``."""
    return reduction("min", expr, axis)


__all__ = [
    "Expr", "IterVar", "TEFunction", "Tensor", "Var", "absolute", "build", "compute", "const",
    "cos", "create_schedule", "exp", "if_then_else", "is_te", "log", "logical_and",
    "logical_not", "logical_or", "lower", "lower_program", "maximum", "minimum", "placeholder",
    "reduce_axis", "reduce_max", "reduce_min", "reduce_sum", "reduction", "sin", "sqrt",
    "tanh", "var",
]
