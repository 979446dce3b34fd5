"""Promotion of an array into a buffer per iteration of a loop, for every target.

A promotion copies the part of an array that the instances under one loop
(``at``) touch into a buffer, and makes those instances use the buffer.
Requested on the schedule (``cache_read(A, scope=..., at=loop)``,
``cache_write``, ``promote_shared``: ``requests_from_schedule``), it is
applied to the loop IR at lowering, where the footprints are known:

- **footprint** (``footprint``): the elements of the array accessed under
  ``at`` for one iteration of ``at`` and the loops around it, as a box
  computed with isl: per dimension, the lower corner is one quasi-affine
  function of the outer loops and sizes (``_affine_lower``: the unclamped
  tile's where the smallest subscript is clamped at a boundary) and the size
  the largest width over every iteration, a constant (a footprint without one
  is refused: tile the loops under ``at``). ``set_scope``
  (``polyop.schedule.scope``) sizes its buffers with the same function;
- **rewrite** (``rewrite``): at the start of ``at``'s body the box is copied
  in (when the array is read there), every access under ``at`` is redirected
  to the buffer at ``index - corner``, and at the end the elements written
  (and only those: the written footprint, an isl set, guards the copy-out)
  are copied back; a dimension of extent 1 is dropped from the buffer
  (``squeeze``). Copies are guarded by the array's bounds: the box of a
  boundary tile may stick out of the array. How the box is copied is a
  *copier*: ``serial_copier`` (nested loops; the CPU, and the GPU's
  registers, ``polyop_cuda.registers``) or the GPU's cooperative copy of a
  block's threads with its barriers (``polyop_cuda.promote``);
- **CPU** (``promote_function``): ``scope="local"`` requests become local
  arrays of the kernel (stack buffers, private to each thread inside a
  ``parallel`` loop); ``"shared"`` is a GPU scope and refused;
- **written group** (``_written_group``, CPU): a ``cache_write`` whose
  array has no constant box under ``at`` promotes the elements written
  there alone, with the loads that read them; the array's other loads,
  which never read an element written in the same iteration of ``at``, keep
  reading the array (trmm's row ``B[i, strip]`` accumulated in a buffer
  across ``k`` while the rows ``B[k, strip]`` below it are read in place).

The rewritten loop IR is not validated again against the model, so the
rewrite refuses what it cannot do exactly: an access to the array under
``at`` that cannot be redirected (a micro-kernel call, an atomic update), a
written set that is not known exactly (a store under a data-dependent
condition), a ``parallel`` loop under ``at`` writing the buffer.

Example (footprint of ``A[i, k]`` for a 16 × 16 tile of ``i`` and ``k``)::

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import islpy as isl

from . import ir
from .errors import ScheduleError, TargetError
from .isl_ir import constant_bound
from .kinds import LoopKind
from .polyhedra import Names, NotAffine, exists, path_constraints, pw_to_ir, set_to_ir
from .schedule.tree import find_mark
from .types import INDEX, DType

SCOPES = ("shared", "local")


@dataclass(frozen=True)
class Request:
    """One promotion: ``array`` into ``scope`` at the loop named ``at``
    (``loop``: its schedule loop id, when the request comes from a schedule);
    ``name``: the buffer's; ``auto``: ``promote_shared`` (arrays chosen by the
    reuse test, ``budget`` in bytes or the target's)."""

    array: str
    at: str
    scope: str
    name: str
    auto: bool = False
    budget: int | None = None
    loop: str | None = None
    #: from ``cache_write``: on a CPU, when the whole array's footprint has no
    #: constant box, the elements written may be promoted alone (``Footprint.group``)
    write: bool = False


@dataclass(frozen=True)
class Footprint:
    """The box of ``array`` accessed under a loop: ``offset`` (loop IR
    expressions of the outer loops and sizes), ``size`` (constants);
    ``written``: the guard of the elements written (over ``e0``, ``e1`` …,
    the array's subscripts), ``None`` when nothing is written; ``inside``:
    the guard of the box's elements inside the array, simplified by what the
    loops around imply (``None``: each bound tested)."""

    array: str
    offset: tuple[ir.Expr, ...]
    size: tuple[int, ...]
    written: ir.Expr | None
    inside: ir.Expr | None = None
    #: the accesses promoted, when not all are (``written_group``); None: all
    group: frozenset | None = None


