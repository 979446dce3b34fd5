"""Affine (quasi-affine) Python expressions → isl piecewise affine expressions.

Loop bounds, subscripts and ``if`` conditions must be affine in the size
parameters and the enclosing loop iterators: integer constants (literals, or
names of ``int`` constants in the kernel's globals or closure), ``+``, ``-``,
multiplication by a constant, ``//`` and ``%`` by a positive constant, and
``min``/``max``. Everything else raises ``FrontendError`` naming the construct.

Example::

    >>> import ast, islpy as isl
    >>> space = isl.Set("[N] -> { [i] : }").space
    >>> conv = AffineConverter(space, lambda node, msg: ValueError(msg),
    ...                        resolve=lambda node: getattr(builtins, node.id, None))
    >>> print(conv.pwaff(ast.parse("min(i + 1, N) // 2", mode="eval").body))
    [N] -> { [i] -> [(floor((1 + i)/2))] : i < N; [i] -> [(floor((N)/2))] : i >= N }
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Mapping

import islpy as isl
import numpy as np


def int_constant(value: object) -> int | None:
    """``value`` as an ``int`` when it is a Python ``int`` or a numpy integer
    scalar (``np.int64(4)``), else ``None`` (``bool`` is not an integer here).

    Example::

        >>> import numpy as np
        >>> int_constant(np.int64(4)), int_constant(4), int_constant(True), int_constant(4.0)
        (4, 4, None, None)
    """
    if type(value) is int:
        return value
    if isinstance(value, np.integer):
        return int(value)
    return None


def size_hint(node: ast.AST, arrays: Mapping[str, object],
              resolve: Callable[[ast.AST], object]) -> str | None:
    """For ``len(A)``, ``A.shape`` and ``A.shape[k]``: a message naming the size
    parameter to use instead (the extents of ``A``); ``None`` for other nodes.

    Example::

        >>> from types import SimpleNamespace as NS
        >>> arrays = {"A": NS(shape=("n", "m + 1"))}
        >>> size_hint(ast.parse("A.shape[1]", mode="eval").body, arrays, lambda n: None)[-35:]
        'for, m + 1 (A has shape [n, m + 1])'
    """
    name, dim = None, None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and resolve(node.func) is builtins.len and len(node.args) == 1 \
            and isinstance(node.args[0], ast.Name):
        name, dim = node.args[0].id, 0
    elif isinstance(node, ast.Attribute) and node.attr in ("shape", "size") \
            and isinstance(node.value, ast.Name):
        name = node.value.id
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "shape" and isinstance(node.value.value, ast.Name):
        name = node.value.value.id
        if isinstance(node.slice, ast.Constant) and type(node.slice.value) is int:
            dim = node.slice.value
    array = arrays.get(name) if name is not None else None
    shape = getattr(array, "shape", None)
    if not shape:
        return None
    text = ast.unparse(node)
    full = f"{name} has shape [{', '.join(shape)}]"
    if dim is not None and -len(shape) <= dim < len(shape):
        return (f"{text} is not part of the kernel language: use the extent it stands "
                f"for, {shape[dim]} ({full})")
    return f"{text} is not part of the kernel language: use the size parameters ({full})"


class NotAffine(Exception):
    """Raised inside the converter; turned into a FrontendError by the caller."""

    def __init__(self, node: ast.AST, why: str):
        self.node, self.why = node, why
        super().__init__(why)


class AffineConverter:
    """Convert Python AST expressions over one isl space to ``isl.PwAff``/``isl.Set``.

    ``space`` is a set space whose set dimensions are the loop iterators in
    scope and whose parameters are the size parameters.
    """

    def __init__(self, space: isl.Space, error: Callable[[ast.AST, str], Exception],
                 resolve: Callable[[ast.AST], object] | None = None,
                 arrays: Mapping[str, object] | None = None):
        self.space = space
        self.affs = isl.affs_from_space(space)
        self.error = error
        self.resolve = resolve or (lambda node: None)
        #: the kernel's arrays (objects with ``.shape``), to name them in errors
        self.arrays = arrays or {}

    # -- public ------------------------------------------------------------------
    def pwaff(self, node: ast.AST) -> isl.PwAff:
        try:
            return self._aff(node)
        except NotAffine as e:
            raise self.error(e.node, e.why) from None

    def condition(self, node: ast.AST) -> isl.Set:
        try:
            return self._cond(node)
        except NotAffine as e:
            raise self.error(e.node, e.why) from None

    # -- affine expressions ----------------------------------------------------------
    def _const(self, v: int) -> isl.PwAff:
        # add_constant_val: islpy's ``+ v`` costs 15 times as much (per subscript)
        return self.affs[0].add_constant_val(isl.Val(v))

    def _aff(self, node: ast.AST) -> isl.PwAff:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return self._const(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.affs:
                return self.affs[node.id]
            value = int_constant(self.resolve(node))
            if value is not None:  # a named constant of the enclosing scope (MR = 6)
                return self._const(value)
            if node.id in self.arrays:
                what = "an array" if getattr(self.arrays[node.id], "shape", ()) else \
                    "a local scalar"
                raise NotAffine(node, f"{node.id!r} is {what}, data: loop bounds, "
                                      "subscripts and conditions may use loop iterators, "
                                      "size parameters and integer constants")
            raise NotAffine(node, f"{node.id!r} is not a loop iterator, size parameter or "
                                  "integer constant")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self._aff(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("min", "max") and not node.keywords \
                and len(node.args) >= 2 and self.resolve(node.func) in (builtins.min, builtins.max):
            vals = [self._aff(a) for a in node.args]
            out = vals[0]
            for v in vals[1:]:
                out = out.min(v) if node.func.id == "min" else out.max(v)
            return out
        hint = size_hint(node, self.arrays, self.resolve)
        if hint:
            raise NotAffine(node, hint)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id in self.arrays:
            name = node.value.id
            raise NotAffine(node, f"'{ast.unparse(node)}' reads array {name}: data-dependent "
                                  f"(indirect) indexing through {name} is not supported; "
                                  "only affine expressions of loop iterators, size "
                                  "parameters and integer constants")
        raise NotAffine(node, "not an affine expression")

    def _constant_value(self, pa: isl.PwAff) -> int | None:
        if pa.is_cst():
            val = pa.as_aff().get_constant_val() if pa.n_piece() == 1 else None
            if val is not None and val.is_int():
                return val.to_python()
        return None

    def _binop(self, node: ast.BinOp) -> isl.PwAff:
        a, b = self._aff(node.left), self._aff(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            ca, cb = self._constant_value(a), self._constant_value(b)
            if cb is not None:
                return a.scale_val(isl.Val(cb))
            if ca is not None:
                return b.scale_val(isl.Val(ca))
            raise NotAffine(node, "product of two non-constant terms")
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            c = self._constant_value(b)
            if c is None or c <= 0:
                raise NotAffine(node, "division or modulo by something other than a "
                                      "positive integer constant")
            if isinstance(op, ast.FloorDiv):
                return a.scale_down_val(isl.Val(c)).floor()
            return a.mod_val(isl.Val(c))
        if isinstance(op, ast.Pow):
            base, exp = self._constant_value(a), self._constant_value(b)
            if base is None or exp is None or exp < 0:
                raise NotAffine(node, "'**' is affine only between integer constants "
                                      "(a non-negative exponent)")
            value = base ** exp
            if not -(1 << 63) <= value < (1 << 63):
                raise NotAffine(node, f"{ast.unparse(node)} = {value} does not fit in a "
                                      "64-bit integer")
            return self._const(value)
        raise NotAffine(node, f"operator {type(op).__name__} is not affine")

    # -- affine conditions -----------------------------------------------------------
    def _cond(self, node: ast.AST) -> isl.Set:
        if isinstance(node, ast.BoolOp):
            sets = [self._cond(v) for v in node.values]
            out = sets[0]
            for s in sets[1:]:
                out = out.intersect(s) if isinstance(node.op, ast.And) else out.union(s)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return isl.Set.universe(self.space).subtract(self._cond(node.operand))
        if isinstance(node, ast.Compare):
            out = isl.Set.universe(self.space)
            left = self._aff(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = self._aff(comp)
                out = out.intersect(self._compare(node, op, left, right))
                left = right
            return out
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            u = isl.Set.universe(self.space)
            return u if node.value else u.subtract(u)
        raise NotAffine(node, "not an affine condition")

    @staticmethod
    def _compare(node, op, a: isl.PwAff, b: isl.PwAff) -> isl.Set:
        table = {ast.Lt: a.lt_set, ast.LtE: a.le_set, ast.Gt: a.gt_set,
                 ast.GtE: a.ge_set, ast.Eq: a.eq_set, ast.NotEq: a.ne_set}
        for cls, fn in table.items():
            if isinstance(op, cls):
                return fn(b)
        raise NotAffine(node, f"comparison {type(op).__name__} is not supported")
