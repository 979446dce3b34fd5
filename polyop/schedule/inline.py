"""``inline``: substitute a producer statement's expression into its consumers.

A statement ``P`` that writes a temporary (``t = A[i] * 2.0``) can be removed
when every read of that temporary is replaced by ``P``'s right-hand side,
evaluated at the instance of ``P`` that produced the value read. Which
instance that is comes from isl's exact value-based flow: for a consumer
instance, the last ``P`` instance before it (in the program's order) writing
the element it reads. The rewrite is exact when

- ``P`` is the only writer of its array, the array is internal (a local
  temporary, or an intermediate stage of tensor expressions, listed in
  ``program.meta["internal"]``: a kernel argument's values are visible to the
  caller and must still be stored), and every consumer read has a ``P``
  instance as its source;
- the producing instance is an affine function of the consumer instance;
- no element ``P`` reads is written between the producing instance and the
  consumer (so the operands have the same values at the consumer as at ``P``).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, A: "f64[n]", B: "f64[n]"):
    ...     for i in range(n):
    ...         t = A[i] * 2.0
    ...         B[i] = t + 1.0
    >>> print(polyop.lower(inline_statement(k.program, "S0")))
    void k(int64_t n, double A[n], double B[n]) {
      for (i = 0; i < n; i += 1)
        B[i] = A[i] * 2.0 + 1.0;
    }
"""

from __future__ import annotations

import dataclasses

import islpy as isl

from .. import ir
from ..errors import ScheduleError
from ..isl_ir import NotAnIndexError, aff_to_ir, index_text
from ..program import Access, Program, Statement


def inline_statement(program: Program, name: str) -> Program:
    """``program`` without statement ``name``, its value substituted into its readers."""
    what = f"inline({name})"
    p = program.statement(name)
    if len(p.writes) != 1:
        raise ScheduleError(f"{what}: {name} writes {len(p.writes)} arrays; only a "
                            "statement writing one array can be inlined")
    (target,) = p.writes
    array = program.arrays[target.array]
    if not (array.temporary or array.name in program.meta.get("internal", ())):
        raise ScheduleError(f"{what}: {name} writes {target.array}, a kernel argument whose "
                            "values the caller sees; only temporaries can be inlined "
                            "(compute_at moves a producer instead)")
    for s in program.statements:
        if s is not p and any(a.array == target.array for a in s.writes):
            raise ScheduleError(f"{what}: {s.name} also writes {target.array}")
    statements = tuple(_substitute(program, p, s, what) for s in program.statements
                       if s is not p)
    keep = isl.UnionSet.empty(program.context.get_space())
    for s in statements:
        keep = keep.union(isl.UnionSet.from_set(s.domain))
    arrays = {k: v for k, v in program.arrays.items() if k != target.array}
    arguments = tuple(a for a in program.arguments if a.name != target.array)
    meta = {k: v for k, v in program.meta.items() if k != "dependences"}
    for key in ("scratch", "internal"):  # the array is gone: no runtime buffer for it
        if key in meta:
            meta[key] = tuple(n for n in meta[key] if n != target.array)
    return dataclasses.replace(program, statements=statements, arrays=arrays,
                               arguments=arguments, meta=meta,
                               schedule=program.schedule.intersect_domain(keep))


def _substitute(program: Program, p: Statement, s: Statement, what: str) -> Statement:
    (target,) = p.writes
    if not any(a.array == target.array for a in s.reads):
        return s
    uses = _loaded(s, target.array, what)
    body, reads = s.body, [a for a in s.reads if a.array != target.array]
    for acc in uses:
        source = _producer_of(program, p, acc, what, s.name)
        _check_operands_unchanged(program, p, s, source, what)
        try:
            env = {it: aff_to_ir(source.get_aff(k), s.iterators)
                   for k, it in enumerate(p.iterators)}
        except NotAnIndexError as err:
            # the producer instance read by s, as a function of s's iterators
            raise ScheduleError(f"{what}: the producer instance {err}") from None
        value = ir.substitute(p.body.value, env)
        body = _replace_load(body, acc.index, target.array, value)
        src_map = isl.Map.from_pw_multi_aff(isl.PwMultiAff.from_multi_aff(source))
        for r in p.reads:
            index = tuple(ir.substitute(e, env) for e in r.index)
            rel = src_map.intersect_domain(s.domain).apply_range(r.relation)
            reads.append(Access(r.array, rel, index, r.text))
    return dataclasses.replace(s, body=body, reads=tuple(reads))