#: how a box is copied: ``copier(request, footprint, dtype, array shape,
#: copy_in)`` is the statement copying it in (or the written elements out)
Copier = Callable[[Request, Footprint, DType, Sequence[ir.Expr], bool], ir.Stmt]


def requests_from_schedule(sch) -> list[Request]:
    """The promotions recorded in ``sch``'s trace (``cache_read``/``cache_write``
    with ``scope="shared"``/``"local"``, ``promote_shared``)."""
    out = []
    for ins in getattr(sch, "trace", ()):
        kw = dict(ins.kwargs)
        if ins.primitive in ("cache_read", "cache_write") and kw.get("scope") in SCOPES:
            _live(sch, kw["at"], ins.labels[0] if ins.labels else ins.primitive)
            at = sch._loops[kw["at"].id].name
            array = ins.args[0] if isinstance(ins.args[0], str) else ins.args[0].name
            out.append(Request(array, at, kw["scope"], kw.get("name") or
                               f"{array}_{kw['scope']}", loop=kw["at"].id,
                               write=ins.primitive == "cache_write"))
        elif ins.primitive == "promote_shared":
            loop = ins.args[0] if ins.args else kw["at"]
            _live(sch, loop, ins.labels[0] if ins.labels else ins.primitive)
            at = sch._loops[loop.id].name
            out.append(Request("", at, "shared", "", True, kw.get("budget"), loop.id))
    return out


def _live(sch, loop, what: str) -> None:
    """Refuse a promotion whose loop a later primitive replaced (split, fused,
    ...): the buffer was asked for per iteration of a loop that is gone."""
    ident = loop.id
    info = sch._loops.get(ident)
    if info is None or ident in sch._gone or find_mark(sch.tree.get_root(), ident) is None:
        why = sch._gone.get(ident, "a later primitive removed it")
        raise ScheduleError(f"{what}: loop {info.name if info else ident} is gone from the "
                            f"schedule ({why}); promote at one of the loops that replaced it")


# -- footprints -----------------------------------------------------------------------------

def accesses(node, loops=(), conds=()):
    """(Load or Store, enclosing loops, guards) of every access under ``node``;
    statements of other kinds (a GPU barrier, a micro-kernel call) are skipped."""
    def loads(e):
        return (x for x in ir.walk(e) if isinstance(x, ir.Load))

    if isinstance(node, ir.Store):
        yield node, loops, conds
        for e in (*node.index, node.value):
            for x in loads(e):
                yield x, loops, conds
    elif isinstance(node, ir.For):
        for e in (node.start, node.stop):
            for x in loads(e):
                yield x, loops, conds
        yield from accesses(node.body, loops + (node,), conds)
    elif isinstance(node, ir.If):
        for x in loads(node.cond):  # a data-dependent guard reads too
            yield x, loops, conds
        yield from accesses(node.then, loops, conds + (node.cond,))
        if node.else_ is not None:
            yield from accesses(node.else_, loops, conds + (ir.Not(node.cond),))
    elif isinstance(node, ir.Block):
        for s in node.stmts:
            yield from accesses(s, loops, conds)


def footprint(array: str, outer_loops, outer_conds, inner_loops, inner_conds, stmts,
              params, outer_vars) -> Footprint:
    """The footprint box of ``array`` in ``stmts`` (see the module docstring):
    ``outer_*`` enclose the promotion point (their variables, ``outer_vars``,
    are fixed), ``inner_*`` are below it, ``params`` the sizes."""
    fp, _ = _footprint(array, outer_loops, outer_conds, stmts, params, outer_vars,
                       extra=(inner_loops, inner_conds))
    return fp


