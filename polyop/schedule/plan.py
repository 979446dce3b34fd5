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

    @property
    def strips(self) -> Mapping[str, int]:
        """Mark id → the most iterations of a strip loop (a split's inner loop,
        a cache panel's loop)."""
        return MappingProxyType({k: v.strip for k, v in self.loop_records.items() if v.strip})

    def unrolled(self) -> list[str]:
        """The names of the loops to unroll."""
        return [v.name for v in self.loop_records.values() if v.kind == LoopKind.UNROLL]

    def tree(self, unroll: bool = True, isolate: bool = True,
             variant: int = 0) -> isl.Schedule | None:
        """The tree to generate the AST from, with isl's AST options set (for a
        ``Schedule``'s plan): unrolling (unless ``unroll`` is false), and full
        strips of split loops isolated from partial ones (unless ``isolate`` is
        false; ``polyop.schedule.astprep``). ``variant`` (``0 .. VARIANTS-1``)
        picks another way to ask isl for the same code (``ast_ready``)."""
        if not self.ast_options:
            return self.schedule
        return ast_ready(self.schedule, self.loop_records, unroll, isolate, variant)


#: the ways ``ast_ready`` can ask isl for one tree's code: the domain as
#: disjoint pieces or as given, each with isl's default or atomic loops
VARIANTS = 4


def ast_ready(tree: isl.Schedule, loops: Mapping[str, LoopInfo], unroll: bool = True,
              isolate: bool = True, variant: int = 0) -> isl.Schedule:
    """``tree`` (loops under marks, ``loops`` their records) with isl's AST
    options set, as ``LoweringPlan.tree`` describes.

    isl's AST generator (islpy 2026.2) sometimes loses statement instances
    under guards with ``or`` and ``%`` (``polyop.schedule.tree.
    with_disjoint_domain`` says when); lowering validates the AST and, when
    an instance is lost, asks again with the next ``variant``: 0 gives the
    domain as disjoint pieces, 1 adds atomic loops (one loop per band member,
    no separation into pieces, except where unrolling asks otherwise), 2 and 3
    are 0 and 1 over the domain as given. Found by the schedule fuzzer:
    ``strided_or`` (``if j < i - 1 or j > i + 2 or (i % 4 == 1 and j % 4 ==
    0)`` over even ``j``) skewed and tiled by 4 × 3 misses ``S0[2, 0]`` at
    ``n = 3`` with variant 0, and none with variants 1-3."""
    if not unroll:
        loops = {k: dataclasses.replace(v, kind=LoopKind.SERIAL if v.kind == LoopKind.UNROLL
                                        else v.kind) for k, v in loops.items()}
    if variant < 2:
        tree = with_disjoint_domain(tree)
    tree = prepare_for_ast(tree, dict(loops), isolate)
    return _atomic_loops(tree) if variant % 2 else tree


def _atomic_loops(tree: isl.Schedule) -> isl.Schedule:
    """``tree`` with every band member that has isl's default loop type atomic."""
    def atomic(node: isl.ScheduleNode) -> isl.ScheduleNode:
        if node.get_type() == isl.schedule_node_type.band:
            for k in range(node.band_n_member()):
                if node.band_member_get_ast_loop_type(k) == isl.ast_loop_type.default:
                    node = node.band_member_set_ast_loop_type(k, isl.ast_loop_type.atomic)
        return node

    return tree.get_root().map_descendant_bottom_up(atomic).get_schedule()
