"""Tensor-expression nodes, operator overloading and typing.

A tensor expression is a tree of immutable nodes built by ordinary Python
operators on size variables (``polyop.var``), axes (``IterVar``), tensor
reads (``A[i, j]``) and constants:

- ``Const``: a number; Python ``int``/``float`` literals are *weak* (NumPy 2):
  ``A[i] * 2.0`` keeps ``A``'s ``float32``, ``x + 1`` keeps ``x``'s ``int32``;
  axes and size variables are weak too, as Python loop indices are
  (``A[i] * i`` stays ``float32``), and so is arithmetic on weak values only;
- ``Var``: a symbolic size (an ``int64`` size parameter of the program);
- ``IterVar``: an axis of a ``compute`` or a reduce axis (``int64``);
- ``Read``: ``A[i, j]``, an element of a tensor;
- ``Binary`` (``add sub mul div fdiv mod pow min max``), ``Compare``,
  ``Logical``/``Not`` (conditions, dtype ``bool``), ``Neg``, ``Call``
  (``exp sqrt log sin cos tanh abs``), ``Select`` (``if_then_else``), ``Cast``;
- ``Reduce``: ``sum``/``max``/``min`` of a body over reduce axes (only as the
  whole body of a ``compute``).

Typing follows NumPy 2: two typed operands promote like numpy arrays
(``float32`` with ``int32``/``int64`` gives ``float64``), a weak Python scalar
adopts the other operand's type (a ``float`` literal meeting an integer gives
``float64``), ``/`` is true division, ``//`` and ``%`` floor. Math functions keep
a float argument's width and give ``float64`` for integers.

An expression is not a number either: ``math.exp(A[i])``, ``float(A[i])`` or
``range(A[i])`` raise ``ExpressionTypeError`` (a ``FrontendError`` and a
``TypeError``) at the user's line, naming ``polyop.exp`` and friends.

Conditions have no Python truth value: use ``&``, ``|``, ``~`` (or
``logical_and``/``logical_or``/``logical_not``) and ``if_then_else``. As in TVM,
``a == b`` between two expressions builds a comparison whose ``bool()`` is
object identity, so expressions can live in lists and dict keys.

Example::

    >>> import polyop
    >>> n = polyop.var("n")
    >>> A = polyop.placeholder((n,), "float32", name="A")
    >>> i = polyop.reduce_axis((0, n), name="i")
    >>> e = A[i] * 2.0 + 1
    >>> e.dtype, str(e)
    (f32, 'A[i] * 2.0 + 1')
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from ..errors import FrontendError
from ..ir import BOOL
from ..types import DTYPES, DType, f32, f64, i32, i64

_HERE = os.path.dirname(os.path.abspath(__file__))  # polyop/te: not the user's code


def user_site() -> tuple[str, int]:
    """File and line of the innermost caller outside ``polyop.te``."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(
            frame.f_code.co_filename)) == _HERE:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - always called from user code
        return "<unknown>", 0
    return frame.f_code.co_filename, frame.f_lineno


_DTYPE_NAMES = {"float32": f32, "float64": f64, "int32": i32, "int64": i64, "bool": BOOL,
                **DTYPES}
MATH_FUNCS = ("exp", "sqrt", "log", "sin", "cos", "tanh", "abs")


def as_dtype(dtype) -> DType:
    """``"float32"``, ``"f32"``, ``polyop.f32`` or ``np.float32`` → a ``DType``.

    Example::

        >>> as_dtype("float64"), as_dtype(np.int32)
        (f64, i32)
    """
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name in _DTYPE_NAMES and name != "bool":
        return _DTYPE_NAMES[name]
    raise TypeError(f"unsupported dtype {dtype!r}: use \"float32\", \"float64\", \"int32\" "
                    "or \"int64\" (or polyop.f32, ...)")


class ExpressionTypeError(FrontendError, TypeError):
    """A tensor expression used where Python needs a number now: ``math.exp(A[i])``,
    ``float(A[i])``, ``range(A[i])``. It names the user's line and the polyop
    function to use instead."""


def _not_a_number(e: Expr, what: str) -> ExpressionTypeError:
    filename, line = user_site()
    return ExpressionTypeError(
        f"'{e}' is a tensor expression, not a number, so {what} (and math.exp, "
        "math.sqrt, ... which call float()) cannot take it: use polyop.exp, polyop.sqrt, "
        "polyop.log, polyop.sin, polyop.cos, polyop.tanh, abs(), "
        "polyop.maximum/minimum, and .astype(\"float64\") or .astype(\"int64\") to "
        "convert", filename, line, 1)


# -- the base class: operator overloading ----------------------------------------------------