def _footprint(array, outer_loops, outer_conds, stmts, params, outer_vars, extra=None,
               shape=(), bounds=False, written_group=False, assumed: isl.Set | None = None):
    """The footprint and, for the GPU's reuse test, the names and accesses;
    ``bounds``: also the array's bounds as a guard of the box's elements,
    simplified where the loops around imply them (``Footprint.inside``);
    ``written_group``: the footprint of the *written group* alone, the stores
    and the loads of an element they write (``_written_group``), where the
    sizes satisfy ``assumed`` (the kernel's context: its assumptions)."""
    names = Names(list(params) + list(outer_vars))
    outer = path_constraints(outer_loops, outer_conds, names)
    sets, wsets, accs = [], [], []
    for stmt in stmts:
        for acc, loops, conds in accesses(stmt):
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
                                    f"{array}[{', '.join(map(str, acc.index))}] (or a loop "
                                    "bound around it) is not affine") from None
            s = isl.Set(f"[{names.param_list}] -> {{ [{', '.join(dims)}] : "
                        f"{exists(inner, cons)} }}")
            sets.append(s)
            accs.append((acc, loops, conds, nm))
            if isinstance(acc, ir.Store):
                wsets.append(s)
    if not sets:
        raise ScheduleError(f"promotion of {array}: no access to {array} under the loop")
    group = None
    if written_group:
        if assumed is not None:  # the sizes by the isl names of these sets
            for d in range(assumed.dim(isl.dim_type.param)):
                size = assumed.get_dim_name(isl.dim_type.param, d)
                if size in names.params:
                    assumed = assumed.set_dim_name(isl.dim_type.param, d, names.params[size])
        group, keep = _written_group(array, sets, wsets, accs, assumed)
        sets, accs = [sets[k] for k in keep], [accs[k] for k in keep]
    whole = _union(sets)
    context = isl.Set(f"[{names.param_list}] -> {{ : {' and '.join(outer) or 'true'} }}")
    offset, size = [], []
    for d in range(whole.dim(isl.dim_type.set)):
        lo, hi = whole.dim_min(d), whole.dim_max(d)
        low, width = _affine_lower(lo, hi, context)
        if width is None:
            raise ScheduleError(f"promotion of {array}: its footprint has no constant size "
                                f"along dimension {d} (tile the loops under the promotion "
                                "point by constants)")
        size.append(width)
        offset.append(pw_to_ir(low, names))
    dims = [f"e{d}" for d in range(len(size))]
    box = outer + [f"{names.text(o)} <= e{d} < {names.text(o)} + {m}"
                   for d, (o, m) in enumerate(zip(offset, size))]
    try:
        array_bounds = [f"0 <= e{d} < {names.text(x)}" for d, x in enumerate(shape)]
    except NotAffine:
        array_bounds = []

    def condition(s: isl.Set, known: list[str]) -> ir.Expr:
        """``s``, over the subscripts, as a condition where ``known`` holds."""
        around = isl.Set(f"[{names.param_list}] -> {{ [{', '.join(dims)}] : "
                         f"{' and '.join(known) or 'true'} }}")
        s = s.union(around.complement()).coalesce().gist(around).coalesce()
        s = s.move_dims(isl.dim_type.param, s.dim(isl.dim_type.param), isl.dim_type.set, 0,
                        len(dims))
        return set_to_ir(s.gist_params(context.align_params(s.get_space())), names)

    written = None
    if wsets:  # the copy-out's other guards hold where it is tested: isl drops what they imply
        written = condition(_union(wsets), box + array_bounds)
    inside = None
    if bounds and array_bounds:
        inside = condition(isl.Set(f"[{names.param_list}] -> {{ [{', '.join(dims)}] : "
                                   f"{' and '.join(array_bounds)} }}"), box)
    return Footprint(array, tuple(offset), tuple(size), written, inside, group), (names, accs)


def _written_group(array: str, sets, wsets, accs,
                   assumed: isl.Set | None = None) -> tuple[frozenset, list[int]]:
    """The written group of ``array`` under a loop: its stores, and each load
    that reads an element they write in some iteration of the loop (for one
    iteration of it and the loops around: the sets' parameters). The other
    loads read, in every iteration, only elements nobody writes there, so
    they may keep reading the array while the group works on a buffer: the
    copy-in gives the group the array's values, the copy-out writes back
    only what the group wrote, and the two never meet. (trmm's
    ``B[i, j] += A[k, i] * B[k, j]`` at ``i``: ``B[i, j]`` is the group,
    ``B[k, j]`` with ``k > i`` is never written in that iteration of ``i``.)
    Only sizes that satisfy ``assumed`` count. Returns the group (access
    nodes) and the positions of its accesses."""
    if not wsets:
        raise ScheduleError(f"promotion of {array}: nothing writes {array} under the loop, "
                            "so there is no written group to promote")
    written = _union(wsets)

    def meets(s: isl.Set) -> bool:
        both = s.intersect(written)
        return not (both if assumed is None else both.intersect_params(assumed)).is_empty()

    group = {acc for (acc, *_), s in zip(accs, sets) if isinstance(acc, ir.Store) or meets(s)}
    # an access equal to a member is one (isl may generate a statement twice)
    return frozenset(group), [k for k, (acc, *_) in enumerate(accs) if acc in group]


