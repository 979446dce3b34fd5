"""The value behind a ``polyop.Schedule``: an immutable ``ScheduleState``, and the
``primitive`` decorator that makes each primitive a transaction on it.

A state holds everything a schedule is: the program (``cache_read``,
``rfactor``, ``inline`` … rewrite it), its dependences, the isl schedule tree
with its loop marks, the record of every loop (``LoopInfo``, frozen), the
handles that went stale and the trace. Nothing in it is changed in place: a
primitive computes new states (``state.replace(...)``, ``state.with_loop``)
and the façade holds a reference to the latest one. ``primitive`` remembers the
state a call starts from; if the call raises, the schedule's reference goes
back to that very object (so a refused primitive leaves the schedule identical
by construction, with no rollback code in the primitives), and if it returns,
the call is appended to the trace as one ``Instruction`` and the old state to
the undo history.

    >>> import polyop
    >>> @polyop.kernel
    ... def inc(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] += 1.0
    >>> sch = polyop.Schedule(inc)
    >>> before = sch.state
    >>> (i,) = sch.get_loops("S0")
    >>> sch.split(i, 0)
    Traceback (most recent call last):
      ...
    polyop.errors.ScheduleError: split factor must be a positive integer, got 0
    >>> sch.state is before
    True
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import islpy as isl

from ..deps import Dependences
from ..errors import ScheduleError
from ..program import Program
from .handles import Loop, LoopInfo
from .trace import (
    PRIMITIVES,
    Instruction,
    LoopRef,
    record_value,
    trace_from_json,
    trace_to_json,
)

_T = isl.schedule_node_type


@dataclass(frozen=True, eq=False)
class ScheduleState:
    """One immutable snapshot of a schedule (see the module docstring).
    ``loops`` maps every mark id ever made to its record (records are never
    removed); ``gone`` the ids of stale handles to the reason."""

    program: Program
    deps: Dependences
    tree: isl.Schedule
    loops: Mapping[str, LoopInfo] = field(default_factory=lambda: MappingProxyType({}))
    gone: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    trace: tuple[Instruction, ...] = ()

    def replace(self, **changes) -> ScheduleState:
        """A copy with ``changes``; mappings are frozen on the way in."""
        for key in ("loops", "gone"):
            if key in changes:
                changes[key] = MappingProxyType(dict(changes[key]))
        return dataclasses.replace(self, **changes)

    def with_loop(self, ident: str, info: LoopInfo | None = None, **fields) -> ScheduleState:
        """A copy in which loop ``ident``'s record is ``info`` (a new loop), or
        its current record with ``fields`` changed."""
        if info is None:
            info = dataclasses.replace(self.loops[ident], **fields)
        return self.replace(loops={**self.loops, ident: info})

    def new_loop_id(self) -> str:
        """The id the next new loop gets: deterministic, so a replayed trace
        creates the same ids."""
        return _next_id(self.loops, self.gone)


def _next_id(loops: Mapping[str, LoopInfo], gone: Mapping[str, str]) -> str:
    k = len(loops) + len(gone)
    while f"L{k}" in loops or f"L{k}" in gone:
        k += 1
    return f"L{k}"


def _source_name(program: Program, band: isl.ScheduleNode, count: int) -> str:
    """The source iterator a textual band runs over (``i``), if unambiguous;
    else ``c<count>``."""
    umap = band.band_get_partial_schedule_union_map()
    names = set()
    for s in program.statements:
        part = umap.intersect_domain(isl.UnionSet.from_set(s.domain))
        if part.is_empty():
            continue
        for k, it in enumerate(s.iterators):
            pa = isl.PwAff.var_on_domain(
                isl.LocalSpace.from_space(s.domain.get_space()), isl.dim_type.set, k)
            for sign in (pa, pa.neg()):  # -i: a downward source loop
                var = isl.Map.from_pw_aff(sign).intersect_domain(s.domain)
                if part.is_equal(isl.UnionMap.from_map(var)):
                    names.add(it)
    return names.pop() if len(names) == 1 else f"c{count}"


def primitive(fn):
    """Make the schedule method ``fn`` a primitive: a transaction on the
    schedule's state, recorded in its trace (see the module docstring).
    Primitives called by another primitive are part of that one."""
    PRIMITIVES.add(fn.__name__)

    @functools.wraps(fn)
    def run(self, *args, **kwargs):
        if self._running:
            return fn(self, *args, **kwargs)
        start = self._state
        args = tuple(self._own(a) for a in args)
        kwargs = {k: self._own(v) for k, v in kwargs.items()}
        self._running, self._labels = True, []
        try:
            out = fn(self, *args, **kwargs)
            te, new = start.program.meta.get("te"), self._state
            ins = Instruction(fn.__name__, tuple(record_value(a, te) for a in args),
                              tuple((k, record_value(v, te)) for k, v in kwargs.items()),
                              tuple(k for k in new.loops if k not in start.loops),
                              tuple(self._labels) or (fn.__name__,))
        except BaseException:
            self._state = start  # the refused call leaves no change, whatever it did
            raise
        finally:
            self._running = False
        self._state = new.replace(trace=start.trace + (ins,))
        self._history.append(start)
        return out

    return run


class ScheduleHistory:
    """The part of ``polyop.Schedule`` that holds its state: queries of the
    current state, ``trace``, ``fork``, ``undo``, ``replay``, and the creation
    of loop records (a mixin; ``Schedule.__init__`` sets the fields)."""

    _state: ScheduleState
    _history: list[ScheduleState]
    _lineage: object
    _running: bool
    _labels: list[str]
    checking: bool

    @property
    def state(self) -> ScheduleState:
        """The current state (an immutable value; primitives replace it)."""
        return self._state

    @property
    def program(self):
        """The program as the schedule has rewritten it (``cache_read``, ``inline`` …)."""
        return self._state.program

    @property
    def deps(self):
        """The dependences of ``program``."""
        return self._state.deps

    @property
    def _tree(self) -> isl.Schedule:
        return self._state.tree

    @property
    def _loops(self):
        return self._state.loops

    @property
    def _gone(self):
        return self._state.gone

    @property
    def trace(self) -> list[Instruction]:
        """The primitives applied so far, one ``Instruction`` each
        (``polyop.schedule.trace``)."""
        return list(self._state.trace)

    def trace_json(self) -> str:
        """``trace`` as JSON text (``polyop.schedule.trace.trace_to_json``)."""
        return trace_to_json(self._state.trace)

    def fork(self) -> ScheduleHistory:
        """An independent copy, cheap: it shares the immutable state, and
        primitives on either leave the other as it is. Loop handles of one are
        accepted by the other.

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def inc(n: int, A: "f64[n]"):
            ...     for i in range(n):
            ...         A[i] += 1.0
            >>> sch = polyop.Schedule(inc)
            >>> (i,) = sch.get_loops("S0")
            >>> other = sch.fork()
            >>> other.split(i, 8)
            (Loop(i_outer, depth=0), Loop(i_inner, depth=1))
            >>> sch.trace, len(other.trace)
            ([], 1)
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._history = list(self._history)
        new._running, new._labels = False, []
        return new

    def undo(self, n: int = 1) -> None:
        """Take back the last ``n`` primitives: the state is the one before
        them (the same object), trace and handles included."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) \
                or not 0 <= n <= len(self._history):
            raise ScheduleError(f"undo({n}): there are {len(self._history)} primitives "
                                "to undo")
        if n:
            self._state = self._history[-n]
            del self._history[-n:]

    @classmethod
    def replay(cls, trace, kernel, check: bool = True) -> ScheduleHistory:
        """A fresh schedule of ``kernel`` with ``trace`` (a list of
        ``Instruction``, e.g. another schedule's ``trace``) applied in order;
        each recorded output handle id stands for the handle the replayed
        primitive created in its place. A trace that does not fit the kernel
        is a ``ScheduleError`` naming the instruction."""
        sch = cls(kernel, check=check)
        ids: dict[str, str] = {}

        def arg(v):
            if isinstance(v, LoopRef):
                return Loop(sch, ids.get(v.id, v.id))
            return tuple(arg(x) for x in v) if isinstance(v, tuple) else v

        for k, ins in enumerate(trace):
            if not isinstance(ins, Instruction) or ins.primitive not in PRIMITIVES:
                raise ScheduleError(f"replay: instruction {k} ({ins!r}) is not a primitive "
                                    "of polyop.Schedule")
            getattr(sch, ins.primitive)(*[arg(a) for a in ins.args],
                                        **{key: arg(v) for key, v in ins.kwargs})
            made = sch._state.trace[-1].outputs
            if len(made) != len(ins.outputs):
                raise ScheduleError(f"replay: instruction {k} ({ins.labels[0]}) created "
                                    f"{len(made)} loops, the trace says {len(ins.outputs)}: "
                                    "the trace is of another kernel")
            ids.update(zip(ins.outputs, made))
        return sch

    @classmethod
    def from_json(cls, text: str, kernel, check: bool = True,
                  intrinsics=None) -> ScheduleHistory:
        """``replay`` of a trace written by ``trace_json`` (``intrinsics``: the
        intrinsics that ``tensorize`` instructions name, by name)."""
        return cls.replay(trace_from_json(text, intrinsics), kernel, check)

    # -- loop records ------------------------------------------------------------------
    def _with_marks(self, tree: isl.Schedule) -> isl.Schedule:
        """``tree`` with a mark above every band, each a new loop named after
        the source iterator it runs over; the records go into the state (in
        one step: a program may have thousands of loops)."""
        state = self._state
        loops = dict(state.loops)

        def visit(node: isl.ScheduleNode) -> isl.ScheduleNode:
            """Mark every band below ``node``; returns the node at ``node``'s position."""
            band = node.get_type() == _T.band
            if band:
                ident = _next_id(loops, state.gone)
                loops[ident] = LoopInfo(_source_name(state.program, node, len(loops)))
                node = node.insert_mark(isl.Id(ident)).child(0)
            for k in range(node.n_children()):
                node = visit(node.child(k)).parent()
            return node.parent() if band else node

        marked = visit(tree.get_root()).get_schedule()
        self._state = state.replace(loops=loops)
        return marked

    def _new_id(self, name: str) -> Loop:
        ident = self._state.new_loop_id()
        self._state = self._state.with_loop(ident, LoopInfo(name))
        return Loop(self, ident)

    def _update_loop(self, ident: str, **fields) -> None:
        """Loop ``ident``'s record with ``fields`` changed, in a new state."""
        self._state = self._state.with_loop(ident, **fields)

    def _fresh(self, mark: str) -> str:
        """A new loop id copying loop ``mark``'s name and kind."""
        info = self._loops[mark]
        new = self._new_id(info.name)
        self._update_loop(new.id, kind=info.kind)
        return new.id

    def _own(self, v):
        """A loop handle of this schedule's lineage (forks) as this schedule's."""
        if isinstance(v, Loop) and v._schedule is not self \
                and getattr(v._schedule, "_lineage", None) is self._lineage:
            return Loop(self, v.id)
        return v

