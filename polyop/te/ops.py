"""Public constructors of tensor expressions: constants, size variables,
``if_then_else``, elementwise ``maximum``/``minimum`` and math functions.

Math functions keep a float argument's width (``exp`` of ``float32`` is
``float32``) and give ``float64`` for integers, like numpy's ufuncs.

Example::

    >>> import polyop
    >>> n = polyop.var("n")
    >>> X = polyop.placeholder((n,), "float32", name="X")
    >>> i = polyop.reduce_axis((0, n), name="i")
    >>> e = polyop.if_then_else(X[i] > 0, polyop.exp(X[i]), 0.0)
    >>> e.dtype
    f32
"""

from __future__ import annotations

from ..types import f64, i64
from .expr import (
    Const,
    Expr,
    Select,
    Var,
    _condition,
    as_dtype,
    as_expr,
    binary,
    call,
    is_weak,
    result_type,
)


def const(value, dtype=None) -> Const:
    """A typed constant (``polyop.const(0.5, "float32")``); without ``dtype`` a
    weak Python literal.

    Example::

        >>> const(1.5, "float32").dtype, const(2).weak
        (f32, True)
    """
    if dtype is None:
        return as_expr(value)
    dt = as_dtype(dtype)
    if isinstance(value, Expr):
        raise TypeError("polyop.const takes a number; use expr.astype(dtype) to convert")
    return Const(float(value) if dt.is_float else int(value), dt)


def if_then_else(cond, a, b) -> Expr:
    """``a`` where ``cond`` holds, else ``b``; only the chosen value is
    evaluated, so a read guarded by an affine condition (padding) is checked
    for bounds only where the condition holds.

    Example::

        >>> n = Var("n"); str(if_then_else(n > 0, n, 0))
        'if_then_else(n > 0, n, 0)'
    """
    c = _condition(cond, "if_then_else")
    a, b = as_expr(a), as_expr(b)
    dtype = result_type(a, b)
    if is_weak(a) and is_weak(b):
        dtype = f64 if a.dtype.is_float or b.dtype.is_float else i64
    return Select(c, a, b, dtype)


def maximum(a, b) -> Expr:
    """The larger of two values (``a`` on ties and when either is NaN, where
    ``numpy.maximum`` gives NaN). Example: ``polyop.maximum(X[i], 0.0)`` (ReLU)."""
    return binary("max", a, b)


def minimum(a, b) -> Expr:
    """The smaller of two values (``a`` on ties and when either is NaN).
    Example: ``polyop.minimum(X[i], 6.0)``."""
    return binary("min", a, b)


def exp(x) -> Expr:
    """``e ** x``. Example: ``polyop.exp(X[i, j] - mx[i])``."""
    return call("exp", x)


def sqrt(x) -> Expr:
    """Square root. Example: ``polyop.sqrt(X[i] * X[i] + 1.0)``."""
    return call("sqrt", x)


def log(x) -> Expr:
    """Natural logarithm. Example: ``polyop.log(total[i])``."""
    return call("log", x)


def sin(x) -> Expr:
    """Sine. Example: ``polyop.sin(X[i])``."""
    return call("sin", x)


def cos(x) -> Expr:
    """Cosine. Example: ``polyop.cos(X[i])``."""
    return call("cos", x)


def tanh(x) -> Expr:
    """Hyperbolic tangent. Example: ``polyop.tanh(X[i])``."""
    return call("tanh", x)


def absolute(x) -> Expr:
    """``|x|`` (exported as ``polyop.abs``; Python's ``abs(expr)`` also works)."""
    return call("abs", x)


def var(name: str, dtype="int64") -> Var:
    """A symbolic size: a size parameter of the program, inferred at call time
    from the shapes of the array arguments.

    Two variables with the same name are the same parameter.

    Example::

        >>> n = var("n"); str(2 * n + 1)
        '2 * n + 1'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"polyop.var: name must be an identifier, got {name!r}")
    if as_dtype(dtype) != i64:
        raise TypeError("polyop.var: size variables are int64")
    return Var(name)
