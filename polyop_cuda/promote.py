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
- **local** scope (registers, ``polyop_cuda.registers``): each thread copies
  its own box (a micro-tile of an accumulator, say) into a private array,
  computes, and writes back what it wrote; ``at`` inside the thread loops, or
  at block level around a sequential loop (the micro-tile then lives across
  it). No barrier.
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

from collections.abc import Callable
from dataclasses import dataclass, replace

import islpy as isl

from polyop import ir
from polyop.errors import ScheduleError, TargetError
from polyop.kinds import LoopKind
from polyop.types import INDEX, DType

from .barriers import SharedBarrier, prune_barriers
from .kernel_ir import AXES, Barrier, GpuProgram, Kernel, walk
from .polyhedra import Names, NotAffine, exists, largest, path_constraints, pw_to_ir, set_to_ir

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


def _footprint(array, outer_loops, outer_conds, stmts, params, outer_vars, extra=None,
               shape=()):
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
            inner = [nm.vars[lp.var] for lp in loops if lp.var in nm.vars]  # not fixed ones
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
        low, width = _affine_lower(lo.gist_params(context), hi.gist_params(context))
        if width is None:
            raise ScheduleError(f"promotion of {array}: its footprint has no constant size "
                                f"along dimension {d} (tile the loops under the promotion "
                                "point by constants)")
        size.append(width)
        offset.append(pw_to_ir(low, names))
    written = None
    if wsets:
        w = _union(wsets)
        n = w.dim(isl.dim_type.set)
        # the copy-out's other guards hold where this one is tested: the box,
        # the array's bounds (``shape``), the loops around; isl drops what they imply
        known = outer + [f"{names.text(o)} <= e{d} < {names.text(o)} + {m}"
                         for d, (o, m) in enumerate(zip(offset, size))]
        try:
            known += [f"0 <= e{d} < {names.text(x)}" for d, x in enumerate(shape)]
        except NotAffine:
            pass
        around = isl.Set(f"[{names.param_list}] -> {{ [{', '.join(dims)}] : "
                         f"{' and '.join(known) or 'true'} }}")
        w = w.union(around.complement()).coalesce().gist(around).coalesce()
        w = w.move_dims(isl.dim_type.param, w.dim(isl.dim_type.param), isl.dim_type.set, 0, n)
        written = set_to_ir(w.gist_params(context.align_params(w.get_space())), names)
    return Footprint(array, tuple(offset), tuple(size), written), (names, accs)


def _affine_lower(lo: isl.PwAff, hi: isl.PwAff) -> tuple[isl.PwAff, int | None]:
    """One affine lower bound of a footprint's dimension and the box's width
    from it (``None``: no constant width).

    The smallest subscript ``lo`` is piecewise where a tile meets the
    domain's boundary (a stencil's first tile starts at its halo's clamped
    edge): a piece of ``lo`` that is below ``lo`` everywhere, with a constant
    width up to ``hi``, is the offset of the unclamped tile, one expression
    for every tile; the elements it adds outside the array are never copied
    (the copies are guarded by the array's bounds). The narrowest such piece
    wins; a single-piece ``lo`` is its own answer.
    """
    best: tuple[isl.PwAff, int | None] = (lo, None)
    candidates = [lo] if lo.n_piece() <= 1 else \
        [isl.PwAff.from_aff(aff) for _, aff in lo.get_pieces()]
    for cand in candidates:
        if lo.n_piece() > 1 and not lo.domain().is_subset(lo.ge_set(cand)):
            continue
        width = (hi - cand).max_val()
        if width.is_int() and (best[1] is None or int(width.to_python()) + 1 < best[1]):
            best = (cand, int(width.to_python()) + 1)
    return best


footprint_hook: Callable[[Footprint], Footprint] | None = None
"""For tests of the proof: a function applied to every box before it is
used (a box one element short must be refused at build)."""


def _union(sets):
    out = sets[0]
    for s in sets[1:]:
        out = out.union(s)
    return out.coalesce()


# -- applying promotions to the kernel IR -------------------------------------------------

