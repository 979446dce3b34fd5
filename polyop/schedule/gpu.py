"""GPU primitives of ``polyop.Schedule``: ``bind`` a loop to a block or thread index.

A bound loop's iterations run as the blocks of a grid (``blockIdx.x/y/z``) or
the threads of a block (``threadIdx.x/y/z``) of a GPU kernel: lowering for
``target="cuda"`` or ``"opencl"`` (``polyop_cuda``) makes the outermost loop
bound on each path the root of a kernel, with the loops outside it on the host.
Binding is legal where ``parallel`` is: the loop carries no dependence (the
schedule re-checks it after every later primitive, like a parallel loop's).
Besides, on one path from the root to a statement each axis is bound once,
and block axes enclose thread axes (a block's threads run inside it).

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def mm(n: int, A: "f32[n, n]", B: "f32[n, n]", C: "f32[n, n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             for k in range(n):
    ...                 C[i, j] += A[i, k] * B[k, j]
    >>> sch = polyop.Schedule(mm)
    >>> i, j, k = sch.get_loops("S0")
    >>> sch.bind(i, "blockIdx.x")
    >>> sch.bind(j, "threadIdx.x")
    >>> sch.bind(k, "threadIdx.y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    polyop.errors.IllegalScheduleError: bind(k, 'threadIdx.y'): loop k carries a RAW ...
"""

from __future__ import annotations

import islpy as isl

from ..errors import ScheduleError
from ..kinds import LoopKind
from .handles import Loop
from .state import primitive

_T = isl.schedule_node_type

#: the axes ``bind`` accepts, CUDA's names
AXES = tuple(k.value for k in LoopKind if k.is_gpu)


class GpuPrimitives:
    """``bind``; mixed into ``polyop.Schedule``, whose loop-kind machinery
    (``_mark``, ``_set_kind``, the legality check on commit) it uses."""

    @primitive
    def bind(self, loop: Loop, axis: str) -> None:
        """Run the iterations of ``loop`` as GPU blocks or threads along ``axis``.

        Requires:

        1. ``axis`` is one of ``blockIdx.x``, ``blockIdx.y``, ``blockIdx.z``,
           ``threadIdx.x``, ``threadIdx.y``, ``threadIdx.z``;
        2. ``loop`` has no other kind (parallel, vectorized, unrolled, bound);
        3. no other loop on a path through ``loop`` is bound to ``axis``;
        4. no thread-bound loop encloses a block-bound one;
        5. ``loop`` carries no dependence (``IllegalScheduleError`` with the
           instance pair otherwise), as for ``parallel``.

        Build for ``target="cuda"`` or ``"opencl"``: CPU targets refuse bound loops.
        """
        if not isinstance(axis, str) or axis not in AXES:
            raise ScheduleError(f"bind({getattr(loop, 'name', loop)}, {axis!r}): unknown axis "
                                f"(axes: {', '.join(AXES)})")
        kind = LoopKind(axis)
        mark = self._mark(loop)
        info = self._loops[loop.id]
        if info.kind not in (LoopKind.SERIAL, kind):
            raise ScheduleError(f"bind({info.name}, {axis!r}): the loop is already "
                                f"{LoopKind(info.kind).value}; a loop runs one way")
        for other, outer in _bound_on_paths(self, mark):
            have = LoopKind(self._loops[other].kind)
            name = self._loops[other].name
            if have is kind and other != loop.id:
                raise ScheduleError(f"bind({info.name}, {axis!r}): loop {name} on the same "
                                    f"path is already bound to {axis}; an axis indexes one "
                                    "loop of a kernel")
            if outer and have.is_thread and not kind.is_thread:
                raise ScheduleError(f"bind({info.name}, {axis!r}): loop {name} around it is "
                                    f"bound to {have.value}; a thread loop cannot enclose a "
                                    "block loop (bind the outer loops to blocks)")
            if not outer and kind.is_thread and not have.is_thread:
                raise ScheduleError(f"bind({info.name}, {axis!r}): loop {name} inside it is "
                                    f"bound to {have.value}; a thread loop cannot enclose a "
                                    "block loop (bind the outer loops to blocks)")
        # as _set_kind, with the axis in the trace's label
        self._update_loop(loop.id, kind=kind, reduction=None)
        self._commit(f"bind({info.name}, {axis!r})", self._tree)


