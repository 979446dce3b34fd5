"""Shared-memory and register promotion of a kernel's arrays (PPCG-style footprints).

A promotion copies the part of a global array that the instances under one
loop (``at``) touch into a buffer near the threads, and makes those instances
use the buffer:

- **footprint** (``footprint``): the elements accessed under ``at`` for one
  iteration of the loops around it (block loops, sequential loops), as a box
  computed with isl: per dimension, the lower bound is the smallest subscript
  (a quasi-affine function of the outer loops and sizes) and the size the
  largest width over every iteration (a constant; a footprint without one
  cannot be promoted);
- **shared** scope: ``at`` runs at block level (inside every block loop,
  outside the thread loops); the whole block copies the box in, cooperatively
  and coalesced (threads stride over it in row-major order, ``threadIdx.x``
  fastest; elements outside the array are skipped), then a barrier, then the
  compute reading and writing the buffer, then a barrier and the copy-out of
  the elements the compute writes (and only those: the written footprint, an
  isl set, is the copy-out's guard). The innermost dimension is padded by
  one element when a warp would walk down a column of a 32-wide buffer
  (bank conflicts). Barriers the proof (``polyop_cuda.proof``) finds useless
  are removed again: barriers where the proof needs them, not more;
- **local** scope (registers): ``at`` runs inside the thread loops; each
  thread copies its own box (a micro-tile of an accumulator, say) into a
  private array, computes, and writes back what it wrote. No barrier.
- **auto** (``Schedule.promote_shared``): at a block-level loop, each array
  read there, and not written, whose elements are read by more than one
  thread of a block (reuse) is promoted, smallest first, while the buffers
  fit the budget (the target's shared memory per block by default).

Promotions are requested on the schedule (``cache_read(..., scope=...,
at=...)``, ``cache_write``, ``promote_shared``) and recorded in its trace;
``promote_program`` applies them to the kernel IR. Too much shared memory is
a ``TargetError`` at build naming the limit and the arrays.

Example (footprint of ``A[i, k]`` for a 16 × 16 tile of ``i`` and ``k``)::

    >>> from polyop import ir
    >>> from polyop.kinds import LoopKind
    >>> from polyop.types import f32
    >>> I = lambda n: ir.Var(n)
    >>> add = lambda a, b: ir.Bin("add", a, b, ir.INDEX)
    >>> mul = lambda c, a: ir.Bin("mul", ir.Const(c), a, ir.INDEX)
    >>> body = ir.Store("B", (I("ii"),), ir.Load("A", (add(mul(16, I("io")), I("ii")),
    ...                                                 add(mul(16, I("ko")), I("ki"))), f32))
    >>> inner = (ir.For("ii", ir.Const(0), ir.Const(16), 1, body, LoopKind.THREAD_X),
    ...          ir.For("ki", ir.Const(0), ir.Const(16), 1, body))
    >>> fp = footprint("A", [], [], list(inner), [], [body], ["n"], ["io", "ko"])
    >>> fp.size
    (16, 16)
    >>> from polyop.exprtext import expr_to_c
    >>> [expr_to_c(e) for e in fp.offset]
    ['16 * io', '16 * ko']
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import islpy as isl

from polyop import ir
from polyop.errors import ScheduleError, TargetError
from polyop.kinds import LoopKind
from polyop.types import INDEX, DType

from .kernel_ir import AXES, Barrier, GpuProgram, Kernel, Launch
from .polyhedra import Names, NotAffine, exists, path_constraints, pw_to_ir, set_to_ir

SCOPES = ("shared", "local")


@dataclass(frozen=True)
class Request:
    """One promotion: ``array`` into ``scope`` at the loop named ``at``;
    ``name``: the buffer's; ``auto``: ``promote_shared`` (arrays chosen by
    the reuse test, ``budget`` in bytes or the target's)."""

    array: str
    at: str
    scope: str
    name: str
    auto: bool = False
    budget: int | None = None


class SharedBarrier(Barrier):
    """A barrier placed by promotion (the proof may find it useless)."""


@dataclass(frozen=True)
class Footprint:
    """The box of ``array`` accessed under a loop: ``offset`` (loop IR
    expressions of the outer loops and sizes), ``size`` (constants);
    ``written``: the guard of the elements written (over ``e0``, ``e1`` …,
    the global subscripts), ``None`` when nothing is written."""

    array: str
    offset: tuple[ir.Expr, ...]
    size: tuple[int, ...]
    written: ir.Expr | None