def requests_from_schedule(sch) -> list[Request]:
    """The promotions recorded in ``sch``'s trace (``cache_read``/``cache_write``
    with ``scope="shared"``/``"local"``, ``promote_shared``)."""
    out = []
    for ins in getattr(sch, "trace", ()):
        kw = dict(ins.kwargs)
        if ins.primitive in ("cache_read", "cache_write") and kw.get("scope") in SCOPES:
            at = sch._loops[kw["at"].id].name
            array = ins.args[0] if isinstance(ins.args[0], str) else ins.args[0].name
            out.append(Request(array, at, kw["scope"], kw.get("name") or
                               f"{array}_{kw['scope']}"))
        elif ins.primitive == "promote_shared":
            at = sch._loops[(ins.args[0] if ins.args else kw["at"]).id].name
            out.append(Request("", at, "shared", "", True, kw.get("budget")))
    return out


def promote_program(prog: GpuProgram, requests: list[Request], target,
                    context: isl.Set | None = None) -> GpuProgram:
    """``prog`` with the promotions ``requests`` applied (module docstring);
    ``context``: the program's assumptions on its sizes."""
    if not requests:
        return prog
    from .extract import _relaunch

    kernels, done = [], set()
    for k in prog.kernels:
        mine = [r for r in requests if _find(k.body, r.at) is not None]
        done |= set(mine)
        kernels.append(_promote_kernel(k, mine, target, context) if mine else k)
    for r in requests:
        if r not in done:
            raise ScheduleError(f"promotion of {r.array or 'arrays'} at loop {r.at}: the loop "
                                "is in no GPU kernel")
    new = {k.name: k for k in kernels}
    return replace(prog, kernels=tuple(kernels), body=_relaunch(prog.body, new))


def _find(node, name, loops=(), conds=()):
    """(the loop ``name``, the loops and guards around it) or ``None``."""
    if isinstance(node, ir.For):
        if node.var == name:
            return node, loops, conds
        return _find(node.body, name, loops + (node,), conds)
    if isinstance(node, ir.If):
        return _find(node.then, name, loops, conds + (node.cond,)) or (
            None if node.else_ is None else _find(node.else_, name, loops,
                                                  conds + (ir.Not(node.cond),)))
    if isinstance(node, ir.Block):
        for s in node.stmts:
            hit = _find(s, name, loops, conds)
            if hit is not None:
                return hit
    return None


def _replace_loop(node, name, new):
    if isinstance(node, ir.For):
        if node.var == name:
            return new
        return replace(node, body=_replace_loop(node.body, name, new))
    if isinstance(node, ir.If):
        return ir.If(node.cond, _replace_loop(node.then, name, new),
                     None if node.else_ is None else _replace_loop(node.else_, name, new))
    if isinstance(node, ir.Block):
        return ir.Block(tuple(_replace_loop(s, name, new) for s in node.stmts))
    return node


def _block_sizes(k: Kernel, params, context: isl.Set | None = None) -> tuple[int, int, int]:
    """Constant threads per axis: each thread loop's largest trip count over
    every value of the sizes the program's ``context`` admits and of the
    outer loops (isl), so that copy loops can stride by the block's size. A
    thread loop with no such bound is refused, naming it."""
    from .extract import _aligned_context

    sizes = {a: 1 for a in AXES}

    def visit(node, loops, conds):
        if isinstance(node, ir.For) and node.kind.is_thread:
            names = Names(params, [lp.var for lp in loops] + [node.var])
            cons = path_constraints(loops, conds, names)
            t = "trip"
            cons += [f"0 <= {t}", f"{names.text(node.start)} + {node.step} * {t} < "
                     f"{names.text(node.stop)}"]
            s = isl.Set(f"[{names.param_list}] -> {{ [{t}] : "
                        f"{exists(list(names.vars.values()), cons)} }}")
            if context is not None:  # the sizes' assumptions (asserts) may bound it
                s = s.intersect_params(_aligned_context(context, names.params, s.params()))
            s = s.move_dims(isl.dim_type.set, 1, isl.dim_type.param, 0, len(params))
            s = s.project_out(isl.dim_type.set, 1, len(params))
            best = largest(s)
            if best is None and not s.is_empty():
                raise ScheduleError(f"kernel {k.name}: thread loop {node.var} "
                                    f"({node.kind.value}) has no constant bound for every "
                                    "size, and a promotion needs the block's size; split it "
                                    "by a constant (or bound the sizes with an assert)")
            ax = node.kind.axis
            sizes[ax] = max(sizes[ax], (best or 0) + 1)
        if isinstance(node, ir.For):
            visit(node.body, loops + (node,), conds)
        elif isinstance(node, ir.If):
            visit(node.then, loops, conds + (node.cond,))
            if node.else_ is not None:
                visit(node.else_, loops, conds)
        elif isinstance(node, ir.Block):
            for s in node.stmts:
                visit(s, loops, conds)

    visit(k.body, (), ())
    return sizes["x"], sizes["y"], sizes["z"]


