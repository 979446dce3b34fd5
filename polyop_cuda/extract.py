"""Kernel extraction: loop IR with bound loops → ``GpuProgram`` (``polyop_cuda.kernel_ir``).

In: an ``ir.Function`` lowered from a schedule (``polyop.pipeline.lower_ir``,
full strips not isolated) whose ``For`` nodes may carry GPU kinds, and the
program. Out: a ``GpuProgram``.

- The outermost bound loop of each path is the root of a kernel; the loops
  and conditions above it stay on the host. A subtree with no bound loop at
  all (an initialisation nest, say) becomes a kernel of one thread, so that
  every statement runs on the device, where the arrays are.
- Inside a kernel: block loops enclose thread loops; an axis is bound once
  per path; no sequential loop runs between two block loops (blocks cannot
  wait for each other) nor between two thread loops (their guards would
  make a barrier divergent); every statement runs under a loop of every
  axis the kernel uses (else each thread would repeat it). Each refusal is a
  ``ScheduleError`` naming the loops.
- Barriers: see ``kernel_ir``.
- Extents: for a bound loop ``for (v = start; v < stop; v += step)`` under
  the kernel's loops ``o``, the set ``{ [o, t] : o in their bounds, 0 <= t,
  start(o) + step * t < stop(o) }`` (parameters: the sizes and host
  iterators) is built with isl from the loop IR's affine bounds; the extent
  is ``max t + 1`` (0 where the set is empty), a piecewise quasi-affine
  function of the parameters printed back as a host expression by isl's AST
  builder.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def scale(n: int, A: "f32[n]"):
    ...     for i in range(n):
    ...         A[i] *= 2.0
    >>> sch = polyop.Schedule(scale)
    >>> io, ii = sch.split(sch.get_loops("S0")[0], 32)
    >>> sch.bind(io, "blockIdx.x"); sch.bind(ii, "threadIdx.x")
    >>> prog = extract(polyop.pipeline.lower_ir(sch, isolate=False), sch.program)
    >>> from polyop.exprtext import expr_to_c
    >>> for b in prog.kernels[0].loops:
    ...     print(b.var, b.kind, expr_to_c(b.extent))
    i_outer blockIdx.x (n + 31) // 32
    i_inner threadIdx.x n == 0 ? 0 : min(32, n)
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import islpy as isl

from polyop import ir
from polyop.errors import ScheduleError, TargetError
from polyop.isl_ir import NotAnIndexError, isl_text, pw_aff_to_ir
from polyop.kinds import LoopKind
from polyop.program import Program
from polyop.types import INDEX

from .kernel_ir import AXES, Barrier, BoundLoop, GpuProgram, Kernel, KernelParam, Launch, walk

_FORBIDDEN = (LoopKind.PARALLEL, LoopKind.VECTOR)


def extract(fn: ir.Function, program: Program) -> GpuProgram:
    """The ``GpuProgram`` of ``fn`` (see the module docstring)."""
    ex = _Extractor(fn, program)
    body = ex.host(fn.body, ())
    kernels, scratch = _shared_temporaries(ex.kernels, dict(fn.temps),
                                           fn.meta.get("temp_shapes", {}))
    new = {k.name: k for k in kernels}
    return GpuProgram(fn.name, fn.params, tuple(kernels), _relaunch(body, new),
                      tuple(fn.meta.get("requires", ())), scratch)


def _shared_temporaries(kernels: list[Kernel], temps: dict, shapes: dict):
    """Kernels in which a temporary used by several kernels lives in device
    memory (``scratch``: one buffer per call) rather than in each thread: where
    the kernel only reads it, or runs one thread. A kernel that writes it in
    bound loops keeps a private copy: legality (``Schedule.bind``) has proven
    that no value passes between those threads, into or out of the loops."""
    users: dict[str, int] = {}
    for k in kernels:
        for name, _, _ in k.temps:
            users[name] = users.get(name, 0) + 1
    shared = {t for t, n in users.items() if n > 1}
    out, scratch = [], {}
    for k in kernels:
        written = {n.array for n in walk(k.body) if isinstance(n, ir.Store)}
        moved = {t for t, _, _ in k.temps if t in shared and (not k.loops or t not in written)}
        if not moved:
            out.append(k)
            continue
        params = list(k.params)
        for t in sorted(moved):
            shape = tuple(ir.Const(n) for n in shapes.get(t, ())) or (ir.Const(1),)
            params.append(KernelParam(t, "array", temps[t], shape, t in written))
            scratch[t] = (t, temps[t], tuple(int(c.value) for c in shape))
        body = _global_scalars(k.body, {t for t in moved if not shapes.get(t)})
        out.append(replace(k, params=tuple(params), body=body,
                           temps=tuple(x for x in k.temps if x[0] not in moved)))
    return out, tuple(scratch[t] for t in sorted(scratch))


def _global_scalars(node, names: set[str]):
    """``node`` with the 0-d temporaries ``names`` accessed as element 0."""
    if isinstance(node, Barrier):
        return node
    if isinstance(node, (ir.Load, ir.Store)) and node.array in names and not node.index:
        node = replace(node, index=(ir.Const(0),))
    if isinstance(node, ir.Block):
        return ir.Block(tuple(_global_scalars(s, names) for s in node.stmts))
    return ir.map_children(node, lambda c: _global_scalars(c, names))


def _relaunch(node, kernels: dict[str, Kernel]):
    """The host tree ``node`` launching ``kernels`` (by name) instead."""
    if isinstance(node, Launch):
        return Launch(kernels[node.kernel.name])
    if isinstance(node, ir.Block):
        return ir.Block(tuple(_relaunch(s, kernels) for s in node.stmts))
    if isinstance(node, ir.If):
        return ir.If(node.cond, _relaunch(node.then, kernels),
                     None if node.else_ is None else _relaunch(node.else_, kernels))
    assert isinstance(node, ir.For), node
    return replace(node, body=_relaunch(node.body, kernels))


def _bound(node) -> bool:
    return any(isinstance(n, ir.For) and n.kind.is_gpu for n in ir.walk(node))


class _Extractor:
    def __init__(self, fn: ir.Function, program: Program):
        self.fn, self.program = fn, program
        self.kernels: list[Kernel] = []
        self.sizes = [p.name for p in fn.params if p.kind == "size"]
        self.temp_shapes = fn.meta.get("temp_shapes", {})
        self.temps = dict(fn.temps)

    # -- host side ---------------------------------------------------------------------
    def host(self, node: ir.Stmt, host_loops: tuple[ir.For, ...]):
        if isinstance(node, ir.Extern) and not getattr(node.impl, "runs_on_gpu", False):
            raise TargetError(f"tensorize({node.name}): micro-kernel calls are CPU code; "
                              "GPU targets cannot run them")
        if not _bound(node):
            return Launch(self.kernel(node, host_loops))
        if isinstance(node, ir.For):
            if node.kind.is_gpu:
                return Launch(self.kernel(node, host_loops))
            if node.kind in _FORBIDDEN:
                raise TargetError(f"loop {node.var} is marked {node.kind.primitive}, a CPU loop "
                                  "kind: GPU targets run bound loops (Schedule.bind)")
            return ir.For(node.var, node.start, node.stop, node.step,
                          self.host(node.body, host_loops + (node,)), loop_id=node.loop_id)
        if isinstance(node, ir.If):
            return ir.If(node.cond, self.host(node.then, host_loops),
                         None if node.else_ is None else self.host(node.else_, host_loops))
        assert isinstance(node, ir.Block), node
        parts: list = []
        serial: list[ir.Stmt] = []  # consecutive statements without bound loops: one kernel
        for s in (*node.stmts, None):
            if s is not None and not _bound(s):
                serial.append(s)
                continue
            if serial:
                one = serial[0] if len(serial) == 1 else ir.Block(tuple(serial))
                parts.append(Launch(self.kernel(one, host_loops)))
                serial = []
            if s is not None:
                parts.append(self.host(s, host_loops))
        return ir.Block(tuple(parts))

    # -- one kernel --------------------------------------------------------------------
    def kernel(self, root: ir.Stmt, host_loops: tuple[ir.For, ...]) -> Kernel:
        name = f"{self.fn.name}_kernel{len(self.kernels)}"
        axes = {n.kind for n in ir.walk(root) if isinstance(n, ir.For) and n.kind.is_gpu}
        threads = any(k.is_thread for k in axes)
        loops: list[BoundLoop] = []
        body = self.device(root, _Path(), axes, threads, loops, host_loops, name)
        grid, block = [], []
        for prefix, out in (("blockIdx.", grid), ("threadIdx.", block)):
            for axis in AXES:
                exts = [b.extent for b in loops if b.kind.value == prefix + axis]
                out.append(_max_all(exts) if exts else ir.Const(1))
        params = self.params(body, tuple(lp.var for lp in host_loops))
        used = {n.array for n in ir.walk(body) if isinstance(n, (ir.Load, ir.Store))}
        temps = [(t, self.temps[t], tuple(self.temp_shapes.get(t, ())))
                 for t in sorted(used & set(self.temps))]
        k = Kernel(name, params, body, tuple(loops), tuple(grid), tuple(block), tuple(temps))
        self.kernels.append(k)
        return k

    def params(self, body: ir.Stmt, host_vars: tuple[str, ...]) -> tuple[KernelParam, ...]:
        names = {n.name for n in ir.walk(body) if isinstance(n, ir.Var)}
        arrays = {n.array for n in ir.walk(body) if isinstance(n, (ir.Load, ir.Store))}
        written = {n.array for n in ir.walk(body) if isinstance(n, ir.Store)}
        shapes = {p.name: p.shape for p in self.fn.params if p.kind == "array"}
        for a in arrays & set(shapes):  # the sizes that linearise subscripts
            names |= {n.name for e in shapes[a] for n in ir.walk(e) if isinstance(n, ir.Var)}
        out = []
        for p in self.fn.params:
            if p.kind == "array" and p.name in arrays:
                out.append(KernelParam(p.name, "array", p.dtype, p.shape, p.name in written))
            elif p.kind != "array" and p.name in names:
                out.append(KernelParam(p.name, p.kind, p.dtype))
        out += [KernelParam(v, "index", INDEX) for v in host_vars if v in names]
        return tuple(out)

    def device(self, node: ir.Stmt, path: _Path, axes: set, threads: bool,
               loops: list[BoundLoop], host_loops: tuple[ir.For, ...], kname: str) -> ir.Stmt:
        """``node`` checked and with barriers, its bound loops recorded in ``loops``."""
        def sub(n, p=path):
            return self.device(n, p, axes, threads, loops, host_loops, kname)

        if isinstance(node, ir.Store):
            missing = [k.value for k in sorted(axes, key=lambda k: k.value)
                       if k not in path.kinds]
            if missing:
                raise ScheduleError(f"kernel {kname}: a statement storing to {node.array} "
                                    f"runs outside the loops bound to {', '.join(missing)}: "
                                    "every block or thread would run it (bind a loop around "
                                    "it, or move it out of the bound loops)")
            return node
        if isinstance(node, ir.Extern):
            if getattr(node.impl, "runs_on_gpu", False):  # a warp's tile (polyop_cuda.wmma)
                return node
            raise TargetError(f"tensorize({node.name}): micro-kernel calls are CPU code; GPU "
                              "targets cannot run them")
        if isinstance(node, ir.If):
            return ir.If(node.cond, sub(node.then, path.guarded(node.cond)),
                         None if node.else_ is None else sub(node.else_, path))
        if isinstance(node, ir.Block):
            parts = [sub(s) for s in node.stmts]
            if threads and not path.in_thread and len(parts) > 1:
                parts = list(itertools.chain.from_iterable(
                    (p, Barrier()) if k < len(parts) - 1 and not _ends_with_barrier(p) else (p,)
                    for k, p in enumerate(parts)))
            elif path.in_thread and len(parts) > 1 and any(_bound(s) for s in node.stmts):
                raise ScheduleError(f"kernel {kname}: statements run in sequence inside thread "
                                    f"loop {path.thread_name()} and around other thread loops; "
                                    "bind the thread loops outermost in the kernel")
            return ir.Block(tuple(parts))
        assert isinstance(node, ir.For), node
        kind = node.kind
        if kind in _FORBIDDEN:
            raise TargetError(f"loop {node.var} is marked {kind.primitive}, a CPU loop kind: "
                              "GPU targets run bound loops (Schedule.bind)")
        if not kind.is_gpu:
            inner = path.enter(node, serial=True)
            body = sub(node.body, inner)
            if _bound(node.body):
                if path.in_thread:
                    raise ScheduleError(f"kernel {kname}: sequential loop {node.var} runs "
                                        f"inside thread loop {path.thread_name()} and around "
                                        "other thread loops; threads could not wait for each "
                                        "other there (bind the loops inside it, or make it "
                                        "the innermost)")
                if any(not n.kind.is_thread for n in ir.walk(node.body)
                       if isinstance(n, ir.For) and n.kind.is_gpu):
                    raise ScheduleError(f"kernel {kname}: sequential loop {node.var} runs "
                                        "between block loops; blocks cannot wait for each "
                                        "other (move it out of the kernel, above the "
                                        "outermost bound loop, or inside the block loops)")
            if threads and not path.in_thread and not _ends_with_barrier(body):
                body = ir.Block((body, Barrier()))
            return ir.For(node.var, node.start, node.stop, node.step, body, kind, node.loop_id)
        for outer in path.bound:
            if outer.kind is kind:
                raise ScheduleError(f"kernel {kname}: loops {outer.var} and {node.var} are both "
                                    f"bound to {kind.value} on one path")
            if outer.kind.is_thread and not kind.is_thread:
                raise ScheduleError(f"kernel {kname}: thread loop {outer.var} "
                                    f"({outer.kind.value}) encloses block loop {node.var} "
                                    f"({kind.value})")
        if not kind.is_thread and path.serial:
            raise ScheduleError(f"kernel {kname}: block loop {node.var} runs inside sequential "
                                f"loop {path.serial[-1]} of the kernel; blocks cannot wait for "
                                "each other (move the sequential loop out of the kernel)")
        loops.append(BoundLoop(node.var, kind, self.extent(node, path, host_loops), node.var))
        body = sub(node.body, path.enter(node, bound=True))
        return ir.For(node.var, node.start, node.stop, node.step, body, kind, node.loop_id)

    def extent(self, loop: ir.For, path: _Path, host_loops: tuple[ir.For, ...]) -> ir.Expr:
        """The largest trip count of ``loop`` under the kernel's loops ``path``:
        for every iteration of the host loops for a thread loop (one block
        size for all launches of the kernel: OpenCL implementations such as
        PoCL compile a kernel again for each new work-group size), for the
        current one (a parameter) for a block loop."""
        if loop.kind.is_thread:
            path = _Path(host_loops + path.loops, path.conds)
            host_loops = ()
        return _extent(loop, path, self.sizes + [lp.var for lp in host_loops],
                       self.program.context)


class _Path:
    """What encloses a node inside a kernel: its loops (outermost first),
    the conditions around it, the bound loops and the sequential loops."""

    def __init__(self, loops=(), conds=(), bound=(), serial=()):
        self.loops: tuple[ir.For, ...] = loops
        self.conds: tuple[ir.Expr, ...] = conds
        self.bound: tuple[ir.For, ...] = bound
        self.serial: tuple[str, ...] = serial

    @property
    def kinds(self) -> set[LoopKind]:
        return {b.kind for b in self.bound}

    @property
    def in_thread(self) -> bool:
        return any(b.kind.is_thread for b in self.bound)

    def thread_name(self) -> str:
        return next(b.var for b in self.bound if b.kind.is_thread)

    def enter(self, loop: ir.For, bound: bool = False, serial: bool = False) -> _Path:
        return _Path(self.loops + (loop,), self.conds, self.bound + ((loop,) if bound else ()),
                     self.serial + ((loop.var,) if serial else ()))

    def guarded(self, cond: ir.Expr) -> _Path:
        return _Path(self.loops, self.conds + (cond,), self.bound, self.serial)


def _ends_with_barrier(node) -> bool:
    """Whether every thread passes a barrier after the last store of ``node``
    (a loop whose body ends with one does, after its last iteration; one
    that runs no iteration stores nothing)."""
    if isinstance(node, Barrier):
        return True
    if isinstance(node, ir.Block):
        return bool(node.stmts) and _ends_with_barrier(node.stmts[-1])
    if isinstance(node, ir.For) and not node.kind.is_gpu:
        return _ends_with_barrier(node.body)
    return False


def _max_all(exprs: list[ir.Expr]) -> ir.Expr:
    out = exprs[0]
    for e in exprs[1:]:
        out = out if e == out else ir.Bin("max", out, e, INDEX)
    return out


# -- isl: extents -----------------------------------------------------------------------------

def _extent(loop: ir.For, path: _Path, params: list[str], context: isl.Set) -> ir.Expr:
    pnames = {p: f"p{k}" for k, p in enumerate(params)}
    dnames = {lp.var: f"d{k}" for k, lp in enumerate(path.loops)}
    names = {**pnames, **dnames}
    cons = []
    for lp in path.loops:
        v = dnames[lp.var]
        cons.append(f"{isl_text(lp.start, names)} <= {v} < {isl_text(lp.stop, names)}")
    for c in path.conds:
        try:
            cons.append(isl_text(c, names))
        except NotAnIndexError:  # a data-dependent condition: the extent covers both ways
            pass
    cons.append(f"0 <= t and {isl_text(loop.start, names)} + {loop.step} * t < "
                f"{isl_text(loop.stop, names)}")
    text = (f"[{', '.join(pnames.values())}] -> {{ [{', '.join([*dnames.values(), 't'])}] : "
            f"{' and '.join(cons)} }}")
    trips = isl.Set(text).project_out(isl.dim_type.set, 0, len(dnames))
    ctx = isl.Set(f"[{', '.join(pnames.values())}] -> {{ : }}")
    zero = isl.PwAff.zero_on_domain(isl.LocalSpace.from_space(ctx.get_space()))
    # max t + 1 where the loop runs, 0 where it does not
    extent = trips.dim_max(0).add_constant_val(isl.Val(1)).union_max(zero)
    extent = extent.gist_params(_aligned_context(context, pnames, ctx)).coalesce()
    expr = pw_aff_to_ir(extent, selects=True)  # "n == 0 ? 0 : min(32, n)" is a host value
    back = {v: ir.Var(k, INDEX) for k, v in pnames.items()}
    return ir.substitute(expr, back)


def _aligned_context(context: isl.Set, pnames: dict[str, str], ctx: isl.Set) -> isl.Set:
    """The program's context (its assumptions on sizes) over the renamed
    parameters ``ctx``; sizes that are not parameters here projected out."""
    for k in reversed(range(context.dim(isl.dim_type.param))):
        name = context.get_dim_name(isl.dim_type.param, k)
        if name in pnames:
            context = context.set_dim_name(isl.dim_type.param, k, pnames[name])
        else:
            context = context.project_out(isl.dim_type.param, k, 1)
    return ctx.intersect(context.align_params(ctx.get_space()))
