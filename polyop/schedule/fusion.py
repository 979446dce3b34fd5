"""Schedule primitives that move statements between loops: ``fuse``,
``fission``, ``compute_at``, ``reverse_compute_at`` and ``inline``
(``compute_inline``).

They are methods of ``polyop.Schedule`` (this class is one of its bases); the
tree rewrites themselves are in ``polyop.schedule.structure`` and
``polyop.schedule.inline``. Like every primitive, each is checked against the
dependences and leaves the schedule unchanged when illegal.

Example (fusing two sibling loops)::

    >>> import polyop
    >>> @polyop.kernel
    ... def two(n: int, A: "f64[n]", B: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 1.0
    ...     for j in range(n):
    ...         B[j] = A[j] + 1.0
    >>> sch = polyop.Schedule(two)
    >>> (i,) = sch.get_loops("S0"); (j,) = sch.get_loops("S1")
    >>> sch.fuse(i, j)
    Loop(i, depth=0)
    >>> print(polyop.lower(sch))
    void two(int64_t n, double A[n], double B[n]) {
      for (i = 0; i < n; i += 1) {
        A[i] = 1.0;
        B[i] = A[i] + 1.0;
      }
    }
"""

from __future__ import annotations

import islpy as isl

from ..deps import dependences
from ..errors import ScheduleError
from ..kinds import LoopKind
from . import structure
from .handles import Loop
from .inline import inline_statement
from .state import primitive
from .tree import Leaf, from_isl, loop_values, marks, restrict, to_isl

_T = isl.schedule_node_type


