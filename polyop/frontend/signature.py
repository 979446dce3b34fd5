"""A kernel's signature: its arguments' annotations → sizes, scalars and arrays.

``SignatureParser`` is the part of ``polyop.frontend.parser.KernelParser``
that reads the ``def`` line: each argument's annotation (``int``: a size
parameter; ``"f64"``: a scalar; ``"f64[n, m]"``: an array whose extents are
affine in the sizes), and says what is wrong with one it cannot read.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, a: "f64", A: "f32[n, 2 * n]"):
    ...     pass
    >>> [(x.name, x.kind) for x in k.program.arguments]
    [('n', 'size'), ('a', 'scalar'), ('A', 'array')]
    >>> k.program.arrays["A"].shape
    ('n', '2 * n')
"""

from __future__ import annotations

import ast
import inspect
import re

import islpy as isl
import numpy as np

from .. import ir
from ..program import Argument, Array
from ..types import ArrayType, DType, SizeType, parse_annotation
from .affine import AffineConverter, int_constant
from .exprs import ExprConverter


class SignatureParser:
    """The signature half of ``KernelParser``, which provides the state
    (``tree``, ``fn``, ``globals``, ``values``, ``kinds``, ``arrays``,
    ``scalar_args``, ``weak_scalars``) and ``error``, ``resolve``; the
    converters made here serve the body too."""

    def _signature(self) -> tuple[list[str], list[Argument]]:
        a = self.tree.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            raise self.error(self.tree, "kernel arguments must be plain positional arguments")
        params, args, arrays = [], [], []
        for arg in a.args:
            t = self._annotation(arg)
            if isinstance(t, SizeType):
                params.append(arg.arg)
                args.append(Argument(arg.arg, "size", ir.Var(arg.arg).dtype))
                self.values[arg.arg] = ir.Var(arg.arg)
            elif isinstance(t, DType):
                args.append(Argument(arg.arg, "scalar", t))
                self.values[arg.arg] = ir.Var(arg.arg, t)
                if t.bits == 32:  # f64/i64 arguments are Python floats/ints: weak
                    self.scalar_args.add(arg.arg)
            else:
                args.append(Argument(arg.arg, "array", t.dtype))
                arrays.append((arg, t))
        self.param_space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=[],
                                                       params=params)
        conv = self._affine(self.param_space, self.error)
        ext = self._converter()
        for arg, t in arrays:
            nodes = []
            for s in t.shape:
                try:
                    nodes.append(ast.parse(s, mode="eval").body)
                except SyntaxError:
                    raise self.error(arg, f"array {arg.arg}: extent {s!r} is not an "
                                          "expression") from None
            for n in nodes:
                ast.copy_location(n, arg)
                for sub in ast.walk(n):
                    ast.copy_location(sub, arg)
            for n in nodes:
                conv.pwaff(n)  # proves the extent affine in the size parameters
            extents = tuple(ext.convert(n) for n in nodes)
            # named constants (f32[N, NR] with NR = 16 a global) by their values
            shape = tuple(text if all(isinstance(x, ast.Name) and x.id in params for x in
                                      ast.walk(n) if isinstance(x, ast.Name))
                          else ast.unparse(self._constants_inlined(n, params))
                          for text, n in zip(t.shape, nodes))
            self._add_array(Array(arg.arg, t.dtype, shape, extents))
        return params, args

    def _add_array(self, array: Array) -> None:
        self.arrays[array.name] = array
        self.kinds[array.name] = (array.dtype, array.ndim)

    def _affine(self, space: isl.Space, error) -> AffineConverter:
        return AffineConverter(space, error, self.resolve, self.arrays)

    def _converter(self) -> ExprConverter:
        return ExprConverter(self.values, self.kinds, self.resolve, self.error,
                             self.scalar_args, self.weak_scalars, self.arrays)

    def _constants_inlined(self, node: ast.AST, params: list[str]) -> ast.AST:
        """``node`` with each name of an ``int`` constant (not a size parameter)
        replaced by its value."""
        class Inline(ast.NodeTransformer):
            def visit_Name(inner, n: ast.Name) -> ast.AST:  # noqa: N805
                value = None if n.id in params else self.resolve(n)
                value = int_constant(value)
                return ast.Constant(value) if value is not None else n

        return Inline().visit(node)

    def _annotation(self, arg: ast.arg) -> SizeType | DType | ArrayType:
        ann = self.fn.__annotations__.get(arg.arg, inspect.Parameter.empty)
        t = parse_annotation(ann)
        if t is None and isinstance(ann, str):
            try:
                t = parse_annotation(eval(ann, self.globals))  # noqa: S307 - user's own annotation
            except Exception:
                t = None
        if t is None:
            raise self.error(arg, _annotation_problem(arg.arg, ann))
        return t


_ANNOTATION_HELP = ("int (a size), \"f64\" (a scalar) or \"f64[N, M]\" (an array), with "
                    "element type f32, f64, i32 or i64")
_SHORT = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64"}


def _annotation_problem(name: str, ann: object) -> str:
    """What is wrong with argument ``name``'s annotation ``ann`` (not one of ours)."""
    if ann is inspect.Parameter.empty:
        return f"argument {name!r} needs an annotation: {_ANNOTATION_HELP}"
    if ann is float:
        return f"argument {name!r}: a float scalar is annotated \"f64\" (or \"f32\")"
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
    m = re.match(r"\s*([A-Za-z_][\w.]*)\s*(\[.*\])?\s*$", text)
    elem = m.group(1).rsplit(".", 1)[-1] if m else None
    try:
        np_name = np.dtype(elem).name if elem is not None else None
    except TypeError:
        np_name = None
    if np_name is not None or (elem and re.fullmatch(r"[fiu]\d+|bf16|bool_?", elem)):
        if np_name in _SHORT:  # float64 for f64: the spelling, not the type
            return (f"argument {name!r}: write the element type {elem!r} as "
                    f"{_SHORT[np_name]!r} ({_ANNOTATION_HELP})")
        return (f"argument {name!r}: element type {elem!r} is not supported (supported: "
                "f32, f64, i32, i64)")
    return f"argument {name!r}: annotation {text!r} is not understood; use {_ANNOTATION_HELP}"
