"""``set_scope(array, "local", loop)``: store an internal array in a buffer local
to each iteration of a loop (storage contraction).

An intermediate that the schedule produces and consumes tile by tile, such as
the tile of ``C`` in a GEMM with a fused epilogue, needs no full-size array:
at each iteration of the tile loop only one tile of it is alive. ``set_scope``
replaces the array by a local array (a stack buffer, promoted to registers by
LLVM when small) of the constant shape of the largest per-iteration
footprint, its subscripts shifted by the footprint's lower corner:
``C[i][j]`` becomes ``C[i - 6 * i_outer][j - 16 * j_outer]``, which isl's
subscript rebuilding prints as ``C[i_inner][j_inner]``.

It is exact, and refused with a ``ScheduleError`` otherwise, when

- the array is internal (a local temporary, a scratch array, or an
  intermediate stage of tensor expressions): the caller never sees it;
- every access to it happens inside ``loop``, and every element is accessed
  in a single iteration of ``loop`` (and of the loops around it): its whole
  lifetime fits one iteration, so iterations may reuse the buffer;
- no read happens before the element is written (in the current order);
- the footprint of one iteration fits a box of constant size whose corner is
  one affine function of the loop values.

The current schedule becomes the program's reference order (the contracted
storage is only correct in it); later primitives are checked against the
dependences of the local buffer, reuse across iterations included.

Example (the stage ``T``, computed per strip of 4, kept in a 4-element buffer)::

    >>> import polyop
    >>> A = polyop.placeholder((64,), "float64", name="A")
    >>> T = polyop.compute((64,), lambda i: A[i] * 2.0, name="T")
    >>> R = polyop.compute((64,), lambda i: T[i] + 1.0, name="R")
    >>> sch = polyop.create_schedule(R)
    >>> io, ii = sch.split(sch.get_loops(R)[0], 4)
    >>> sch.compute_at(T, io)
    >>> sch.set_scope(T, "local", io)
    'T'
    >>> print(polyop.lower(sch, [A, R]))
    void R(double A[64], double R[64]) {
      double T[4];
      for (i_outer = 0; i_outer < 16; i_outer += 1) {
        for (i = 4 * i_outer; i < 4 * i_outer + 4; i += 1)
          T[-4 * i_outer + i] = A[i] * 2.0;
        for (i_inner = 0; i_inner < 4; i_inner += 1)
          R[4 * i_outer + i_inner] = T[i_inner] + 1.0;
      }
    }
"""

from __future__ import annotations

import dataclasses

import islpy as isl

from .. import ir
from ..deps import dependences, unwritten_reads
from ..errors import ScheduleError
from ..isl_ir import NotAnIndexError, pw_aff_to_ir
from ..program import Access, Array
from ..promotion import _affine_lower
from ..types import INDEX
from .handles import Loop
from .rfactor import _unmarked
from .state import primitive
from .tree import from_isl, to_isl


class ScopePrimitives:
    """``set_scope`` (see the module docstring)."""

    @primitive
    def set_scope(self, array, scope: str, loop: Loop) -> str:
        """Store the internal ``array`` (a name or a tensor) in a buffer local to
        each iteration of ``loop``; returns its name. ``scope`` is ``"local"``.
        The requirements and an example are in the module docstring.
        """
        program = self.program
        name = self._array_name(array)
        what = f"set_scope({name}, {scope!r}, {loop.name})"
        if scope != "local":
            raise ScheduleError(f"{what}: the only scope is 'local'")
        spec = program.arrays[name]
        internal = spec.temporary or name in program.meta.get("internal", ()) \
            or name in program.meta.get("scratch", ())
        if not internal:
            raise ScheduleError(f"{what}: {name} is a kernel argument; only internal arrays "
                                "(temporaries, scratch, intermediate stages) can be local")
        band = self._mark(loop).child(0)
        accesses = program.reads(name).union(program.writes(name))
        if not accesses.domain().is_subset(band.get_domain()):
            raise ScheduleError(f"{what}: {name} is also accessed outside loop {loop.name}")
        prefix = band.get_prefix_schedule_union_map().flat_range_product(
            band.band_get_partial_schedule_union_map())
        when = accesses.reverse().apply_range(prefix)  # element -> iterations touching it
        if not when.is_single_valued():
            raise ScheduleError(f"{what}: an element of {name} is accessed in several "
                                f"iterations of {loop.name} (or of the loops around it)")
        _check_written_first(program, name, self._tree, what)
        footprint = isl.Map.from_union_map(when.reverse())  # iteration -> elements
        corner, shape = _box(footprint, what)
        local = Array(name, spec.dtype, tuple(str(n) for n in shape),
                      tuple(ir.Const(n, INDEX) for n in shape), temporary=True)
        statements = tuple(_shifted(s, name, prefix, corner) for s in program.statements)
        meta = {k: v for k, v in program.meta.items() if k != "dependences"}
        for key in ("scratch", "internal"):
            meta[key] = tuple(a for a in meta.get(key, ()) if a != name)
        domain, root = from_isl(self._tree)
        new = dataclasses.replace(
            program, statements=statements, arrays={**program.arrays, name: local},
            arguments=tuple(a for a in program.arguments if a.name != name), meta=meta,
            schedule=to_isl(domain, _unmarked(root)))
        self._state = self._state.replace(program=new, deps=dependences(new))
        self._commit(what, self._tree)
        return name


