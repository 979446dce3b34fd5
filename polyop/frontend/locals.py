"""Local arrays of the kernel language: ``acc = np.zeros((6, 16), np.float32)``.

A local array is a temporary of constant shape that lives for one call of the
kernel (a stack array in the generated code; small ones end up in registers).
It is declared by assigning ``numpy.zeros(shape, dtype)`` or the equivalent
``polyop.local(shape, dtype)`` to a name, anywhere in the kernel body, and then
read and written with subscripts like any array. As in Python, the declaration
(re)fills the array with zeros each time it executes: the parser turns it into
a fill statement ``acc[i0, i1] = 0`` over the whole shape at that point, so the
model, the dependences and the bounds proof treat it as ordinary statements
and accesses.

- ``shape``: an int or a tuple of ints, each a positive constant (a literal or
  an ``int`` constant of the kernel's globals or closure, affine expressions of
  them allowed); at most ``MAX_LOCAL_BYTES`` bytes in all.
- ``dtype``: ``np.float32``/``np.float64``/``np.int32``/``np.int64``, their names
  (``"float32"``), or polyop's ``f32``/``"f32"`` (also as ``dtype=...``).

Example::

    >>> import numpy as np, polyop
    >>> @polyop.kernel
    ... def rowsum(n: int, A: "f32[n, 4]", out: "f32[n]"):
    ...     for i in range(n):
    ...         t = np.zeros((4,), np.float32)
    ...         for j in range(4):
    ...             t[j] = A[i, j]
    ...         out[i] = t[0] + t[1] + t[2] + t[3]
    >>> print(rowsum.program.arrays["t"].shape)
    ('4',)
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import numpy as np

from ..types import DTYPES, DType

#: the largest local array accepted (bytes): it lives on the stack of the
#: calling thread (or of a worker thread, for a private copy in a parallel loop)
MAX_LOCAL_BYTES = 1 << 20

_NUMPY_NAMES = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64"}


def is_local_declaration(value: ast.AST, resolve: Callable[[ast.AST], object]) -> bool:
    """True when ``value`` is a call of ``numpy.zeros`` or ``polyop.local``.

    Example::

        >>> call = ast.parse("np.zeros((6, 16), np.float32)", mode="eval").body
        >>> is_local_declaration(call, resolve=lambda node: np.zeros)
        True
    """
    if not isinstance(value, ast.Call):
        return False
    fn = resolve(value.func)
    return fn is np.zeros or fn is local


def is_prefetch(value: ast.AST, resolve: Callable[[ast.AST], object]) -> bool:
    """True when ``value`` is a call of ``polyop.prefetch`` (a statement of its own).

    Example::

        >>> is_prefetch(ast.parse("len(x)", mode="eval").body, lambda n: len)
        False
    """
    return isinstance(value, ast.Call) and resolve(value.func) is prefetch


def local_dtype(obj: object) -> DType | None:
    """The polyop element type named by ``obj`` (numpy type or dtype, a name
    such as ``"float32"`` or ``"f32"``, or a polyop ``DType``); ``None`` if none.

    Example::

        >>> local_dtype(np.float32), local_dtype("f64"), local_dtype(np.dtype("int32"))
        (f32, f64, i32)
    """
    if isinstance(obj, DType):
        return obj
    if isinstance(obj, str) and obj in DTYPES:
        return DTYPES[obj]
    try:
        name = np.dtype(obj).name  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return DTYPES.get(_NUMPY_NAMES.get(name, ""))


def parse_local(call: ast.Call, resolve: Callable[[ast.AST], object],
                constant: Callable[[ast.AST], int],
                error: Callable[[ast.AST, str], Exception]) -> tuple[tuple[int, ...], DType]:
    """Shape and element type of a local-array declaration ``call``.

    ``constant(node)`` evaluates an extent to an ``int`` (or raises);
    ``error(node, msg)`` builds the exception raised for a malformed call.
    """
    what = ast.unparse(call)
    args = list(call.args)
    dtype_node = None
    for kw in call.keywords:
        if kw.arg == "dtype" and dtype_node is None and len(args) == 1:
            dtype_node = kw.value
        else:
            raise error(call, f"local array {what}: only (shape, dtype) arguments are "
                              "supported")
    if dtype_node is None and len(args) == 2:
        dtype_node = args.pop()
    if len(args) != 1 or dtype_node is None:
        raise error(call, f"local array {what}: give a shape and a dtype, e.g. "
                          "np.zeros((6, 16), np.float32)")
    shape_node = args[0]
    dims = shape_node.elts if isinstance(shape_node, ast.Tuple) else [shape_node]
    if not dims:
        raise error(shape_node, f"local array {what}: a shape needs at least one extent "
                                "(use a local scalar for a single value)")
    shape = tuple(constant(d) for d in dims)
    for d, n in zip(dims, shape):
        if n <= 0:
            raise error(d, f"local array {what}: extent {ast.unparse(d)} = {n} is not positive")
    dtype = _dtype_of(dtype_node, resolve)
    if dtype is None:
        raise error(dtype_node, f"local array {what}: dtype {ast.unparse(dtype_node)} is not "
                                "one of float32, float64, int32, int64")
    size = int(np.prod(shape)) * dtype.bits // 8
    if size > MAX_LOCAL_BYTES:
        raise error(call, f"local array {what} takes {size} bytes, more than the "
                          f"{MAX_LOCAL_BYTES} allowed on the stack; pass a work array "
                          "argument instead")
    return shape, dtype


def _dtype_of(node: ast.AST, resolve: Callable[[ast.AST], object]) -> DType | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return local_dtype(node.value)
    obj = resolve(node)
    return None if obj is None else local_dtype(obj)


def local(shape: int | tuple[int, ...], dtype) -> np.ndarray:
    """A zero-filled local array of the kernel language: ``np.zeros(shape, dtype)``.

    Inside a ``@polyop.kernel`` it declares a temporary of constant ``shape``
    (see ``polyop.frontend.locals``); in plain Python it is ``np.zeros``.
    ``dtype`` may also be a polyop type (``polyop.f32``).

    Example::

        >>> local((2, 3), "f32").dtype
        dtype('float32')
    """
    dt = local_dtype(dtype)
    if dt is None:
        raise TypeError(f"local: unsupported dtype {dtype!r}")
    return np.zeros(shape, dt.numpy)


def prefetch(element, write: bool = False) -> None:
    """A hint in the kernel language: bring the cache line holding an array
    element (``polyop.prefetch(C[i, j])``) into the cache ahead of its use,
    with ``write=True`` in a state ready for writing. It changes no value:
    the model records it as a read of that element (so it must be in bounds),
    the generated code is one ``llvm.prefetch``; in plain Python it does nothing.

    Example::

        >>> prefetch(1.0) is None
        True
    """
    return None