def _bound_on_paths(sch, mark: isl.ScheduleNode) -> list[tuple[str, bool]]:
    """The bound loops (mark ids) around ``mark`` (``True``) and inside it (``False``)."""
    out: list[tuple[str, bool]] = []

    def bound(node: isl.ScheduleNode) -> str | None:
        if node.get_type() != _T.mark:
            return None
        ident = node.mark_get_id().get_name()
        info = sch._loops.get(ident)
        return ident if info is not None and LoopKind(info.kind).is_gpu else None

    node = mark
    while node.has_parent():
        node = node.parent()
        ident = bound(node)
        if ident is not None:
            out.append((ident, True))

    def below(node: isl.ScheduleNode) -> None:
        for k in range(node.n_children()):
            child = node.child(k)
            ident = bound(child)
            if ident is not None:
                out.append((ident, False))
            below(child)

    below(mark.child(0))
    return out


# -- promotion: local buffers, shared memory, registers --------------------------------------------

class GpuCachePrimitives:
    """``cache_read``/``cache_write`` with a ``scope`` and ``promote_shared``:
    they check their arguments and are recorded in the trace; the loop IR is
    rewritten at lowering, where the footprints are known, by one mechanism
    (``polyop.promotion``): on a CPU target ``scope="local"`` becomes a local
    array per iteration of ``at`` (``"shared"`` is refused there); on a GPU
    target ``polyop_cuda.promote`` adds the block's cooperative copies and
    barriers, and every result is proven race-free (``polyop_cuda.proof``)."""

    def _scoped_cache(self, what: str, array, consumers, scope: str, at, name) -> str:
        src = self._array_name(array)
        if scope not in ("shared", "local"):
            raise ScheduleError(f"{what}({src}): unknown scope {scope!r} (scopes: 'global', "
                                "'shared', 'local')")
        if not isinstance(at, Loop):
            raise ScheduleError(f"{what}({src}, scope={scope!r}): give the loop to cache at "
                                "(at=loop)")
        self._mark(at)  # a live handle of this schedule
        program = self.program
        role = "reads" if what == "cache_read" else "writes"
        users = [s.name for s in program.statements
                 if any(a.array == src for a in (s.reads if role == "reads" else s.writes))]
        if not users:
            raise ScheduleError(f"{what}({src}): no statement {role} {src}")
        if consumers is not None:
            items = consumers if isinstance(consumers, (list, tuple)) else [consumers]
            chosen = [n for c in items for n in self._statements(c)]
            if not set(chosen) <= set(users):
                raise ScheduleError(f"{what}({src}): {', '.join(sorted(set(chosen) - set(users)))}"
                                    f" does not read {src}")
        buffer = name or f"{src}_{scope}"
        self._labels.append(f"{what}({src}, scope={scope!r}, at={self._loops[at.id].name})"
                            f" -> {buffer}")
        return buffer

    @primitive
    def promote_shared(self, at: Loop, budget: int | None = None) -> None:
        """At block-level loop ``at``, promote to shared memory each array read
        there (and not written) by several threads of a block, smallest
        footprint first, while the buffers fit ``budget`` bytes (default: the
        target's shared memory per block). Applied at lowering for GPU targets;
        a CPU build refuses it (shared memory is a GPU scope: use
        ``cache_read(..., scope="local", at=...)``).
        """
        if not isinstance(at, Loop):
            raise ScheduleError("promote_shared(at): at must be a loop of the schedule")
        self._mark(at)
        if budget is not None and (not isinstance(budget, int) or budget <= 0):
            raise ScheduleError(f"promote_shared: budget must be a positive number of bytes, "
                                f"got {budget!r}")
        self._labels.append(f"promote_shared({self._loops[at.id].name}"
                            f"{'' if budget is None else f', budget={budget}'})")