class FusionPrimitives:
    """``fuse``, ``fission``, ``compute_at``, ``reverse_compute_at``, ``inline`` (see
    the module docstring)."""

    @primitive
    def fuse(self, a: Loop, b: Loop) -> Loop:
        """Fuse two loops into one, which is returned.

        - ``a`` directly enclosing ``b`` (TVM's fuse): one loop over the pairs
          ``(a, b)`` in their original order, ``a · extent(b) + b``. With a
          constant trip count of ``b`` (as after ``split``) this is an affine
          schedule; with a symbolic one the generated loop recovers ``a`` and
          ``b`` by division (``polyop.coalesce``), and the fused loop can then
          only be reordered, reversed or made parallel.
        - ``a`` and ``b`` adjacent siblings (loop fusion): one loop running
          ``a``'s body then ``b``'s at each iteration; legal when no dependence
          goes from a later iteration of ``a`` to an earlier one of ``b`` (the
          module docstring's example).

        Example (nested loops)::

            >>> import polyop
            >>> @polyop.kernel
            ... def grid(n: int, A: "f64[n, 4]"):
            ...     for i in range(n):
            ...         for j in range(4):
            ...             A[i, j] = 0.0
            >>> sch = polyop.Schedule(grid)
            >>> i, j = sch.get_loops("S0")
            >>> sch.fuse(i, j)
            Loop(i_j_fused, depth=0)
            >>> print(polyop.lower(sch))
            void grid(int64_t n, double A[n][4]) {
              for (i_j_fused = 0; i_j_fused < 4 * n; i_j_fused += 1)
                A[i_j_fused // 4][i_j_fused % 4] = 0.0;
            }
        """
        ma, mb = self._mark(a), self._mark(b)
        what = f"fuse({a.name}, {b.name})"
        domain, root = from_isl(self._tree)
        inner = ma.child(0).child(0)
        if inner.get_type() == _T.mark and inner.mark_get_id().get_name() == b.id:
            try:
                low, stride = self._constant_range(mb.child(0), what)
            except ScheduleError:  # a symbolic extent
                return self._coalesce(a, b, ma, what)
            new = self._new_id(f"{a.name}_{b.name}_fused")
            root = structure.linearize(root, a.id, b.id, new.id, stride, low)
            self._commit(what, to_isl(domain, root),
                         gone={a.id: f"fused into {new.name}", b.id: f"fused into {new.name}"})
            return new
        names = {k: v.name for k, v in self._loops.items()}
        root = structure.fuse_siblings(root, a.id, b.id, names)
        self._commit(what, to_isl(domain, root), gone={b.id: f"fused into {a.name}"})
        return a

    def _coalesce(self, a: Loop, b: Loop, ma: isl.ScheduleNode, what: str) -> Loop:
        """``fuse`` of ``a`` directly enclosing ``b`` whose extent is symbolic:
        ``a · extent(b) + b`` is not affine, so the schedule keeps the pair as
        one two-member band under one handle (the same order, so legal; a
        ``parallel`` pair must carry no dependence between any two of its
        iterations) and lowering turns the loop nest isl generates for it into
        one loop, the indices recovered by division (``polyop.coalesce``)."""
        for lp in (a, b):
            if self._loops[lp.id].kind != LoopKind.SERIAL:
                raise ScheduleError(f"{what}: loop {lp.name} is marked "
                                    f"{self._loops[lp.id].kind.primitive}; fuse first")
        pair = ma.child(0).band_get_partial_schedule().flat_range_product(
            ma.child(0).child(0).child(0).band_get_partial_schedule())
        node = ma.delete().delete().delete().delete()  # mark a, band a, mark b, band b
        new = self._new_id(f"{a.name}_{b.name}_fused")
        self._update_loop(new.id, coalesced=True)
        node = node.insert_partial_schedule(pair).insert_mark(isl.Id(new.id))
        self._commit(what, node.get_schedule(),
                     gone={a.id: f"fused into {new.name}", b.id: f"fused into {new.name}"})
        return new

    @primitive
    def fission(self, loop: Loop) -> list[Loop]:
        """Distribute ``loop`` (and the loops perfectly nested in it down to its
        body's statement sequence) over that sequence: one copy of the nest per
        part, run one after the other. Returns each copy's outermost loop.

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def one(n: int, A: "f64[n]", B: "f64[n]"):
            ...     for i in range(n):
            ...         A[i] = 1.0
            ...         B[i] = A[i] + 1.0
            >>> sch = polyop.Schedule(one)
            >>> sch.fission(sch.get_loops("S0")[0])
            [Loop(i, depth=0), Loop(i, depth=0)]
            >>> print(polyop.lower(sch))
            void one(int64_t n, double A[n], double B[n]) {
              for (i = 0; i < n; i += 1)
                A[i] = 1.0;
              for (i = 0; i < n; i += 1)
                B[i] = A[i] + 1.0;
            }
        """
        self._mark(loop)
        domain, root = from_isl(self._tree)
        names = {k: v.name for k, v in self._loops.items()}
        root, gone, heads = structure.fission(root, loop.id, self._fresh, names)
        self._commit(f"fission({loop.name})", to_isl(domain, root),
                     gone={g: f"distributed by fission({loop.name})" for g in gone})
        return [Loop(self, h) for h in heads]

    @primitive
    def compute_at(self, stmt, loop: Loop) -> None:
        """Compute the producer statement ``stmt`` (or a tensor's statements)
        inside ``loop``, where its values are consumed: each instance runs in
        the iteration of ``loop`` whose body first reads what it writes, ahead
        of that body (its own loops go with it). Instances are moved, never
        recomputed; those nothing inside ``loop`` reads stay where they were.

        Example (each strip of ``T`` computed just before it is used)::

            >>> import polyop
            >>> @polyop.kernel
            ... def pc(A: "f64[64]", T: "f64[64]", B: "f64[64]"):
            ...     for i in range(64):
            ...         T[i] = A[i] * 2.0
            ...     for i in range(64):
            ...         B[i] = T[i] + 1.0
            >>> sch = polyop.Schedule(pc)
            >>> io, ii = sch.split(sch.get_loops("S1")[0], 16)
            >>> sch.compute_at("S0", io)
            >>> print(polyop.lower(sch))
            void pc(double A[64], double T[64], double B[64]) {
              for (i_outer = 0; i_outer < 4; i_outer += 1) {
                for (i = 16 * i_outer; i < 16 * i_outer + 16; i += 1)
                  T[i] = A[i] * 2.0;
                for (i_inner = 0; i_inner < 16; i_inner += 1)
                  B[16 * i_outer + i_inner] = T[16 * i_outer + i_inner] + 1.0;
              }
            }
        """
        self._move_into(stmt, loop, after=False)

    @primitive
    def reverse_compute_at(self, stmt, loop: Loop) -> None:
        """Compute the consumer statement ``stmt`` (or a tensor's statements)
        inside ``loop``, where what it reads is produced: each instance runs in
        the iteration of ``loop`` whose body last writes what it reads, after
        that body (an epilogue: ``relu(C + bias)`` right after each tile of ``C``).

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def pc(A: "f64[64]", T: "f64[64]", B: "f64[64]"):
            ...     for i in range(64):
            ...         T[i] = A[i] * 2.0
            ...     for i in range(64):
            ...         B[i] = T[i] + 1.0
            >>> sch = polyop.Schedule(pc)
            >>> io, ii = sch.split(sch.get_loops("S0")[0], 16)
            >>> sch.reverse_compute_at("S1", io)
            >>> print(polyop.lower(sch))
            void pc(double A[64], double T[64], double B[64]) {
              for (i_outer = 0; i_outer < 4; i_outer += 1) {
                for (i_inner = 0; i_inner < 16; i_inner += 1)
                  T[16 * i_outer + i_inner] = A[16 * i_outer + i_inner] * 2.0;
                for (i = 16 * i_outer; i < 16 * i_outer + 16; i += 1)
                  B[i] = T[i] + 1.0;
              }
            }
        """
        self._move_into(stmt, loop, after=True)

    def _move_into(self, stmt, loop: Loop, after: bool) -> None:
        names = self._statements(stmt)
        self._mark(loop)
        # compute_at moves the update first, so that the init lands ahead of it
        for name in (names if after else reversed(names)):
            self._compute_at(name, loop, after)
        if len(names) > 1:  # a tensor's statements: one line, as it was called
            verb = "reverse_compute_at" if after else "compute_at"
            self._labels[-len(names):] = [f"{verb}({stmt.name}, {loop.name})"]

    def _compute_at(self, stmt: str, loop: Loop, after: bool = False) -> None:
        what = f"{'reverse_compute_at' if after else 'compute_at'}({stmt}, {loop.name})"
        mark = self._mark(loop)
        if loop in self.get_loops(stmt):
            raise ScheduleError(f"{what}: {stmt} is already inside loop {loop.name}")
        s = self.program.statement(stmt)
        writes = isl.UnionMap.empty(self.program.context.get_space())
        reads = writes
        if after:
            for acc in s.reads:
                reads = reads.union(isl.UnionMap.from_map(acc.relation))
                writes = writes.union(self.program.writes(acc.array))
        else:
            for acc in s.writes:
                writes = writes.union(isl.UnionMap.from_map(acc.relation))
                reads = reads.union(self.program.reads(acc.array))
        try:
            tree = structure.compute_at(self._tree, mark.child(0),
                                        isl.UnionSet.from_set(s.domain), writes, reads,
                                        self._fresh, after)
        except ScheduleError as e:
            raise ScheduleError(f"{what}: {e}") from None
        self._commit(what, tree)

    @primitive
    def inline(self, stmt) -> None:
        """Remove statement ``stmt``, which computes a temporary (or an
        intermediate tensor), substituting its right-hand side into every read
        of it (see ``polyop.schedule.inline``); loops left empty disappear.

        Example (``t`` is a local scalar, ``S0`` its statement)::

            >>> import polyop
            >>> @polyop.kernel
            ... def k(n: int, A: "f64[n]", B: "f64[n]"):
            ...     for i in range(n):
            ...         t = A[i] * 2.0
            ...         B[i] = t + 1.0
            >>> sch = polyop.Schedule(k)
            >>> sch.inline("S0")
            >>> print(polyop.lower(sch))
            void k(int64_t n, double A[n], double B[n]) {
              for (i = 0; i < n; i += 1)
                B[i] = A[i] * 2.0 + 1.0;
            }
        """
        names = self._statements(stmt)
        if len(names) > 1:
            raise ScheduleError(f"inline: {stmt.name} is a reduction ({', '.join(names)}); "
                                "only a stage computed by one statement can be inlined")
        stmt = names[0]
        program = inline_statement(self.program, stmt)
        domain, root = from_isl(self._tree)
        kept = restrict(root, program.domain)
        tree = to_isl(program.domain, kept if kept is not None else Leaf())
        gone = set(marks(root)) - set(marks(kept)) if kept is not None else set(marks(root))
        self._state = self._state.replace(program=program, deps=dependences(program))
        self._commit(f"inline({stmt})", tree,
                     gone={g: f"removed with {stmt} by inline" for g in gone})

    compute_inline = inline  # TVM's name, for tensor expressions

    def _constant_range(self, band: isl.ScheduleNode, what: str) -> tuple[int, int]:
        """(lowest value, number of values) of a loop whose values lie in one
        constant range for all sizes."""
        values = loop_values(band)
        try:
            low, high = values.dim_min(0).min_val(), values.dim_max(0).max_val()
        except isl.Error:
            low = high = None
        if low is None or not (low.is_int() and high.is_int()):
            raise ScheduleError(f"{what}: the inner loop needs a constant range to be "
                                "linearized (split it first)")
        return low.to_python(), high.to_python() - low.to_python() + 1
