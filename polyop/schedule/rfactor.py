"""``rfactor``: factor a reduction over one of its loops into partial results.

rfactor
-------
``sch.rfactor(S, loop)`` rewrites a reduction statement ``S: X[f] = X[f] op e``
(``op``: ``+``, ``-``, ``*``, ``max`` or ``min``; ``e`` does not read ``X``)
around which ``loop`` is a *reduction loop* (instances that update one element
of ``X`` run in different iterations of it) into three statements over a new
array ``X_rf`` with one extra leading dimension ``l``, the value of ``loop``
shifted to start at 0:

- ``X_rf_init[l, f]``: ``X_rf[l, f] = identity`` (0 for ``+``/``-``, 1 for
  ``*``, -inf/+inf or the integer type's min/max for ``max``/``min``);
- ``S`` itself, the *partial update*: the same instances, now
  ``X_rf[l, f] = X_rf[l, f] op e`` with ``l`` the loop's value at that instance
  (after ``split`` it may be ``k % 8`` or ``k // 8``);
- ``X_rf_combine[l, f]``: ``X[f] = X[f] op' X_rf[l, f]`` for every ``l`` (``op'``
  is ``+`` for ``-``).

Each element ``(l, f)`` is initialised and combined once, and only the elements
some instance of ``S`` updates exist. Instances of ``S`` in different
iterations of ``loop`` now write different elements, so ``loop`` no longer
carries the reduction: ``parallel(loop)`` or ``vectorize(loop)`` become legal
(the reduction is re-associated: floating-point results may round
differently).

Placement. ``S``'s loops are unchanged (every loop handle stays valid). The
init and combine nests go just before and just after the subtree of the
outermost loop around ``loop`` whose value is not fixed by the element
``(l, f)`` (``loop`` itself when all are): for ``i → k_outer → k_inner`` with
``out[i] += ...`` and ``rfactor(S, k_inner)``, inside ``i``, around the
``k_outer`` nest. Their loops run over the dimensions of ``X_rf`` that the
loops outside do not fix (``l`` first), with fresh handles: ``get_loops(name)``.

Exactness. In the current order no other statement may access an element of
``X`` between two updates of it by ``S`` (refused with a ``ScheduleError``
naming that statement). The new program's reference order puts each init
just before the first update of its element and each combine just after the
last; the placement above is then checked against the new dependences like
any primitive (``IllegalScheduleError`` when, say, a reader of ``X`` inside the
subtree would run before the combine).

Storage. ``X_rf`` has shape ``[extent of loop] + shape(X)``; the extent is a
constant when the loop's range has a constant bound (the inner loop of a
split), else an affine (``//`` allowed) expression of the sizes. ``X_rf`` is
*scratch* (``program.meta["scratch"]``): not an argument of the built
function, allocated by the runtime, shared by the threads of a parallel loop
(a local array would be private to each thread, and its partial results lost).

Example (a dot product; ``s`` is a local scalar, so ``s_rf`` has one dimension;
``sch.vectorize(ki)`` would then vectorise the partial sums)::

    >>> import polyop
    >>> @polyop.kernel
    ... def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
    ...     s = 0.0
    ...     for k in range(n):
    ...         s += x[k] * y[k]
    ...     out[0] = s
    >>> sch = polyop.Schedule(dot)
    >>> (k,) = sch.get_loops("S1")
    >>> ko, ki = sch.split(k, 8)
    >>> sch.rfactor("S1", ki)
    ('s_rf_init', 's_rf_combine')
    >>> print(polyop.lower(sch))
    void dot(int64_t n, double x[n], double y[n], double out[1], double s_rf[8]) {
      double s;
      s = 0.0;
      for (k_inner = 0; k_inner < min(7, n - 1) + 1; k_inner += 1)
        s_rf[k_inner] = 0.0;
      for (k_outer = 0; k_outer < (n - 1) // 8 + 1; k_outer += 1)
        if (n >= 8 * k_outer + 8)
          for (k_inner = 0; k_inner < 8; k_inner += 1)
            s_rf[k_inner] = s_rf[k_inner] + x[8 * k_outer + k_inner] * y[8 * k_outer + k_inner];
        else
          for (k_inner = 0; k_inner < n - 8 * k_outer; k_inner += 1)
            s_rf[k_inner] = s_rf[k_inner] + x[8 * k_outer + k_inner] * y[8 * k_outer + k_inner];
      for (k_inner = 0; k_inner < min(7, n - 1) + 1; k_inner += 1)
        s = s + s_rf[k_inner];
      out[0] = s;
    }
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import islpy as isl
import numpy as np

from .. import ir
from ..deps import dependences
from ..errors import ScheduleError
from ..isl_ir import (
    NotAnIndexError,
    constant_bound,
    fresh_name,
    identifier,
    index_text,
    program_names,
    pw_aff_to_ir,
)
from ..printer import expr_to_c
from ..program import Access, Argument, Array, Program, Statement
from ..types import INDEX, DType
from .handles import Loop
from .state import primitive
from .tree import Band, Leaf, Node, Seq, contains, from_isl, to_isl

_OPS = {"add": "+", "sub": "-", "mul": "*", "max": "max", "min": "min"}
_COMBINE = {"add": "add", "sub": "add", "mul": "mul", "max": "max", "min": "min"}
_COMMUTATIVE = ("add", "mul", "max", "min")


class ReductionPrimitives:
    """``rfactor`` (see the module docstring)."""

    @primitive
    def rfactor(self, stmt, loop: Loop, *, name: str | None = None) -> tuple[str, str]:
        """Factor the reduction ``stmt`` (a statement name, or a reduction
        tensor) over its reduction loop ``loop`` into partial results in a new
        scratch array (``name``, default ``<X>_rf``), so that ``loop`` carries
        no dependence between them (see the module docstring).

        Requires: ``stmt`` is ``X[f] = X[f] op e`` with op ``+ - * max min``
        computed in ``X``'s type and ``e`` not reading ``X``; ``loop`` is around
        every instance of it and some element of ``X`` is updated in two of its
        iterations; no other statement accesses an element of ``X`` between two
        of its updates; the loop's extent is a constant or affine in the sizes.

        Returns ``(init, combine)``: the names of the statements that set the
        partial results to the identity and combine them into ``X``.

        Example (one partial sum per strip of 1024, the strips run in parallel)::

            >>> import numpy as np, polyop
            >>> @polyop.kernel
            ... def dot(n: int, x: "f64[n]", y: "f64[n]", out: "f64[1]"):
            ...     s = 0.0
            ...     for k in range(n):
            ...         s += x[k] * y[k]
            ...     out[0] = s
            >>> sch = polyop.Schedule(dot)
            >>> k_outer, k_inner = sch.split(sch.get_loops("S1")[0], 1024)
            >>> sch.rfactor("S1", k_outer)
            ('s_rf_init', 's_rf_combine')
            >>> sch.parallel(k_outer)
            >>> x, y, out = np.random.rand(5000), np.random.rand(5000), np.zeros(1)
            >>> polyop.build(sch)(5000, x, y, out)
            >>> np.allclose(out, x @ y)
            True
        """
        target = self._statements(stmt)[-1]
        mark = self._mark(loop)
        what = f"rfactor({target}, {loop.name})"
        program = self.program
        s = program.statement(target)
        band = mark.child(0)
        inside = band.get_domain().intersect(isl.UnionSet.from_set(s.domain))
        if inside.is_empty():
            raise ScheduleError(f"{what}: loop {loop.name} is not around {target}")
        if not isl.UnionSet.from_set(s.domain).is_subset(inside):
            raise ScheduleError(f"{what}: only some instances of {target} run inside loop "
                                f"{loop.name} (after compute_at?); rfactor needs all of them")
        red = _reduction(program, s, what)
        values = isl.Map.from_union_map(band.band_get_partial_schedule_union_map()
                                        .intersect_domain(isl.UnionSet.from_set(s.domain)))
        _check_reduction_loop(s, values, loop.name, what)
        _check_contiguous(program, self._tree, s, red.array, what)
        plan = _Plan(program, s, red, values, loop.name, name, what)
        new = plan.program()
        self._state = self._state.replace(program=new, deps=dependences(new))
        self._commit(f"{what} -> {plan.rf}", self._factored_tree(plan, loop.id))
        domain, root = from_isl(self._tree)
        self._state = self._state.replace(program=dataclasses.replace(
            new, schedule=to_isl(domain, _unmarked(root))))
        return plan.init.name, plan.combine.name

    def _factored_tree(self, plan: _Plan, loop_id: str) -> isl.Schedule:
        """The current tree with the init and combine nests around the subtree of
        the outermost loop (down to ``loop_id``) not fixed by the element."""
        domain, root = from_isl(self._tree)
        s, w_rf = plan.stmt, plan.w_rf
        path = _path(root, s.name, loop_id)
        fixed: list[tuple[Band, isl.Map]] = []
        for b in path[:-1]:
            part = isl.UnionMap.from_multi_union_pw_aff(b.part).intersect_domain(
                isl.UnionSet.from_set(s.domain))
            at = w_rf.reverse().apply_range(isl.Map.from_union_map(part))  # element -> value
            if not at.is_single_valued():
                break
            fixed.append((b, at))
        where = path[len(fixed)].mark
        new_stmts = (plan.init, plan.combine)
        values = {b.mark: at for b, at in fixed}

        def placed(b: Band, at: isl.Map) -> isl.MultiUnionPwAff:
            part = b.part
            for st in new_stmts:
                m = at.set_tuple_name(isl.dim_type.in_, st.name)
                part = part.union_add(isl.MultiUnionPwAff.from_union_map(
                    isl.UnionMap.from_map(m)))
            return part

        added = isl.UnionSet.from_set(plan.init.domain).union(
            isl.UnionSet.from_set(plan.combine.domain))

        def visit(node: Node) -> Node:
            if isinstance(node, Seq):
                return Seq(tuple((f.union(added), visit(c)) if contains(f, s.name) else (f, c)
                                 for f, c in node.children))
            assert isinstance(node, Band), "the loop is above the statement's leaf"
            if node.mark == where:
                return Seq(((isl.UnionSet.from_set(plan.init.domain), self._nest(
                    plan.init, [at for _, at in fixed], plan.w_rf)),
                    (domain, node),
                    (isl.UnionSet.from_set(plan.combine.domain), self._nest(
                        plan.combine, [at for _, at in fixed], plan.w_rf))))
            return Band(node.mark, placed(node, values[node.mark]), visit(node.child))

        return to_isl(domain.union(added), visit(root))

    def _nest(self, st: Statement, outer: list[isl.Map], w_rf: isl.Map) -> Node:
        """Loops over the dimensions of ``st``'s domain (an ``X_rf`` element) that
        the outer loops' values ``outer`` (element -> value) do not fix."""
        dom = st.domain
        n = dom.dim(isl.dim_type.set)
        given = None
        for at in outer:
            given = at if given is None else given.flat_range_product(at)
        node: Node = Leaf()
        for d in reversed(range(n)):
            proj = isl.Map.from_domain_and_range(w_rf.range(), w_rf.range()).intersect(
                isl.Map.identity(w_rf.range().get_space().map_from_set()))
            proj = proj.project_out(isl.dim_type.out, d + 1, n - d - 1) \
                .project_out(isl.dim_type.out, 0, d)
            if given is not None and given.reverse().apply_range(proj).is_single_valued():
                continue  # one value per iteration of the loops outside: no loop
            part = isl.MultiUnionPwAff.from_union_map(isl.UnionMap.from_map(
                proj.set_tuple_name(isl.dim_type.in_, st.name).reset_tuple_id(
                    isl.dim_type.out)))
            node = Band(self._new_id(st.iterators[d]).id, part, node)
        return node


