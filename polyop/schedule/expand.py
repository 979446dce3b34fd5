"""``expand``: give a temporary one copy per iteration of some loops (scalar
and array expansion).

A local scalar or array that every iteration of a loop writes before it reads
it (symm's ``temp2``, set to 0 for each ``(i, j)``, summed over ``k``, then
read) ties the iterations together only through its storage: each reuses the
one location the previous left, so anti and output dependences on it forbid
distributing the loop over the statements or interchanging it with the loops
inside. ``sch.expand(X, l1, ..., lp)`` replaces ``X`` by a new array
``X_x[v1, ..., vp, *shape(X)]``, ``vk`` the value of loop ``lk`` (shifted to
start at 0) at the instance that accesses it: iterations of those loops then
use different elements, and only the flow of values remains.

Only the statements inside all of ``l1 .. lp`` are rewritten; others keep
``X`` (ludcmp's ``w`` serves four nests, one after another). Exactness: the
rewrite keeps every value where its readers find it when each read of ``X``
inside the loops gets its value from a write in the same iterations of
``l1 .. lp`` (isl's value-based dataflow, in the program's order), no value
passes between a statement inside and one outside, and none is read from
before the kernel. Refused otherwise, with the pair of instances that
breaks it. The current schedule stays legal (the new dependences are a
subset of the old), and later primitives are checked against the new ones.

Storage: ``X_x`` is *scratch* (``program.meta["scratch"]``), allocated by the
runtime, its extents constants or affine expressions of the sizes, like
``rfactor``'s partial results; shared by the threads of a parallel loop (a
parallel loop that is not one of ``l1 .. lp`` then carries dependences on it,
and the legality check says so).

Example (symm's inner product: with ``temp2`` expanded over ``j``, the
``j`` loop can be distributed and moved inside ``k``)::

    >>> import polyop
    >>> @polyop.kernel
    ... def symm(m: int, n: int, C: "f64[m, n]", A: "f64[m, m]", B: "f64[m, n]"):
    ...     for i in range(m):
    ...         for j in range(n):
    ...             t = 0.0
    ...             for k in range(i):
    ...                 C[k, j] += B[i, j] * A[i, k]
    ...                 t += B[k, j] * A[i, k]
    ...             C[i, j] += t
    >>> sch = polyop.Schedule(symm)
    >>> i, j = sch.get_loops("S0")
    >>> sch.expand("t", j)
    't_x'
    >>> j0, j1, j2 = sch.fission(j)
    >>> _, j, k = sch.get_loops("S1")
    >>> sch.reorder(k, j)
    >>> print(polyop.lower(sch))
    void symm(int64_t m, int64_t n, double C[m][n], double A[m][m], double B[m][n], double t_x[n]) {
      for (i = 0; i < m; i += 1) {
        for (j = 0; j < n; j += 1)
          t_x[j] = 0.0;
        for (k = 0; k < i; k += 1)
          for (j = 0; j < n; j += 1) {
            C[k][j] = C[k][j] + B[i][j] * A[i][k];
            t_x[j] = t_x[j] + B[k][j] * A[i][k];
          }
        for (j = 0; j < n; j += 1)
          C[i][j] = C[i][j] + t_x[j];
      }
    }
"""

from __future__ import annotations

import dataclasses
import re

import islpy as isl

from .. import ir
from ..deps import dependences, unwritten_reads
from ..errors import ScheduleError
from ..instances import sample_pair
from ..isl_ir import fresh_name, index_text, program_names
from ..printer import expr_to_c
from ..program import Access, Argument, Array, Program, Statement, union_all
from .handles import Loop
from .rfactor import loop_index, loop_range
from .state import primitive