def _affine_lower(lo: isl.PwAff, hi: isl.PwAff,
                  context: isl.Set | None = None) -> tuple[isl.PwAff, int | None]:
    """One affine lower bound of a footprint's dimension and the box's width
    from it (``None``: no constant width), where the parameters satisfy
    ``context`` (the loops and guards around the promotion point).

    The smallest subscript ``lo`` is piecewise where a tile meets the
    domain's boundary (a stencil's first tile starts at its halo's clamped
    edge): a piece of ``lo`` that is below ``lo`` everywhere, with a constant
    width up to ``hi``, is the offset of the unclamped tile, one expression
    for every tile; the elements it adds outside the array are never copied
    (the copies are guarded by the array's bounds). The narrowest such piece
    wins; a single-piece ``lo`` is its own answer.

    >>> lo = isl.PwAff("[t] -> { [max(0, 4 * t - 1)] }")
    >>> hi = isl.PwAff("[t] -> { [4 * t + 4] }")
    >>> low, width = _affine_lower(lo, hi)
    >>> print(low, width)
    [t] -> { [(-1 + 4t)] } 6
    """
    where = lo.domain()
    if context is not None:  # the box only holds where the code runs
        lo, hi = lo.gist_params(context), hi.gist_params(context)
        where = lo.domain().intersect_params(context)
    best: tuple[isl.PwAff, int | None] = (lo, None)
    candidates = [lo] if lo.n_piece() <= 1 else \
        [isl.PwAff.from_aff(aff) for _, aff in lo.get_pieces()]
    for cand in candidates:
        if lo.n_piece() > 1 and not where.is_subset(lo.ge_set(cand)):
            continue
        diff = hi - cand
        width = constant_bound(diff if context is None else diff.intersect_params(context),
                               "max")
        if width is None or not width.is_int():
            continue
        if best[1] is None or int(width.to_python()) + 1 < best[1]:
            best = (cand, int(width.to_python()) + 1)
    return best


def _union(sets):
    out = sets[0]
    for s in sets[1:]:
        out = out.union(s)
    return out.coalesce()


# -- the loop IR rewrite --------------------------------------------------------------------

def simplify(e: ir.Expr) -> ir.Expr:
    """``e`` rewritten by isl (quasi-affine), else as it is."""
    free = sorted({v.name for v in ir.walk(e) if isinstance(v, ir.Var)})
    names = Names(free)
    try:
        pa = isl.PwAff(f"[{names.param_list}] -> {{ [({names.text(e)})] }}")
    except NotAffine:
        return e
    return pw_to_ir(pa, names)