@dataclass(frozen=True)
class _Reduction:
    """``X[index] = X[index] op operand`` (or ``operand op X[index]``)."""

    op: str
    operand: ir.Expr
    array: str
    index: tuple[ir.Expr, ...]
    dtype: DType


def _reduction(program: Program, s: Statement, what: str) -> _Reduction:
    """The reduction ``s`` computes, or a ``ScheduleError`` saying why it is none."""
    shape = (f"{what}: {s.name} ({s.source}) is not a reduction X[f] = X[f] op e "
             "(op one of +, -, *, max, min)")
    if len(s.writes) != 1:
        raise ScheduleError(f"{shape}: it writes {len(s.writes)} arrays")
    body = s.body
    v = body.value

    def is_target(e: ir.Expr) -> bool:
        return isinstance(e, ir.Load) and e.array == body.array and e.index == body.index

    if not isinstance(v, ir.Bin) or v.op not in _OPS:
        raise ScheduleError(shape)
    if is_target(v.a):
        operand = v.b
    elif v.op in _COMMUTATIVE and is_target(v.b):
        operand = v.a
    else:
        raise ScheduleError(f"{shape}: its value does not combine {body.array}"
                            f"[{', '.join(map(expr_to_c, body.index))}] with the rest")
    if any(isinstance(x, ir.Load) and x.array == body.array for x in ir.walk(operand)):
        raise ScheduleError(f"{shape}: e ({expr_to_c(operand)}) reads {body.array} too")
    dtype = program.arrays[body.array].dtype
    if v.dtype != dtype or v.a.dtype != dtype or v.b.dtype != dtype:
        raise ScheduleError(f"{shape}: it computes in {v.dtype} with operands "
                            f"{v.a.dtype}, {v.b.dtype}, but {body.array} holds {dtype}")
    return _Reduction(v.op, operand, body.array, body.index, dtype)


