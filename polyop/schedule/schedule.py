"""``polyop.Schedule``: legality-checked loop transformations on an isl schedule tree.

Every loop of the tree is a one-member band with an isl *mark* node above it;
the mark's id (``L0``, ``L1``, …) is the identity behind a ``Loop`` handle, so
handles survive transformations of other loops. Each primitive rewrites the
tree (``band_tile`` for split, partial-schedule rewrites for reorder, skew,
reverse and shift, loop kinds for parallel/vector/unroll), then checks the
result against the program's exact dependences; an illegal result raises
``IllegalScheduleError`` and the schedule stays as it was.

The schedule is a façade over an immutable ``ScheduleState``
(``polyop.schedule.state``): a primitive computes new states and the façade
keeps the last one only if the primitive succeeds, so a refusal changes
nothing, ``fork()`` is a cheap independent copy and ``undo()`` steps back.
``trace`` lists the primitives applied (``polyop.schedule.trace``);
``Schedule.replay(trace, kernel)`` applies them to a fresh schedule, and
``trace_json()`` / ``Schedule.from_json`` write and read them.

Example (an illegal primitive is refused, naming the dependence, and leaves
no trace)::

    >>> import polyop
    >>> @polyop.kernel
    ... def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             for k in range(n):
    ...                 C[i, j] += A[i, k] * B[k, j]
    >>> sch = polyop.Schedule(mm)
    >>> i, j, k = sch.get_loops("S0")
    >>> sch.reorder(k, j)
    >>> sch.parallel(i)
    >>> sch.parallel(k)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    polyop.errors.IllegalScheduleError: parallel(k): loop k carries a RAW dependence on C: ...
    >>> print(sch)
    schedule of mm:
      reorder(k, j)
      parallel(i)
    >>> print(polyop.lower(sch))
    void mm(int64_t n, double A[n][n], double B[n][n], double C[n][n]) {
      // parallel
      for (i = 0; i < n; i += 1)
        for (k = 0; k < n; k += 1)
          for (j = 0; j < n; j += 1)
            C[i][j] = C[i][j] + A[i][k] * B[k][j];
    }
"""

from __future__ import annotations

import islpy as isl

from ..deps import dependences
from ..errors import IllegalScheduleError, ScheduleError
from ..kinds import LoopKind
from ..program import as_program
from .cache import CachePrimitives
from .expand import ExpansionPrimitives
from .fusion import FusionPrimitives
from .gpu import GpuCachePrimitives, GpuPrimitives
from .handles import Loop, _integer, _positive
from .legality import (
    Violation,
    carried_statements,
    carried_violations,
    order_violations,
    reduction_pairs,
)
from .plan import LoweringPlan, ast_ready
from .rfactor import ReductionPrimitives
from .scope import ScopePrimitives
from .state import ScheduleHistory, ScheduleState, primitive
from .tensorize import TensorizePrimitives
from .trace import TensorRef
from .tree import find_mark, loop_values, reaches

isl.DEFAULT_CONTEXT.set_tile_scale_tile_loops(0)
isl.DEFAULT_CONTEXT.set_tile_shift_point_loops(1)

_T = isl.schedule_node_type


