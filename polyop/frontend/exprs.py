"""Python value expressions → polyop IR expressions, with types.

Typing follows what CPython + NumPy 2 compute for the same code: integers
(loop iterators, size parameters, int literals) are i64; mixing an int with a
float gives that float; f32 with f64 gives f64; a float literal adopts the
width of the float it meets (NumPy's "weak" Python scalars); ``/`` is true
division; ``//`` and ``%`` floor like Python; ``math.*`` functions return f64.

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
from collections.abc import Callable

import numpy as np

from ..ir import BOOL, Bin, Call, Cast, Cmp, Const, Expr, Load, Logic, Neg, Not, Select
from ..types import DType, f64, i64, promote

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
           ast.FloorDiv: "fdiv", ast.Mod: "mod", ast.Pow: "pow"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge",
           ast.Eq: "eq", ast.NotEq: "ne"}
_MATH = {math.sqrt: "sqrt", math.exp: "exp", math.log: "log", math.sin: "sin",
         math.cos: "cos", math.tanh: "tanh", math.fabs: "abs",
         np.sqrt: "sqrt", np.exp: "exp", np.log: "log", np.sin: "sin",
         np.cos: "cos", np.tanh: "tanh"}
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
                 error: Callable[[ast.AST, str], Exception]):
        self.values, self.arrays = values, arrays
        self.resolve, self.error = resolve, error
        #: (array name, subscript AST nodes, the Subscript/Name node) per read
        self.reads: list[tuple[str, tuple[ast.AST, ...], ast.AST]] = []

    def convert(self, node: ast.AST) -> Expr:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, f"{_describe(node)} is not supported in a kernel expression")
        return method(node)

    # -- leaves -------------------------------------------------------------------
    def _Constant(self, node: ast.Constant) -> Expr:
        v = node.value
        if isinstance(v, bool):
            return Const(int(v), i64)
        if isinstance(v, int):
            return Const(v, i64)
        if isinstance(v, float):
            return Const(v, f64)
        raise self.error(node, f"constant {v!r} is not a number")

    def _Name(self, node: ast.Name) -> Expr:
        if node.id in self.values:
            return self.values[node.id]
        if node.id in self.arrays:
            dtype, ndim = self.arrays[node.id]
            if ndim:
                raise self.error(node, f"array {node.id} used without a subscript")
            self.reads.append((node.id, (), node))
            return Load(node.id, (), dtype)
        value = self.resolve(node)
        if type(value) in (int, float):  # a named constant of the enclosing scope
            return Const(value, i64 if type(value) is int else f64)
        raise self.error(node, f"name {node.id!r} is not defined here "
                               "(not a loop iterator, argument, assigned local scalar "
                               "or numeric constant)")

    def _Subscript(self, node: ast.Subscript) -> Expr:
        name, index = self.subscript(node)
        idx = tuple(self.convert(i) for i in index)
        for i, e in zip(index, idx):
            if e.dtype.is_float:
                raise self.error(i, f"subscript of {name} is not an integer")
        self.reads.append((name, index, node))
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
        dtype = _result_type(a, b)
        if op == "div" and not dtype.is_float:
            dtype = f64
        if op == "pow":
            if not dtype.is_float:
                if isinstance(b, Const) and 0 <= b.value <= 8:
                    out: Expr = Const(1, i64)
                    for k in range(int(b.value)):
                        out = a if k == 0 else Bin("mul", out, a, dtype)
                    return out
                dtype = f64
        return Bin(op, a, b, dtype)

    def _UnaryOp(self, node: ast.UnaryOp) -> Expr:
        a = self.convert(node.operand)
        if isinstance(node.op, ast.USub):
            if isinstance(a, Const):
                return Const(-a.value, a.dtype)
            return Neg(a, a.dtype)
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
            raise self.error(node, f"call to {_describe(node.func)} is not supported "
                                   f"(supported: {SUPPORTED_CALLS})")
        args = [self.convert(a) for a in node.args]
        n = len(args)
        if fn in _MATH and n == 1:
            return Call(_MATH[fn], (args[0],), f64)
        if fn in (math.pow, np.power) and n == 2:
            return Bin("pow", args[0], args[1], f64)
        if fn is builtins.abs and n == 1:
            return Call("abs", (args[0],), args[0].dtype)
        if fn in (builtins.min, builtins.max) and n >= 2:
            out = args[0]
            for b in args[1:]:
                out = Bin(fn.__name__, out, b, _result_type(out, b))
            return out
        if fn is builtins.float and n == 1:
            return Cast(args[0], f64)
        if fn is builtins.int and n == 1:
            return Cast(args[0], i64)
        raise self.error(node, f"call to {_describe(node.func)} is not supported "
                               f"(supported: {SUPPORTED_CALLS})")

    def _IfExp(self, node: ast.IfExp) -> Expr:
        cond = _truth(self.convert(node.test))
        a, b = self.convert(node.body), self.convert(node.orelse)
        return Select(cond, a, b, _result_type(a, b))

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
        vals = [_truth(self.convert(v)) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = Logic(op, out, v)
        return out


def _truth(e: Expr) -> Expr:
    """A number used as a condition means ``!= 0``, as in Python."""
    if e.dtype == BOOL:
        return e
    return Cmp("ne", e, Const(0, e.dtype))


def _result_type(a: Expr, b: Expr) -> DType:
    # a float literal meeting another float takes that float's width (NumPy 2)
    if isinstance(a, Const) and a.dtype.is_float and b.dtype.is_float:
        return b.dtype
    if isinstance(b, Const) and b.dtype.is_float and a.dtype.is_float:
        return a.dtype
    if a.dtype == BOOL or b.dtype == BOOL:
        return i64 if a.dtype == b.dtype else (b.dtype if a.dtype == BOOL else a.dtype)
    return promote(a.dtype, b.dtype)


def _describe(node: ast.AST) -> str:
    try:
        return f"'{ast.unparse(node)}'"
    except Exception:  # pragma: no cover - unparse handles every expression node
        return type(node).__name__