def _check_reduction_loop(s: Statement, values: isl.Map, loop: str, what: str) -> None:
    """Refuse a loop in which every element of the target has its updates in
    one iteration (a loop over elements, not over the reduction)."""
    w = s.writes[0].relation
    same_element = w.apply_range(w.reverse())
    same_value = values.apply_range(values.reverse())
    if same_element.subtract(same_value).is_empty():
        raise ScheduleError(f"{what}: {loop} is not a reduction loop of {s.name}: all updates "
                            f"of each element of {s.writes[0].array} run in one iteration of "
                            f"{loop} (rfactor a loop over the reduced dimension)")


def _check_contiguous(program: Program, tree: isl.Schedule, s: Statement, array: str,
                      what: str) -> None:
    """Refuse when another statement accesses an element of ``array`` between two
    updates of it by ``s`` in the order of ``tree``: it would see a partial
    result that no longer exists."""
    others = isl.UnionMap.empty(program.context.get_space())
    for t in program.statements:
        if t.name != s.name:
            for a in t.reads + t.writes:
                if a.array == array:
                    others = others.union(isl.UnionMap.from_map(a.relation))
    if others.is_empty():
        return
    order = tree.get_map().intersect_domain(others.domain().union(
        isl.UnionSet.from_set(s.domain)))
    before = order.lex_lt_union_map(order)  # a -> b: a runs before b
    w = isl.UnionMap.from_map(s.writes[0].relation)
    after_one = before.reverse().apply_range(w).intersect(others)
    before_one = before.apply_range(w).intersect(others)
    bad = after_one.intersect(before_one)
    if not bad.is_empty():
        maps: list[isl.Map] = []
        bad.foreach_map(maps.append)
        other = maps[0].get_tuple_name(isl.dim_type.in_)
        raise ScheduleError(f"{what}: {other} accesses {array} between two updates of the "
                            f"same element by {s.name}; it would miss the partial results")