def _promote_kernel(k: Kernel, requests: list[Request], target, context=None) -> Kernel:
    params = [p.name for p in k.params if p.kind in ("size", "index")]
    arrays = {p.name: p for p in k.params if p.kind == "array"}
    block = _block_sizes(k, params, context)
    k = replace(k, block=tuple(ir.Const(b) for b in block))
    for r in requests:
        at, loops, conds = _find(k.body, r.at)
        if r.auto:
            for name in _auto_arrays(k, at, loops, conds, params, arrays, r, target):
                k = _apply(k, Request(name, r.at, "shared", f"{name}_shared"), params, arrays,
                           target)
        else:
            if r.array not in arrays:
                raise ScheduleError(f"promotion of {r.array} at loop {r.at}: the kernel "
                                    f"{k.name} does not access {r.array}")
            k = _apply(k, r, params, arrays, target)
    _check_budget(k, target)
    k = prune_barriers(k)  # proves k: bounds, and races with the barriers it keeps
    if getattr(target, "kind", "") == "opencl":
        for at in {r.at for r in requests}:
            k = _close(k, at)
    # one more block-level barrier separates more pairs and moves no access:
    # the closed kernel is proven too, and lowering's proof need not redo it
    from .proof import _remember
    _remember(k)
    return k


def _close(k: Kernel, at: str) -> Kernel:
    """``k`` with a barrier ending the body of loop ``at`` if none does.

    PoCL (the CI's OpenCL) miscompiled a block's last barrier region when it
    held nested thread guards (threads past a guard ran the compute); a
    closing barrier keeps every region between two barriers, which it
    handles. Only for OpenCL: on CUDA the proof alone places barriers.
    """
    loop = _find(k.body, at)[0]
    stmts = loop.body.stmts if isinstance(loop.body, ir.Block) else (loop.body,)
    last = stmts[-1]
    while isinstance(last, ir.Block) and last.stmts:
        last = last.stmts[-1]
    if not any(isinstance(n, Barrier) for n in walk(loop.body)) or isinstance(last, Barrier):
        return k
    return replace(k, body=_replace_loop(k.body, at, replace(
        loop, body=ir.Block(tuple(stmts) + (Barrier(),)))))


def _apply(k: Kernel, r: Request, params, arrays, target=None) -> Kernel:
    at, loops, conds = _find(k.body, r.at)
    if r.scope == "local":
        from .registers import promote_local
        return promote_local(k, r, at, loops, conds, params, arrays)
    thread_axes = sorted({b.kind for b in k.loops if b.kind.is_thread}, key=lambda x: x.value)
    if any(lp.kind.is_thread for lp in loops + (at,)):
        raise ScheduleError(f"cache at {r.at} in shared memory: the loop runs inside a "
                            "thread loop; a block-wide copy needs a loop outside them")
    blocks = {b.var for b in k.loops if not b.kind.is_thread}
    if not blocks <= {lp.var for lp in loops + (at,)}:
        raise ScheduleError(f"cache at {r.at} in shared memory: promote inside every "
                            "block loop (at the innermost one, or a sequential loop in it)")
    fp, _ = _footprint(r.array, loops, conds, [at.body], params,
                       [lp.var for lp in loops] + [at.var], shape=arrays[r.array].shape)
    if footprint_hook is not None:
        fp = footprint_hook(fp)
    dtype = arrays[r.array].dtype
    shape = fp.size
    if _column_access(at.body, r.array, k) and len(shape) >= 2 and shape[-1] % 32 == 0:
        shape = shape[:-1] + (shape[-1] + 1,)  # a warp down a column: spread over banks
    body = _redirect(at.body, r.array, r.name, fp.offset)
    read = any(isinstance(n, ir.Load) and n.array == r.array for n in ir.walk(at.body))
    gshape = arrays[r.array].shape
    block = tuple(int(b.value) for b in k.block)
    copy_in = _coop(r, fp, dtype, gshape, block, thread_axes, True) if read else None
    copy_out = _coop(r, fp, dtype, gshape, block, thread_axes, False) \
        if fp.written is not None else None
    parts = [p for p in (copy_in, SharedBarrier() if copy_in else None, body,
                         SharedBarrier() if copy_out else None, copy_out) if p is not None]
    k = replace(k, shared=k.shared + ((r.name, dtype, shape),))
    new = replace(at, body=ir.Block(tuple(parts)))
    return replace(k, body=_replace_loop(k.body, r.at, new))