class Expr:
    """Base class of tensor-expression nodes; ``.dtype`` is the value's type,
    ``.weak`` whether it types like a Python scalar (literals, axes, sizes and
    arithmetic on them only)."""

    dtype: DType
    weak = False

    # arithmetic
    def __add__(self, o): return binary("add", self, o)
    def __radd__(self, o): return binary("add", o, self)
    def __sub__(self, o): return binary("sub", self, o)
    def __rsub__(self, o): return binary("sub", o, self)
    def __mul__(self, o): return binary("mul", self, o)
    def __rmul__(self, o): return binary("mul", o, self)
    def __truediv__(self, o): return binary("div", self, o)
    def __rtruediv__(self, o): return binary("div", o, self)
    def __floordiv__(self, o): return binary("fdiv", self, o)
    def __rfloordiv__(self, o): return binary("fdiv", o, self)
    def __mod__(self, o): return binary("mod", self, o)
    def __rmod__(self, o): return binary("mod", o, self)
    def __pow__(self, o): return binary("pow", self, o)
    def __rpow__(self, o): return binary("pow", o, self)
    def __neg__(self): return negate(self)
    def __pos__(self): return self
    def __abs__(self): return call("abs", self)

    # comparisons (``==`` between two expressions has identity truth, see Compare)
    def __lt__(self, o): return compare("lt", self, o)
    def __le__(self, o): return compare("le", self, o)
    def __gt__(self, o): return compare("gt", self, o)
    def __ge__(self, o): return compare("ge", self, o)

    def __eq__(self, o):  # type: ignore[override]
        return compare("eq", self, o) if _is_operand(o) else NotImplemented

    def __ne__(self, o):  # type: ignore[override]
        return compare("ne", self, o) if _is_operand(o) else NotImplemented

    __hash__ = object.__hash__

    # logic (conditions only: on integers Python's & | ~ are bitwise)
    def __and__(self, o): return logical_and(*_conditions("&", self, o))
    def __rand__(self, o): return logical_and(*_conditions("&", o, self))
    def __or__(self, o): return logical_or(*_conditions("|", self, o))
    def __ror__(self, o): return logical_or(*_conditions("|", o, self))
    def __invert__(self): return logical_not(*_conditions("~", self))

    def __bool__(self) -> bool:
            raise ExpressionTypeError(f"the tensor expression '{self}' has no Python truth "
                                  "value: combine conditions with & | ~, choose values with "
                                  "polyop.if_then_else(cond, a, b), and use "
                                  "polyop.maximum/minimum instead of max/min", *user_site())

    # not a number: math.exp(A[i]), int(A[i]) or range(A[i]) need a value now
    def __float__(self): raise _not_a_number(self, "float()")
    def __int__(self): raise _not_a_number(self, "int()")
    def __index__(self): raise _not_a_number(self, "an integer index")
    def __complex__(self): raise _not_a_number(self, "complex()")

    def astype(self, dtype) -> Expr:
        """This value converted to ``dtype`` (``"float64"``, ``polyop.i32``, ...)."""
        return cast(self, dtype)

    def __repr__(self) -> str:
        return to_str(self)

    __str__ = __repr__


_node = dataclass(frozen=True, eq=False, repr=False)


@_node
class Const(Expr):
    value: int | float | bool
    dtype: DType
    weak: bool = False  # a Python literal: adopts the type of what it meets


@_node
class Var(Expr):
    """A symbolic size (``polyop.var("n")``): an ``int64`` size parameter."""

    name: str
    dtype: DType = i64
    weak = True  # a Python int in the reference semantics


@dataclass(eq=False, repr=False)
class IterVar(Expr):
    """An axis: ``kind`` is ``"axis"`` (a compute's output axis) or ``"reduce"``;
    it runs over ``lo <= v < hi``. ``owner`` is the compute tensor of an output
    axis (set when the compute is created)."""

    name: str
    lo: Expr
    hi: Expr
    kind: str
    owner: object = None
    dtype: DType = i64
    weak = True  # like a Python loop index: ``A[i] * i`` keeps A's float32


@_node
class Read(Expr):
    tensor: object  # a polyop.te.tensor.Tensor
    index: tuple[Expr, ...]
    dtype: DType