class _Plan:
    """The new array, statements and program of one ``rfactor``."""

    def __init__(self, program: Program, s: Statement, red: _Reduction, values: isl.Map,
                 loop: str, name: str | None, what: str):
        self.source, self.stmt, self.red, self.what = program, s, red, what
        taken = program_names(program)
        if name is not None and (name in taken or not name.isidentifier()):
            raise ScheduleError(f"{what}: the name {name!r} is taken or not an identifier")
        self.rf = name or fresh_name(f"{red.array}_rf", taken)
        taken.add(self.rf)
        init_name = fresh_name(f"{self.rf}_init", taken)
        taken.add(init_name)
        combine_name = fresh_name(f"{self.rf}_combine", taken)
        x = program.arrays[red.array]
        ctx = program.context
        low, extent = loop_range(values.range(), ctx, loop, s.name, what)
        l_pa, l_ir = loop_index(values, low, s, ctx, loop, what)
        w = s.writes[0].relation
        self.w_rf = isl.Map.from_pw_aff(l_pa).flat_range_product(w).set_tuple_name(
            isl.dim_type.out, self.rf)
        self.array = Array(self.rf, x.dtype, (index_text(extent), *x.shape), (extent, *x.extents))
        index = (l_ir, *red.index)
        text = f"{self.rf}[{', '.join(map(expr_to_c, index))}]"
        self.access = Access(self.rf, self.w_rf, index, text)
        # iterators of the init and combine statements: l, then X's dimensions
        reserved = set(program.params) | set(program.arrays) | {self.rf} | \
            {a.name for a in program.arguments}
        its: list[str] = []
        for base in [loop] + [_dim_name(e, s, x.name, d) for d, e in enumerate(red.index)]:
            its.append(fresh_name(identifier(base), reserved | set(its)))
        self.init = self._init(init_name, tuple(its), s.line)
        self.combine = self._combine(combine_name, tuple(its), s.line)
        self.partial = self._partial()

    def _elements(self, stmt: str, its: tuple[str, ...]) -> isl.Set:
        dom = self.w_rf.range().set_tuple_name(stmt)
        for k, it in enumerate(its):
            dom = dom.set_dim_name(isl.dim_type.set, k, it)
        return dom

    def _init(self, name: str, its: tuple[str, ...], line: int) -> Statement:
        dom = self._elements(name, its)
        ident = _identity(self.red.op, self.red.dtype)
        index = tuple(ir.Var(v, INDEX) for v in its)
        rel = _identity_map(dom).set_tuple_name(isl.dim_type.out, self.rf)
        text = f"{self.rf}[{', '.join(its)}]"
        return Statement(name, its, dom, (), (Access(self.rf, rel, index, text),),
                         ir.Store(self.rf, index, ir.Const(ident, self.red.dtype)), line,
                         f"{text} = {ident!r}")

    def _combine(self, name: str, its: tuple[str, ...], line: int) -> Statement:
        red = self.red
        dom = self._elements(name, its)
        rf_index = tuple(ir.Var(v, INDEX) for v in its)
        x_index = rf_index[1:]
        rf_rel = _identity_map(dom).set_tuple_name(isl.dim_type.out, self.rf)
        x_rel = _identity_map(dom).project_out(isl.dim_type.out, 0, 1).set_tuple_name(
            isl.dim_type.out, red.array)
        x_text = f"{red.array}[{', '.join(its[1:])}]" if its[1:] else f"{red.array}[()]"
        rf_text = f"{self.rf}[{', '.join(its)}]"
        x = Access(red.array, x_rel, x_index, x_text)
        op = _COMBINE[red.op]
        value = ir.Bin(op, ir.Load(red.array, x_index, red.dtype),
                       ir.Load(self.rf, rf_index, red.dtype), red.dtype)
        sym = _OPS[op]
        rhs = f"{sym}({x_text}, {rf_text})" if op in ("max", "min") else \
            f"{x_text} {sym} {rf_text}"
        return Statement(name, its, dom, (x, Access(self.rf, rf_rel, rf_index, rf_text)), (x,),
                         ir.Store(red.array, x_index, value), line, f"{x_text} = {rhs}")

    def _partial(self) -> Statement:
        s, red, acc = self.stmt, self.red, self.access
        reads = tuple(acc if a.array == red.array else a for a in s.reads)
        value = ir.Bin(red.op, ir.Load(self.rf, acc.index, red.dtype), red.operand, red.dtype)
        sym = _OPS[red.op]
        rhs = f"{sym}({acc.text}, {expr_to_c(red.operand)})" if red.op in ("max", "min") \
            else f"{acc.text} {sym} {expr_to_c(red.operand, 5)}"
        return dataclasses.replace(s, reads=reads, writes=(acc,),
                                   body=ir.Store(self.rf, acc.index, value),
                                   source=f"{acc.text} = {rhs}")

    def program(self) -> Program:
        """The new program; its reference order puts each init just before the
        first update of its element and each combine just after the last one."""
        p, s = self.source, self.stmt
        statements: list[Statement] = []
        for t in p.statements:
            statements += [self.init, self.partial, self.combine] if t is s else [t]
        meta = {k: v for k, v in p.meta.items() if k != "dependences"}
        meta["scratch"] = tuple(meta.get("scratch", ())) + (self.rf,)
        meta["internal"] = tuple(meta.get("internal", ())) + (self.rf,)
        return dataclasses.replace(
            p, statements=tuple(statements), arrays={**p.arrays, self.rf: self.array},
            arguments=p.arguments + (Argument(self.rf, "array", self.red.dtype),),
            meta=meta, schedule=self._reference())

    def _reference(self) -> isl.Schedule:
        p, s = self.source, self.stmt
        order = p.schedule.get_map()
        time = order.intersect_domain(isl.UnionSet.from_set(s.domain))
        first = isl.UnionMap.from_map(self.w_rf.reverse()).apply_range(time).lexmin()
        # every combine of X[f] right after the last update of X[f], in the order of l
        w = isl.UnionMap.from_map(s.writes[0].relation)
        last = w.reverse().apply_range(time).lexmax()
        x_rel = isl.UnionMap.from_map(self.combine.writes[0].relation)
        init = first.apply_domain(isl.UnionMap.from_map(
            self.init.writes[0].relation.reverse()))  # init -> time of the first update
        rel = _tagged(order, 1).union(_tagged(init, 0)).union(
            _tagged(x_rel.apply_range(last), 2, self.combine.domain))
        domain = p.domain.union(isl.UnionSet.from_set(self.init.domain)).union(
            isl.UnionSet.from_set(self.combine.domain))
        return isl.Schedule.from_domain(domain).insert_partial_schedule(
            isl.MultiUnionPwAff.from_union_map(rel))


