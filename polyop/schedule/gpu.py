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
    polyop.errors.IllegalScheduleError: bind(k): loop k carries a RAW dependence on C: ...
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
        self._set_kind(loop, kind)


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
