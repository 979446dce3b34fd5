"""``LoweringPlan``: what a schedule hands to lowering, by contract.

``polyop.pipeline.lower_ir`` reads a plan, never the ``Schedule`` itself: the
program, the tree to generate code from (with isl's AST options), the record
of each loop by its mark id (name and ``LoopKind``), the statements whose
updates run atomically, and the dependences the generated code must respect.
A plan is a snapshot: later primitives on the schedule do not change it.

A kernel without a ``Schedule`` has a plan too (``LoweringPlan(program)``: the
program's own order, or a raw isl tree), with no loop records and no AST
options.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def scale(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] *= 2.0
    >>> sch = polyop.Schedule(scale)
    >>> sch.parallel(sch.get_loops("S0")[0])
    >>> plan = sch.lowering_plan()
    >>> dict(plan.loops), plan.atomic
    ({'L0': ('i', <LoopKind.PARALLEL: 'parallel'>)}, frozenset())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import islpy as isl

from ..deps import Dependences
from ..kinds import LoopKind
from ..program import Program
from .astprep import prepare_for_ast
from .handles import LoopInfo
from .tree import with_disjoint_domain


@dataclass(frozen=True)
class LoweringPlan:
    """A schedule's contract with lowering (see the module docstring).

    ``schedule``: a ``Schedule``'s tree (loops under marks), a raw isl tree, or
    ``None`` for the program's own order; ``ast_options``: whether ``tree``'s
    options apply (a ``Schedule``'s plan), so that lowering may retry without
    them when isl cannot honour them.
    """

    program: Program
    schedule: isl.Schedule | None = None
    loop_records: Mapping[str, LoopInfo] = field(default_factory=lambda: MappingProxyType({}))
    atomic: frozenset[str] = frozenset()
    deps: Dependences | None = None
    ast_options: bool = False

    @classmethod
    def of(cls, program: Program, schedule: isl.Schedule | None, loops: Mapping[str, LoopInfo],
           atomic: set[str] | frozenset[str], deps: Dependences) -> LoweringPlan:
        """The plan of a ``Schedule``'s state (loop records copied: a snapshot)."""
        records = MappingProxyType({k: dataclasses.replace(v) for k, v in loops.items()})
        return cls(program, schedule, records, frozenset(atomic), deps, ast_options=True)

    @property
    def loops(self) -> Mapping[str, tuple[str, LoopKind]]:
        """Mark id → (loop name, kind): what the AST translation names and marks."""
        return MappingProxyType({k: (v.name, LoopKind(v.kind))
                                 for k, v in self.loop_records.items()})

    def unrolled(self) -> list[str]:
        """The names of the loops to unroll."""
        return [v.name for v in self.loop_records.values() if v.kind == LoopKind.UNROLL]

    def tree(self, unroll: bool = True, isolate: bool = True) -> isl.Schedule | None:
        """The tree to generate the AST from, with isl's AST options set (for a
        ``Schedule``'s plan): unrolling (unless ``unroll`` is false), and full
        strips of split loops isolated from partial ones (unless ``isolate`` is
        false; ``polyop.schedule.astprep``)."""
        if not self.ast_options:
            return self.schedule
        return ast_ready(self.schedule, self.loop_records, unroll, isolate)


def ast_ready(tree: isl.Schedule, loops: Mapping[str, LoopInfo], unroll: bool = True,
              isolate: bool = True) -> isl.Schedule:
    """``tree`` (loops under marks, ``loops`` their records) with isl's AST
    options set, as ``LoweringPlan.tree`` describes."""
    if not unroll:
        loops = {k: dataclasses.replace(v, kind=LoopKind.SERIAL if v.kind == LoopKind.UNROLL
                                        else v.kind) for k, v in loops.items()}
    return prepare_for_ast(with_disjoint_domain(tree), dict(loops), isolate)