class Schedule(ScheduleHistory, FusionPrimitives, CachePrimitives, ReductionPrimitives,
               ExpansionPrimitives, TensorizePrimitives, ScopePrimitives, GpuPrimitives,
               GpuCachePrimitives):
    """A schedule over a kernel's statements (see the module docstring): a
    façade over an immutable ``ScheduleState`` (``polyop.schedule.state``)
    that each primitive replaces, recording itself in ``trace``.

    ``check=False`` admits illegal schedules (for experiments); ``check()``
    then reports every violated dependence.
    """

    def __init__(self, kernel, check: bool = True):
        program = as_program(kernel)
        self.checking = check
        self._lineage = object()  # shared with forks: their handles are accepted here
        self._history: list[ScheduleState] = []
        self._running, self._labels = False, []
        self._state = ScheduleState(program, dependences(program), program.schedule)
        tree = self._with_marks(program.schedule)  # adds the loops' records to the state
        self._state = self._state.replace(tree=tree)

    # -- queries ------------------------------------------------------------------------
    @property
    def stmts(self) -> list[str]:
        return [s.name for s in self.program.statements]

    @property
    def tree(self) -> isl.Schedule:
        """The current isl schedule tree (loops are bands under ``L<k>`` marks)."""
        return self._tree

    def get_loops(self, stmt, *, copies: bool = False) -> list[Loop] | list[list[Loop]]:
        """The loops around statement ``stmt`` (a name, or a tensor of tensor
        expressions: its last statement), outermost first.

        A statement may run in several copies, each under loops of its own
        (``compute_at`` where the first instances are needed elsewhere, say):
        then the loops of the copy that runs the most instances (counted at
        sizes 64), or with ``copies=True`` a list of every copy's loops, the
        largest first.
        """
        stmt = self._statements(stmt)[-1]
        if not copies:
            return [Loop(self, m.mark_get_id().get_name()) for m in self._marks_above(stmt)]
        paths: list[tuple[int, list[Loop]]] = []

        def walk(node: isl.ScheduleNode, above: list[Loop], weight: int) -> None:
            if node.get_type() == _T.mark:
                above = above + [Loop(self, node.mark_get_id().get_name())]
            kids = [node.child(k) for k in range(node.n_children())]
            kids = [c for c in kids if reaches(c, stmt)]
            if not kids:
                paths.append((weight, above))
            for c in kids:
                walk(c, above, _weight(c, stmt) if len(kids) > 1 else weight)

        walk(self._tree.get_root(), [], 0)
        return [loops for _, loops in sorted(paths, key=lambda p: -p[0])]

    def _statements(self, stmt) -> list[str]:
        """The statement names behind ``stmt``: a name, or a tensor's statements
        (``C_init``, ``C`` for a reduction)."""
        info = self.program.meta.get("te")
        if isinstance(stmt, TensorRef) or (info is not None and not isinstance(stmt, str)
                                           and info.contains(stmt)):
            array = stmt.array if isinstance(stmt, TensorRef) else info.array(stmt)
            names = [s for s in (f"{array}_init", array) if s in self.stmts]
            if names:
                return names
            raise ScheduleError(f"tensor {array} has no statement left (inlined?)")
        if stmt not in self.stmts:
            raise ScheduleError(f"unknown statement {stmt!r} (statements: "
                                f"{', '.join(self.stmts)})")
        return [stmt]

    def loop_info(self) -> dict[str, tuple[str, LoopKind]]:
        """Mark id → (loop name, kind), for code generation."""
        return {k: (v.name, v.kind) for k, v in self._loops.items()}

    def ast_tree(self, unroll: bool = True, isolate: bool = True) -> isl.Schedule:
        """The tree with isl's AST options set: unrolling (unless ``unroll`` is
        false), and full strips of split loops isolated from partial ones
        (unless ``isolate`` is false; ``polyop.schedule.astprep``)."""
        return ast_ready(self._tree, self._loops, unroll, isolate)

    def lowering_plan(self) -> LoweringPlan:
        """What lowering needs from this schedule, as a snapshot: the program,
        the tree, the loop records, the atomic statements and the dependences
        (``polyop.schedule.plan``)."""
        return LoweringPlan.of(self.program, self._tree, self._loops, self.atomic_statements(),
                               self.deps)

    def atomic_statements(self) -> set[str]:
        """Statements whose updates run atomically (opted-in parallel reductions)."""
        out: set[str] = set()
        for ident, info in self._loops.items():
            mark = find_mark(self._tree.get_root(), ident) if info.reduction else None
            if mark is not None and info.kind == LoopKind.PARALLEL:
                band = mark.child(0)
                out |= carried_statements(self.deps, band,
                                          reduction_pairs(self.program, band))
        return out

    def check(self) -> list[Violation]:
        """Every dependence the current schedule violates (empty when legal)."""
        return self._violations(self._tree)

    def _repr_html_(self) -> str:
        """Jupyter's view: primitives, tree, generated code (``polyop.viz.html``)."""
        from ..viz.html import schedule_html

        return schedule_html(self)

    def __str__(self) -> str:
        lines = [f"schedule of {self.program.name}:"]
        lines += [f"  {t}" for ins in self._state.trace for t in ins.labels] \
            or ["  (original order)"]
        return "\n".join(lines)

    # -- primitives: loop structure ------------------------------------------------------
    @primitive
    def split(self, loop: Loop, factor: int) -> tuple[Loop, Loop]:
        """Strip-mine ``loop`` by ``factor``: ``v = outer * factor + inner``,
        ``0 <= inner < factor``; a partial last strip is handled.

        Always legal (the order of instances is unchanged). The loop's kind goes
        where it still holds: a parallel loop's to ``outer`` (with its
        reduction opt-in), a vectorized loop's to ``inner``, an unrolled loop's
        to both.

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def inc(A: "f64[64]"):
            ...     for i in range(64):
            ...         A[i] += 1.0
            >>> sch = polyop.Schedule(inc)
            >>> sch.split(sch.get_loops("S0")[0], 16)
            (Loop(i_outer, depth=0), Loop(i_inner, depth=1))
            >>> print(polyop.lower(sch))
            void inc(double A[64]) {
              for (i_outer = 0; i_outer < 4; i_outer += 1)
                for (i_inner = 0; i_inner < 16; i_inner += 1)
                  A[16 * i_outer + i_inner] = A[16 * i_outer + i_inner] + 1.0;
            }
        """
        mark = self._mark(loop)
        factor = _positive(factor, "split factor")
        was = self._loops[loop.id]
        name = was.name
        outer, inner = self._new_id(f"{name}_outer"), self._new_id(f"{name}_inner")
        self._update_loop(inner.id, strip=factor)
        if was.kind in (LoopKind.PARALLEL, LoopKind.UNROLL):
            self._update_loop(outer.id, kind=was.kind, reduction=was.reduction)
        if was.kind in (LoopKind.VECTOR, LoopKind.UNROLL):
            self._update_loop(inner.id, kind=was.kind)
        node = mark.delete()
        mv = isl.MultiVal.zero(node.band_get_space()).set_val(0, isl.Val(factor))
        node = node.band_tile(mv).child(0).insert_mark(isl.Id(inner.id))
        node = node.parent().insert_mark(isl.Id(outer.id))
        self._commit(f"split({name}, {factor})", node.get_schedule(),
                     gone={loop.id: f"split into {outer.name}, {inner.name}"})
        return outer, inner

    @primitive
    def tile(self, a: Loop, b: Loop, fa: int, fb: int) -> tuple[Loop, Loop, Loop, Loop]:
        """Tile the perfect nest ``a`` ⊃ ``b`` by ``fa`` × ``fb``:
        returns ``(a_outer, b_outer, a_inner, b_inner)`` in loop order.

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def zero(A: "f64[64, 64]"):
            ...     for i in range(64):
            ...         for j in range(64):
            ...             A[i, j] = 0.0
            >>> sch = polyop.Schedule(zero)
            >>> i, j = sch.get_loops("S0")
            >>> io, jo, ii, ji = sch.tile(i, j, 8, 16)
            >>> print(polyop.lower(sch))
            void zero(double A[64][64]) {
              for (i_outer = 0; i_outer < 8; i_outer += 1)
                for (j_outer = 0; j_outer < 4; j_outer += 1)
                  for (i_inner = 0; i_inner < 8; i_inner += 1)
                    for (j_inner = 0; j_inner < 16; j_inner += 1)
                      A[8 * i_outer + i_inner][16 * j_outer + j_inner] = 0.0;
            }
        """
        start = self._state
        checking, self.checking = self.checking, False
        try:  # the intermediate steps are not checked; the whole tiling is
            ao, ai = self.split(a, fa)
            bo, bi = self.split(b, fb)
            self.reorder(ao, bo, ai, bi)
        finally:
            self.checking = checking
        # one step from the start: the new loops' records, the tiled tree
        tree, self._state = self._tree, start.replace(loops=self._loops)
        self._labels.clear()
        self._commit(f"tile({a.name}, {b.name}, {fa}, {fb})", tree,
                     gone={a.id: "tiled", b.id: "tiled"})
        return ao, bo, ai, bi

    @primitive
    def reorder(self, *loops: Loop) -> None:
        """Put ``loops`` (nested in one another) in the given order; loops of
        the nest that are not named keep their place.

        Requires: the loops that move, and those between them, form a perfect
        nest (no statement between them); named loops that keep their place
        outside or inside them may enclose other statements.
        """
        self._reorder(loops, f"reorder({', '.join(lp.name for lp in loops)})")

    def _reorder(self, loops: tuple[Loop, ...], what: str) -> None:
        if len(set(loops)) != len(loops):
            raise ScheduleError("reorder: a loop is named twice")
        # named loops already in place at either end of the nest stay out of it
        by_depth = sorted(loops, key=lambda lp: self._mark(lp, True).get_tree_depth())
        for outer, inner in zip(by_depth, by_depth[1:]):
            if not self._encloses(self._mark(outer, True), self._mark(inner, True)):
                raise ScheduleError(f"{what}: {outer.name} does not enclose {inner.name}: "
                                    "reorder permutes loops nested in one another")
        first = next((k for k, (a, b) in enumerate(zip(by_depth, loops)) if a != b), None)
        if first is None:
            self._commit(what, self._tree)  # nothing moves
            return
        last = max(k for k, (a, b) in enumerate(zip(by_depth, loops)) if a != b)
        loops = tuple(loops[first:last + 1])
        chain = self._chain(loops)
        ids = [m.mark_get_id().get_name() for m, _ in chain]
        wanted = [lp.id for lp in loops]
        slots = iter(wanted)
        order = [next(slots) if i in wanted else i for i in ids]
        parts = {m.mark_get_id().get_name(): b.band_get_partial_schedule() for m, b in chain}
        node = chain[0][0]
        for _ in chain:
            node = node.delete().delete()
        for ident in reversed(order):
            node = node.insert_partial_schedule(parts[ident]).insert_mark(isl.Id(ident))
        self._commit(what, node.get_schedule())

    @primitive
    def interchange(self, a: Loop, b: Loop) -> None:
        """Swap two loops of one perfect nest."""
        self._check_loop(a)
        self._check_loop(b)
        outer, inner = (a, b) if a.depth < b.depth else (b, a)
        self._reorder((inner, outer), f"interchange({a.name}, {b.name})")

    @primitive
    def skew(self, outer: Loop, inner: Loop, factor: int) -> None:
        """``inner ← inner + factor · outer`` (``outer`` must enclose ``inner``)."""
        om, im = self._mark(outer), self._mark(inner)
        if not self._encloses(om, im):
            raise ScheduleError(f"skew: {outer.name} does not enclose {inner.name}")
        factor = _integer(factor, "skew factor")
        o_part = om.child(0).band_get_partial_schedule()
        i_part = im.child(0).band_get_partial_schedule()
        new = i_part.add(o_part.intersect_domain(i_part.domain()).scale_val(isl.Val(factor)))
        self._replace_band(im, new, f"skew({outer.name}, {inner.name}, {factor})")

    @primitive
    def reverse(self, loop: Loop) -> None:
        """Run ``loop`` backwards."""
        m = self._mark(loop, True)  # both members of a coalesced loop run backwards
        self._replace_band(m, m.child(0).band_get_partial_schedule().neg(),
                           f"reverse({loop.name})")

    @primitive
    def shift(self, stmt: str, loop: Loop, offset: int) -> None:
        """Move statement ``stmt``'s iterations of ``loop`` by ``offset``."""
        m = self._mark(loop)
        offset = _integer(offset, "shift offset")
        if stmt not in [s for s in self.stmts if loop in self.get_loops(s)]:
            raise ScheduleError(f"shift: statement {stmt} is not inside loop {loop.name}")
        dom = self.program.statement(stmt).domain
        ls = isl.LocalSpace.from_space(dom.get_space())
        off = isl.UnionPwAff.from_pw_aff(isl.PwAff.from_aff(
            isl.Aff.zero_on_domain(ls).set_constant_val(isl.Val(offset))))
        part = m.child(0).band_get_partial_schedule()
        upa = part.get_union_pw_aff(0).union_add(off)
        self._replace_band(m, part.set_union_pw_aff(0, upa),
                           f"shift({stmt}, {loop.name}, {offset})")

    # -- primitives: loop kinds ------------------------------------------------------------
    @primitive
    def parallel(self, loop: Loop, reduction: str | None = None) -> None:
        """Run the iterations of ``loop`` on all cores (``POLYOP_NUM_THREADS``).

        Requires: ``loop`` carries no dependence (local scalars written and read
        within one iteration are privatised). With ``reduction="atomic"`` the
        loop may also carry the dependences between updates of one reduction
        statement ``X[f] += e`` (``-=`` too): those updates become atomic and
        run in any order, so floating-point sums may round differently.
        """
        if reduction not in (None, "atomic"):
            raise ScheduleError(f"parallel: unknown reduction strategy {reduction!r} "
                                "(supported: 'atomic')")
        self._set_kind(loop, LoopKind.PARALLEL, reduction)

    @primitive
    def vectorize(self, loop: Loop) -> None:
        """Vectorise the innermost ``loop`` (it must carry no dependence; there
        is no reduction opt-in: ``rfactor`` a reduction first)."""
        if not _innermost(self._mark(loop)):
            raise ScheduleError(f"vectorize: {loop.name} is not an innermost loop (a loop "
                                "runs inside it)")
        self._set_kind(loop, LoopKind.VECTOR)

    @primitive
    def unroll(self, loop: Loop, factor: int | None = None) -> Loop | None:
        """Unroll ``loop`` fully, or by ``factor`` (split, then unroll the inner loop,
        which is returned). Full unrolling needs a constant trip count."""
        if factor is not None:
            self._mark(loop)
            self._check_kind(loop, LoopKind.UNROLL)  # before splitting: a refusal changes nothing
            _, inner = self.split(loop, factor)
            self.unroll(inner)
            return inner
        if not _bounded(loop_values(self._mark(loop).child(0))):
            raise ScheduleError(f"unroll: loop {loop.name} has no constant trip count; "
                                "use unroll(loop, factor)")
        self._set_kind(loop, LoopKind.UNROLL)
        return None

    # -- internals -----------------------------------------------------------------------------
    def _check_loop(self, loop: Loop) -> None:
        if not isinstance(loop, Loop) or loop._schedule._lineage is not self._lineage:
            raise ScheduleError(f"{loop!r} is not a loop of this schedule")
        if loop.id not in self._loops:
            raise ScheduleError(f"loop handle {loop.id} is not a loop of this schedule (made "
                                "by a fork after it was forked, or by a primitive undone "
                                "since?)")
        if loop.id in self._gone:
            raise ScheduleError(f"loop handle {loop.id} is stale: it was "
                                f"{self._gone[loop.id]}")

    def _mark(self, loop: Loop, coalesced_ok: bool = False) -> isl.ScheduleNode:
        """The mark node of ``loop``. A coalesced loop (a two-member band: see
        ``fuse``) is refused unless the caller handles it (``coalesced_ok``)."""
        self._check_loop(loop)
        found = find_mark(self._tree.get_root(), loop.id)
        if found is None:
            raise ScheduleError(f"loop {loop.name} ({loop.id}) is no longer in the schedule")
        if self._loops[loop.id].coalesced and not coalesced_ok:
            raise ScheduleError(f"loop {loop.name} runs two loops as one with indices "
                                "recovered by division (fuse of a loop with a symbolic "
                                "extent): it can be reordered, reversed, made parallel or "
                                "serial, not transformed further")
        return found

    def _marks_above(self, stmt: str) -> list[isl.ScheduleNode]:
        out, node = [], self._tree.get_root()
        while node.get_type() != _T.leaf:
            if node.get_type() == _T.mark:
                out.append(node)
            kids = [c for c in (node.child(k) for k in range(node.n_children()))
                    if reaches(c, stmt)]
            node = kids[0] if len(kids) == 1 else max(kids, key=lambda c: _weight(c, stmt))
        return out

    def _depth(self, loop: Loop) -> int:
        m, depth = self._mark(loop, True).parent(), 0
        while m.has_parent():
            depth += m.get_type() == _T.mark
            m = m.parent()
        return depth

    def _encloses(self, outer: isl.ScheduleNode, inner: isl.ScheduleNode) -> bool:
        node = inner
        oid = outer.mark_get_id().get_name()
        while node.has_parent():
            node = node.parent()
            if node.get_type() == _T.mark and node.mark_get_id().get_name() == oid:
                return True
        return False

    def _chain(self, loops: tuple[Loop, ...]) -> list[tuple[isl.ScheduleNode, isl.ScheduleNode]]:
        marks = sorted((self._mark(lp, True) for lp in loops), key=lambda m: m.get_tree_depth())
        wanted = {lp.id for lp in loops}
        chain, node = [], marks[0]
        while wanted:
            if node.get_type() != _T.mark:
                missing = ", ".join(self._loops[i].name for i in wanted)
                outer = self._loops[marks[0].mark_get_id().get_name()].name
                raise ScheduleError(f"loops {missing} are not perfectly nested inside "
                                    f"{outer}: a statement sequence or leaf comes "
                                    "between them")
            ident = node.mark_get_id().get_name()
            wanted.discard(ident)
            chain.append((node, node.child(0)))
            node = node.child(0).child(0)
        return chain

    def _replace_band(self, mark: isl.ScheduleNode, part: isl.MultiUnionPwAff, what: str):
        node = mark.child(0).delete().insert_partial_schedule(part)
        self._commit(what, node.get_schedule())

    def _set_kind(self, loop: Loop, kind: LoopKind, reduction: str | None = None) -> None:
        """Make ``loop`` ``kind`` (with the ``reduction`` opt-in), if legal. A
        loop has one kind: another one already set is refused, not replaced."""
        self._mark(loop, kind in (LoopKind.PARALLEL, LoopKind.SERIAL))
        self._check_kind(loop, kind)
        info = self._loops[loop.id]
        self._update_loop(loop.id, kind=kind, reduction=reduction)
        what = f"{kind.primitive}({info.name}" + \
            (f", reduction={reduction!r})" if reduction else ")")
        self._commit(what, self._tree)

    def _check_kind(self, loop: Loop, kind: LoopKind) -> None:
        """Refuse to give ``loop`` ``kind`` when it already has another."""
        info = self._loops[loop.id]
        if info.kind not in (LoopKind.SERIAL, kind):
            verb, have = kind.primitive, LoopKind(info.kind).primitive
            raise ScheduleError(f"{verb}({info.name}): the loop is already marked {have}; "
                                "a loop runs one way")

    def _commit(self, what: str, tree: isl.Schedule, gone: dict | None = None) -> None:
        for ident, info in self._loops.items():
            mark = find_mark(tree.get_root(), ident) if info.kind == LoopKind.VECTOR else None
            if mark is not None and not _innermost(mark):
                raise ScheduleError(f"{what} would put loops inside the vectorized loop "
                                    f"{info.name}; vectorize applies to innermost loops "
                                    "(vectorize after the loops are in place)")
        if self.checking:
            violations = self._violations(tree)
            if violations:
                msg = violations[0].describe(what)
                if len(violations) > 1:
                    msg += f" (and {len(violations) - 1} more violated dependences)"
                raise IllegalScheduleError(msg, violations)
        self._state = self._state.replace(tree=tree, gone={**self._gone, **(gone or {})})
        self._labels.append(what)

    def _violations(self, tree: isl.Schedule) -> list[Violation]:
        out = order_violations(self.program, self.deps, tree, self._loop_of_dim(tree))
        for ident, info in self._loops.items():
            if info.kind in (LoopKind.PARALLEL, LoopKind.VECTOR) or LoopKind(info.kind).is_gpu:
                mark = find_mark(tree.get_root(), ident)
                if mark is not None:
                    allowed = reduction_pairs(self.program, mark.child(0)) \
                        if info.reduction else None
                    out += carried_violations(self.program, self.deps, mark.child(0),
                                              info.name, allowed, info.kind != LoopKind.VECTOR)
        return out

    def _loop_of_dim(self, tree: isl.Schedule):
        def loop_of(stmt: str, dim: int) -> str | None:
            node, k, last_mark = tree.get_root(), 0, None
            while node.get_type() != _T.leaf:
                t = node.get_type()
                if t == _T.mark:
                    last_mark = node.mark_get_id().get_name()
                elif t == _T.band:
                    if k == dim:
                        return self._loops[last_mark].name if last_mark in self._loops \
                            else None
                    k += node.band_n_member()
                elif t in (_T.sequence, _T.set):
                    if k == dim:
                        return None
                    k += 1
                kids = [node.child(j) for j in range(node.n_children())]
                node = next(c for c in kids if reaches(c, stmt))
            return None

        return loop_of