class ExpansionPrimitives:
    """``expand`` (see the module docstring)."""

    @primitive
    def expand(self, array: str, *loops: Loop, name: str | None = None) -> str:
        """Replace the temporary ``array`` by a scratch array (``name``, default
        ``<array>_x``) with one leading dimension per loop of ``loops``, indexed
        by that loop's value, so that the loops' iterations no longer share its
        storage (see the module docstring).

        The statements that run inside all of ``loops`` use the new array;
        any others keep ``array``. Requires: ``array`` is a temporary (a
        local scalar or array, not an argument); each read of it inside the
        loops gets its value from a write in the same iterations of
        ``loops``, and no value passes between the statements inside and
        those outside; each loop's values are one affine function of the
        statements' iterators, with a constant or affine extent.

        Returns the new array's name.

        Example (a scalar expanded over a loop; without it ``fission`` is
        refused)::

            >>> import polyop
            >>> @polyop.kernel
            ... def scale(n: int, x: "f64[n]", y: "f64[n]"):
            ...     for i in range(n):
            ...         s = 2.0 * x[i]
            ...         y[i] = s + 1.0
            >>> sch = polyop.Schedule(scale)
            >>> sch.expand("s", sch.get_loops("S0")[0])
            's_x'
            >>> len(sch.fission(sch.get_loops("S0")[0]))
            2
        """
        what = f"expand({array}{''.join(', ' + lp.name for lp in loops)})"
        program = self.program
        if array not in program.arrays or not program.arrays[array].temporary:
            kind = "an argument" if array in program.arrays else "not an array of the kernel"
            raise ScheduleError(f"{what}: {array} is {kind}; only temporaries (local scalars "
                                "and arrays) can be expanded")
        if not loops:
            raise ScheduleError(f"{what}: name the loops to expand {array} over")
        users = [s for s in program.statements
                 if any(a.array == array for a in s.reads + s.writes)]
        if not users:
            raise ScheduleError(f"{what}: no statement accesses {array}")
        every = {s.name: [self._values(lp, s, what) for lp in loops] for s in users}
        inside = [s for s in users if all(v is not None for v in every[s.name])]
        if not inside:
            raise ScheduleError(f"{what}: no statement that accesses {array} runs inside "
                                f"{'all of ' if len(loops) > 1 else ''}"
                                f"{', '.join(lp.name for lp in loops)}")
        values = {s.name: every[s.name] for s in inside}
        _check_flow(program, array, users, inside, values, what)
        new = _expanded(program, array, inside, len(inside) < len(users), values, loops,
                        name, what)
        self._state = self._state.replace(program=new, deps=dependences(new))
        self._commit(f"{what} -> {new.meta['scratch'][-1]}", self._tree)
        return new.meta["scratch"][-1]

    def _values(self, loop: Loop, s: Statement, what: str) -> isl.Map | None:
        """The value of ``loop`` at each instance of ``s`` (None when ``s`` runs
        outside it)."""
        band = self._mark(loop).child(0)
        inside = band.get_domain().intersect(isl.UnionSet.from_set(s.domain))
        if inside.is_empty():
            return None
        if not isl.UnionSet.from_set(s.domain).is_subset(inside):
            raise ScheduleError(f"{what}: {s.name} ({s.source}) accesses the array but does "
                                f"not run inside loop {loop.name} (in all of its instances)")
        return isl.Map.from_union_map(band.band_get_partial_schedule_union_map()
                                      .intersect_domain(isl.UnionSet.from_set(s.domain)))


def _check_flow(program: Program, array: str, users: list[Statement],
                inside: list[Statement], values: dict[str, list[isl.Map]], what: str) -> None:
    """Refuse when a read inside the loops gets its value from another
    iteration of them, from a statement outside them or from before the
    kernel, or a read outside them from a write inside."""
    reads = program.reads(array)
    missing = unwritten_reads(reads, program.writes(array), program.schedule) \
        .intersect_domain(union_all(isl.UnionSet.from_set(s.domain) for s in inside))
    if not missing.is_empty():
        raise ScheduleError(f"{what}: {missing.domain()} read {array} before any statement "
                            "of the kernel wrote it; the value would not be in the expanded "
                            "array")
    flow = dependences(program).value_flow(array)
    names = {s.name for s in inside}
    for w in users:
        for r in users:
            pairs = flow.extract_map(isl.Space.map_from_domain_and_range(
                w.domain.get_space(), r.domain.get_space()))
            if pairs.is_empty() or (w.name not in names and r.name not in names):
                continue  # between statements that keep the array
            if (w.name in names) != (r.name in names):
                src, dst, sizes, _ = sample_pair(program, isl.UnionMap.from_map(pairs))
                outer = w if r.name in names else r
                raise ScheduleError(
                    f"{what}: {dst} ({r.source}) reads the value of {array} that {src} "
                    f"({w.source}) wrote, and {outer.name} runs outside the loops"
                    f"{f' (with {sizes})' if sizes else ''}; only the statements inside "
                    "them would use the expanded array")
            same = None
            for vw, vr in zip(values[w.name], values[r.name]):
                eq = vw.apply_range(vr.reverse())  # w -> r in the same iteration
                same = eq if same is None else same.intersect(eq)
            bad = pairs.subtract(same)
            if not bad.is_empty():
                src, dst, sizes, _ = sample_pair(program, isl.UnionMap.from_map(bad))
                raise ScheduleError(
                    f"{what}: {dst} ({r.source}) reads the value of {array} that {src} "
                    f"({w.source}) wrote in another iteration of the loops"
                    f"{f' (with {sizes})' if sizes else ''}; expanded, it would read "
                    "its own iteration's element")


