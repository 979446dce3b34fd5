"""Team regions: one parallel region around a serial loop of parallel loops.

Without this pass a ``parallel`` loop inside a serial loop (a stencil's time
loop, the ``k`` of a factorisation) forks and joins the team once per
iteration of the serial loop. ``emit_parallel_region`` (called by
``polyop.codegen.llvm`` for each serial loop outside any parallel region)
does what OpenMP does with ``#pragma omp parallel`` around the serial loop
and ``#pragma omp for`` inside it: the whole serial loop becomes ONE region
``region(i8* env, i64 m, i64 team)`` that every member ``m`` of the team
runs (``polyop.codegen.threadpool_region``), in which

- the serial loops down to the parallel loops (the *team level*) run on
  every member, each computing the same bounds;
- each parallel loop is split into ``team`` contiguous chunks of iterations
  (sizes differing by at most one; member ``m`` takes chunk ``m``, the same
  rows at every step, so a member finds in its cache what it wrote the step
  before), followed by a barrier;
- each run of statements between them without a parallel loop (the scalar
  code of gramschmidt's or lu's ``k`` loop, fdtd-2d's boundary row) runs on
  member 0 only, followed by a barrier.

Each chunk and each run of statements is outlined into an internal
``noinline`` function whose array arguments are ``noalias``, as
``polyop.codegen.parallel``'s chunk functions: its loops vectorise without
alias checks. The region function itself only computes bounds, calls those
functions and the barrier: array accesses never sit in a function with a
barrier inside, where ``noalias`` would let LLVM move them across it. 0-d
temporaries are shared (the kernel's own slots, by pointer): statements run
by member 0 read and write them, a chunk gets a first-private copy as in
``emit_parallel_for``.

When it applies (otherwise the loop is emitted as before, its parallel
loops forking once per iteration): the serial loop contains a parallel loop;
at the team level there are only blocks, serial loops and parallel loops
(no ``if``, no vector or unrolled loop around a parallel loop); every bound
at the team level is affine-like (no loads, calls or selects: every member
evaluates it while others write memory); the loop uses no local array
(their first-private copies are made per chunk function only); and team
regions are on (``set_team_regions``, ``POLYOP_TEAM_REGIONS=0`` turns them
off; read when a kernel is compiled).

Team size: ``min(num_threads, work // min_work)`` with ``work`` the
estimate (``polyop.codegen.parallel``'s rule) of the whole serial loop,
computed before the call. A region that gets no team, a nested one and one
started while another runs (a second Python thread) run inline as
``region(env, 0, 1)``, with no barrier.

Example::

    >>> from polyop.ir import Function, Param, For, Store, Load, Var, Const, Bin
    >>> from polyop.types import f64, i64
    >>> from polyop.codegen.llvm import build_module
    >>> x_i = Load("x", (Var("i"),), f64)
    >>> inc = Store("x", (Var("i"),), Bin("add", x_i, Const(1.0, f64), f64))
    >>> fn = Function("steps", (Param("T", "size", i64), Param("n", "size", i64),
    ...                         Param("x", "array", f64, (Var("n"),))), (),
    ...               For("t", Const(0), Var("T"), 1,
    ...                   For("i", Const(0), Var("n"), 1, inc, kind="parallel")))
    >>> text = str(build_module(fn)[0])
    >>> text.count('call void @"polyop_rt_parallel_region"'), "polyop_rt_parallel_for" in text
    (1, False)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from llvmlite import ir

from ..ir import Block, For, Load, Store, walk
from ..kinds import LoopKind
from ..settings import env_int
from ..types import INDEX
from .outline import Env, declare
from .parallel import _plain_bound, _trip_count, _Work
from .threadpool_region import (
    BARRIER,
    BARRIER_TYPE,
    REGION_ENTRY,
    REGION_ENTRY_TYPE,
    REGION_TYPE,
)

__all__ = ["emit_parallel_region", "get_team_regions", "region_applies", "set_team_regions",
           "use_team_regions"]

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_I8P = ir.IntType(8).as_pointer()

_enabled: bool | None = None
_lock = threading.Lock()


def get_team_regions() -> bool:
    """Whether serial loops around parallel loops compile to one team region
    (``set_team_regions``, else ``POLYOP_TEAM_REGIONS`` (0 or 1), else on).

    Example::

        >>> get_team_regions() in (True, False)
        True
    """
    global _enabled
    if _enabled is None:
        with _lock:
            if _enabled is None:
                v = env_int("POLYOP_TEAM_REGIONS", 0, 1)
                _enabled = v is None or v == 1
    return _enabled


def set_team_regions(on: bool) -> None:
    """Compile serial loops around parallel loops to one team region
    (``on``) or fork at every parallel loop, in kernels compiled from now on.

    Example::

        >>> before = get_team_regions()
        >>> set_team_regions(False); get_team_regions()
        False
        >>> set_team_regions(before)
    """
    global _enabled
    with _lock:
        _enabled = bool(on)


@contextmanager
def use_team_regions(on: bool) -> Iterator[None]:
    """``set_team_regions(on)`` for the kernels compiled inside the block,
    then the setting before it (e.g. to build one schedule both ways).

    Example::

        >>> before = get_team_regions()
        >>> with use_team_regions(not before):
        ...     get_team_regions() != before
        True
        >>> get_team_regions() == before
        True
    """
    before = get_team_regions()
    set_team_regions(on)
    try:
        yield
    finally:
        set_team_regions(before)


# -- where it applies ----------------------------------------------------------------


def _has_parallel(node) -> bool:
    return any(isinstance(x, For) and x.kind is LoopKind.PARALLEL for x in walk(node))


def _team_level_ok(node) -> bool:
    """Whether ``node`` (which holds a parallel loop) is made of blocks,
    serial loops with plain bounds and parallel loops with plain bounds,
    down to its parallel loops."""
    if isinstance(node, Block):
        return all(_team_level_ok(x) for x in node.stmts if _has_parallel(x))
    if isinstance(node, For) and node.kind in (LoopKind.SERIAL, LoopKind.PARALLEL):
        if not (_plain_bound(node.start) and _plain_bound(node.stop)):
            return False
        return node.kind is LoopKind.PARALLEL or _team_level_ok(node.body)
    return False


def region_applies(s: For, local_arrays=frozenset()) -> bool:
    """Whether serial loop ``s`` becomes a team region (see the module
    docstring), ``local_arrays`` being the kernel's local arrays.

    Example::

        >>> from polyop.ir import Const, Var
        >>> body = For("i", Const(0), Var("n"), 1, Store("x", (Var("i"),), Var("t")),
        ...            kind="parallel")
        >>> region_applies(For("t", Const(0), Var("T"), 1, body))
        True
        >>> region_applies(For("t", Const(0), Var("T"), 1, body, kind="vector"))
        False
    """
    if s.kind is not LoopKind.SERIAL or not _has_parallel(s.body):
        return False
    if not _team_level_ok(s):
        return False
    used = {x.array for x in walk(s) if isinstance(x, (Load, Store))}
    return not (used & set(local_arrays))


# -- code generation ------------------------------------------------------------------


class _Region:
    """Builds the region function of one serial loop."""

    def __init__(self, fb, s: For):
        self.fb, self.s, self.module = fb, s, fb.module
        self.base = self.module.get_unique_name(f"{fb.func.name}.{s.var}.team")
        self._n = 0

    # -- the region function

    def build(self) -> None:
        fb, s, b = self.fb, self.s, self.fb.builder
        work = self._work()
        env = Env()
        env.capture(fb, s)  # 0-d temporaries shared: member 0's statements write them
        region = ir.Function(self.module, REGION_TYPE, self.base)
        region.linkage = "internal"
        region.attributes.add("nounwind")
        arg, self.member, self.team = region.args
        arg.name, self.member.name, self.team.name = "env", "member", "team"
        rb = type(fb)(fb.fn, self.module, in_parallel=True)
        rb.func = region
        rb.builder = r = ir.IRBuilder(region.append_basic_block("entry"))
        env.rebuild(rb, env.unpack(r, arg))
        self.rb = rb
        self._team_level(s)
        rb.builder.ret_void()
        b.call(declare(self.module, REGION_ENTRY, REGION_ENTRY_TYPE),
               [region, env.pack(fb, f"{s.var}.team.env"), work])

    def _work(self) -> ir.Value:
        """The estimated operations of the whole serial loop, as an ``i64``
        capped at 2**62 (``polyop.codegen.parallel``'s estimate)."""
        b = self.fb.builder
        w = _Work(self.fb)
        total = w._val(w.cost(self.s))
        cap = ir.Constant(w.ty, float(1 << 62))
        total = b.select(b.fcmp_ordered("<", total, cap), total, cap)  # NaN, inf: the cap
        return b.fptosi(total, _I64, name=f"{self.s.var}.team.work")

    # -- the team level

    def _team_level(self, node) -> None:
        if isinstance(node, Block):
            run: list = []
            for x in node.stmts:
                if _has_parallel(x):
                    self._single(run)
                    run = []
                    self._team_level(x)
                else:
                    run.append(x)
            self._single(run)
        elif node.kind is LoopKind.PARALLEL:
            self._split(node)
            self._barrier()
        else:  # a serial loop, run by every member
            rb = self.rb
            start = rb.emit_as(node.start, INDEX, index=True)
            stop = rb.emit_as(node.stop, INDEX, index=True)
            rb.rotated_loop(node.var, start, stop, node.step,
                            lambda: self._team_level(node.body))

    def _single(self, stmts: list) -> None:
        """Statements without parallel loops: member 0 runs them, then a barrier."""
        if not stmts:
            return
        body = stmts[0] if len(stmts) == 1 else Block(tuple(stmts))
        rb = self.rb
        r = rb.builder
        rb.emit_if(r.icmp_signed("==", self.member, ir.Constant(_I64, 0)),
                   lambda: self._outline(body, "one", None))
        self._barrier()

    def _split(self, s: For) -> None:
        """Member ``m``'s contiguous chunk ``m`` of ``team`` of parallel loop ``s``."""
        rb = self.rb
        r = rb.builder
        start = rb.emit_as(s.start, INDEX, index=True)
        stop = rb.emit_as(s.stop, INDEX, index=True)
        n = _trip_count(r, start, stop, s.step, f"{s.var}.trips")
        m, k = self.member, self.team
        base, rem = r.sdiv(n, k), r.srem(n, k)
        small = r.icmp_signed("<", m, rem)
        lo = r.add(r.mul(m, base), r.select(small, m, rem))
        hi = r.add(r.add(lo, base), r.zext(small, _I64))
        step = ir.Constant(_I64, s.step)
        lo_iv = r.add(start, r.mul(lo, step, flags=["nsw"]), flags=["nsw"])
        hi_iv = r.add(start, r.mul(hi, step, flags=["nsw"]), flags=["nsw"])
        self._outline(s, "par", (lo_iv, hi_iv))

    def _barrier(self) -> None:
        rb = self.rb
        r = rb.builder
        fn = declare(self.module, BARRIER, BARRIER_TYPE)
        rb.emit_if(r.icmp_signed(">", self.team, ir.Constant(_I64, 1)),
                   lambda: r.call(fn, [self.member, self.team]))

    # -- outlined functions

    def _outline(self, node, what: str, bounds: tuple | None) -> None:
        """Call, from the region, a new function that runs ``node``: a run of
        statements (``bounds`` None; 0-d temporaries shared, by pointer) or
        the iterations ``[lo, hi)`` of parallel loop ``node`` (``bounds``:
        first-private temporaries)."""
        fb, rb = self.fb, self.rb
        r = rb.builder
        env = Env()
        env.capture(rb, node, private=bounds is not None)
        self._n += 1
        extra = (("lo", _I64), ("hi", _I64)) if bounds is not None else ()
        fn = env.function(self.module, f"{self.base}.{what}{self._n}", extra)
        ob = type(fb)(fb.fn, self.module, in_parallel=True)
        ob.func = fn
        ob.builder = ir.IRBuilder(fn.append_basic_block("entry"))
        env.rebuild(ob, lambda q: q if isinstance(q, ir.Constant) else fn.args[q])
        if bounds is None:
            ob.stmt(node)
        else:
            ob.emit_loop(node, fn.args[-2], fn.args[-1])
        ob.builder.ret_void()
        r.call(fn, [*env.fields, *(bounds or ())])


def _keep(node, parallel: bool):
    """The team-level skeleton of ``node`` with only its parallel loops
    (``parallel``) or only the statements between them."""
    if isinstance(node, Block):
        return Block(tuple(_keep(x, parallel) if _has_parallel(x) else x
                           for x in node.stmts if _has_parallel(x) or not parallel))
    if node.kind is LoopKind.PARALLEL:
        return node if parallel else Block(())
    return replace(node, body=_keep(node.body, parallel))


def _serial_loops(s: For) -> bool:
    """Whether the statements run by member 0 alone include a loop."""
    return any(isinstance(x, For) for x in walk(_keep(s, False).body))


def emit_parallel_region(fb, s: For) -> bool:
    """Emit serial loop ``s`` as one team region in function builder ``fb``
    (a ``polyop.codegen.llvm._FunctionBuilder`` outside any parallel region)
    when it applies (``region_applies`` and team regions on); returns
    whether it did (if not, nothing was emitted).

    When the statements member 0 runs alone hold loops, the choice is made
    at run time: the region when their estimated work is at most that of
    the parallel loops, else the loop as before (a fork per parallel loop,
    which runs the small ones inline and lets the caller go on without a
    late worker). Measured on gramschmidt (MEDIUM, 2 cores), whose ``k``
    step has as much serial work as parallel: 0.56x at 2 threads in a
    region, 0.96x forking."""
    if not get_team_regions() or fb.in_parallel:
        return False
    if not region_applies(s, fb.local_shapes.keys()):
        return False
    if not _serial_loops(s):
        _Region(fb, s).build()
        return True
    w = _Work(fb)
    alone, shared = w._val(w.cost(_keep(s, False))), w._val(w.cost(_keep(s, True)))
    b = fb.builder

    def per_loop():
        start = fb.emit_as(s.start, INDEX, index=True)
        stop = fb.emit_as(s.stop, INDEX, index=True)
        fb.emit_loop(s, start, stop)

    fb.emit_if(b.fcmp_ordered("<=", alone, shared, name=f"{s.var}.team.pays"),
               lambda: _Region(fb, s).build(), per_loop)
    return True
