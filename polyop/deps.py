"""Dependences between statement instances, from isl's dataflow analysis.

Memory-based dependences, per kind and per array:

- RAW (flow): a write, then a later read of the same element;
- WAR (anti): a read, then a later write of the same element;
- WAW (output): a write, then a later write of the same element.

Every ordered pair of conflicting instances is kept (no access kills
another): exactly what a legality check must respect. They are computed
directly, as the pairs of instances that access one element (``source ∘
sink⁻¹``) and run in that order (isl's ``lex_lt_union_map`` of the textual
schedule): the same relations as ``isl.UnionAccessInfo.compute_flow`` with the
earlier accesses as *may* sources, 3-4× faster on deriche and adi.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def prefix(n: int, A: "f64[n]"):
    ...     for i in range(1, n):
    ...         A[i] += A[i - 1]
    >>> print(polyop.dependences(prefix).raw)
    [n] -> { S0[i] -> S0[i' = 1 + i] : 0 < i <= -2 + n }
"""

from __future__ import annotations

from dataclasses import dataclass, field

import islpy as isl

from .program import Program

KINDS = ("RAW", "WAR", "WAW")


@dataclass(frozen=True, eq=False)
class Dependences:
    """Dependence relations of a program: ``by_array[kind][array]`` → ``isl.UnionMap``."""

    program: Program
    by_array: dict[str, dict[str, isl.UnionMap]]
    _value_flows: dict[str, isl.UnionMap] = field(default_factory=dict, repr=False)

    def value_flow(self, array: str) -> isl.UnionMap:
        """Value-based flow on ``array`` (writer → reader instances, each read
        from its last writer) in the program's order; computed once per array.

        Example (each read of ``t[0]`` depends on every earlier write, but its
        value comes from the write of the same iteration)::

            >>> import polyop
            >>> @polyop.kernel
            ... def last(n: int, x: "f64[n]", t: "f64[1]", y: "f64[n]"):
            ...     for i in range(n):
            ...         t[0] = x[i]
            ...         y[i] = t[0]
            >>> deps = polyop.dependences(last)
            >>> print(deps.by_array["RAW"]["t"])
            [n] -> { S0[i] -> S1[i'] : i >= 0 and i <= i' < n }
            >>> print(deps.value_flow("t"))
            [n] -> { S0[i] -> S1[i' = i] : 0 <= i < n }
        """
        if array not in self._value_flows:
            p = self.program
            info = isl.UnionAccessInfo.from_sink(p.reads(array)).set_must_source(
                p.writes(array))
            self._value_flows[array] = info.set_schedule(p.schedule).compute_flow() \
                .get_may_dependence()
        return self._value_flows[array]

    def of_kind(self, kind: str) -> isl.UnionMap:
        """All dependences of one kind (``"RAW"``, ``"WAR"`` or ``"WAW"``)."""
        out = isl.UnionMap.empty(self.program.context.get_space())
        for m in self.by_array[kind].values():
            out = out.union(m)
        return out

    @property
    def raw(self) -> isl.UnionMap:
        return self.of_kind("RAW")

    @property
    def war(self) -> isl.UnionMap:
        return self.of_kind("WAR")

    @property
    def waw(self) -> isl.UnionMap:
        return self.of_kind("WAW")

    @property
    def all(self) -> isl.UnionMap:
        """Every dependence, whatever its kind or array."""
        return self.raw.union(self.war).union(self.waw)

    def items(self):
        """``(kind, array, relation)`` for every non-empty relation."""
        for kind in KINDS:
            for array, rel in self.by_array[kind].items():
                yield kind, array, rel

    def __str__(self) -> str:
        lines = [f"{kind} on {array}: {rel}" for kind, array, rel in self.items()]
        return "\n".join(lines) or "no dependences"


def unwritten_reads(reads: isl.UnionMap, writes: isl.UnionMap,
                    schedule: isl.Schedule) -> isl.UnionMap:
    """The reads (instance -> element) that no earlier write in ``schedule`` of
    ``writes`` defines: exact value-based flow, the writes as must-sources.

    Example (each ``A[i]`` is read before it is written, and ``A[0]`` never is)::

        >>> import polyop
        >>> @polyop.kernel
        ... def prefix(n: int, A: "f64[n]"):
        ...     for i in range(1, n):
        ...         A[i] += A[i - 1]
        >>> p = prefix.program
        >>> print(unwritten_reads(p.reads("A"), p.writes("A"), p.schedule))
        [n] -> { S0[i] -> A[i] : 0 < i < n; S0[i = 1] -> A[0] : n >= 2 }
    """
    info = isl.UnionAccessInfo.from_sink(reads).set_must_source(writes)
    return info.set_schedule(schedule).compute_flow().get_must_no_source()


def compute_dependences(program: Program) -> Dependences:
    """Memory-based RAW/WAR/WAW dependences of ``program`` in its original order."""
    by_array: dict[str, dict[str, isl.UnionMap]] = {k: {} for k in KINDS}
    order = program.schedule.get_map()
    before = order.lex_lt_union_map(order)  # a -> b: a runs before b
    for name in program.arrays:
        reads, writes = program.reads(name), program.writes(name)
        if writes.is_empty():
            continue
        pairs = {"RAW": (reads, writes), "WAR": (writes, reads), "WAW": (writes, writes)}
        for kind, (sink, source) in pairs.items():
            if sink.is_empty() or source.is_empty():
                continue
            dep = source.apply_range(sink.reverse()).intersect(before).coalesce()
            if not dep.is_empty():
                by_array[kind][name] = dep
    return Dependences(program, by_array)


def dependences(obj) -> Dependences:
    """Dependences of a kernel or program (see the module docstring)."""
    program = getattr(obj, "program", obj)
    cached = program.meta.get("dependences")
    if cached is None:
        cached = program.meta["dependences"] = compute_dependences(program)
    return cached