def _expanded(program: Program, array: str, users: list[Statement], kept: bool,
              values: dict[str, list[isl.Map]], loops: tuple[Loop, ...],
              name: str | None, what: str) -> Program:
    """The program with the accesses of ``users`` to ``array`` moved to the new
    scratch array (``kept``: other statements still use ``array``)."""
    taken = program_names(program)
    if name is not None and (name in taken or not name.isidentifier()):
        raise ScheduleError(f"{what}: the name {name!r} is taken or not an identifier")
    x_name = name or fresh_name(f"{array}_x", taken)
    x = program.arrays[array]
    ctx = program.context
    lows, extents = [], []
    for k, lp in enumerate(loops):
        vals = None
        for s in users:
            v = values[s.name][k].range().reset_tuple_id()
            vals = v if vals is None else vals.union(v)
        low, extent = loop_range(vals, ctx, lp.name, ", ".join(s.name for s in users), what)
        lows.append(low)
        extents.append(extent)
    statements = []
    for s in program.statements:
        if s not in users:
            statements.append(s)
            continue
        lead, lead_map = [], None
        for k, lp in enumerate(loops):
            pa, index = loop_index(values[s.name][k], lows[k], s, ctx, lp.name, what)
            lead.append(index)
            m = isl.Map.from_pw_aff(pa)
            lead_map = m if lead_map is None else lead_map.flat_range_product(m)
        statements.append(_rewritten(s, array, x_name, tuple(lead), lead_map))
    meta = {k: v for k, v in program.meta.items() if k != "dependences"}
    meta["scratch"] = tuple(meta.get("scratch", ())) + (x_name,)
    meta["internal"] = tuple(meta.get("internal", ())) + (x_name,)
    arrays = {k: v for k, v in program.arrays.items() if k != array or kept}
    arrays[x_name] = Array(x_name, x.dtype, (*map(index_text, extents), *x.shape),
                           (*extents, *x.extents))
    return dataclasses.replace(program, statements=tuple(statements), arrays=arrays,
                               arguments=program.arguments + (
                                   Argument(x_name, "array", x.dtype),),
                               meta=meta)


def _rewritten(s: Statement, array: str, x_name: str, lead: tuple[ir.Expr, ...],
               lead_map: isl.Map) -> Statement:
    """``s`` with every access to ``array`` indexed ``x_name[lead, index]``."""
    def access(a: Access) -> Access:
        if a.array != array:
            return a
        index = (*lead, *a.index)
        rel = lead_map.flat_range_product(a.relation).set_tuple_name(isl.dim_type.out, x_name)
        return Access(x_name, rel, index, f"{x_name}[{', '.join(map(expr_to_c, index))}]")

    def go(node):
        if isinstance(node, ir.Load) and node.array == array:
            return ir.Load(x_name, (*lead, *node.index), node.dtype)
        node = ir.map_children(node, go)
        if isinstance(node, ir.Store) and node.array == array:
            return dataclasses.replace(node, array=x_name, index=(*lead, *node.index))
        return node

    return dataclasses.replace(s, reads=tuple(map(access, s.reads)),
                               writes=tuple(map(access, s.writes)), body=go(s.body),
                               source=_source(s.source, array, x_name, lead))


def _source(text: str, array: str, x_name: str, lead: tuple[ir.Expr, ...]) -> str:
    """The statement's source line with ``array`` renamed (shown in errors)."""
    subs = ", ".join(map(expr_to_c, lead))
    text = re.sub(rf"\b{re.escape(array)}\[", f"{x_name}[{subs}, ", text)
    return re.sub(rf"\b{re.escape(array)}\b(?!\[)", f"{x_name}[{subs}]", text)