def redirect(node, array: str, buf: str, offset, group: frozenset | None = None):
    """``node`` with accesses to ``array`` (those in ``group``, when given)
    made to ``buf`` at ``index - offset``.
    A micro-kernel call or an atomic update of ``array`` cannot be redirected
    (the call's strides, the update's atomicity across copies): refused."""
    def idx(index):
        return tuple(simplify(ir.Bin("sub", x, o, INDEX)) for x, o in zip(index, offset))

    def expr(e):
        if isinstance(e, ir.Load) and e.array == array and (group is None or e in group):
            return ir.Load(buf, idx(tuple(expr(x) for x in e.index)), e.dtype)
        return ir.map_children(e, expr)

    def stmt(s):
        if isinstance(s, ir.Store):
            if s.atomic and s.array == array:
                raise ScheduleError(f"promotion of {array} into {buf}: {s} is an atomic "
                                    "update (a parallel reduction); a copy would lose it")
            index = tuple(expr(x) for x in s.index)
            return replace(s, array=buf if s.array == array else s.array,
                           index=idx(index) if s.array == array else index, value=expr(s.value))
        if isinstance(s, ir.For):
            return replace(s, start=expr(s.start), stop=expr(s.stop), body=stmt(s.body))
        if isinstance(s, ir.If):
            return ir.If(expr(s.cond), stmt(s.then), None if s.else_ is None else stmt(s.else_))
        if isinstance(s, ir.Block):
            return ir.Block(tuple(stmt(x) for x in s.stmts))
        if isinstance(s, ir.Extern) and any(isinstance(n, ir.Load) and n.array == array
                                            for a in s.args for n in ir.walk(a)):
            raise ScheduleError(f"promotion of {array} into {buf}: the micro-kernel call "
                                f"{s.name} uses {array} by address; promote outside the "
                                "tensorized loops")
        return s  # a barrier, a call that does not touch the array

    return stmt(node)


def _guard(fp: Footprint, glob, gshape, copy_in: bool) -> ir.Expr | None:
    """The condition of copying the element ``glob`` (``None``: always)."""
    conds: list[ir.Expr] = []
    at = {f"e{d}": g for d, g in enumerate(glob)}
    if fp.inside is not None:
        conds.append(ir.substitute(fp.inside, at))
    else:
        for g, n in zip(glob, gshape):
            conds += [ir.Cmp("ge", g, ir.Const(0)), ir.Cmp("lt", g, n)]
    if not copy_in:
        conds.append(ir.substitute(fp.written, at))
    conds = [c for c in conds if not (isinstance(c, ir.Const) and c.value)]
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = ir.Logic("and", out, c)
    return out


def copy_element(r: Request, fp: Footprint, dtype: DType, gshape, local,
                 copy_in: bool) -> ir.Stmt:
    """The copy of the box's element ``local`` (buffer subscripts) in or out,
    guarded by the array's bounds ``gshape`` (and, out, the written set)."""
    glob = tuple(simplify(ir.Bin("add", o, x, INDEX)) for o, x in zip(fp.offset, local))
    if copy_in:
        st = ir.Store(r.name, local, ir.Load(r.array, glob, dtype))
    else:
        st = ir.Store(r.array, glob, ir.Load(r.name, local, dtype))
    guard = _guard(fp, glob, gshape, copy_in)
    return st if guard is None else ir.If(guard, st)


def serial_copier(kind: LoopKind = LoopKind.SERIAL) -> Copier:
    """The copier of one thread: loops over the box, row-major, of ``kind``."""
    def copy(r: Request, fp: Footprint, dtype: DType, gshape, copy_in: bool) -> ir.Stmt:
        tag = "in" if copy_in else "out"
        local = tuple(ir.Var(f"{r.name}_{tag}{d}", INDEX) for d in range(len(fp.size)))
        node: ir.Stmt = copy_element(r, fp, dtype, gshape, local, copy_in)
        for v, n in reversed(list(zip(local, fp.size))):
            node = ir.For(v.name, ir.Const(0), ir.Const(n), 1, node, kind)
        return node
    return copy


def rewrite(at: ir.For, r: Request, fp: Footprint, dtype: DType, gshape, copier: Copier,
            transform: Callable[[ir.Stmt], ir.Stmt] | None = None) -> ir.For:
    """``at`` with its body running on the buffer: copy-in (when ``r.array`` is
    read there), the body redirected (then ``transform``-ed), copy-out of the
    written elements (when some are written)."""
    body = redirect(at.body, r.array, r.name, fp.offset, fp.group)
    if transform is not None:
        body = transform(body)
    read = any(isinstance(n, ir.Load) and n.array == r.array and
               (fp.group is None or n in fp.group) for n in ir.walk(at.body))
    parts = [copier(r, fp, dtype, gshape, True) if read else None, body,
             copier(r, fp, dtype, gshape, False) if fp.written is not None else None]
    return replace(at, body=ir.Block(tuple(p for p in parts if p is not None)))


# -- CPU targets ----------------------------------------------------------------------------