def _column_access(node, array: str, k: Kernel) -> bool:
    """Some access's last subscript ignores ``threadIdx.x`` while an earlier one
    follows it: a warp reads down a column."""
    xs = {n.var for n in ir.walk(k.body) if isinstance(n, ir.For) and n.kind is LoopKind.THREAD_X}
    for n in ir.walk(node):
        if isinstance(n, (ir.Load, ir.Store)) and n.array == array and len(n.index) >= 2:
            uses = [{v.name for v in ir.walk(x) if isinstance(v, ir.Var)} & xs for x in n.index]
            if not uses[-1] and any(uses[:-1]):
                return True
    return False


def _simplify(e: ir.Expr) -> ir.Expr:
    """``e`` rewritten by isl (quasi-affine), else as it is."""
    free = sorted({v.name for v in ir.walk(e) if isinstance(v, ir.Var)})
    names = Names(free)
    try:
        pa = isl.PwAff(f"[{names.param_list}] -> {{ [({names.text(e)})] }}")
    except NotAffine:
        return e
    return pw_to_ir(pa, names)


def _redirect(node, array: str, buf: str, offset):
    """``node`` with accesses to ``array`` made to ``buf`` at ``index - offset``."""
    def idx(index):
        return tuple(_simplify(ir.Bin("sub", x, o, INDEX)) for x, o in zip(index, offset))

    def expr(e):
        if isinstance(e, ir.Load) and e.array == array:
            return ir.Load(buf, idx(tuple(expr(x) for x in e.index)), e.dtype)
        return ir.map_children(e, expr)

    def stmt(s):
        if isinstance(s, Barrier):
            return s
        if isinstance(s, ir.Store):
            index = tuple(expr(x) for x in s.index)
            return replace(s, array=buf if s.array == array else s.array,
                           index=idx(index) if s.array == array else index, value=expr(s.value))
        if isinstance(s, ir.For):
            return replace(s, start=expr(s.start), stop=expr(s.stop), body=stmt(s.body))
        if isinstance(s, ir.If):
            return ir.If(expr(s.cond), stmt(s.then), None if s.else_ is None else stmt(s.else_))
        return ir.Block(tuple(stmt(x) for x in s.stmts))

    return stmt(node)


def _guard(fp: Footprint, glob, gshape, copy_in: bool) -> ir.Expr:
    conds: list[ir.Expr] = []
    for g, n in zip(glob, gshape):
        conds += [ir.Cmp("ge", g, ir.Const(0)), ir.Cmp("lt", g, n)]
    if not copy_in:
        conds.append(ir.substitute(fp.written, {f"e{d}": g for d, g in enumerate(glob)}))
    out = conds[0]
    for c in conds[1:]:
        out = ir.Logic("and", out, c)
    return out


def _copy(r: Request, fp: Footprint, dtype: DType, gshape, local, copy_in: bool) -> ir.Stmt:
    glob = tuple(_simplify(ir.Bin("add", o, x, INDEX)) for o, x in zip(fp.offset, local))
    if copy_in:
        st = ir.Store(r.name, local, ir.Load(r.array, glob, dtype))
    else:
        st = ir.Store(r.array, glob, ir.Load(r.name, local, dtype))
    return ir.If(_guard(fp, glob, gshape, copy_in), st)


