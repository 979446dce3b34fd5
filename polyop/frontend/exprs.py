"""Python value expressions → polyop IR expressions, with types.

Typing follows what CPython + NumPy 2 compute for the same code. Values that
are Python numbers at run time are *weak* (NEP 50): literals, named ``int``/
``float`` constants, loop iterators and size parameters (Python ints), the
results of ``math.*``, ``float()``, ``int()``, and local scalars holding only
such values; a weak operand adopts the type of a typed one (``A[i] * 2.0`` and
``math.exp(x) * x`` stay f32 for an f32 ``A`` or ``x``; ``B[i] + i`` stays i32),
except that a weak float meeting a typed integer gives f64. Two typed
operands promote like NumPy arrays (f32 with f64 gives f64, f32 with i32 or
i64 gives f64). ``/`` is true division; ``//`` and ``%`` floor like Python;
``math.*`` computes in f64, ``np.exp`` and friends keep a float argument's
width. Array elements, f32 and i32 scalar arguments and numpy scalar
constants (``np.float32(0.5)``) are typed; f64 and i64 scalar arguments are
weak, as the Python floats and ints a caller passes are.

Example::

    >>> import ast
    >>> from polyop.ir import Var
    >>> from polyop.types import f32
    >>> conv = ExprConverter(values={"i": Var("i")}, arrays={"A": (f32, 1)},
    ...                      resolve=lambda n: None, error=lambda n, m: ValueError(m))
    >>> conv.convert(ast.parse("A[i] * 2.0", mode="eval").body).dtype
    f32
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable, Mapping

import numpy as np

from ..ir import BOOL, Bin, Call, Cast, Cmp, Const, Expr, Load, Logic, Neg, Not, Select
from ..types import DTYPES, DType, f64, i64, promote
from .affine import size_hint

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
           ast.FloorDiv: "fdiv", ast.Mod: "mod", ast.Pow: "pow"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge",
           ast.Eq: "eq", ast.NotEq: "ne"}
_MATH = {math.sqrt: "sqrt", math.exp: "exp", math.log: "log", math.sin: "sin",
         math.cos: "cos", math.tanh: "tanh", math.fabs: "abs",
         np.sqrt: "sqrt", np.exp: "exp", np.log: "log", np.sin: "sin",
         np.cos: "cos", np.tanh: "tanh"}
#: NumPy's functions: a float argument keeps its width, the result is typed
_NUMPY_MATH = frozenset((np.sqrt, np.exp, np.log, np.sin, np.cos, np.tanh))
#: conditions ``(test, holds)`` under which an expression is evaluated
Guards = tuple[tuple[ast.AST, bool], ...]
SUPPORTED_CALLS = ("math.sqrt/exp/log/pow/sin/cos/tanh/fabs, abs, min, max, float, int")


class ExprConverter:
    """Convert one right-hand side; record its array reads in ``self.reads``.

    ``values`` maps names usable as values (iterators, size parameters, scalar
    arguments) to IR; ``arrays`` maps array names to ``(dtype, ndim)``
    (ndim 0 for local scalars). ``resolve`` evaluates a function expression in
    the kernel's globals; ``error(node, msg)`` builds the exception to raise.
    """

    def __init__(self, values: dict[str, Expr], arrays: dict[str, tuple[DType, int]],
                 resolve: Callable[[ast.AST], object],
                 error: Callable[[ast.AST, str], Exception],
                 typed_values: frozenset[str] = frozenset(),
                 weak_scalars: frozenset[str] = frozenset(),
                 shapes: Mapping[str, object] | None = None):
        self.values, self.arrays = values, arrays
        #: the kernel's arrays (objects with ``.shape``), for hints in errors
        self.shapes = shapes or {}
        self.resolve, self.error = resolve, error
        #: names of ``values`` that are typed (f32/i32 scalar arguments); the others
        #: are Python numbers (loop iterators, size parameters, f64/i64 arguments)
        self.typed_values = typed_values
        #: local scalars that hold only Python numbers (weak)
        self.weak_scalars = weak_scalars
        #: (array name, subscript AST nodes, the Subscript/Name node, guards,
        #: subscripts as loop IR) per read; guards: the conditions ``(test,
        #: holds)`` under which Python evaluates it (the branches of ``a if c
        #: else b``, the operands of ``and``/``or`` after the first)
        self.reads: list[tuple[str, tuple[ast.AST, ...], ast.AST, Guards,
                               tuple[Expr, ...]]] = []
        self._guards: list[tuple[ast.AST, bool]] = []
        self._weak: set[int] = set()
        self._keep: list[Expr] = []  # the weak nodes stay alive, so their ids stay theirs

    def is_weak(self, e: Expr) -> bool:
        """Whether ``e`` is a Python number at run time (see the module docstring)."""
        return id(e) in self._weak

    def mark(self, e: Expr, weak: bool = True) -> Expr:
        """``e``, recorded as weak when ``weak`` (a Python number at run time)."""
        if weak:
            self._weak.add(id(e))
            self._keep.append(e)
        return e

    def convert(self, node: ast.AST) -> Expr:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, f"{_describe(node)} is not supported in a kernel expression")
        return method(node)

    # -- leaves -------------------------------------------------------------------
    def _Constant(self, node: ast.Constant) -> Expr:
        v = node.value
        if isinstance(v, bool):
            return self.mark(Const(int(v), i64))
        if isinstance(v, int):
            return self.mark(Const(v, i64))
        if isinstance(v, float):
            return self.mark(Const(v, f64))
        raise self.error(node, f"constant {v!r} is not a number")

    def _Name(self, node: ast.Name) -> Expr:
        if node.id in self.values:
            return self.mark(self.values[node.id], node.id not in self.typed_values)
        if node.id in self.arrays:
            dtype, ndim = self.arrays[node.id]
            if ndim:
                raise self.error(node, f"array {node.id} used without a subscript")
            self.reads.append((node.id, (), node, tuple(self._guards), ()))
            return self.mark(Load(node.id, (), dtype), node.id in self.weak_scalars)
        value = self.resolve(node)
        const = constant_expr(value)
        if const is not None:  # a named constant of the enclosing scope
            return self.mark(const, not isinstance(value, np.generic))
        if isinstance(value, np.generic):
            raise self.error(node, f"constant {node.id} = {value!r}: its type {value.dtype} "
                                   "is not supported (float32, float64, int32, int64)")
        raise self.error(node, f"name {node.id!r} is not defined here "
                               "(not a loop iterator, argument, assigned local scalar "
                               "or numeric constant)")

    def _Attribute(self, node: ast.Attribute) -> Expr:
        raise self.error(node, size_hint(node, self.shapes, self.resolve)
                         or f"{_describe(node)} is not supported in a kernel expression")

    def _Subscript(self, node: ast.Subscript) -> Expr:
        hint = size_hint(node, self.shapes, self.resolve)
        if hint:
            raise self.error(node, hint)
        name, index = self.subscript(node)
        idx = tuple(self.convert(i) for i in index)
        for i, e in zip(index, idx):
            if e.dtype.is_float:
                raise self.error(i, f"subscript of {name} is not an integer")
        self.reads.append((name, index, node, tuple(self._guards), idx))
        return Load(name, idx, self.arrays[name][0])

    def subscript(self, node: ast.Subscript) -> tuple[str, tuple[ast.AST, ...]]:
        """Check ``A[i, j]`` against the array's rank; return name and index nodes."""
        if isinstance(node.value, ast.Subscript):
            raise self.error(node, "chained subscript A[i][j]: write A[i, j]")
        if not isinstance(node.value, ast.Name) or node.value.id not in self.arrays:
            raise self.error(node, f"{_describe(node.value)} is not an array argument")
        name = node.value.id
        sl = node.slice
        index = tuple(sl.elts) if isinstance(sl, ast.Tuple) else (sl,)
        if any(isinstance(i, ast.Slice) for i in index):
            raise self.error(node, f"slice in subscript of {name}: only single elements "
                                   "are accessed in a kernel")
        ndim = self.arrays[name][1]
        if ndim == 0:
            raise self.error(node, f"{name} is a scalar and cannot be subscripted")
        if len(index) != ndim:
            raise self.error(node, f"{name} has {ndim} dimensions but is subscripted "
                                   f"with {len(index)}")
        return name, index

    # -- arithmetic -------------------------------------------------------------------
    def _BinOp(self, node: ast.BinOp) -> Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not supported")
        return self.arith(op, self.convert(node.left), self.convert(node.right), node)

    def arith(self, op: str, a: Expr, b: Expr, node: ast.AST) -> Expr:
        """Type and build ``a op b`` (also used for augmented assignments)."""
        weak = self.is_weak(a) and self.is_weak(b)
        dtype = _result_type(a, b, self.is_weak(a), self.is_weak(b))
        if op == "div" and not dtype.is_float:
            dtype = f64
        if op == "pow":
            if not dtype.is_float:
                if isinstance(b, Const) and 0 <= b.value <= 8:
                    out: Expr = Const(1, i64)
                    for k in range(int(b.value)):
                        out = a if k == 0 else Bin("mul", out, a, dtype)
                    return self.mark(out, weak)
                dtype = f64
        return self.mark(Bin(op, a, b, dtype), weak)

    def _UnaryOp(self, node: ast.UnaryOp) -> Expr:
        a = self.convert(node.operand)
        if isinstance(node.op, ast.USub):
            if isinstance(a, Const):
                return self.mark(Const(-a.value, a.dtype), self.is_weak(a))
            return self.mark(Neg(a, a.dtype), self.is_weak(a))
        if isinstance(node.op, ast.UAdd):
            return a
        if isinstance(node.op, ast.Not):
            return Not(_truth(a))
        raise self.error(node, f"unary operator {type(node.op).__name__} is not supported")

    def _Call(self, node: ast.Call) -> Expr:
        fn = self.resolve(node.func)
        if node.keywords:
            raise self.error(node, "keyword arguments are not supported in kernel calls")
        known = (*_MATH, math.pow, np.power, builtins.abs, builtins.min, builtins.max,
                 builtins.float, builtins.int)
        if not any(fn is f for f in known):
            raise self.error(node, size_hint(node, self.shapes, self.resolve)
                             or f"call to {_describe(node.func)} is not supported "
                                f"(supported: {SUPPORTED_CALLS})")
        args = [self.convert(a) for a in node.args]
        n = len(args)
        if fn in _NUMPY_MATH and n == 1:  # np.exp(float32) is a float32
            x = args[0]
            dt = x.dtype if x.dtype.is_float and not self.is_weak(x) else f64
            return Call(_MATH[fn], (x,), dt)
        if fn in _MATH and n == 1:  # math.exp(x): a Python float
            return self.mark(Call(_MATH[fn], (args[0],), f64))
        if fn is math.pow and n == 2:
            return self.mark(Bin("pow", args[0], args[1], f64))
        if fn is np.power and n == 2:
            dt = _result_type(args[0], args[1], self.is_weak(args[0]), self.is_weak(args[1]))
            return Bin("pow", args[0], args[1], dt if dt.is_float else f64)
        if fn is builtins.abs and n == 1:
            return self.mark(Call("abs", (args[0],), args[0].dtype), self.is_weak(args[0]))
        if fn in (builtins.min, builtins.max) and n >= 2:
            out = args[0]
            for b in args[1:]:
                weak = self.is_weak(out) and self.is_weak(b)
                dt = _result_type(out, b, self.is_weak(out), self.is_weak(b))
                out = self.mark(Bin(fn.__name__, out, b, dt), weak)
            return out
        if fn is builtins.float and n == 1:
            return self.mark(Cast(args[0], f64))
        if fn is builtins.int and n == 1:
            return self.mark(Cast(args[0], i64))
        raise self.error(node, f"call to {_describe(node.func)} is not supported "
                               f"(supported: {SUPPORTED_CALLS})")

    def _IfExp(self, node: ast.IfExp) -> Expr:
        cond = _truth(self.convert(node.test))
        a = self._under(node.body, ((node.test, True),))
        b = self._under(node.orelse, ((node.test, False),))
        wa, wb = self.is_weak(a), self.is_weak(b)
        return self.mark(Select(cond, a, b, _result_type(a, b, wa, wb)), wa and wb)

    # -- conditions ----------------------------------------------------------------------
    def _Compare(self, node: ast.Compare) -> Expr:
        out: Expr | None = None
        left = self.convert(node.left)
        for op, comp in zip(node.ops, node.comparators):
            name = _CMPOPS.get(type(op))
            if name is None:
                raise self.error(node, f"comparison {type(op).__name__} is not supported")
            right = self.convert(comp)
            c = Cmp(name, left, right)
            out = c if out is None else Logic("and", out, c)
            left = right
        return out

    def _BoolOp(self, node: ast.BoolOp) -> Expr:
        op = "and" if isinstance(node.op, ast.And) else "or"
        # each operand is evaluated only when those before it did not decide
        vals = [_truth(self._under(v, tuple((w, op == "and") for w in node.values[:k])))
                for k, v in enumerate(node.values)]
        out = vals[0]
        for v in vals[1:]:
            out = Logic(op, out, v)
        return out

    def _under(self, node: ast.AST, guards: Guards) -> Expr:
        """``convert(node)`` with its reads recorded under ``guards`` too."""
        self._guards.extend(guards)
        try:
            return self.convert(node)
        finally:
            del self._guards[len(self._guards) - len(guards):]


