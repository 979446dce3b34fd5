"""Tensor expressions → ``Program`` (the polyhedral model shared with ``@polyop.kernel``).

Contract. In: the output tensors of a TE graph. Out: a ``Program`` whose

- *params* are the size variables (``polyop.var``), in order of first use;
- *arrays* are all tensors of the graph (placeholders, then computes in
  topological order; names made unique with ``_1``, ``_2``), each an *array
  argument*; intermediates are allocated by the built function
  (``polyop.te.build``), not marked ``temporary`` (the model's temporaries are 0-d);
- *arguments* are those arrays, then the size parameters;
- *statements* come stage by stage in topological order. A compute ``C`` over
  axes ``(i, j)`` is one statement ``C[i, j]``; a reduction is an init statement
  ``C_init[i, j]`` (``C[i, j] = identity``: 0, ∓inf or the integer type's
  min/max) and the update ``C[i, j, k]`` (``C[i, j] = C[i, j] + body``, or
  ``max``/``min``); statement iterators are the lambda's parameter names and
  the reduce axes' names (renamed ``k_1`` on a clash);
- *schedule* is the textual order of one loop nest per stage: the output axes,
  then (inside them, after the init) the reduce axes;
- *context*: every extent is non-negative.

Reads inside a branch of ``if_then_else`` (or the right side of ``&``/``|``)
are restricted to the instances where the branch can run (when the condition
is affine), so padding reads are proved in bounds exactly; the bounds proof
(``polyop.bounds``) runs on the result.

Example::

    >>> import polyop
    >>> from polyop.te.lowering import lower_program
    >>> n = polyop.var("n")
    >>> A = polyop.placeholder((n, n), "float64", name="A")
    >>> k = polyop.reduce_axis((0, n), name="k")
    >>> rowsum = polyop.compute((n,), lambda i: polyop.sum(A[i, k], axis=k), name="s")
    >>> print(lower_program(rowsum).statement("s").domain)
    [n] -> { s[i, k] : 0 <= i < n and 0 <= k < n }
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl
import numpy as np

from .. import ir
from ..bounds import check_bounds
from ..frontend.parser import LoopNode
from ..program import Access, Argument, Array, Program, Statement
from ..schedule.textual import textual_schedule
from ..types import INDEX, DType
from .affine import NotAffine, condition, pwaff
from .expr import (
    BOOL,
    Binary,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    IterVar,
    Logical,
    Neg,
    Not,
    Read,
    Reduce,
    Select,
    Var,
    is_weak,
    result_type,
    to_str,
    walk,
)
from .tensor import Tensor, _error

_COMBINE = {"sum": "add", "max": "max", "min": "min"}


@dataclass(frozen=True, eq=False)
class TEInfo:
    """What the runtime needs to know about the graph behind a ``Program``
    (kept in ``program.meta["te"]``)."""

    roots: tuple[Tensor, ...]
    tensors: tuple[Tensor, ...]
    array_of: dict[int, str]  # Tensor.id → array name

    def array(self, t: Tensor) -> str:
        return self.array_of[t.id]

    def contains(self, t: Tensor) -> bool:
        return t.id in self.array_of


def as_tensors(outputs, what: str = "create_schedule") -> tuple[Tensor, ...]:
    """One tensor or a list of them, checked."""
    items = tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)
    if not items:
        raise TypeError(f"polyop.{what}: no output tensors given")
    for t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"polyop.{what}: expected tensors from polyop.compute, got "
                            f"{type(t).__name__}")
    return items


def topo_order(roots: tuple[Tensor, ...]) -> list[Tensor]:
    """Every tensor reachable from ``roots``, producers before consumers."""
    order: list[Tensor] = []
    seen: set[int] = set()

    def visit(t: Tensor) -> None:
        if t.id in seen:
            return
        seen.add(t.id)
        for src in t.inputs:
            visit(src)
        order.append(t)

    for r in roots:
        visit(r)
    return order


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 0
    while out in taken:
        k += 1
        out = f"{name}_{k}"
    taken.add(out)
    return out


def identity(combiner: str, dtype: DType) -> int | float:
    """The neutral element of a reduction: 0, -inf/+inf, or an integer type's min/max."""
    if combiner == "sum":
        return 0.0 if dtype.is_float else 0
    if dtype.is_float:
        return float("-inf") if combiner == "max" else float("inf")
    info = np.iinfo(dtype.numpy)
    return int(info.min) if combiner == "max" else int(info.max)