def promote_function(fn: ir.Function, requests: Sequence[Request],
                     assumed: isl.Set | None = None) -> ir.Function:
    """``fn``, a CPU kernel's loop IR, with the promotions ``requests`` applied:
    each buffer a local array of the kernel (a stack array, private to each
    thread inside a ``parallel`` loop), copied by ``serial_copier`` at every
    loop named ``at`` (isl may generate a loop more than once), its shape the
    largest box. ``"shared"`` (GPU shared memory) is a ``TargetError``; what
    cannot be promoted exactly a ``ScheduleError`` (module docstring).

    Example (a 4-element strip of ``A`` per iteration of ``io``)::

        >>> from polyop.types import f64, i64
        >>> i = ir.Bin("add", ir.Bin("mul", ir.Const(4), ir.Var("io"), INDEX), ir.Var("ii"),
        ...            INDEX)
        >>> nest = ir.For("io", ir.Const(0), ir.Const(2), 1, ir.For("ii", ir.Const(0),
        ...               ir.Const(4), 1, ir.Store("B", (i,), ir.Load("A", (i,), f64))))
        >>> fn = ir.Function("copy", (ir.Param("A", "array", f64, (ir.Const(8),)),
        ...                  ir.Param("B", "array", f64, (ir.Const(8),))), (), nest)
        >>> new = promote_function(fn, [Request("A", "io", "local", "A_local")])
        >>> new.temps, new.meta["temp_shapes"]
        ((('A_local', f64),), {'A_local': (4,)})
        >>> print(new.body.body.stmts[1])
        for (ii = 0; ii < 4; ii += 1)
          B[4 * io + ii] = A_local[ii];
    """
    if not requests:
        return fn
    params = [p.name for p in fn.params if p.kind == "size"]
    local_shapes = dict(fn.meta.get("temp_shapes", {}))
    arrays = {p.name: (p.dtype, tuple(p.shape)) for p in fn.params if p.kind == "array"}
    arrays.update({n: (dt, tuple(ir.Const(x, INDEX) for x in local_shapes[n]))
                   for n, dt in fn.temps if n in local_shapes})
    taken = {p.name for p in fn.params} | {n for n, _ in fn.temps} | \
        {x.var for x in ir.walk(fn.body) if isinstance(x, ir.For)}
    body, temps = fn.body, list(fn.temps)
    for r in requests:
        what = f"promotion of {r.array} at loop {r.at}"
        if r.auto or r.scope == "shared":
            who = f"promote_shared at loop {r.at}" if r.auto else what
            raise TargetError(f"{who}: scope 'shared' is GPU "
                              f"shared memory, a GPU scope, and {fn.name} is built for a CPU; "
                              "use scope='local' (a buffer per iteration of the loop) or "
                              "build for target='cuda' or 'opencl'")
        if r.array not in arrays or not arrays[r.array][1]:
            raise ScheduleError(f"{what}: {r.array} is no array of kernel {fn.name} with "
                                "dimensions to tile")
        if r.name in taken:
            raise ScheduleError(f"{what}: the buffer's name {r.name} is taken in kernel "
                                f"{fn.name}; give another one (name=...)")
        if ir.find_loop(body, r.at, ident=r.loop) is None:
            raise ScheduleError(f"{what}: there is no loop {r.at} in the generated code of "
                                f"{fn.name} (an unrolled loop is none: promote at a loop "
                                "around it)")
        dtype, gshape = arrays[r.array]
        sizes: list[tuple[int, ...]] = []

        def one(at: ir.For, loops, conds, r=r, dtype=dtype, gshape=gshape, sizes=sizes,
                what=what):
            if not any(isinstance(n, (ir.Load, ir.Store)) and n.array == r.array
                       for n in ir.walk(at.body)):
                return at  # a copy of the loop for other statements
            _check_exact(r, at, loops, params)
            try:
                where = (r.array, loops + (at,), conds, [at.body], params,
                         [lp.var for lp in loops] + [at.var])
                try:
                    fp, _ = _footprint(*where, shape=gshape, bounds=True)
                except ScheduleError as e:
                    if not (r.write and "no constant size" in str(e)):
                        raise
                    # the whole array under ``at`` has no box: its written group may
                    fp, _ = _footprint(*where, shape=gshape, bounds=True, written_group=True,
                                       assumed=assumed)
                sizes.append(fp.size)
                return rewrite(at, r, fp, dtype, gshape, serial_copier())
            except ScheduleError as e:  # the same refusal, naming the loop too
                raise ScheduleError(str(e).replace(f"promotion of {r.array}", what, 1)) \
                    from None

        body = ir.map_loop(body, r.at, one, ident=r.loop)
        if not sizes:
            raise ScheduleError(f"{what}: no access to {r.array} under the loop")
        shape = tuple(max(s[d] for s in sizes) for d in range(len(sizes[0])))
        body, shape = squeeze(body, r.name, shape)
        temps.append((r.name, dtype))
        local_shapes[r.name] = shape
        arrays[r.name] = (dtype, tuple(ir.Const(x, INDEX) for x in shape))
        taken.add(r.name)
    return replace(fn, body=body, temps=tuple(temps),
                   meta={**fn.meta, "temp_shapes": local_shapes})