def _coop(r: Request, fp: Footprint, dtype, gshape, block, axes, copy_in: bool) -> ir.Stmt:
    """The block's cooperative copy: threads stride over the box, row-major,
    ``threadIdx.x`` fastest (consecutive threads, consecutive addresses)."""
    total = 1
    for n in fp.size:
        total *= n
    tag = "in" if copy_in else "out"
    tvars = {kind.axis: ir.Var(f"{r.name}_{tag}_t{kind.axis}") for kind in axes}
    tid: ir.Expr = ir.Const(0)
    stride = 1
    for axis, n in zip(AXES, block):
        if axis in tvars:
            term = tvars[axis] if stride == 1 else ir.Bin("mul", ir.Const(stride), tvars[axis],
                                                          INDEX)
            tid = term if tid == ir.Const(0) else ir.Bin("add", tid, term, INDEX)
            stride *= n
    c = ir.Var(f"{r.name}_{tag}")
    local, below = [], total
    for n in fp.size:
        below //= n
        x = c if below == 1 else ir.Bin("fdiv", c, ir.Const(below), INDEX)
        local.append(x if n * below == total else ir.Bin("mod", x, ir.Const(n), INDEX))
    node: ir.Stmt = ir.For(c.name, tid, ir.Const(total), stride,
                           _copy(r, fp, dtype, gshape, tuple(local), copy_in))
    for kind in sorted(axes, key=lambda x: x.value):
        v = tvars[kind.axis]
        node = ir.For(v.name, ir.Const(0), ir.Const(block[AXES.index(kind.axis)]), 1, node, kind)
    return node


def _auto_arrays(k, at, loops, conds, params, arrays, r: Request, target) -> list[str]:
    """The arrays worth promoting at ``at``: read there and not written, read by
    more than one thread of a block, smallest first while they fit."""
    budget = r.budget if r.budget is not None else target.gpu.shared_memory_per_block
    used = sum(_bytes(d, s) for _, d, s in k.shared)
    stores = {n.array for n in ir.walk(at.body) if isinstance(n, ir.Store)}
    loads = sorted({n.array for n in ir.walk(at.body) if isinstance(n, ir.Load)
                    and n.array in arrays and n.array not in stores})
    cands = []
    for name in loads:
        try:
            fp, (names, accs) = _footprint(name, loops, conds, [at.body], params,
                                           [lp.var for lp in loops] + [at.var])
        except ScheduleError:
            continue
        if _shared_by_threads(accs, names):
            cands.append((_bytes(arrays[name].dtype, fp.size), name))
    out = []
    for size, name in sorted(cands):
        if used + size <= budget:
            out.append(name)
            used += size
    return out


def _shared_by_threads(accs, names: Names) -> bool:
    """Two different threads of a block read one element (isl)."""
    maps = []
    for acc, loops, conds, nm in accs:
        ts = {lp.kind.axis: nm.vars[lp.var] for lp in loops if lp.kind.is_thread}
        if not ts:
            continue
        dims = [f"e{d}" for d in range(len(acc.index))]
        cons = path_constraints(loops, conds, nm) + \
            [f"{e} = {nm.text(x)}" for e, x in zip(dims, acc.index)] + \
            [f"w{a} = {ts.get(a, '0')}" for a in AXES]
        maps.append(isl.Map(f"[{names.param_list}] -> {{ [wx, wy, wz] -> [{', '.join(dims)}] : "
                            f"{exists(list(nm.vars.values()), cons)} }}"))
    if not maps:
        return False
    m = maps[0]
    for x in maps[1:]:
        m = m.union(x)
    pairs = m.apply_range(m.reverse())
    same = isl.Map("{ [a, b, c] -> [a, b, c] }").align_params(pairs.get_space())
    return not pairs.subtract(same).is_empty()


def _bytes(dtype: DType, shape) -> int:
    n = dtype.bits // 8
    for s in shape:
        n *= s
    return n


def _check_budget(k: Kernel, target) -> None:
    total = sum(_bytes(d, s) for _, d, s in k.shared)
    limit = target.gpu.shared_memory_per_block
    if total > limit:
        parts = ", ".join(f"{n}[{']['.join(map(str, s))}] ({_bytes(d, s)} B)"
                          for n, d, s in k.shared)
        raise TargetError(f"kernel {k.name}: {total} bytes of shared memory ({parts}) exceed "
                          f"the target's limit of {limit} bytes per block ({target}); "
                          "promote smaller tiles or fewer arrays")
