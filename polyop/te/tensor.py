"""Tensors: ``placeholder`` inputs, ``compute`` stages, reduce axes and reductions.

``compute(shape, fcompute)`` calls ``fcompute`` once with one ``IterVar`` per
output dimension (named after the lambda's parameters) and checks the body
right away, so that mistakes are reported at the line of the ``compute`` call:

- the lambda takes one parameter per dimension of ``shape``;
- a reduction (``sum``/``max``/``min``) is the whole body, not nested;
- every reduce axis is used in its reduction body and nowhere else, and no axis
  of another compute leaks in;
- every index into a tensor is (quasi-)affine in the axes and size variables
  (``i + 1``, ``2 * i + k``, ``i // 2``); ``i * j`` or ``A[B[i]]`` raise
  ``FrontendError`` naming the tensor and the index.

Bounds are checked later, on the whole program (``polyop.bounds``).

Example::

    >>> import polyop
    >>> n, m, K = polyop.var("n"), polyop.var("m"), polyop.var("K")
    >>> A = polyop.placeholder((n, K), "float32", name="A")
    >>> B = polyop.placeholder((K, m), "float32", name="B")
    >>> k = polyop.reduce_axis((0, K), name="k")
    >>> C = polyop.compute((n, m), lambda i, j: polyop.sum(A[i, k] * B[k, j], axis=k), name="C")
    >>> C
    Tensor(C, float32[n, m] = sum(A[i, k] * B[k, j], axis=k))
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence

import islpy as isl
import numpy as np

from ..errors import FrontendError
from ..ir import BOOL
from ..types import DType, i64
from .affine import NotAffine, pwaff
from .expr import (
    Const,
    Expr,
    IterVar,
    Read,
    Reduce,
    Var,
    as_dtype,
    as_expr,
    cast,
    to_str,
    user_site,
    walk,
)

_ids = itertools.count()


def _error(msg: str, site: tuple[str, int] | None = None) -> FrontendError:
    filename, line = site or user_site()
    return FrontendError(msg, filename, line, 1)


class Tensor:
    """A placeholder (an input array) or the result of a ``compute`` stage.

    ``A[i, j]`` reads an element inside another compute. ``shape`` holds each
    extent as an expression of size variables; ``axis`` and ``reduce_axis`` are
    a compute's axes; ``body`` is its expression (a ``Reduce`` for reductions).
    """

    def __init__(self, name: str, shape: tuple[Expr, ...], dtype: DType, op: str,
                 site: tuple[str, int]):
        self.name, self.shape, self.dtype, self.op = name, shape, dtype, op
        self.filename, self.line = site
        self.axis: tuple[IterVar, ...] = ()
        self.body: Expr | None = None
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return self.body.axes if isinstance(self.body, Reduce) else ()

    @property
    def inputs(self) -> list[Tensor]:
        """The tensors this compute reads, in order of first use."""
        out: list[Tensor] = []
        if self.body is not None:
            for e in walk(self.body):
                if isinstance(e, Read) and all(t is not e.tensor for t in out):
                    out.append(e.tensor)
        return out

    def __getitem__(self, index) -> Read:
        idx = index if isinstance(index, tuple) else (index,)
        if any(isinstance(x, slice) for x in idx):
            raise _error(f"slice in the index of tensor {self.name}: a compute reads single "
                         f"elements ({self.name}[i, j])")
        if len(idx) != self.ndim:
            hint = f" (write {self.name}[i, j] rather than {self.name}[i][j])" \
                if len(idx) < self.ndim else ""
            raise _error(f"tensor {self.name} has {self.ndim} dimensions but is indexed with "
                         f"{len(idx)}{hint}")
        exprs = []
        for d, x in enumerate(idx):
            if isinstance(x, Tensor):
                raise _error(f"index {d} of tensor {self.name} is the tensor {x.name} itself; "
                             "index with axes and size variables")
            e = as_expr(x)
            if e.dtype.is_float or e.dtype == BOOL:
                raise _error(f"index {d} of tensor {self.name} ('{to_str(e)}') is not an "
                             f"integer ({e.dtype})")
            exprs.append(e)
        return Read(self, tuple(exprs), self.dtype)

    def _no_arith(self, *_):
        raise _error(f"tensor {self.name} is used as a value without an index: "
                     f"write {self.name}[i, ...]")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_arith
    __truediv__ = __rtruediv__ = __neg__ = __lt__ = __gt__ = __le__ = __ge__ = _no_arith

    def __repr__(self) -> str:
        shape = ", ".join(to_str(s) for s in self.shape)
        head = f"Tensor({self.name}, {self.dtype.numpy.name}[{shape}]"
        return head + (f" = {to_str(self.body)})" if self.body is not None else ")")

    __hash__ = object.__hash__


# -- shapes --------------------------------------------------------------------------------------

def _shape(shape, what: str, site) -> tuple[Expr, ...]:
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    out = []
    for d, x in enumerate(dims):
        if isinstance(x, np.integer):  # np.int64(4) is the int 4 here
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, (int, Expr)):
            raise _error(f"{what}: extent {d} ({x!r}) must be an int, a polyop.var or an "
                         "affine expression of vars", site)
        if isinstance(x, int) and x < 0:
            raise _error(f"{what}: dimension {d} has a negative extent ({x})", site)
        e = as_expr(x)
        extent_check(e, f"{what}: the extent of dimension {d}", site)
        out.append(e)
    return tuple(out)


def extent_check(e: Expr, what: str, site) -> None:
    """``e`` is affine in size variables only (an extent or a reduce-axis bound
    of a placeholder)."""
    bad = next((x for x in walk(e) if isinstance(x, (IterVar, Read))), None)
    if bad is not None:
        raise _error(f"{what} ('{to_str(e)}') must depend on size variables only, "
                     f"not on '{to_str(bad)}'", site)
    _affine_in(e, {}, what, site)


def _affine_in(e: Expr, axes: dict, what: str, site) -> isl.PwAff:
    params = sorted({x.name for x in walk(e) if isinstance(x, Var)}
                    | {x.name for x in _bounds_vars(e)})
    space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=list(axes.values()),
                                        params=params)
    affs = isl.affs_from_space(space)
    try:
        return pwaff(e, affs, lambda v: axes.get(v) if isinstance(v, IterVar) else v.name)
    except NotAffine as err:
        raise _error(f"{what} ('{to_str(e)}') is not affine: {err}", site) from None


def _bounds_vars(e: Expr):
    return (x for x in walk(e) if isinstance(x, Var))


# -- public constructors ---------------------------------------------------------------------

def placeholder(shape, dtype="float32", name: str = "placeholder") -> Tensor:
    """An input tensor (an array argument of the built function).

    Example::

        >>> import polyop
        >>> n = polyop.var("n")
        >>> polyop.placeholder((n, n + 2), "float64", name="A")
        Tensor(A, float64[n, n + 2])
    """
    site = user_site()
    _check_name(name, "placeholder", site)
    dt = as_dtype(dtype)
    if dt == BOOL:
        raise _error("placeholder: bool tensors are not supported", site)
    return Tensor(name, _shape(shape, f"placeholder {name}", site), dt, "placeholder", site)


def reduce_axis(dom, name: str = "k") -> IterVar:
    """A reduction axis running over ``lo <= k < hi`` for ``dom = (lo, hi)``
    (an extent alone means ``(0, extent)``). Bounds are affine in size
    variables, or also in a compute's axes when the axis is created inside the
    lambda (triangular reductions).

    Example::

        >>> import polyop
        >>> polyop.reduce_axis((0, polyop.var("K")), name="k")
        k
    """
    site = user_site()
    _check_name(name, "reduce_axis", site)
    if isinstance(dom, (tuple, list)):
        if len(dom) != 2:
            raise _error(f"reduce_axis {name}: dom must be (lo, hi), got {dom!r}", site)
        lo, hi = dom
    else:
        lo, hi = 0, dom
    bounds = []
    for what, x in (("lower bound", lo), ("upper bound", hi)):
        if isinstance(x, np.integer):
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, (int, Expr)):
            raise _error(f"reduce_axis {name}: {what} {x!r} must be an int or an affine "
                         "expression of vars", site)
        e = as_expr(x)
        if e.dtype.is_float or any(isinstance(r, Read) for r in walk(e)):
            raise _error(f"reduce_axis {name}: {what} '{to_str(e)}' must be an affine "
                         "integer expression", site)
        bounds.append(e)
    return IterVar(name, bounds[0], bounds[1], "reduce")


def _check_name(name, what: str, site) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise _error(f"{what}: name must be an identifier, got {name!r}", site)


def reduction(combiner: str, expr, axis) -> Reduce:
    """``combiner`` (``sum``, ``max`` or ``min``) of ``expr`` over ``axis``
    (one reduce axis or a list). Exported as ``polyop.sum``/``max``/``min``."""
    site = user_site()
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if not axes:
        raise _error(f"polyop.{combiner}: axis is empty", site)
    for a in axes:
        if not isinstance(a, IterVar) or a.kind != "reduce":
            hint = " (for the elementwise maximum/minimum of two values use " \
                   "polyop.maximum/minimum)" if combiner in ("max", "min") else ""
            raise _error(f"polyop.{combiner}: axis {a!r} is not a reduce axis; create one "
                         f"with polyop.reduce_axis((lo, hi)){hint}", site)
    if len({id(a) for a in axes}) != len(axes):
        raise _error(f"polyop.{combiner}: a reduce axis is listed twice", site)
    body = as_expr(expr)
    if body.dtype == BOOL:
        body = cast(body, i64)
    return Reduce(combiner, body, axes, body.dtype)


def compute(shape, fcompute: Callable, name: str = "compute") -> Tensor:
    """A new tensor whose element ``[i, j, ...]`` is ``fcompute(i, j, ...)``.

    The lambda receives one axis per dimension (named after its parameters;
    ``*idx`` gives ``i0, i1, ...``) and returns an expression, or a reduction
    ``polyop.sum/max/min(expr, axis=k)`` as its whole body. The tensor's dtype
    is the body's.

    Example::

        >>> import polyop
        >>> n = polyop.var("n")
        >>> A = polyop.placeholder((n,), "float32", name="A")
        >>> polyop.compute((n,), lambda i: polyop.maximum(A[i], 0.0), name="relu")
        Tensor(relu, float32[n] = maximum(A[i], 0.0))
    """
    site = user_site()
    _check_name(name, "compute", site)
    dims = _shape(shape, f"compute {name}", site)
    names = _axis_names(fcompute, len(dims), name, site)
    axes = tuple(IterVar(v, Const(0, i64), d, "axis") for v, d in zip(names, dims))
    body = fcompute(*axes)
    if isinstance(body, (tuple, list)):
        raise _error(f"compute {name}: the lambda returns {len(body)} values; a compute "
                     "has one output", site)
    try:
        body = as_expr(body)
    except (TypeError, FrontendError) as e:
        raise _error(f"compute {name}: the lambda must return an expression: {e}",
                     site) from None
    if body.dtype == BOOL:
        raise _error(f"compute {name}: the body is a condition; convert it with "
                     ".astype(\"int32\") (bool tensors are not supported)", site)
    t = Tensor(name, dims, body.dtype, "compute", site)
    for a in axes:
        a.owner = t
    t.axis, t.body = axes, body
    _check_body(t, site)
    return t


def _axis_names(fcompute: Callable, ndim: int, name: str, site) -> list[str]:
    if not callable(fcompute):
        raise _error(f"compute {name}: fcompute must be a function of the axes, got "
                     f"{type(fcompute).__name__}", site)
    try:
        params = list(inspect.signature(fcompute).parameters.values())
    except (TypeError, ValueError):
        return [f"i{d}" for d in range(ndim)]
    kinds = inspect.Parameter
    if any(p.kind == kinds.VAR_POSITIONAL for p in params):
        return [f"i{d}" for d in range(ndim)]
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                  kinds.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= ndim <= len(positional):
        raise _error(f"compute {name}: the lambda takes {len(positional)} argument"
                     f"{'s' if len(positional) != 1 else ''} but the shape has {ndim} "
                     f"dimension{'s' if ndim != 1 else ''}", site)
    return [p.name for p in positional[:ndim]]


def _check_body(t: Tensor, site) -> None:
    body = t.body
    reduce_axes: Sequence[IterVar] = ()
    if isinstance(body, Reduce):
        reduce_axes = body.axes
        inner = body.body
        for e in walk(inner):
            if isinstance(e, Reduce):
                raise _error(f"compute {t.name}: a reduction inside a reduction; compute "
                             "the inner one in its own stage", site)
        used = {id(e) for e in walk(inner) if isinstance(e, IterVar)}
        for k in reduce_axes:
            if id(k) not in used:
                raise _error(f"compute {t.name}: reduce axis {k.name} is not used in the "
                             f"reduction body '{to_str(inner)}'", site)
    else:
        nested = next((e for e in walk(body) if isinstance(e, Reduce)), None)
        if nested is not None:
            raise _error(f"compute {t.name}: the reduction '{to_str(nested)}' must be the "
                         "whole body of a compute; compute it in its own stage and use "
                         "the result in the next one", site)
    in_scope = {id(a) for a in t.axis} | {id(k) for k in reduce_axes}
    for e in walk(body):
        if isinstance(e, IterVar) and id(e) not in in_scope:
            if e.kind == "reduce":
                raise _error(f"compute {t.name}: reduce axis {e.name} is used outside a "
                             f"reduction over it (polyop.sum(..., axis={e.name}))", site)
            owner = getattr(e.owner, "name", "?")
            raise _error(f"compute {t.name}: axis {e.name} belongs to compute {owner}; use "
                         "this compute's own lambda parameters", site)
    # reduce-axis bounds: affine in size variables and this compute's axes
    axes = {a: f"_d{d}" for d, a in enumerate(t.axis)}
    for k in reduce_axes:
        for what, b in (("lower bound", k.lo), ("upper bound", k.hi)):
            bad = next((x for x in walk(b) if isinstance(x, IterVar) and x not in axes), None)
            if bad is not None:
                raise _error(f"compute {t.name}: {what} '{to_str(b)}' of reduce axis "
                             f"{k.name} uses '{bad.name}', which is not an axis of "
                             f"{t.name}", site)
            _affine_in(b, axes, f"compute {t.name}: {what} of reduce axis {k.name}", site)
    scope = dict(axes)
    scope.update({k: f"_r{d}" for d, k in enumerate(reduce_axes)})
    for e in walk(body):
        if isinstance(e, Read):
            _check_index(t, e, scope, site)


def _check_index(t: Tensor, r: Read, scope: dict, site) -> None:
    for d, x in enumerate(r.index):
        try:
            _affine_in(x, scope, "", site)
        except FrontendError as err:
            why = err.reason.split("is not affine: ", 1)[-1]
            names = ", ".join(a.name for a in scope) or "no axes"
            raise _error(f"compute {t.name}: index {d} of tensor {r.tensor.name} in "
                         f"'{to_str(r)}' is not affine in the axes ({names}) and size "
                         f"variables: {why}", site) from None