def _weight(node: isl.ScheduleNode, stmt: str) -> int:
    """How many instances of ``stmt`` pass through ``node`` at sizes 64: where a
    statement runs in several copies (after ``compute_at``), ``get_loops`` names
    the loops of the one doing most of the work."""
    domain = node.get_domain()
    if node.get_type() == _T.filter:
        domain = domain.intersect(node.filter_get_filter())
    found: list[isl.Set] = []
    domain.foreach_set(lambda s: found.append(s) if s.get_tuple_name() == stmt else None)
    total = 0
    for s in found:
        for k in range(s.dim(isl.dim_type.param)):
            s = s.fix_val(isl.dim_type.param, k, isl.Val(64))
        try:
            total += s.count_val().to_python()
        except (isl.Error, ValueError):  # unbounded: count it as large
            total += 1 << 40
    return total


def _innermost(mark: isl.ScheduleNode) -> bool:
    """Whether no loop runs inside the loop of ``mark`` (two statements may)."""
    def loops_below(node: isl.ScheduleNode) -> bool:
        return any(node.child(k).get_type() == _T.band or loops_below(node.child(k))
                   for k in range(node.n_children()))

    return not loops_below(mark.child(0))


def _bounded(values: isl.Set) -> bool:
    """Whether a loop's values span a constant-bounded range for every size."""
    try:
        span = values.dim_max(0).sub(values.dim_min(0)).max_val()
    except isl.Error:
        return False
    return span.is_int()