class _ToIR:
    """Tensor expression → IR expression of one statement, recording its reads
    (array, index pwaffs, the set of instances that can execute it, text)."""

    def __init__(self, names: dict, affs: dict, universe: isl.Set, arrays: dict[int, str]):
        self.names, self.affs, self.universe, self.arrays = names, affs, universe, arrays
        # (array, index as isl, guard, text, index as IR) per read
        self.reads: list[tuple[str, list[isl.PwAff], isl.Set, str, tuple]] = []

    def name_of(self, v: Expr) -> str | None:
        return self.names.get(v) if isinstance(v, IterVar) else v.name

    def text(self, e: Expr) -> str:
        return to_str(e, lambda v: self.names.get(v, v.name))

    def cond(self, e: Expr) -> tuple[isl.Set, isl.Set]:
        return condition(e, self.affs, self.name_of, self.universe)

    def __call__(self, e: Expr, guard: isl.Set, want: DType | None = None) -> ir.Expr:
        if isinstance(e, Const):
            dt = want if want is not None and is_weak(e) else e.dtype
            if dt == BOOL:
                return ir.Const(bool(e.value), BOOL)
            return ir.Const(float(e.value) if dt.is_float else int(e.value), dt)
        if isinstance(e, Var):
            return ir.Var(e.name, INDEX)
        if isinstance(e, IterVar):
            return ir.Var(self.names[e], INDEX)
        if isinstance(e, Read):
            return self.read(e, guard)
        if isinstance(e, Binary):
            return ir.Bin(e.op, self(e.a, guard, e.dtype), self(e.b, guard, e.dtype), e.dtype)
        if isinstance(e, Compare):
            ct = result_type(e.a, e.b)
            return ir.Cmp(e.op, self.operand(e.a, guard, ct), self.operand(e.b, guard, ct))
        if isinstance(e, Logical):
            under, over = self.cond(e.a)
            taken = over if e.op == "and" else self.universe.subtract(under)
            return ir.Logic(e.op, self(e.a, guard), self(e.b, guard.intersect(taken)))
        if isinstance(e, Not):
            return ir.Not(self(e.a, guard))
        if isinstance(e, Neg):
            return ir.Neg(self(e.a, guard, e.dtype), e.dtype)
        if isinstance(e, Call):
            return ir.Call(e.fn, tuple(self(a, guard, e.dtype) for a in e.args), e.dtype)
        if isinstance(e, Select):
            under, over = self.cond(e.cond)
            return ir.Select(self(e.cond, guard),
                             self(e.a, guard.intersect(over), e.dtype),
                             self(e.b, guard.subtract(under), e.dtype), e.dtype)
        if isinstance(e, Cast):
            return ir.Cast(self(e.a, guard, e.a.dtype), e.dtype)
        raise AssertionError(f"unexpected tensor expression {type(e).__name__}")

    def operand(self, e: Expr, guard: isl.Set, dt: DType) -> ir.Expr:
        """A comparison operand converted to the comparison's type (NumPy's)."""
        x = self(e, guard, dt)
        return x if x.dtype == dt else ir.Cast(x, dt)

    def read(self, e: Read, guard: isl.Set) -> ir.Expr:
        index = tuple(self(x, guard, INDEX) for x in e.index)
        try:
            pas = [pwaff(x, self.affs, self.name_of) for x in e.index]
        except NotAffine as err:  # checked in compute(); kept as an internal invariant
            raise AssertionError(f"index of {e.tensor.name} not affine: {err}") from None
        name = self.arrays[e.tensor.id]
        self.reads.append((name, pas, guard, self.text(e), index))
        return ir.Load(name, index, e.dtype)