def _tagged(rel: isl.UnionMap, tag: int, by_first: isl.Set | None = None) -> isl.UnionMap:
    """``rel`` (instance -> time) with ``[tag, 0]`` appended to each time, or
    ``[tag, l]`` with ``l`` the first dimension of the instances ``by_first``."""
    out = isl.UnionMap.empty(rel.get_space())
    maps: list[isl.Map] = []
    rel.foreach_map(maps.append)
    for m in maps:
        if by_first is None:
            t = isl.Map.from_domain_and_range(m.domain(), isl.Set(f"{{ [{tag}, 0] }}"))
        else:
            n = by_first.dim(isl.dim_type.set)
            first = _identity_map(by_first).project_out(isl.dim_type.out, 1, n - 1)
            t = isl.Map.from_domain_and_range(m.domain(), isl.Set(f"{{ [{tag}] }}")) \
                .flat_range_product(first.reset_tuple_id(isl.dim_type.out))
        out = out.union(isl.UnionMap.from_map(m.flat_range_product(t)))
    return out


def loop_index(values: isl.Map, low: isl.PwAff, s: Statement, context: isl.Set, loop: str,
               what: str) -> tuple[isl.PwAff, ir.Expr]:
    """The loop's value at each instance of ``s`` (``values``) less its lowest
    value ``low`` (``loop_range``), as one affine function of ``s``'s
    iterators and as an index expression (also ``expand``'s)."""
    shift = low.pullback_multi_aff(isl.MultiAff.zero(isl.Space.map_from_domain_and_range(
        s.domain.get_space(), low.get_domain_space())))
    pa = isl.PwMultiAff.from_map(values).get_pw_aff(0).sub(shift).gist(s.domain)
    if pa.n_piece() != 1:
        raise ScheduleError(f"{what}: the value of loop {loop} is not one affine "
                            f"function of {s.name}'s iterators ({pa})")
    try:
        return pa, pw_aff_to_ir(pa, s.iterators, within=s.domain.intersect_params(context))
    except NotAnIndexError as err:
        raise ScheduleError(f"{what}: the value of loop {loop} is not an affine index "
                            f"expression: {err}") from None