def _box(footprint: isl.Map, what: str) -> tuple[list[isl.PwAff], tuple[int, ...]]:
    """The lower corner (a function of the iteration) and the constant size of
    the box holding each iteration's footprint: per dimension the corner and
    width of ``polyop.promotion._affine_lower``, the box of every promotion
    (a corner clamped at a boundary gives way to the unclamped tile's)."""
    corner = []
    shape = []
    for d in range(footprint.dim(isl.dim_type.out)):
        low, high = footprint.dim_min(d).coalesce(), footprint.dim_max(d).coalesce()
        lower, size = _affine_lower(low, high)
        if size is None and low.n_piece() != 1:
            raise ScheduleError(f"{what}: the footprint's lower bound in dimension {d} is "
                                f"not one affine function ({low})")
        if size is None:
            raise ScheduleError(f"{what}: the footprint has no constant size in dimension {d}")
        corner.append(lower)
        shape.append(size)
    return corner, tuple(shape)


def _shifted(s, name: str, prefix: isl.UnionMap, corner: list[isl.PwAff]):
    """Statement ``s`` with its accesses to ``name`` shifted by the corner of the
    footprint of the iteration each instance runs in."""
    if not any(a.array == name for a in s.reads + s.writes):
        return s
    when = isl.PwMultiAff.from_map(isl.Map.from_union_map(
        prefix.intersect_domain(isl.UnionSet.from_set(s.domain))))
    table = {}
    try:  # by the loads and stores of the body: every index the code will use
        found = s.body_accesses(name, stores=True)
    except NotAnIndexError as err:
        raise ScheduleError(f"set_scope({name}): {s.name}'s index {err}") from None
    for index, rel in found.items():
        element = isl.PwMultiAff.from_map(rel)
        shifted_index = []
        for d, low in enumerate(corner):
            shifted = element.get_pw_aff(d).sub(low.pullback_pw_multi_aff(when))
            try:
                shifted_index.append(pw_aff_to_ir(shifted, s.iterators, within=s.domain))
            except NotAnIndexError as err:
                raise ScheduleError(f"set_scope({name}): the shifted index of {s.name} in "
                                    f"dimension {d}: {err}") from None
        table[(name, index)] = tuple(shifted_index)

    offset = None  # instance -> corner of its iteration's footprint
    for low in corner:
        m = isl.Map.from_pw_aff(low)
        offset = m if offset is None else offset.flat_range_product(m)
    offset = isl.Map.from_pw_multi_aff(when).apply_range(offset)
    n = len(corner)
    minus = isl.Map(f"{{ [{_vars('e', n)}, {_vars('o', n)}] -> "
                    f"{name}[{', '.join(f'e{k} - o{k}' for k in range(n))}] }}")

    def access(a: Access) -> Access:
        if a.array != name:
            return a
        rel = a.relation.flat_range_product(offset).apply_range(minus)
        index = table.get((a.array, a.index), a.index)  # (unrecorded: stays so)
        return Access(name, rel, index, f"{name}[{', '.join(map(str, index))}]")

    def body(node):
        if isinstance(node, (ir.Load, ir.Store)) and (node.array, node.index) in table:
            index = table[(node.array, node.index)]
            if isinstance(node, ir.Load):
                return ir.Load(node.array, index, node.dtype)
            return dataclasses.replace(node, index=index, value=body(node.value))
        return ir.map_children(node, body)

    return dataclasses.replace(s, reads=tuple(map(access, s.reads)),
                               writes=tuple(map(access, s.writes)), body=body(s.body))


def _vars(prefix: str, n: int) -> str:
    return ", ".join(f"{prefix}{k}" for k in range(n))


def _check_written_first(program, name: str, tree: isl.Schedule, what: str) -> None:
    if not unwritten_reads(program.reads(name), program.writes(name), tree).is_empty():
        raise ScheduleError(f"{what}: an element of {name} is read before it is written")