@_node
class Binary(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: DType
    weak: bool = False


@_node
class Compare(Expr):
    op: str
    a: Expr
    b: Expr
    identity_truth: bool = False  # both operands were expressions: == is identity
    dtype: DType = BOOL

    def __bool__(self) -> bool:
        if self.identity_truth and self.op in ("eq", "ne"):
            return (self.a is self.b) == (self.op == "eq")
        return Expr.__bool__(self)


@_node
class Logical(Expr):
    op: str  # "and" | "or"
    a: Expr
    b: Expr
    dtype: DType = BOOL


@_node
class Not(Expr):
    a: Expr
    dtype: DType = BOOL


@_node
class Neg(Expr):
    a: Expr
    dtype: DType
    weak: bool = False


@_node
class Call(Expr):
    fn: str
    args: tuple[Expr, ...]
    dtype: DType


@_node
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr
    dtype: DType


@_node
class Cast(Expr):
    a: Expr
    dtype: DType


@_node
class Reduce(Expr):
    """``combiner`` (``sum``/``max``/``min``) of ``body`` over ``axes``."""

    combiner: str
    body: Expr
    axes: tuple[IterVar, ...]
    dtype: DType


# -- construction and typing -------------------------------------------------------------------

def _is_operand(x) -> bool:
    return isinstance(x, (Expr, numbers.Number, np.generic))


def as_expr(x) -> Expr:
    """An expression from an expression, a Python number or a numpy scalar."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, (bool, np.bool_)):
        return Const(bool(x), BOOL, weak=isinstance(x, bool))
    if isinstance(x, np.generic) and x.dtype.name in _DTYPE_NAMES:
        dt = _DTYPE_NAMES[x.dtype.name]
        return Const(x.item(), dt)  # numpy scalars are typed, not weak
    if isinstance(x, numbers.Integral):
        v = int(x)
        if not -(2**63) <= v < 2**63:
            raise OverflowError(f"integer constant {v} does not fit in int64")
        return Const(v, i64, weak=True)
    if isinstance(x, numbers.Real):
        return Const(float(x), f64, weak=True)
    if type(x).__name__ == "Tensor":
        raise FrontendError(f"tensor {x.name} is used as a value without an index: "
                            f"write {x.name}[i, ...]")
    raise TypeError(f"cannot use {type(x).__name__} {x!r} in a tensor expression")


def is_weak(e: Expr) -> bool:
    """Whether ``e`` types like a Python scalar (NumPy 2's weak scalars)."""
    return e.weak


def promote(a: DType, b: DType) -> DType:
    """NumPy's promotion of two typed operands (bool ranks below every number).

    Example::

        >>> promote(f32, i32), promote(f32, f64), promote(i32, i64)
        (f64, f64, i64)
    """
    if a == b:
        return a
    if a == BOOL or b == BOOL:
        return b if a == BOOL else a
    if a.is_float and b.is_float or not a.is_float and not b.is_float:
        return a if a.bits >= b.bits else b
    fl, it = (a, b) if a.is_float else (b, a)
    return fl if fl.bits > it.bits else f64


def result_type(a: Expr, b: Expr) -> DType:
    """The type of ``a op b`` under NumPy 2's weak-scalar rule."""
    wa, wb = is_weak(a), is_weak(b)
    if wa != wb:
        weak, typed = (a.dtype, b.dtype) if wa else (b.dtype, a.dtype)
        if typed == BOOL:
            return weak
        if weak.is_float and not typed.is_float:
            return f64
        return typed
    return promote(a.dtype, b.dtype)


def _fold(op: str, a: Const, b: Const) -> Const | None:
    """Two weak literals combine like Python numbers (``2 * 3`` stays a literal)."""
    x, y = a.value, b.value
    try:
        v = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
             "div": lambda: x / y, "fdiv": lambda: x // y, "mod": lambda: x % y,
             "min": lambda: min(x, y), "max": lambda: max(x, y)}[op]()
    except (KeyError, ZeroDivisionError):
        return None
    return as_expr(v)


def binary(op: str, a, b) -> Expr:
    """``a op b`` typed by ``result_type`` (``div`` of integers gives ``float64``)."""
    a, b = as_expr(a), as_expr(b)
    if isinstance(a, Const) and isinstance(b, Const) and a.weak and b.weak \
            and a.dtype != BOOL and b.dtype != BOOL:
        folded = _fold(op, a, b)
        if folded is not None:
            return folded
    dtype = result_type(a, b)
    if dtype == BOOL:
        dtype = i64
    if op == "div" and not dtype.is_float:
        dtype = f64
    weak = is_weak(a) and is_weak(b) and op != "pow"
    return Binary(op, a, b, dtype, weak)


def compare(op: str, a, b) -> Compare:
    identity = isinstance(a, Expr) and isinstance(b, Expr)
    return Compare(op, as_expr(a), as_expr(b), identity)


def _condition(x, what: str) -> Expr:
    e = as_expr(x)
    if e.dtype == BOOL:
        return e
    return Compare("ne", e, Const(0, e.dtype, weak=True))


def _conditions(op: str, *xs) -> tuple:
    for x in xs:
        e = as_expr(x)
        if e.dtype != BOOL:
            raise TypeError(f"'{op}' combines conditions, but '{e}' is a {e.dtype} value "
                            "(bitwise operators are not supported; use comparisons, or "
                            "polyop.logical_and/logical_or/logical_not for truth values)")
    return xs


def logical_and(*conds) -> Expr:
    """All conditions hold (``a & b``); the later ones are evaluated only when
    the earlier hold.

    Example::

        >>> n = Var("n"); str(logical_and(n > 1, n < 9))
        '(n > 1) & (n < 9)'
    """
    return _chain("and", conds)


def logical_or(*conds) -> Expr:
    """Some condition holds (``a | b``), evaluated left to right."""
    return _chain("or", conds)


def _chain(op: str, conds) -> Expr:
    if not conds:
        raise TypeError(f"logical_{op} needs at least one condition")
    out = _condition(conds[0], op)
    for c in conds[1:]:
        out = Logical(op, out, _condition(c, op))
    return out


def logical_not(cond) -> Expr:
    """The condition does not hold (``~c``)."""
    return Not(_condition(cond, "not"))


def negate(a) -> Expr:
    a = as_expr(a)
    if isinstance(a, Const) and a.dtype != BOOL:
        return Const(-a.value, a.dtype, a.weak)
    return Neg(a, i64 if a.dtype == BOOL else a.dtype, is_weak(a))


def call(fn: str, x) -> Expr:
    """A math function of one value: floats keep their width, integers give
    ``float64`` (``abs`` keeps any type)."""
    x = as_expr(x)
    if fn == "abs":
        return Call("abs", (x,), i64 if x.dtype == BOOL else x.dtype)
    dtype = x.dtype if x.dtype.is_float and not is_weak(x) else f64
    return Call(fn, (x,), dtype)


def cast(x, dtype) -> Expr:
    x, dt = as_expr(x), as_dtype(dtype)
    if x.dtype == dt and not is_weak(x):
        return x
    return Cast(x, dt)


# -- traversal and printing ----------------------------------------------------------------------

def children(e: Expr) -> Iterator[Expr]:
    """The direct sub-expressions of ``e`` (an axis's bounds are not children)."""
    if isinstance(e, (IterVar, Const, Var)):
        return
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, Expr):
            yield v
        elif isinstance(v, tuple):
            yield from (x for x in v if isinstance(x, Expr))


