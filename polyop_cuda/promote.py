"""Shared-memory and register promotion of a GPU kernel's arrays (PPCG-style).

The mechanism is the core's, for every target (``polyop.promotion``): the
request recorded on the schedule, the footprint box of an array under the
loop ``at`` (isl: a quasi-affine lower corner, a constant size), the
rewrite of ``at``'s body (copy-in, accesses redirected into the buffer,
copy-out of the written elements only). What is the GPU's is here:

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

``promote_program`` applies the requests of the trace to the kernel IR.
Too much shared memory is a ``TargetError`` at build naming the limit and
the arrays.

Example (the cooperative copy-in of a 16 × 16 box by a block of 16 × 16
threads, ``threadIdx.x`` fastest)::

    >>> from polyop import ir
    >>> from polyop.types import f32
    >>> r = Request("A", "ko", "shared", "A_shared")
    >>> fp = Footprint("A", (ir.Var("io"), ir.Var("ko")), (16, 16), None)
    >>> axes = [LoopKind.THREAD_X, LoopKind.THREAD_Y]
    >>> copy = _coop(r, fp, f32, (ir.Var("n"), ir.Var("n")), (16, 16, 1), axes, True)
    >>> from polyop.exprtext import expr_to_c
    >>> loop = copy.body.body
    >>> expr_to_c(loop.start), expr_to_c(loop.stop), loop.step
    ('A_shared_in_tx + 16 * A_shared_in_ty', '256', 256)
    >>> loop.body.then
    ... # doctest: +ELLIPSIS
    Store(array='A_shared', index=(Bin(op='fdiv', a=Var(name='A_shared_in'...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import islpy as isl

from polyop import ir
from polyop.errors import ScheduleError, TargetError
from polyop.kinds import LoopKind
from polyop.polyhedra import Names, exists, largest, path_constraints
from polyop.promotion import (
    SCOPES,
    Footprint,
    Request,
    _footprint,
    copy_element,
    requests_from_schedule,
    rewrite,
)
from polyop.types import INDEX, DType

from .barriers import SharedBarrier, prune_barriers
from .kernel_ir import AXES, Barrier, GpuProgram, Kernel, walk

__all__ = ["SCOPES", "Footprint", "Request", "promote_program", "requests_from_schedule"]

footprint_hook: Callable[[Footprint], Footprint] | None = None
"""For tests of the proof: a function applied to every box before it is
used (a box one element short must be refused at build)."""


# -- applying promotions to the kernel IR -------------------------------------------------

def promote_program(prog: GpuProgram, requests: list[Request], target,
                    context: isl.Set | None = None) -> GpuProgram:
    """``prog`` with the promotions ``requests`` applied (module docstring);
    ``context``: the program's assumptions on its sizes."""
    if not requests:
        return prog
    from .extract import _relaunch

    kernels, done = [], set()
    # a request names its loop by its variable, which loops of other kernels
    # may share (a nest distributed, then each copy split): a request for one
    # array goes to the kernels with that loop that access the array
    found = {r: [k for k in prog.kernels if ir.find_loop(k.body, r.at, ident=r.loop) is not None]
             for r in requests}
    for k in prog.kernels:
        mine = [r for r in requests if k in found[r] and
                (r.auto or not any(_accesses(c, r.array) for c in found[r]) or
                 _accesses(k, r.array))]
        done |= set(mine)
        kernels.append(_promote_kernel(k, mine, target, context) if mine else k)
    for r in requests:
        if r not in done:
            raise ScheduleError(f"promotion of {r.array or 'arrays'} at loop {r.at}: the loop "
                                "is in no GPU kernel")
    new = {k.name: k for k in kernels}
    return replace(prog, kernels=tuple(kernels), body=_relaunch(prog.body, new))


def _accesses(k: Kernel, array: str | None) -> bool:
    return any(p.kind == "array" and p.name == array for p in k.params)


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
        at, loops, conds = ir.find_loop(k.body, r.at, ident=r.loop)
        if r.auto:
            for name in _auto_arrays(k, at, loops, conds, params, arrays, r, target):
                k = _apply(k, Request(name, r.at, "shared", f"{name}_shared", loop=r.loop),
                           params, arrays, target)
        else:
            if r.array not in arrays:
                raise ScheduleError(f"promotion of {r.array} at loop {r.at}: the kernel "
                                    f"{k.name} does not access {r.array}")
            k = _apply(k, r, params, arrays, target)
    _check_budget(k, target)
    k = prune_barriers(k)  # proves k: bounds, and races with the barriers it keeps
    if getattr(target, "kind", "") == "opencl":
        for at, ident in {(r.at, r.loop) for r in requests}:
            k = _close(k, at, ident)
    # one more block-level barrier separates more pairs and moves no access:
    # the closed kernel is proven too, and lowering's proof need not redo it
    from .proof import _remember
    _remember(k)
    return k


def _close(k: Kernel, at: str, ident: str | None = None) -> Kernel:
    """``k`` with a barrier ending the body of loop ``at`` if none does.

    PoCL (the CI's OpenCL) miscompiled a block's last barrier region when it
    held nested thread guards (threads past a guard ran the compute); a
    closing barrier keeps every region between two barriers, which it
    handles. Only for OpenCL: on CUDA the proof alone places barriers.
    """
    loop = ir.find_loop(k.body, at, ident=ident)[0]
    stmts = loop.body.stmts if isinstance(loop.body, ir.Block) else (loop.body,)
    last = stmts[-1]
    while isinstance(last, ir.Block) and last.stmts:
        last = last.stmts[-1]
    if not any(isinstance(n, Barrier) for n in walk(loop.body)) or isinstance(last, Barrier):
        return k
    return replace(k, body=ir.replace_loop(k.body, at, replace(
        loop, body=ir.Block(tuple(stmts) + (Barrier(),))), ident))


def _apply(k: Kernel, r: Request, params, arrays, target=None) -> Kernel:
    at, loops, conds = ir.find_loop(k.body, r.at, ident=r.loop)
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
    gshape = arrays[r.array].shape
    block = tuple(int(b.value) for b in k.block)

    def copier(r, fp, dtype, gshape, copy_in):  # the block's copy; a barrier, then the compute
        copy = _coop(r, fp, dtype, gshape, block, thread_axes, copy_in)
        return ir.Block((copy, SharedBarrier()) if copy_in else (SharedBarrier(), copy))

    k = replace(k, shared=k.shared + ((r.name, dtype, shape),))
    new = rewrite(at, r, fp, dtype, gshape, copier)
    return replace(k, body=ir.replace_loop(k.body, r.at, new, r.loop))


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
                           copy_element(r, fp, dtype, gshape, tuple(local), copy_in))
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