def loop_range(vals: isl.Set, context: isl.Set, loop: str, stmt: str,
               what: str) -> tuple[isl.PwAff, ir.Expr]:
    """The lowest of the loop's values ``vals`` (over the parameters) and the
    number of values from there, as a constant or an affine expression of the
    sizes (also ``expand``'s)."""
    low, high = vals.dim_min(0), vals.dim_max(0)
    low = low.coalesce()
    if low.n_piece() != 1:  # several pieces: the least value for all sizes, if any
        least = constant_bound(low, "min")
        if least is None or not least.is_int():
            raise ScheduleError(f"{what}: the lower bound of loop {loop} over {stmt} is not "
                                f"one affine expression of the sizes ({low})")
        low = isl.PwAff.from_aff(isl.Aff.zero_on_domain(isl.LocalSpace.from_space(
            low.get_domain_space())).set_constant_val(least))
    extent = high.sub(low).add(isl.PwAff.from_aff(isl.Aff.zero_on_domain(
        isl.LocalSpace.from_space(low.get_domain_space())).set_constant_val(isl.Val(1))))
    top = constant_bound(extent, "max")
    if top is not None and top.is_int():
        return low, ir.Const(top.to_python(), INDEX)
    extent = extent.coalesce()
    if extent.n_piece() != 1:
        raise ScheduleError(f"{what}: the extent of loop {loop} is not one affine "
                            f"expression of the sizes ({extent}); split it by a constant "
                            f"and {what.split('(')[0]} over the inner loop")
    try:
        return low, pw_aff_to_ir(extent, within=context)
    except NotAnIndexError as err:
        raise ScheduleError(f"{what}: the extent of loop {loop} is not an affine index "
                            f"expression: {err}") from None