def squeeze(body: ir.Stmt, buf: str, shape: tuple[int, ...]) -> tuple[ir.Stmt, tuple[int, ...]]:
    """``body`` and the buffer ``buf``'s shape without the dimensions of
    extent 1 (one is kept if all are): their subscripts are 0 in every
    access. Why: a buffer ``[8][1]`` indexed ``[v][0]`` in a vector loop over
    ``v`` varies in a dimension other than the last, which the vector code
    gathers (``polyop.vector_plan``), where ``[8]`` indexed ``[v]`` is one
    vector (a reduction factored over a vector loop, ``rfactor`` then
    ``cache_write(..., scope="local")``).

    Example::

        >>> from polyop.types import f64
        >>> v = ir.Var("v")
        >>> st = ir.Store("b", (v, ir.Const(0)), ir.Load("b", (v, ir.Const(0)), f64))
        >>> new, shape = squeeze(st, "b", (8, 1))
        >>> print(new)
        b[v] = b[v];
        >>> shape
        (8,)
    """
    keep = [d for d, n in enumerate(shape) if n != 1] or [len(shape) - 1]
    if len(keep) == len(shape):
        return body, shape

    def go(node):
        node = ir.map_children(node, go)
        if isinstance(node, (ir.Load, ir.Store)) and node.array == buf:
            return replace(node, index=tuple(node.index[d] for d in keep))
        return node

    return go(body), tuple(shape[d] for d in keep)


def _check_exact(r: Request, at: ir.For, loops, params) -> None:
    """Refuse a promotion at ``at`` whose copy-out would not be exact: a store
    to ``r.array`` under a guard isl cannot read (its written set would be
    larger than what runs, and writing back an element nobody wrote can undo
    another thread's write), or a ``parallel`` loop under ``at`` storing to
    the buffer (each thread would write its own copy of it)."""
    names = Names(list(params), [lp.var for lp in loops] + [at.var] +
                  [x.var for x in ir.walk(at.body) if isinstance(x, ir.For)])

    def visit(node, conds, par):
        if isinstance(node, ir.Store) and node.array == r.array:
            if par is not None:
                raise ScheduleError(f"promotion of {r.array} at loop {r.at}: the parallel "
                                    f"loop {par} under it writes {r.array}, and each thread "
                                    "would write its own copy of the buffer; promote at or "
                                    f"inside loop {par}")
            for c in conds:
                try:
                    isl.Set(f"[{names.param_list}] -> {{ [{', '.join(names.vars.values())}]"
                            f" : {names.text(c)} }}")
                except (NotAffine, isl.Error):
                    raise ScheduleError(f"promotion of {r.array} at loop {r.at}: {r.array} is "
                                        f"written under the data-dependent condition {c}, so "
                                        "the elements written are not known exactly; promote "
                                        "outside that condition") from None
        elif isinstance(node, ir.For):
            inner = node.var if node.kind is LoopKind.PARALLEL and par is None else par
            visit(node.body, conds, inner)
        elif isinstance(node, ir.If):
            visit(node.then, conds + (node.cond,), par)
            if node.else_ is not None:
                visit(node.else_, conds + (ir.Not(node.cond),), par)
        elif isinstance(node, ir.Block):
            for s in node.stmts:
                visit(s, conds, par)

    visit(at.body, (), None)