def _truth(e: Expr) -> Expr:
    """A number used as a condition means ``!= 0``, as in Python."""
    if e.dtype == BOOL:
        return e
    return Cmp("ne", e, Const(0, e.dtype))


def _result_type(a: Expr, b: Expr, weak_a: bool, weak_b: bool) -> DType:
    """The type of ``a op b`` under NumPy 2's rules (NEP 50): a weak operand
    (a Python number) adopts the typed one's type, except that a Python float
    meeting a typed integer gives f64."""
    if a.dtype == BOOL or b.dtype == BOOL:
        return i64 if a.dtype == b.dtype else (b.dtype if a.dtype == BOOL else a.dtype)
    if weak_a != weak_b:
        weak, typed = (a.dtype, b.dtype) if weak_a else (b.dtype, a.dtype)
        if weak.is_float and not typed.is_float:
            return f64
        return typed
    return promote(a.dtype, b.dtype)


def constant_expr(value: object) -> Const | None:
    """The IR constant of a named constant of the kernel's scope: a Python
    ``int``/``float`` (i64/f64, weak) or a numpy scalar of a supported type
    (``np.float32(0.5)``: f32); ``None`` for anything else.

    Example::

        >>> constant_expr(np.float32(0.5)), constant_expr(3), constant_expr("x")
        (Const(value=0.5, dtype=f32), Const(value=3, dtype=i64), None)
    """
    if type(value) is int:
        return Const(value, i64)
    if type(value) is float:
        return Const(value, f64)
    if isinstance(value, (np.integer, np.floating)):
        dt = DTYPES.get({"float32": "f32", "float64": "f64", "int32": "i32",
                         "int64": "i64"}.get(value.dtype.name, ""))
        if dt is not None:
            return Const(value.item(), dt)
    return None


def _describe(node: ast.AST) -> str:
    try:
        return f"'{ast.unparse(node)}'"
    except Exception:  # pragma: no cover - unparse handles every expression node
        return type(node).__name__
