"""Static bounds proof: every access stays inside its array, for all sizes.

For each access relation ``S[i] -> A[f(i)]`` restricted to the statement's
domain, isl computes the accessed elements that fall outside the array's box
``{ A[a] : 0 <= a_k < extent_k }`` under the program's context (parameter
values for which every extent is non-negative). A non-empty result is a real
out-of-bounds access: ``BoundsError`` names the statement, the array and a
concrete instance with its parameter values, sampled by isl.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def shift(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = A[i + 1]
    >>> check_bounds(shift.program)
    Traceback (most recent call last):
    ...
    polyop.errors.BoundsError: S0 (line 5: A[i] = A[i + 1]) reads A[i + 1] out of bounds: ...
"""

from __future__ import annotations

import ast

import islpy as isl

from .errors import BoundsError
from .frontend.affine import AffineConverter
from .program import Array, Program, Statement


def array_box(program: Program, array: Array) -> isl.Set:
    """``{ A[a0, ...] : 0 <= a_k < extent_k }`` over the program's parameters."""
    names = [f"_a{k}" for k in range(array.ndim)]
    space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=names,
                                        params=list(program.params))
    conv = AffineConverter(space, lambda n, m: AssertionError(m))
    box = isl.Set.universe(space)
    for k, extent in enumerate(array.shape):
        a = conv.affs[f"_a{k}"]
        box = box.intersect(a.ge_set(conv.affs[0]))
        box = box.intersect(a.lt_set(conv.pwaff(ast.parse(extent, mode="eval").body)))
    return box.set_tuple_name(array.name)


def check_bounds(program: Program) -> None:
    """Raise ``BoundsError`` for the first access that can leave its array."""
    boxes = {name: array_box(program, a) for name, a in program.arrays.items()}
    for stmt in program.statements:
        for kind, accesses in (("writes", stmt.writes), ("reads", stmt.reads)):
            for acc in accesses:
                rel = acc.relation.intersect_params(program.context)
                bad = rel.subtract_range(boxes[acc.array])
                if not bad.is_empty():
                    raise _error(program, stmt, kind, acc, bad)


def _error(program: Program, stmt: Statement, kind: str, acc, bad: isl.Map) -> BoundsError:
    point = bad.wrap().sample_point()
    params = {p: _coord(point, isl.dim_type.param, k) for k, p in enumerate(program.params)}
    n_in = len(stmt.iterators)
    inst = ", ".join(f"{it}={_coord(point, isl.dim_type.set, k)}"
                     for k, it in enumerate(stmt.iterators))
    arr = program.arrays[acc.array]
    elem = ", ".join(str(_coord(point, isl.dim_type.set, n_in + k)) for k in range(arr.ndim))
    sizes = ", ".join(f"{p}={v}" for p, v in params.items())
    shape = ", ".join(arr.shape)
    instance = f"{stmt.name}[{inst}]"
    msg = (f"{stmt.name} (line {stmt.line}: {stmt.source}) {kind} {acc.text} out of bounds: "
           f"instance {instance} accesses {acc.array}[{elem}] but {acc.array} has shape "
           f"[{shape}]" + (f" (with {sizes})" if sizes else ""))
    return BoundsError(msg, stmt.name, acc.array, instance)


def _coord(point: isl.Point, kind: isl.dim_type, pos: int) -> int:
    return point.get_coordinate_val(kind, pos).to_python()