def _identity(op: str, dtype: DType) -> int | float:
    """The neutral element of ``op`` in ``dtype``."""
    if op in ("add", "sub", "mul"):
        v = 0 if op != "mul" else 1
        return float(v) if dtype.is_float else v
    if dtype.is_float:
        return float("-inf") if op == "max" else float("inf")
    info = np.iinfo(dtype.numpy)
    return int(info.min) if op == "max" else int(info.max)


def _identity_map(dom: isl.Set) -> isl.Map:
    return isl.Map.from_domain_and_range(dom, dom).intersect(
        isl.Map.identity(dom.get_space().map_from_set()))


def _path(root: Node, stmt: str, mark: str) -> list[Band]:
    """The bands from ``root`` down to the loop ``mark`` on ``stmt``'s branch."""
    out: list[Band] = []
    node = root
    while True:
        if isinstance(node, Band):
            out.append(node)
            if node.mark == mark:
                return out
            node = node.child
        elif isinstance(node, Seq):
            node = next(c for f, c in node.children if contains(f, stmt))
        else:
            raise AssertionError(f"loop {mark} is not above {stmt}")


def _unmarked(node: Node) -> Node:
    if isinstance(node, Band):
        return Band(None, node.part, _unmarked(node.child))
    if isinstance(node, Seq):
        return Seq(tuple((f, _unmarked(c)) for f, c in node.children))
    return node


def _dim_name(e: ir.Expr, s: Statement, array: str, d: int) -> str:
    return e.name if isinstance(e, ir.Var) and e.name in s.iterators else f"{array}_{d}"