def walk(e: Expr) -> Iterator[Expr]:
    """``e`` and every expression below it, pre-order."""
    yield e
    for c in children(e):
        yield from walk(c)


_INFIX = {"add": ("+", 4), "sub": ("-", 4), "mul": ("*", 5), "div": ("/", 5),
          "fdiv": ("//", 5), "mod": ("%", 5), "pow": ("**", 7)}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def to_str(e: Expr, names=None, prec: int = 0) -> str:
    """Python-like text of ``e``; ``names(itervar)`` may rename axes.

    Example::

        >>> n = Var("n"); to_str((n + 1) // 2 * 3)
        '(n + 1) // 2 * 3'
    """
    def go(x: Expr, p: int = 0) -> str:
        return to_str(x, names, p)

    if isinstance(e, Const):
        return repr(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, IterVar):
        return names(e) if names is not None else e.name
    if isinstance(e, Read):
        return f"{e.tensor.name}[{', '.join(go(i) for i in e.index)}]"
    if isinstance(e, Binary):
        if e.op in _INFIX:
            sym, p = _INFIX[e.op]
            left, right = (p + 1, p) if e.op == "pow" else (p, p + 1)
            s = f"{go(e.a, left)} {sym} {go(e.b, right)}"
            return f"({s})" if p < prec else s
        return f"{'maximum' if e.op == 'max' else 'minimum'}({go(e.a)}, {go(e.b)})"
    if isinstance(e, Compare):
        s = f"{go(e.a, 4)} {_CMP[e.op]} {go(e.b, 4)}"
        return f"({s})" if prec > 0 else s
    if isinstance(e, Logical):
        p = 2 if e.op == "and" else 1
        s = f"{go(e.a, p)} {'&' if e.op == 'and' else '|'} {go(e.b, p + 1)}"
        return f"({s})" if p < prec else s
    if isinstance(e, Not):
        return f"~{go(e.a, 9)}"
    if isinstance(e, Neg):
        return f"-{go(e.a, 6)}"
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(go(a) for a in e.args)})"
    if isinstance(e, Select):
        return f"if_then_else({go(e.cond)}, {go(e.a)}, {go(e.b)})"
    if isinstance(e, Cast):
        return f"{go(e.a, 9)}.astype({_numpy_name(e.dtype)!r})"
    if isinstance(e, Reduce):
        axes = ", ".join(go(a) for a in e.axes)
        axes = axes if len(e.axes) == 1 else f"[{axes}]"
        return f"{e.combiner}({go(e.body)}, axis={axes})"
    raise AssertionError(f"unknown tensor expression node {type(e).__name__}")


def _numpy_name(dt: DType) -> str:
    return dt.numpy.name if dt != BOOL else "bool"