def _access(domain: isl.Set, array: str, pas: list[isl.PwAff], text: str,
            index: tuple[ir.Expr, ...], params: isl.Space,
            guard: isl.Set | None = None) -> Access:
    dom = domain if guard is None else domain.intersect(
        guard.set_tuple_name(domain.get_tuple_name()))
    if not pas:
        rng = isl.Set.universe(params).set_tuple_name(array)
        rel = isl.Map.from_domain_and_range(dom, rng)
    else:
        rel = None
        for pa in pas:
            m = isl.Map.from_pw_aff(pa)
            rel = m if rel is None else rel.flat_range_product(m)
        rel = rel.set_tuple_name(isl.dim_type.in_, domain.get_tuple_name())
        rel = rel.set_tuple_name(isl.dim_type.out, array).intersect_domain(dom)
    return Access(array, rel.coalesce(), index, text)


class _Lowering:
    def __init__(self, roots: tuple[Tensor, ...], name: str | None):
        self.roots = roots
        self.tensors = topo_order(roots)
        self.params = self._params()
        self.param_space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=[],
                                                       params=self.params)
        taken = set(self.params)
        placeholders = [t for t in self.tensors if t.op == "placeholder"]
        computes = [t for t in self.tensors if t.op == "compute"]
        self.tensors = placeholders + computes
        self.arrays = {t.id: _unique(t.name, taken) for t in self.tensors}
        self.name = name or "_".join(self.arrays[r.id] for r in roots)
        self.stmt_names: set[str] = set()
        self.statements: list[Statement] = []

    def _params(self) -> list[str]:
        params: list[str] = []

        def note(e: Expr) -> None:
            for x in walk(e):
                if isinstance(x, Var) and x.name not in params:
                    params.append(x.name)
                if isinstance(x, IterVar) and x.kind == "reduce":
                    note(x.lo)
                    note(x.hi)

        for t in self.tensors:
            for d in t.shape:
                note(d)
            if t.body is not None:
                note(t.body)
        return params

    def program(self) -> Program:
        nest: list = []
        for t in self.tensors:
            if t.op == "compute":
                nest += self.stage(t)
        arrays = {}
        for t in self.tensors:
            name = self.arrays[t.id]
            shape = tuple(to_str(d) for d in t.shape)
            conv = _ToIR({}, {}, None, {})
            extents = tuple(conv(d, None, INDEX) for d in t.shape)
            arrays[name] = Array(name, t.dtype, shape, extents)
        args = [Argument(self.arrays[t.id], "array", t.dtype) for t in self.tensors]
        args += [Argument(p, "size", INDEX) for p in self.params]
        info = TEInfo(self.roots, tuple(self.tensors), dict(self.arrays))
        root = self.roots[0]
        return Program(self.name, tuple(self.params), tuple(args), arrays,
                       tuple(self.statements), textual_schedule(nest, self.param_space),
                       self._context(), root.filename,
                       meta={"te": info, "internal": self._internal()})

    def _internal(self) -> tuple[str, ...]:
        """Arrays of the stages that are not outputs: values the caller never sees."""
        roots = {t.id for t in self.roots}
        return tuple(self.arrays[t.id] for t in self.tensors
                     if t.op == "compute" and t.id not in roots)

    def _context(self) -> isl.Set:
        affs = isl.affs_from_space(self.param_space)
        ctx = isl.Set.universe(self.param_space)
        for t in self.tensors:
            for d in t.shape:
                pa = pwaff(d, affs, lambda v: v.name)
                ctx = ctx.intersect(pa.ge_set(affs[0]))
        return ctx.params().coalesce()

    # -- one compute stage ------------------------------------------------------------------
    def stage(self, t: Tensor) -> list:
        reduce_axes = t.reduce_axis
        taken = set(self.params) | set(self.arrays.values())
        names = {a: _unique(a.name, taken) for a in (*t.axis, *reduce_axes)}
        iters = [names[a] for a in t.axis]
        red = [names[k] for k in reduce_axes]
        out = self.arrays[t.id]
        site = (t.filename, t.line)
        space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=iters + red,
                                            params=self.params)
        affs = isl.affs_from_space(space)
        universe = isl.Set.universe(space)
        conv = _ToIR(names, affs, universe, self.arrays)
        dom = universe
        for a, d in zip(t.axis, t.shape):
            var = affs[names[a]]
            dom = dom.intersect(var.ge_set(affs[0])).intersect(var.lt_set(
                pwaff(d, affs, conv.name_of)))
        n_axes = len(iters)
        axes_dom = dom.project_out(isl.dim_type.set, n_axes, len(red))  # no reduce bounds yet
        for k in reduce_axes:
            var = affs[names[k]]
            dom = dom.intersect(pwaff(k.lo, affs, conv.name_of).le_set(var))
            dom = dom.intersect(var.lt_set(pwaff(k.hi, affs, conv.name_of)))
        idx = tuple(ir.Var(v, INDEX) for v in iters)
        out_text = f"{out}[{', '.join(iters)}]" if iters else f"{out}[()]"

        if not isinstance(t.body, Reduce):
            stmt_name = _unique(out, self.stmt_names)
            value = conv(t.body, universe, t.dtype)
            self._statement(stmt_name, iters, dom, conv, (out, out_text), idx, value,
                            f"{out_text} = {conv.text(t.body)}", site)
            return self._nest(iters, [self.statements[-1]])

        # reduction: init over the output axes, update over output and reduce axes
        init_space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=iters,
                                                 params=self.params)
        init_dom = axes_dom
        init_name = _unique(f"{out}_init", self.stmt_names)
        ident = identity(t.body.combiner, t.dtype)
        init = ir.Const(ident, t.dtype)
        init_conv = _ToIR({}, isl.affs_from_space(init_space),
                          isl.Set.universe(init_space), self.arrays)
        self._statement(init_name, iters, init_dom, init_conv, (out, out_text), idx, init,
                        f"{out_text} = {ident!r}", site)
        init_stmt = self.statements[-1]
        stmt_name = _unique(out, self.stmt_names)
        body = conv(t.body.body, universe, t.dtype)
        acc = ir.Load(out, idx, t.dtype)
        conv.reads.insert(0, (out, [affs[v] for v in iters], universe, out_text, idx))
        value = ir.Bin(_COMBINE[t.body.combiner], acc, body, t.dtype)
        op = t.body.combiner
        text = f"{out_text} + {conv.text(t.body.body)}" if op == "sum" else \
            f"{op}({out_text}, {conv.text(t.body.body)})"
        self._statement(stmt_name, iters + red, dom, conv, (out, out_text), idx, value,
                        f"{out_text} = {text}", site)
        update = self._nest(red, [self.statements[-1]], depth=n_axes)
        return self._nest(iters, [init_stmt, *update])

    @staticmethod
    def _nest(iters: list[str], inner: list, depth: int = 0) -> list:
        items = inner
        for d in reversed(range(len(iters))):
            items = [LoopNode(iters[d], depth + d, items)]
        return items

    def _statement(self, name: str, iters: list[str], dom: isl.Set, conv: _ToIR,
                   target: tuple[str, str], idx: tuple, value: ir.Expr, source: str,
                   site) -> None:
        domain = dom.set_tuple_name(name).coalesce()
        out, out_text = target
        pas = [conv.affs[v] for v in iters[:len(idx)]]
        write = _access(domain, out, pas, out_text, idx, self.param_space)
        reads = tuple(_access(domain, arr, pas, text, index, self.param_space, guard)
                      for arr, pas, guard, text, index in conv.reads)
        self.statements.append(Statement(name, tuple(iters), domain, reads, (write,),
                                         ir.Store(out, idx, value), site[1], source))


def lower_program(outputs, name: str | None = None, check: bool = True) -> Program:
    """The ``Program`` computing ``outputs`` (one tensor or a list) and every
    stage they depend on; ``check`` runs the bounds proof (``BoundsError``).

    Example: ``print(lower_program(C))`` shows arrays, domains and accesses.
    """
    roots = as_tensors(outputs)
    for r in roots:
        if r.op != "compute":
            raise _error(f"polyop.create_schedule: {r.name} is a placeholder; schedule "
                         "the compute tensors that produce the outputs",
                         (r.filename, r.line))
    program = _Lowering(roots, name).program()
    if check:
        check_bounds(program)
    return program


def _program_of(tensor: Tensor, outputs=None) -> Program:
    """``tensor.__polyop_program__()``: the program computing ``tensor`` (or
    ``outputs``, a list it belongs to)."""
    return lower_program(tensor if outputs is None else outputs)


# ``polyop.program.as_program`` turns tensors into programs through this protocol,
# so the model (and ``Schedule``) need not import the tensor-expression front-end
Tensor.__polyop_program__ = _program_of
