"""Register promotion (``scope="local"``): each thread keeps its micro-tile of
an array in a private buffer.

Requested as ``cache_write(array, scope="local", at=loop)`` (or
``cache_read``); ``polyop_cuda.promote`` calls ``promote_local`` for it.
The footprint is the box of ``array`` touched by **one thread** under ``at``
(``polyop.promotion``'s footprint with the thread indices fixed): for a GEMM
whose threads each compute a 4 × 4 block of C, a ``float C_local[4][4]``.

- ``at`` inside the thread loops: each thread copies its box in at the start
  of ``at``'s body, runs it on the buffer, and writes back what it wrote.
- ``at`` at block level (inside every block loop, outside the thread loops:
  the classic SGEMM, where a sequential loop over tiles of ``k`` lies between
  ``at`` and the thread loops): the copies run in thread loops of their own,
  made like the compute's (same variables, bounds and axes), before and after
  ``at``'s body. A thread loop is not a loop on the GPU but the thread's own
  index, so the buffer a thread filled before the ``k`` loop is the one it
  accumulates into inside it, and writes back once after it. Every access to
  ``array`` under ``at`` must then run inside the same thread loops (else
  refused, naming the loop).
- The loops of the compute that index the buffer (the micro-tile's loops)
  are made constant-trip and unrolled: ``for m in [s, s + N)`` with the
  original bound as a guard inside, ``N`` the largest trip count (isl), so
  that after unrolling every subscript of the buffer is a constant and the
  compiler keeps the tile in registers (a variable subscript sends a private
  array to local memory on CUDA).

The rewrite is the core's (``polyop.promotion.rewrite``, the CPU's too) with
its serial copier, unrolled and run inside the thread loops: the copy-in runs
when the array is read under ``at``, guarded by the array's bounds; the
copy-out writes only the elements the thread wrote (the footprint's written
set, an isl set, is its guard). No barrier: the buffer is private. The
proof (``polyop_cuda.proof``) checks every access to the buffer in bounds.

Example (the micro-tile loop ``m`` of trip count ``min(4, n - 4 * t)``)::

    >>> from polyop import ir
    >>> from polyop.exprtext import expr_to_c
    >>> m = ir.Var("m")
    >>> stop = ir.Bin("min", ir.Const(4), ir.Bin("sub", ir.Var("n"),
    ...               ir.Bin("mul", ir.Const(4), ir.Var("t"), ir.INDEX), ir.INDEX), ir.INDEX)
    >>> loop = ir.For("m", ir.Const(0), stop, 1, ir.Store("C_local", (m,), ir.Const(0.0)))
    >>> t = ir.For("t", ir.Const(0), ir.Const(8), 1, loop)
    >>> new = unroll_micro_tile(loop, "C_local", [t], [], ["n"])
    >>> new.kind.value, expr_to_c(new.stop), expr_to_c(new.body.cond)
    ('unroll', '4', 'm < min(4, n - 4 * t)')
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from polyop import ir
from polyop.errors import ScheduleError
from polyop.kinds import LoopKind
from polyop.polyhedra import Names, NotAffine, exists, largest, path_constraints
from polyop.promotion import _footprint, rewrite, serial_copier

from .kernel_ir import Barrier, Kernel

#: the longest micro-tile loop unrolled (longer ones stay loops, still correct)
MAX_UNROLL = 32


def promote_local(k: Kernel, r, at: ir.For, loops, conds, params, arrays) -> Kernel:
    """``k`` with ``r.array`` kept in each thread's buffer ``r.name`` under the
    loop ``at`` (enclosed by ``loops`` and guards ``conds``): see the module
    docstring."""
    from . import promote

    in_thread = any(lp.kind.is_thread for lp in (*loops, at))
    where = f"cache at {r.at} in registers (scope 'local')"
    if in_thread:
        threads: tuple[ir.For, ...] = ()
    else:
        blocks = {b.var for b in k.loops if not b.kind.is_thread}
        around = {lp.var for lp in (*loops, at)}
        if not blocks <= around:
            raise ScheduleError(f"{where}: the loop runs outside block loop(s) "
                                f"{', '.join(sorted(blocks - around))}; "
                                "promote inside every block loop or inside the thread loops")
        threads = _thread_loops(at, r.array, where, {lp.var for lp in (*loops, at)} |
                                set(params))
    fixed = [lp.var for lp in loops] + [at.var] + [t.var for t in threads]
    fp, _ = _footprint(r.array, tuple(loops) + threads, conds, [at.body], params, fixed,
                       shape=arrays[r.array].shape)
    if promote.footprint_hook is not None:
        fp = promote.footprint_hook(fp)
    dtype, gshape = arrays[r.array].dtype, arrays[r.array].shape
    serial = serial_copier(LoopKind.UNROLL)

    def copier(r, fp, dtype, gshape, copy_in: bool) -> ir.Stmt:
        node = serial(r, fp, dtype, gshape, copy_in)
        for t in reversed(threads):  # the thread's own index, as in the compute
            node = replace(t, body=node)
        return node

    new = rewrite(at, r, fp, dtype, gshape, copier,
                  lambda body: unroll_micro_tile(body, r.name, (*loops, at), conds, params))
    k = replace(k, temps=k.temps + ((r.name, dtype, fp.size),))
    return replace(k, body=ir.replace_loop(k.body, r.at, new, r.loop))


def _thread_loops(at: ir.For, array: str, where: str, known: set[str]) -> tuple[ir.For, ...]:
    """The thread loops (outermost first) around every access to ``array``
    under the block-level loop ``at``: one per axis, the same everywhere, with
    bounds over ``known`` names only (the copies run them outside the loops
    between ``at`` and them)."""
    found: list[tuple[ir.For, ...]] = []

    def visit(node, threads):
        if isinstance(node, Barrier):
            return
        if isinstance(node, (ir.Store, ir.Extern)):
            uses = [n for n in ir.walk(node) if isinstance(n, (ir.Load, ir.Store))
                    and n.array == array]
            if isinstance(node, ir.Store) and node.array == array:
                uses.append(node)
            if uses:
                found.append(threads)
            return
        if isinstance(node, ir.For):
            visit(node.body, threads + ((node,) if node.kind.is_thread else ()))
        elif isinstance(node, ir.If):
            visit(node.then, threads)
            if node.else_ is not None:
                visit(node.else_, threads)
        elif isinstance(node, ir.Block):
            for s in node.stmts:
                visit(s, threads)

    visit(at.body, ())
    if not found or not all(found):
        raise ScheduleError(f"{where}: {array} is accessed outside the thread loops under "
                            f"{at.var}; each thread can only keep its own elements")
    def signature(threads):  # a loop's iterations, whatever its body
        return [(t.var, t.start, t.stop, t.step, t.kind) for t in threads]

    first = found[0]
    for other in found[1:]:
        if signature(other) != signature(first):
            raise ScheduleError(f"{where}: {array} is accessed under different thread loops "
                                f"({', '.join(t.var for t in first)} and "
                                f"{', '.join(t.var for t in other)}); promote inside them")
    for t in first:
        free = {v.name for e in (t.start, t.stop) for v in ir.walk(e) if isinstance(v, ir.Var)}
        if not free <= known:
            raise ScheduleError(f"{where}: the bounds of thread loop {t.var} depend on "
                                f"{', '.join(sorted(free - known))}, a loop inside {at.var}; "
                                "the copies run outside it")
    return first


def unroll_micro_tile(node, buffer: str, loops, conds, params) -> ir.Stmt:
    """``node`` with each sequential loop whose variable indexes ``buffer``
    made constant-trip (the largest trip count over every value of the loops
    around it, at most ``MAX_UNROLL``) and unrolled, its bound a guard inside.
    ``loops``/``conds``: what encloses ``node``; ``params``: the sizes."""
    used = {v.name for n in ir.walk(node) if isinstance(n, (ir.Load, ir.Store))
            and n.array == buffer for x in n.index for v in ir.walk(x) if isinstance(v, ir.Var)}

    def go(n, path, guards):
        if isinstance(n, ir.Block):
            return ir.Block(tuple(go(s, path, guards) for s in n.stmts))
        if isinstance(n, ir.If):
            return ir.If(n.cond, go(n.then, path, guards + (n.cond,)),
                         None if n.else_ is None else
                         go(n.else_, path, guards + (ir.Not(n.cond),)))
        if not isinstance(n, ir.For):
            return n
        body = go(n.body, path + (n,), guards)
        if n.kind.is_gpu or n.var not in used or n.kind is LoopKind.UNROLL:
            return replace(n, body=body)
        trips = _max_trips(n, path, guards, params)
        if trips is None or trips > MAX_UNROLL:
            return replace(n, body=body)
        stop = ir.Bin("add", n.start, ir.Const(trips * n.step), ir.INDEX) \
            if not isinstance(n.start, ir.Const) else ir.Const(n.start.value + trips * n.step)
        guard = ir.Cmp("lt", ir.Var(n.var, ir.INDEX), n.stop)
        return ir.For(n.var, n.start, stop, n.step, ir.If(guard, body), LoopKind.UNROLL)

    return go(node, tuple(loops), tuple(conds))


def _max_trips(loop: ir.For, path, conds, params) -> int | None:
    """The largest trip count of ``loop`` under ``path`` (isl), ``None`` when it
    has no constant bound or a bound is not affine."""
    names = Names([], list(params) + [lp.var for lp in path] + [loop.var])
    try:
        cons = path_constraints(path, conds, names)
        cons += ["0 <= trip", f"{names.text(loop.start)} + {loop.step} * trip < "
                 f"{names.text(loop.stop)}"]
    except NotAffine:
        return None
    best = largest(isl.Set(f"{{ [trip] : {exists(list(names.vars.values()), cons)} }}"))
    return None if best is None else best + 1

