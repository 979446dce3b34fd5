"""Statement instances as people read them, for messages that name real ones.

A refused schedule (``polyop.schedule.legality``), a refused tensorization
and generated code that fails validation (``polyop.validate``) all name a
pair of instances that isl found, with the sizes and the array element
involved; this module makes that text from the model alone.
"""

from __future__ import annotations

import islpy as isl

from .bounds import check_bounds
from .errors import BoundsError
from .program import Program


def sample_pair(program: Program, rel: isl.UnionMap):
    """A readable instance pair of ``rel`` (a relation between statement
    instances, such as a violated dependence): sizes from isl's sample, then
    the lexicographically first pair; returns ``(source, sink, sizes, pair)``
    with the instances as text (``S0[i=1]``), the sizes as ``n=4``, and the
    pair as an isl map.

    Example::

        >>> import polyop
        >>> @polyop.kernel
        ... def shift(n: int, A: "f64[n]"):
        ...     for i in range(1, n):
        ...         A[i] = A[i - 1]
        >>> raw = polyop.dependences(shift).raw
        >>> src, dst, sizes, pair = sample_pair(shift.program, raw)
        >>> src, dst, element_text(shift.program, "RAW", "A", pair)
        ('S0[i=1]', 'S0[i=2]', 'A[1]')
    """
    w = _first_map(rel.coalesce()).wrap()
    runnable = w.intersect_params(callable_sizes(program))
    if not runnable.is_empty():  # sizes a call accepts, where there are such
        w = runnable
    pt = w.sample_point()
    for k in range(w.dim(isl.dim_type.param)):
        w = w.fix_val(isl.dim_type.param, k, pt.get_coordinate_val(isl.dim_type.param, k))
    try:
        pair = w.lexmin().unwrap()
    except isl.Error:  # isl cannot always take a lexmin (unbounded); any sample is real
        pair = isl.Set.from_point(w.sample_point()).unwrap()
    pt = pair.wrap().sample_point()
    sizes = sizes_text(pt, w.get_var_names(isl.dim_type.param))
    n_in = pair.dim(isl.dim_type.in_)
    src = instance_text(program, pair.get_tuple_name(isl.dim_type.in_), pt, 0)
    dst = instance_text(program, pair.get_tuple_name(isl.dim_type.out), pt, n_in)
    return src, dst, sizes, pair


def callable_sizes(program: Program) -> isl.Set:
    """The sizes a call of ``program`` accepts: its context, less the sizes
    for which an access leaves its array (``polyop.bounds``' preconditions,
    checked at every call). fdtd-2d's ``ey[0, j] = ...`` needs ``nx > 0``
    (or nothing to do): a refused schedule's instances are named at such
    sizes, not at ``nx = 0``, where no call runs.

    >>> import polyop
    >>> @polyop.kernel
    ... def first(n: int, m: int, A: "f64[n, m]"):
    ...     for j in range(m):
    ...         A[0, j] = 1.0
    >>> callable_sizes(first.program)
    Set("[n, m] -> {  : (n > 0 and m >= 0) or (n = 0 and m = 0) }")
    """
    out = program.context
    try:
        for p in check_bounds(program):
            out = out.intersect(p.condition)
    except BoundsError:  # out of bounds for every large size: refused at build
        pass
    return out


def _first_map(rel: isl.UnionMap) -> isl.Map:
    maps: list[isl.Map] = []
    rel.foreach_map(maps.append)
    return maps[0]


def sizes_text(pt: isl.Point, names: list[str]) -> str:
    """The size parameters ``names`` at ``pt``, as ``n=4, m=3``."""
    return ", ".join(f"{p}={pt.get_coordinate_val(isl.dim_type.param, k).to_python()}"
                     for k, p in enumerate(names))


def instance_text(program: Program, name: str, pt: isl.Point, offset: int = 0) -> str:
    """Statement ``name``'s instance whose iterators are ``pt``'s coordinates
    from ``offset`` on, as ``S0[i=1, j=2]``."""
    its = program.statement(name).iterators
    vals = [pt.get_coordinate_val(isl.dim_type.set, offset + k).to_python()
            for k in range(len(its))]
    return f"{name}[{', '.join(f'{i}={v}' for i, v in zip(its, vals))}]"


def element_text(program: Program, kind: str, array: str, pair: isl.Map) -> str:
    """The array element behind the ``kind`` dependence (RAW, WAR, WAW) on
    ``array`` between the instance pair ``pair`` (from ``sample_pair``)."""
    src_acc = program.writes(array) if kind in ("RAW", "WAW") else program.reads(array)
    dst_acc = program.reads(array) if kind == "RAW" else program.writes(array)
    a = src_acc.intersect_domain(isl.UnionSet.from_set(pair.domain())).range()
    b = dst_acc.intersect_domain(isl.UnionSet.from_set(pair.range())).range()
    pt = a.intersect(b).sample_point()
    n = program.arrays[array].ndim
    idx = [str(pt.get_coordinate_val(isl.dim_type.set, k).to_python()) for k in range(n)]
    return f"{array}[{', '.join(idx)}]"