def _accesses(node, loops=(), conds=()):
    """(Load or Store, enclosing loops, guards) of every access under ``node``."""
    if isinstance(node, Barrier):
        return
    if isinstance(node, ir.Store):
        yield node, loops, conds
        for e in (*node.index, node.value):
            for x in ir.walk(e):
                if isinstance(x, ir.Load):
                    yield x, loops, conds
    elif isinstance(node, ir.For):
        for x in (node.start, node.stop):
            for y in ir.walk(x):
                if isinstance(y, ir.Load):
                    yield y, loops, conds
        yield from _accesses(node.body, loops + (node,), conds)
    elif isinstance(node, ir.If):
        yield from _accesses(node.then, loops, conds + (node.cond,))
        if node.else_ is not None:
            yield from _accesses(node.else_, loops, conds + (ir.Not(node.cond),))
    elif isinstance(node, ir.Block):
        for s in node.stmts:
            yield from _accesses(s, loops, conds)


def footprint(array: str, outer_loops, outer_conds, inner_loops, inner_conds, stmts,
              params, outer_vars) -> Footprint:
    """The footprint box of ``array`` in ``stmts`` (see the module docstring):
    ``outer_*`` enclose the promotion point (their variables, ``outer_vars``,
    are fixed), ``inner_*`` are below it, ``params`` the sizes."""
    fp, _ = _footprint(array, outer_loops, outer_conds, stmts, params, outer_vars,
                       extra=(inner_loops, inner_conds))
    return fp


def _footprint(array, outer_loops, outer_conds, stmts, params, outer_vars, extra=None):
    names = Names(list(params) + list(outer_vars))
    outer = path_constraints(outer_loops, outer_conds, names)
    sets, wsets, accs = [], [], []
    for stmt in stmts:
        for acc, loops, conds in _accesses(stmt):
            if acc.array != array:
                continue
            if extra is not None:
                loops, conds = tuple(extra[0]), tuple(extra[1]) + conds
            nm = names.add(lp.var for lp in loops)
            inner = [nm.vars[lp.var] for lp in loops]
            dims = [f"e{d}" for d in range(len(acc.index))]
            try:
                cons = outer + path_constraints(loops, conds, nm) + \
                    [f"{e} = {nm.text(x)}" for e, x in zip(dims, acc.index)]
            except NotAffine:
                raise ScheduleError(f"promotion of {array}: the subscript "
                                    f"{array}[{', '.join(map(str, acc.index))}] is not affine"
                                    ) from None
            s = isl.Set(f"[{names.param_list}] -> {{ [{', '.join(dims)}] : "
                        f"{exists(inner, cons)} }}")
            sets.append(s)
            accs.append((acc, loops, conds, nm))
            if isinstance(acc, ir.Store):
                wsets.append(s)
    if not sets:
        raise ScheduleError(f"promotion of {array}: no access to {array} under the loop")
    whole = _union(sets)
    context = isl.Set(f"[{names.param_list}] -> {{ : {' and '.join(outer) or 'true'} }}")
    offset, size = [], []
    for d in range(whole.dim(isl.dim_type.set)):
        lo, hi = whole.dim_min(d), whole.dim_max(d)
        width = (hi - lo).max_val()
        if not width.is_int():
            raise ScheduleError(f"promotion of {array}: its footprint has no constant size "
                                f"along dimension {d} (tile the loops under the promotion "
                                "point by constants)")
        size.append(int(width.to_python()) + 1)
        offset.append(pw_to_ir(lo.gist_params(context), names))
    written = None
    if wsets:
        w = _union(wsets)
        n = w.dim(isl.dim_type.set)
        w = w.move_dims(isl.dim_type.param, w.dim(isl.dim_type.param), isl.dim_type.set, 0, n)
        written = set_to_ir(w.gist_params(context.align_params(w.get_space())), names)
    return Footprint(array, tuple(offset), tuple(size), written), (names, accs)


def _union(sets):
    out = sets[0]
    for s in sets[1:]:
        out = out.union(s)
    return out.coalesce()
