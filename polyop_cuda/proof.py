"""The safety proof of a GPU kernel's shared and local buffers, with isl.

Run on every generated kernel (``polyop_cuda.lowering``). Two properties:

1. **no race in shared memory**: any two accesses to one element of a shared
   buffer by two different threads of one block, at least one a write, are
   separated by a barrier;
2. **bounds**: every access to a shared or local buffer stays inside it.

Model. An access instance is a point ``[bx, by, bz, tx, ty, tz, t0 …]``: the
block and thread indices that run it, and its *phase*: its position in the
block-level execution (``t``: positions in sequences and values of the
sequential loops outside the thread loops, zero-padded; everything a thread
runs inside its thread loops shares one phase). The access relation maps
instances to buffer elements, under the loops' bounds and the guards (a
bound loop ``v`` is ``start + step * idx`` below ``stop``). Barriers run at
block level: a barrier instance is ``[bx, by, bz, t …]``. Two instances of one
block are separated when a barrier of that block lies strictly between their
phases (lexicographic order). A race is a pair with the same block, different
threads, the same element, one a write, and no barrier between them: isl
subtracts the separated pairs from the conflicting ones; anything left is a
``UnsafeKernelError`` naming the two accesses, the threads, the block and the
element (a sample isl picks). Guards that are not affine are dropped (more
instances): the proof stays sound.

Example::

    >>> from polyop import ir
    >>> from polyop.kinds import LoopKind
    >>> from polyop.types import f32
    >>> from polyop_cuda.kernel_ir import Kernel
    >>> tx = ir.Var("tx")
    >>> one = ir.Const(1)
    >>> write = ir.For("tx", ir.Const(0), ir.Const(32), 1,
    ...                ir.Store("S", (tx,), ir.Const(0.0, f32)), LoopKind.THREAD_X)
    >>> read = ir.For("tx", ir.Const(0), ir.Const(32), 1,
    ...               ir.Store("G", (tx,), ir.Load("S", (ir.Bin("sub", ir.Const(31), tx,
    ...                        ir.INDEX),), f32)), LoopKind.THREAD_X)
    >>> k = Kernel("k", (), ir.Block((write, read)), (), (one,) * 3,
    ...            (ir.Const(32), one, one), shared=(("S", f32, (32,)),))
    >>> prove_kernel(k)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    polyop_cuda.proof.UnsafeKernelError: kernel k: race on shared S[...]: ...
    >>> prove_kernel(replace(k, body=ir.Block((write, Barrier(), read))))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import islpy as isl

from polyop import ir
from polyop.errors import CodegenError
from polyop.polyhedra import Names, exists, path_constraints

from .kernel_ir import AXES, Barrier, GpuProgram, Kernel

__all__ = ["UnsafeKernelError", "needed_barriers", "prove_kernel", "prove_program",
           "replace"]


class UnsafeKernelError(CodegenError):
    """A kernel the proof refuses: ``problem`` is ``"race"`` or ``"bounds"``."""


@dataclass(frozen=True)
class _Access:
    buffer: str
    index: tuple[ir.Expr, ...]
    write: bool
    stmt: ir.Store
    loops: tuple[ir.For, ...]
    conds: tuple[ir.Expr, ...]
    time: tuple[str, ...]  # block-level phase, loop IR variables or positions


def prove_program(prog: GpuProgram) -> None:
    """``prove_kernel`` for each kernel of ``prog``."""
    for k in prog.kernels:
        prove_kernel(k)


def prove_kernel(k: Kernel) -> None:
    """Prove ``k`` race-free in shared memory and in bounds in its shared and
    local buffers, or raise ``UnsafeKernelError`` (see the module docstring)."""
    if k in _PROVEN:
        return
    model = _model(k)
    if model is not None:
        model.check_all_bounds()
        model.check_races(model.separated([True] * len(model.barriers)))
    _remember(k)


def needed_barriers(k: Kernel, optional) -> list[bool]:
    """Which barriers of ``k`` (pre-order) the proof needs: the barriers for
    which ``optional(barrier)`` holds are dropped one at a time, in order,
    while the kernel stays race-free; the others are kept. One model serves
    every trial (the accesses and each barrier's separation are built once;
    a trial is a union and one inclusion test), so pruning costs about one
    proof. Raises ``UnsafeKernelError`` when even every barrier is not enough.
    """
    model = _model(k)
    if model is None:
        return [True for _ in _barrier_nodes(k.body)]
    model.check_all_bounds()
    keep = [True] * len(model.barriers)
    model.check_races(model.separated(keep))
    for i, node in enumerate(model.barrier_nodes):
        if not optional(node):
            continue
        keep[i] = False
        if not model.race_free(model.separated(keep)):
            keep[i] = True
    return keep


_PROVEN: dict[Kernel, None] = {}


def _remember(k: Kernel) -> None:
    """Kernels proven here (lowering proves what promotion just proved)."""
    if len(_PROVEN) > 64:
        _PROVEN.pop(next(iter(_PROVEN)))
    _PROVEN[k] = None


def _barrier_nodes(node):
    from .kernel_ir import walk
    return [n for n in walk(node) if isinstance(n, Barrier)]


def _model(k: Kernel):
    shared = {name: shape for name, _, shape in k.shared}
    local = {name: shape for name, _, shape in k.temps if shape}
    if not shared and not local:
        return None
    accesses: list[_Access] = []
    barriers: list[tuple] = []
    _collect(k.body, (), (), (), False, set(shared) | set(local), accesses, barriers)
    params = [p.name for p in k.params if p.kind in ("size", "index")]
    return _Model(k, params, accesses, barriers, shared, local)


def _collect(node, loops, conds, time, in_thread, buffers, out, barriers) -> None:
    if isinstance(node, Barrier):
        if in_thread:
            raise AssertionError("a barrier inside a thread loop")
        barriers.append((loops, conds, time, node))
    elif isinstance(node, ir.Block):
        for pos, s in enumerate(node.stmts):
            _collect(s, loops, conds, time if in_thread else time + (str(pos),), in_thread,
                     buffers, out, barriers)
    elif isinstance(node, ir.If):
        _collect(node.then, loops, conds + (node.cond,), time, in_thread, buffers, out, barriers)
        if node.else_ is not None:
            _collect(node.else_, loops, conds + (ir.Not(node.cond),), time, in_thread, buffers,
                     out, barriers)
    elif isinstance(node, ir.For):
        thread = in_thread or node.kind.is_thread
        serial = not node.kind.is_gpu and not in_thread
        _collect(node.body, loops + (node,), conds, time + ((node.var,) if serial else ()),
                 thread, buffers, out, barriers)
    else:
        assert isinstance(node, ir.Store), node
        if node.array in buffers:
            out.append(_Access(node.array, node.index, True, node, loops, conds, time))
        for e in (*node.index, node.value):
            for x in ir.walk(e):
                if isinstance(x, ir.Load) and x.array in buffers:
                    out.append(_Access(x.array, x.index, False, node, loops, conds, time))


class _Model:
    def __init__(self, k: Kernel, params, accesses, barriers, shared, local):
        self.k, self.params = k, params
        self.shared, self.buffers = shared, {**shared, **local}
        self.length = max([len(a.time) for a in accesses] + [len(b[2]) for b in barriers] + [0])
        self.ids = ["bx", "by", "bz", "tx", "ty", "tz"]
        self.phase = [f"t{j}" for j in range(self.length)]
        self.accesses, self.maps = accesses, [self._map(a) for a in accesses]
        self.barriers = [self._instances(b) for b in barriers]
        self.barrier_nodes = [b[3] for b in barriers]
        self._conflicts: list | None = None

    def _ids(self, loops, names: Names, threads: bool = True) -> list[str]:
        """Constraints tying bound loops to the block/thread indices (a barrier,
        run by the whole block, has no thread indices)."""
        cons, seen = [], set()
        for lp in loops:
            if lp.kind.is_gpu:
                idx = ("t" if lp.kind.is_thread else "b") + lp.kind.axis
                seen.add(idx)
                cons.append(f"{names.all[lp.var]} = {names.text(lp.start)} + {lp.step} * {idx}")
        for axis, b in zip(AXES, self.k.block if threads else ()):
            cons.append(f"t{axis} >= 0")
            if isinstance(b, ir.Const):
                cons.append(f"t{axis} < {int(b.value)}")
        cons += [f"b{axis} >= 0" for axis in AXES]
        return cons

    def _domain_text(self, loops, conds, time, threads=True) -> tuple[Names, list[str]]:
        names = Names(self.params, [lp.var for lp in loops])
        cons = path_constraints(loops, conds, names) + self._ids(loops, names, threads)
        padded = [names.all.get(t, t) for t in time] + ["0"] * (self.length - len(time))
        cons += [f"{p} = {t}" for p, t in zip(self.phase, padded)]
        return names, cons

    def _map(self, a: _Access) -> isl.Map:
        names, cons = self._domain_text(a.loops, a.conds, a.time)
        elem = [f"e{d}" for d in range(len(a.index))]
        cons += [f"{e} = {names.text(x)}" for e, x in zip(elem, a.index)]
        return isl.Map(f"[{names.param_list}] -> {{ [{', '.join(self.ids + self.phase)}] -> "
                       f"{a.buffer}[{', '.join(elem)}] : "
                       f"{exists(list(names.vars.values()), cons)} }}")

    def _instances(self, barrier) -> isl.Set:
        """The instances of ``barrier``: (block, phase) points."""
        loops, conds, time, _ = barrier
        names, cons = self._domain_text(loops, conds, time, threads=False)
        return isl.Set(f"[{names.param_list}] -> {{ [{', '.join(['bx', 'by', 'bz'] + self.phase)}]"
                       f" : {exists(list(names.vars.values()), cons)} }}")

    def separated(self, keep) -> isl.Map:
        """Pairs of instances of one block with a kept barrier (``keep``: one
        flag each) strictly between their phases, either way round."""
        n = 3 + self.length
        lt = isl.Map.lex_lt(isl.Space.set_alloc(isl.DEFAULT_CONTEXT, 0, n))
        params = f"[{', '.join(Names(self.params).params.values())}]"
        bars = isl.Set(f"{params} -> {{ [{', '.join(['bx', 'by', 'bz'] + self.phase)}] : false }}")
        for b, k in zip(self.barriers, keep):
            if k:
                bars = bars.union(b.align_params(bars.get_space()))
        lt = lt.align_params(bars.get_space())
        between = lt.intersect_range(bars).apply_range(lt.intersect_domain(bars))
        between = between.union(between.reverse())
        inst = ", ".join(self.ids + self.phase)
        proj = isl.Map(f"{{ [{inst}] -> [{', '.join(['bx', 'by', 'bz'] + self.phase)}] }}")
        proj = proj.align_params(bars.get_space())
        return proj.apply_range(between).apply_range(proj.reverse())

    def conflicts(self) -> list:
        """(write, access, instance pairs): the same shared element touched by
        two threads of one block, the first access a write."""
        if self._conflicts is None:
            inst = self.ids + self.phase
            other = [f"{x}_" for x in inst]
            diff = isl.Map(f"{{ [{', '.join(inst)}] -> [{', '.join(other)}] : "
                           f"bx = bx_ and by = by_ and bz = bz_ and "
                           f"(tx != tx_ or ty != ty_ or tz != tz_) }}")
            out = []
            for a, ma in zip(self.accesses, self.maps):
                if not a.write or a.buffer not in self.shared:
                    continue
                for b, mb in zip(self.accesses, self.maps):
                    if b.buffer != a.buffer:
                        continue
                    pairs = ma.apply_range(mb.reverse())
                    pairs = pairs.intersect(diff.align_params(pairs.get_space()))
                    if not pairs.is_empty():
                        out.append((a, b, pairs))
            self._conflicts = out
        return self._conflicts

    def race_free(self, separated: isl.Map) -> bool:
        """Every conflicting pair separated (one inclusion test)."""
        pairs = [p for _, _, p in self.conflicts()]
        if not pairs:
            return True
        whole = pairs[0]
        for p in pairs[1:]:
            whole = whole.union(p.align_params(whole.get_space()))
        return whole.is_subset(separated.align_params(whole.get_space()))

    def check_all_bounds(self) -> None:
        for a in self.accesses:
            self.check_bounds(a, self.buffers[a.buffer])

    def check_bounds(self, a: _Access, shape) -> None:
        m = self.maps[self.accesses.index(a)]
        elem = [f"e{d}" for d in range(len(shape))]
        inside = " and ".join(f"0 <= {e} < {n}" for e, n in zip(elem, shape)) or "true"
        box = isl.Set(f"{{ {a.buffer}[{', '.join(elem)}] : {inside} }}")
        outside = m.range().subtract(box.align_params(m.get_space()))
        if not outside.is_empty():
            pt = outside.sample_point()
            el = [str(pt.get_coordinate_val(isl.dim_type.set, d).to_python())
                  for d in range(len(shape))]
            what = "writes" if a.write else "reads"
            raise UnsafeKernelError(
                f"kernel {self.k.name}: `{_text(a.stmt)}` {what} {a.buffer}"
                f"[{', '.join(map(str, el))}], outside the buffer {a.buffer}"
                f"[{', '.join(map(str, shape))}] (sizes {self._params(pt)})",
                _text(a.stmt), f"{a.buffer}[{', '.join(el)}]", "bounds")

    def _params(self, pt) -> str:
        names = Names(self.params).params
        return ", ".join(f"{n} = {pt.get_coordinate_val(isl.dim_type.param, k).to_python()}"
                         for k, n in enumerate(names)) or "none"

    def check_races(self, separated: isl.Map) -> None:
        """Raise ``UnsafeKernelError`` for a conflicting pair not ``separated``."""
        if self.race_free(separated):
            return
        inst = self.ids + self.phase
        for a, b, pairs in self.conflicts():
            ma = self.maps[self.accesses.index(a)]
            pairs = pairs.subtract(separated.align_params(pairs.get_space()))
            if pairs.is_empty():
                continue
            pt = pairs.wrap().sample_point()
            n = len(inst)
            coords = [pt.get_coordinate_val(isl.dim_type.set, d).to_python()
                      for d in range(2 * n)]
            one = isl.Set.from_point(pt).unwrap()
            el = ma.intersect_domain(one.domain()).range()
            ept = el.sample_point()
            elem = [str(ept.get_coordinate_val(isl.dim_type.set, d).to_python())
                    for d in range(el.dim(isl.dim_type.set))]
            ta, tb = tuple(coords[3:6]), tuple(coords[n + 3:n + 6])
            what = "writes" if b.write else "reads"
            buffer = a.buffer
            raise UnsafeKernelError(
                f"kernel {self.k.name}: race on shared {buffer}[{', '.join(elem)}]: "
                f"`{_text(a.stmt)}` writes it in thread {ta} and `{_text(b.stmt)}` {what} "
                f"it in thread {tb} of block {tuple(coords[:3])} with no barrier between "
                f"them (sizes {self._params(pt)})",
                f"{_text(a.stmt)} / {_text(b.stmt)}", f"{buffer}[{', '.join(elem)}]",
                "race")
        raise AssertionError("race_free and the per-pair check disagree")


def _text(s: ir.Store) -> str:
    return str(s).strip().rstrip(";")
