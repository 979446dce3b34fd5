"""Definite assignment of local scalars: no read before the first write.

In CPython a local variable read on a path where it was never assigned
raises ``UnboundLocalError``; in compiled code it would read whatever the
stack slot holds. The parser refuses such kernels. The test is exact and
done on the model: with isl's dataflow analysis (the writes of the local
temporaries as must-sources, their reads as sinks, the kernel's textual
schedule as the order) the read instances that no earlier write reaches are
the faulty ones, for some values of the size parameters allowed by the
kernel's context (its extents and ``assert`` assumptions).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def last(n: int, A: "f64[n]", out: "f64[1]"):
    ...     for i in range(n):
    ...         s = A[i]
    ...     out[0] = s
    >>> _ = last.program
    Traceback (most recent call last):
    ...
    polyop.errors.FrontendError: ...: local scalar 's' may be read before it is assigned: ...
"""

from __future__ import annotations

from collections.abc import Callable

import islpy as isl

from ..deps import unwritten_reads
from ..program import Program, Statement


def first_unassigned_read(program: Program) -> tuple[Statement, str, str] | None:
    """``(statement, scalar, example)`` for a read of a local scalar that no
    earlier assignment reaches (``example``: the instance and the sizes), or
    ``None`` when every read of every local scalar has been assigned before.

    Example::

        >>> import polyop
        >>> @polyop.kernel
        ... def total(n: int, A: "f64[n]", out: "f64[1]"):
        ...     s = 0.0
        ...     for i in range(n):
        ...         s += A[i]
        ...     out[0] = s
        >>> first_unassigned_read(total.program) is None
        True
    """
    scalars = {a.name for a in program.arrays.values() if a.temporary and not a.ndim}
    if not scalars:
        return None
    reads = isl.UnionMap.empty(program.context.get_space())
    writes = reads
    for s in program.statements:
        for a in s.reads:
            if a.array in scalars:
                reads = reads.union(isl.UnionMap.from_map(a.relation))
        for a in s.writes:
            if a.array in scalars:
                writes = writes.union(isl.UnionMap.from_map(a.relation))
    if reads.is_empty():
        return None
    bad = unwritten_reads(reads, writes, program.schedule).intersect_params(program.context)
    if bad.is_empty():
        return None
    maps: list[isl.Map] = []
    bad.foreach_map(maps.append)
    by_name = {s.name: s for s in program.statements}
    # the textually first faulty statement is the one to fix
    rel = min(maps, key=lambda m: program.statements.index(
        by_name[m.get_tuple_name(isl.dim_type.in_)]))
    stmt = by_name[rel.get_tuple_name(isl.dim_type.in_)]
    point = rel.domain().sample_point()
    inst = ", ".join(f"{it}={_coord(point, isl.dim_type.set, k)}"
                     for k, it in enumerate(stmt.iterators))
    sizes = ", ".join(f"{p}={_coord(point, isl.dim_type.param, k)}"
                      for k, p in enumerate(program.params))
    example = f"{stmt.name}[{inst}]" + (f" with {sizes}" if sizes else "")
    return stmt, rel.get_tuple_name(isl.dim_type.out), example


def check_assigned(program: Program, error: Callable[[Statement, str], Exception]) -> None:
    """Raise ``error(stmt, message)`` for the first read of a local scalar on a
    path where it was never assigned (see the module docstring)."""
    found = first_unassigned_read(program)
    if found is None:
        return
    stmt, name, example = found
    raise error(stmt, f"local scalar {name!r} may be read before it is assigned: "
                      f"{example} reads it and no earlier statement instance assigned it "
                      "(CPython raises UnboundLocalError). Assign it on every path first "
                      f"({name} = 0.0 before the loop), or state the sizes it needs "
                      "with an assert on the size parameters (assert n >= 1)")


def _coord(point: isl.Point, kind: isl.dim_type, pos: int) -> int:
    return point.get_coordinate_val(kind, pos).to_python()