def _loaded(s: Statement, array: str, what: str) -> list[Access]:
    """One access per distinct load of ``array`` in ``s``'s body (its index
    is what the rewrite replaces; ``Statement.body_accesses``), the recorded
    read where there is one."""
    recorded = {a.index: a for a in s.reads if a.array == array}
    try:
        found = s.body_accesses(array)
    except NotAnIndexError as err:
        raise ScheduleError(f"{what}: {s.name} reads {array} at {err}") from None
    return [recorded.get(index) or
            Access(array, rel, index, f"{array}[{', '.join(map(index_text, index))}]")
            for index, rel in found.items()]


def _producer_of(program: Program, p: Statement, acc: Access, what: str,
                 consumer: str) -> isl.MultiAff:
    """The affine function giving, for each instance of the consumer, the
    instance of ``p`` whose value the access ``acc`` reads."""
    info = isl.UnionAccessInfo.from_sink(isl.UnionMap.from_map(acc.relation))
    info = info.set_must_source(isl.UnionMap.from_map(p.writes[0].relation))
    flow = info.set_schedule(program.schedule).compute_flow()
    if not flow.get_must_no_source().is_empty():
        raise ScheduleError(f"{what}: {consumer} reads {acc.text} where no instance of "
                            f"{p.name} wrote it before")
    pieces: list[isl.Map] = []
    flow.get_must_dependence().reverse().foreach_map(pieces.append)
    pma = isl.PwMultiAff.from_map(pieces[0].coalesce()) if len(pieces) == 1 else None
    if pma is None or pma.n_piece() != 1:
        raise ScheduleError(f"{what}: the instance of {p.name} read by {consumer}'s "
                            f"{acc.text} is not one affine function of {consumer}'s iterators")
    found: list[isl.MultiAff] = []
    pma.foreach_piece(lambda _set, ma: found.append(ma))
    return found[0]


def _check_operands_unchanged(program: Program, p: Statement, s: Statement,
                              source: isl.MultiAff, what: str) -> None:
    """Refuse when an element ``p`` reads is overwritten after the producing
    instance and before the consumer instance of ``s`` (in program order)."""
    uses = isl.UnionMap.from_map(
        isl.Map.from_pw_multi_aff(isl.PwMultiAff.from_multi_aff(source))
        .intersect_domain(s.domain))  # consumer -> producer
    for r in p.reads:
        writer = overwriter(program, uses, isl.UnionMap.from_map(r.relation), r.array)
        if writer is not None:
            raise ScheduleError(f"{what}: {p.name} reads {r.array}, which {writer[1]} "
                                f"overwrites before {s.name} would use the value")


def overwriter(program: Program, uses: isl.UnionMap, reads: isl.UnionMap,
               array: str) -> tuple[str, str] | None:
    """(consumer, writer) statement names when a writer of ``array`` overwrites an
    element a producer ``reads`` after that producer and before a consumer of it
    runs (``uses``: consumer instance -> producer instance), in the program's
    reference order; ``None`` when no such write exists.

    Example (``S1`` overwrites ``B`` between ``S0`` copying it and ``S2`` using the copy)::

        >>> import islpy as isl, polyop
        >>> @polyop.kernel
        ... def late(n: int, B: "f64[n]", T: "f64[n]", C: "f64[n]"):
        ...     for i in range(n):
        ...         T[i] = B[i]
        ...     for i in range(n):
        ...         B[i] = 0.0
        ...     for i in range(n):
        ...         C[i] = T[i]
        >>> p = late.program
        >>> reads = isl.UnionMap.from_map(p.statement("S0").reads[0].relation)
        >>> overwriter(p, isl.UnionMap("[n] -> { S2[i] -> S0[i] }"), reads, "B")
        ('S2', 'S1')
    """
    order = program.schedule.get_map()
    before = order.lex_lt_union_map(order)  # a -> b: a runs before b
    clobber = reads.apply_range(program.writes(array).reverse())  # producer -> writer
    late = uses.apply_range(clobber.intersect(before)).intersect(before.reverse())
    if late.is_empty():
        return None
    pair: list[isl.Map] = []
    late.foreach_map(pair.append)
    return pair[0].get_tuple_name(isl.dim_type.in_), pair[0].get_tuple_name(isl.dim_type.out)


def _replace_load(node, index: tuple[ir.Expr, ...], array: str, value: ir.Expr):
    if isinstance(node, ir.Load) and node.array == array and node.index == index:
        return value if value.dtype == node.dtype else ir.Cast(value, node.dtype)
    return ir.map_children(node, lambda c: _replace_load(c, index, array, value))
