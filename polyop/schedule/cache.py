"""``cache_read`` and ``cache_write``: an array's copy in a new layout, for its
readers or for its writers.

``sch.cache_read(B, "C", layout=lambda k, j: (j // 16, k, j % 16), pad=0.0)``
adds a *copy statement* that writes every element of ``B`` into a new array
(the *cache*, named ``B_cache`` unless ``name`` is given) at the position the
``layout`` gives, and redirects the reads of ``B`` by the consumer statements
to the cache. This is packing, as in BLIS and GotoBLAS: above, ``B`` is stored
as column panels of 16 so that a micro-kernel reads it with unit stride.

- ``layout`` maps the array's indices to the cache's with ``+ - *`` by
  constants, ``//`` and ``%`` by positive constants; it must be injective
  (two elements never share a slot) and its inverse affine. The default is
  the identity (a plain copy, as TVM's ``cache_read``).
- The cache's shape is the smallest box holding the layout's image; where a
  dimension's extent has a constant bound (``j % 16``: 16) the cache gets the
  full constant extent. ``pad`` fills the slots outside the image (the partial
  last panel when 16 does not divide ``N``) with a value, so a consumer
  computing whole panels reads defined values; without ``pad`` the copy writes
  only the image.
- The copy's loops run over the cache's dimensions in order (so it writes the
  cache contiguously); they are ordinary loops of the schedule, handles from
  ``get_loops(name)``, and ``compute_at(name, loop)`` moves the copy into a
  consumer's nest (packing per block, as GotoBLAS does).
- The cache is *scratch*: not an argument of the built function, allocated
  (once per thread and size) by the runtime.

Legality. In the program's reference order the copy runs just before the
top-level loop nest of the first consumer. ``cache_read`` refuses, naming the
writer, when an element of the array is written between that point and a
consumer's read (the cache would be stale); the schedule with the copy is then
checked against the new program's dependences like every primitive.

``sch.cache_write(C, layout=...)`` is the converse: the statements writing
``C`` write (and read) a scratch array in the layout instead, and a write-back
statement ``<cache>_back`` copies the written elements to ``C`` after the last
writer (``reverse_compute_at`` moves it, e.g. per tile). It is refused when
another statement reads an element between its write and the write-back, or
when a writer reads an element no writer wrote before (the cache would not
hold the caller's value).

Example (``B`` packed in panels of 4 columns, the last one padded with zeros)::

    >>> import polyop
    >>> @polyop.kernel
    ... def colsum(n: int, B: "f64[8, n]", c: "f64[n]"):
    ...     for j in range(n):
    ...         for k in range(8):
    ...             c[j] += B[k, j]
    >>> sch = polyop.Schedule(colsum)
    >>> sch.cache_read("B", layout=lambda k, j: (j // 4, k, j % 4), pad=0.0, name="P")
    'P'
    >>> print(polyop.lower(sch))
    void colsum(int64_t n, double B[8][n], double c[n], double P[(n + 3) // 4][8][4]) {
      for (P_0 = 0; P_0 < (n - 1) // 4 + 1; P_0 += 1)
        for (P_1 = 0; P_1 < 8; P_1 += 1)
          for (P_2 = 0; P_2 < 4; P_2 += 1)
            P[P_0][P_1][P_2] = n > 4 * P_0 + P_2 ? B[P_1][4 * P_0 + P_2] : 0.0;
      for (j = 0; j < n; j += 1)
        for (k = 0; k < 8; k += 1)
          c[j] = c[j] + P[j // 4][k][j % 4];
    }
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable

import islpy as isl

from .. import ir
from ..bounds import array_box
from ..deps import dependences, unwritten_reads
from ..errors import ScheduleError
from ..frontend.affine import AffineConverter, NotAffine
from ..isl_ir import (
    NotAnIndexError,
    aff_to_ir,
    constant_bound,
    fresh_name,
    index_text,
    plus_one,
    program_names,
    pw_aff_to_ir,
    set_to_ir,
)
from ..program import Access, Argument, Array, Program, Statement
from ..types import INDEX
from .inline import overwriter
from .layout import apply_layout
from .state import primitive
from .trace import TensorRef
from .tree import Band, Leaf, Seq, contains, from_isl, to_isl


class CachePrimitives:
    """``cache_read`` and ``cache_write`` (see the module docstring)."""

    @primitive
    def cache_read(self, array, consumers=None, *, layout: Callable | None = None,
                   pad: float | int | None = None, name: str | None = None,
                   scope: str = "global", at=None) -> str:
        """Copy ``array`` (a name, or a tensor) into a new scratch array in
        ``layout`` and make ``consumers`` (statement names or tensors; default:
        every reader) read the copy. Returns the new array's name, which is also
        the copy statement's (see the module docstring, and its example).

        ``scope="local"`` with ``at=loop``: instead, a buffer per iteration of
        ``at``, on every target (``polyop.promotion``): at lowering, the box of
        ``array``'s elements accessed under ``at`` is copied into it at the
        start of each iteration, every access under ``at`` uses it, and the
        elements written there are copied back at the end (a CPU's local
        array, private to each thread; a GPU thread's registers).
        ``scope="shared"``: the box in GPU shared memory, copied by the
        block's threads (GPU targets; a CPU build refuses it). Returns the
        buffer's name (``name``, default ``<array>_<scope>``).
        """
        if scope != "global":
            if layout is not None or pad is not None:
                raise ScheduleError(f"cache_read({self._array_name(array)}, scope={scope!r}): "
                                    "layout and pad are for scope='global' (a scoped buffer "
                                    "keeps the array's layout over its footprint's box)")
            return self._scoped_cache("cache_read", array, consumers, scope, at, name)
        program = self.program
        src = self._array_name(array)
        what = f"cache_read({src})"
        cache = name or fresh_name(f"{src}_cache", program_names(program), sep="")
        if cache in program.arrays or cache in self.stmts or cache in program.params:
            raise ScheduleError(f"{what}: the name {cache!r} is taken")
        readers = [s for s in program.statements if any(a.array == src for a in s.reads)]
        if consumers is None:
            chosen = [s.name for s in readers]
        else:
            items = consumers if isinstance(consumers, (list, tuple)) else [consumers]
            chosen = [n for c in items for n in self._statements(c)]
        chosen = [n for n in chosen if any(a.array == src for a in program.statement(n).reads)]
        if not chosen:
            raise ScheduleError(f"{what}: no consumer reads {src}")
        for n in chosen:
            if any(a.array == src for a in program.statement(n).writes):
                raise ScheduleError(f"{what}: {n} writes {src} as well as reading it; a "
                                    "read cache would go stale")
        plan = _Layout(program, program.arrays[src], cache, layout, what)
        copy = plan.copy_statement(pad, line=program.statement(chosen[0]).line)
        statements = []
        for s in program.statements:
            if s.name in chosen:
                s = dataclasses.replace(s, reads=tuple(plan.redirect(a) if a.array == src
                                                       else a for a in s.reads),
                                        body=plan.redirect_body(s.body))
            statements.append(s)
        first = next(k for k, s in enumerate(program.statements) if s.name in chosen)
        statements.insert(first, copy)
        new, domain = _with_cache(program, statements, plan.array, copy, chosen, after=False)
        _check_not_stale(new, copy, chosen, src, what)
        self._add_copy(new, copy, chosen, domain, f"{what} -> {cache}")
        return cache

    @primitive
    def cache_write(self, array, *, layout: Callable | None = None,
                    name: str | None = None, scope: str = "global", at=None) -> str:
        """Make the statements writing ``array`` (a name or a tensor) write a new
        scratch array in ``layout`` instead (their reads of ``array`` follow),
        and copy the written elements back to ``array`` after the last of them,
        in a write-back statement ``<cache>_back`` (movable with
        ``reverse_compute_at``). Returns the cache's name.

        Refused when a statement that does not write ``array`` reads an element
        between its write and the write-back, or when a writer reads an element
        before any writer wrote it (the cache would not hold its value).

        With ``scope="local", at=loop`` the cache is a buffer per iteration of
        ``loop`` (``polyop.promotion``): on a CPU, when the array's accesses
        under ``loop`` span no box of constant size, the elements written
        there are promoted alone, with the loads that read them, and the
        other loads keep reading the array.

        Example::

            >>> import polyop
            >>> @polyop.kernel
            ... def mv(n: int, A: "f64[n, n]", x: "f64[n]", y: "f64[n]"):
            ...     for i in range(n):
            ...         y[i] = 0.0
            ...         for j in range(n):
            ...             y[i] += A[i, j] * x[j]
            >>> sch = polyop.Schedule(mv)
            >>> sch.cache_write("y")
            'y_cache'
            >>> print(polyop.lower(sch))
            void mv(int64_t n, double A[n][n], double x[n], double y[n], double y_cache[n]) {
              for (i = 0; i < n; i += 1) {
                y_cache[i] = 0.0;
                for (j = 0; j < n; j += 1)
                  y_cache[i] = y_cache[i] + A[i][j] * x[j];
              }
              for (y_cache_back_0 = 0; y_cache_back_0 < n; y_cache_back_0 += 1)
                y[y_cache_back_0] = y_cache[y_cache_back_0];
            }
        """
        if scope != "global":  # a buffer per iteration of ``at``, as in cache_read
            if layout is not None:
                raise ScheduleError(f"cache_write({self._array_name(array)}, scope={scope!r}): "
                                    "layout is for scope='global' (a scoped buffer keeps the "
                                    "array's layout over its footprint's box)")
            return self._scoped_cache("cache_write", array, None, scope, at, name)
        program = self.program
        dst = self._array_name(array)
        what = f"cache_write({dst})"
        cache = name or fresh_name(f"{dst}_cache", program_names(program), sep="")
        back = f"{cache}_back"
        for taken in (cache, back):
            if taken in program.arrays or taken in self.stmts or taken in program.params:
                raise ScheduleError(f"{what}: the name {taken!r} is taken")
        writers = [s.name for s in program.statements if any(a.array == dst for a in s.writes)]
        if not writers:
            raise ScheduleError(f"{what}: no statement writes {dst}")
        _check_written_first(program, writers, dst, what)
        plan = _Layout(program, program.arrays[dst], cache, layout, what)
        store = plan.back_statement(back, writers, line=program.statement(writers[-1]).line)
        statements = []
        for s in program.statements:
            if s.name in writers:
                s = dataclasses.replace(
                    s, reads=tuple(plan.redirect(a) if a.array == dst else a for a in s.reads),
                    writes=tuple(plan.redirect(a) if a.array == dst else a for a in s.writes),
                    body=plan.redirect_body(s.body))
            statements.append(s)
        last = max(k for k, s in enumerate(program.statements) if s.name in writers)
        statements.insert(last + 1, store)
        new, domain = _with_cache(program, statements, plan.array, store, writers, after=True)
        _check_no_early_reader(new, store, writers, dst, what)
        self._add_copy(new, store, writers, domain, f"{what} -> {cache}", after=True)
        return cache

    def _add_copy(self, program: Program, copy: Statement, anchors: list[str],
                  domain: isl.UnionSet, what: str, after: bool = False) -> None:
        """Adopt ``program`` (with the new statement ``copy``), the copy's loop
        nest placed beside ``anchors`` in the current tree; checked."""
        self._state = self._state.replace(program=program, deps=dependences(program))
        nest = self._with_marks(_copy_nest(copy))
        self._mark_strips(nest, copy.domain)
        self._commit(what, _insert(self._tree, nest, copy, anchors, domain, after))

    def _mark_strips(self, nest: isl.Schedule, domain: isl.Set) -> None:
        """Treat each copy loop with a constant range ``0 .. f-1`` (a panel of
        ``nr``) as a strip of ``f``, so that its full runs get constant bounds
        (a partial last panel otherwise leaves ``min`` in every panel's loop;
        LLVM then neither unrolls nor vectorizes it)."""
        node = nest.get_root()
        for d in range(domain.dim(isl.dim_type.set)):
            node = node.child(0)
            top = domain.dim_max_val(d)
            if top.is_int() and domain.lower_bound_val(isl.dim_type.set, d, isl.Val(0)) \
                    .is_equal(domain):
                self._update_loop(node.mark_get_id().get_name(), strip=top.to_python() + 1)
            node = node.child(0)

    def _array_name(self, array) -> str:
        """The array behind ``array``: a name, or a tensor of tensor expressions
        (or a trace's reference to one)."""
        array = getattr(array, "array", array) if isinstance(array, TensorRef) else array
        info = self.program.meta.get("te")
        if info is not None and not isinstance(array, str) and info.contains(array):
            array = info.array(array)
        if not isinstance(array, str) or array not in self.program.arrays:
            known = ", ".join(a for a in self.program.arrays)
            raise ScheduleError(f"unknown array {array!r} (arrays: {known})")
        return array


class _Layout:
    """A cache layout: the map from array elements to cache slots, its inverse,
    and the cache's shape."""

    def __init__(self, program: Program, array: Array, cache: str,
                 layout: Callable | None, what: str):
        self.program, self.source, self.cache, self.what = program, array, cache, what
        names = [f"_a{k}" for k in range(array.ndim)]
        formal = [ir.Var(n, INDEX) for n in names]
        out = apply_layout(layout, formal, what) if layout is not None else formal
        self.exprs = out  # cache index over the formal array indices _a0, _a1, ...
        space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=names,
                                            params=list(program.params))
        conv = AffineConverter(space, lambda node, why: ScheduleError(f"{what}: {why}"))
        graph = None
        for e in out:
            try:
                pa = conv.pwaff(ast.parse(index_text(e), mode="eval").body)
            except NotAffine as err:
                raise ScheduleError(f"{what}: layout index {index_text(e)} is not "
                                    f"affine: {err}") from None
            m = isl.Map.from_pw_aff(pa)
            graph = m if graph is None else graph.flat_range_product(m)
        box = array_box(program, array)
        self.map = (graph.set_tuple_name(isl.dim_type.in_, array.name)
                    .set_tuple_name(isl.dim_type.out, cache).intersect_domain(box))
        if not self.map.is_injective():
            raise ScheduleError(f"{what}: the layout maps two elements of {array.name} to "
                                "one slot; it must be injective")
        self.image = self.map.range()
        self.array = self._shape()

    def _shape(self) -> Array:
        context = self.program.context
        shape, extents = [], []
        for d in range(len(self.exprs)):
            nonneg = self.image.lower_bound_val(isl.dim_type.set, d, isl.Val(0))
            if not self.image.is_subset(nonneg):
                raise ScheduleError(f"{self.what}: cache index {d} "
                                    f"({index_text(self.exprs[d])}) can be negative")
            high = self.image.dim_max(d)
            top = constant_bound(high, "max") if not high.is_empty() else None
            if top is not None and top.is_int():
                ext: ir.Expr = ir.Const(top.to_python() + 1, INDEX)
            else:
                try:
                    ext = plus_one(pw_aff_to_ir(high, within=context))
                except NotAnIndexError as err:
                    raise ScheduleError(f"{self.what}: the extent of cache index {d}: "
                                        f"{err}") from None
            extents.append(ext)
            shape.append(index_text(ext))
        return Array(self.cache, self.source.dtype, tuple(shape), tuple(extents))

    def redirect(self, acc: Access) -> Access:
        """A consumer's read of the array as a read of the cache."""
        rel = acc.relation.apply_range(self.map)
        index = self.index_of(acc.index)
        return Access(self.cache, rel, index, _subscript(self.cache, index))

    def index_of(self, index: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
        env = {f"_a{k}": e for k, e in enumerate(index)}
        return tuple(ir.substitute(e, env) for e in self.exprs)

    def redirect_body(self, node):
        """``node`` with every load and store of the array made on the cache."""
        if isinstance(node, ir.Load) and node.array == self.source.name:
            return ir.Load(self.cache, self.index_of(node.index), node.dtype)
        if isinstance(node, ir.Store) and node.array == self.source.name:
            return dataclasses.replace(node, array=self.cache, index=self.index_of(node.index),
                                       value=self.redirect_body(node.value))
        return ir.map_children(node, self.redirect_body)

    def copy_statement(self, pad, line: int) -> Statement:
        """``cache[c] = array[inverse(c)]`` over the image (or, with ``pad``, over
        the whole cache with ``pad`` outside the image)."""
        cache, src = self.cache, self.source
        its = tuple(f"{cache}_{d}" for d in range(len(self.exprs)))
        space = isl.Space.create_from_names(isl.DEFAULT_CONTEXT, set=list(its),
                                            params=list(self.program.params))
        slots = self.image.reset_tuple_id().set_tuple_name(cache)
        box = array_box(self.program, self.array)
        inverse = isl.PwMultiAff.from_map(self.map.reverse())
        if inverse.n_piece() != 1:
            raise ScheduleError(f"{self.what}: the layout's inverse is not one affine function")
        pieces: list[isl.MultiAff] = []
        inverse.foreach_piece(lambda _s, ma: pieces.append(ma))
        try:
            index = tuple(aff_to_ir(pieces[0].get_aff(k), its) for k in range(src.ndim))
        except NotAnIndexError:
            raise ScheduleError(f"{self.what}: the layout's inverse needs integer division; "
                                "use a layout whose inverse is affine") from None
        domain = slots if pad is None else box
        domain = isl.Set.from_basic_set(isl.BasicSet.universe(space)).set_tuple_name(cache) \
            .intersect(domain.intersect_params(self.program.context))
        read_rel = self.map.reverse().intersect_domain(slots)
        read = Access(src.name, read_rel, index, _subscript(src.name, index))
        value: ir.Expr = ir.Load(src.name, index, src.dtype)
        if pad is not None and not slots.is_equal(box.intersect_params(self.program.context)):
            try:
                inside = set_to_ir(slots.gist(box), its)
            except NotAnIndexError:
                raise ScheduleError(f"{self.what}: the padding condition needs integer "
                                    "division") from None
            value = ir.Select(inside, value, ir.Const(pad, src.dtype), src.dtype)
        target = tuple(ir.Var(v, INDEX) for v in its)
        write_rel = isl.Map.from_domain_and_range(domain, domain).intersect(
            isl.Map.identity(domain.get_space().map_from_set()))
        write = Access(cache, write_rel, target, f"{cache}[{', '.join(its)}]")
        text = f"{cache}[{', '.join(its)}] = {_subscript(src.name, index)}"
        return Statement(cache, its, domain, (read,), (write,),
                         ir.Store(cache, target, value), line, text)

    def back_statement(self, back: str, writers: list[str], line: int) -> Statement:
        """``array[e] = cache[layout(e)]`` for every element ``writers`` write."""
        src, program = self.source, self.program
        its = tuple(f"{back}_{d}" for d in range(src.ndim))
        written = isl.Set.empty(self.map.domain().get_space())
        for s in program.statements:
            if s.name in writers:
                for a in s.writes:
                    if a.array == src.name:
                        written = written.union(a.relation.range())
        domain = written.coalesce().set_tuple_name(back)
        names = [f"_a{k}" for k in range(src.ndim)]
        rename = dict(zip(names, (ir.Var(v, INDEX) for v in its)))
        index = tuple(ir.substitute(e, rename) for e in self.exprs)
        target = tuple(ir.Var(v, INDEX) for v in its)
        ident = isl.Map.from_domain_and_range(domain, written).intersect(
            isl.Map.identity(isl.Space.map_from_set(written.get_space()))
            .set_tuple_name(isl.dim_type.in_, back))
        read = Access(self.cache, ident.apply_range(self.map), index,
                      _subscript(self.cache, index))
        write = Access(src.name, ident, target, f"{src.name}[{', '.join(its)}]")
        text = f"{src.name}[{', '.join(its)}] = {read.text}"
        return Statement(back, its, domain, (read,), (write,),
                         ir.Store(src.name, target, ir.Load(self.cache, index, src.dtype)), line,
                         text)


def _with_cache(program: Program, statements: list[Statement], cache: Array,
                copy: Statement, anchors: list[str],
                after: bool) -> tuple[Program, isl.UnionSet]:
    """``program`` with ``statements`` (``copy`` among them) and the scratch array
    ``cache``; in its reference order the copy runs beside ``anchors``."""
    meta = {k: v for k, v in program.meta.items() if k != "dependences"}
    meta["scratch"] = tuple(meta.get("scratch", ())) + (cache.name,)
    meta["internal"] = tuple(meta.get("internal", ())) + (cache.name,)
    domain = program.domain.union(isl.UnionSet.from_set(copy.domain))
    reference = _insert(program.schedule, _copy_nest(copy), copy, anchors, domain, after)
    new = dataclasses.replace(
        program, statements=tuple(statements), arrays={**program.arrays, cache.name: cache},
        arguments=program.arguments + (Argument(cache.name, "array", cache.dtype),),
        meta=meta, schedule=reference)
    return new, domain


def _subscript(array: str, index: tuple[ir.Expr, ...]) -> str:
    return f"{array}[{', '.join(map(index_text, index))}]"


def _copy_nest(copy: Statement) -> isl.Schedule:
    """The copy statement's loop nest, one band per cache dimension (no marks)."""
    domain = isl.UnionSet.from_set(copy.domain)
    sched = isl.Schedule.from_domain(domain)
    its = ", ".join(copy.iterators)
    params = ", ".join(copy.domain.get_space().get_var_names(isl.dim_type.param))
    # no "[] ->" without parameters: isl reads that as a zero-member band
    prefix = f"[{params}] -> " if params else ""
    for it in reversed(copy.iterators):
        sched = sched.insert_partial_schedule(isl.MultiUnionPwAff(
            f"{prefix}[{{ {copy.name}[{its}] -> [({it})] }}]"))
    return sched


def _insert(tree: isl.Schedule, nest: isl.Schedule, copy: Statement,
            anchors: list[str], domain: isl.UnionSet, after: bool = False) -> isl.Schedule:
    """``tree`` with ``nest`` run just before the top-level part holding the first
    of ``anchors`` (``after``: just after the part holding the last)."""
    old_domain, root = from_isl(tree)
    _, node = from_isl(nest)
    part = (isl.UnionSet.from_set(copy.domain), node)
    if isinstance(root, Seq):
        kids = list(root.children)
        holding = [k for k, (f, _) in enumerate(kids) if any(contains(f, c) for c in anchors)]
        kids.insert(holding[-1] + 1 if after else holding[0], part)
        new: Band | Seq | Leaf = Seq(tuple(kids))
    else:
        new = Seq(((old_domain, root), part) if after else (part, (old_domain, root)))
    return to_isl(domain, new)


def _check_not_stale(program: Program, copy: Statement, consumers: list[str], src: str,
                     what: str) -> None:
    """Refuse when an element is written after the copy reads it and before a
    consumer reads its copy (in the new program's reference order)."""
    cache_reads = isl.UnionMap.empty(program.context.get_space())
    for name in consumers:
        for a in program.statement(name).reads:
            if a.array == copy.name:
                cache_reads = cache_reads.union(isl.UnionMap.from_map(a.relation))
    # consumer instance -> copy instance that wrote the slot it reads
    source = cache_reads.apply_range(isl.UnionMap.from_map(copy.writes[0].relation).reverse())
    found = overwriter(program, source, isl.UnionMap.from_map(copy.reads[0].relation), src)
    if found is not None:
        consumer, writer = found
        raise ScheduleError(f"{what}: {writer} writes {src} after the copy and before "
                            f"{consumer} reads it; the cache would be stale")


def _check_written_first(program: Program, writers: list[str], dst: str, what: str) -> None:
    """Refuse when a writer reads an element of ``dst`` no writer wrote before."""
    reads = isl.UnionMap.empty(program.context.get_space())
    writes = reads
    for name in writers:
        s = program.statement(name)
        for a in s.reads:
            if a.array == dst:
                reads = reads.union(isl.UnionMap.from_map(a.relation))
        for a in s.writes:
            writes = writes.union(isl.UnionMap.from_map(a.relation))
    if reads.is_empty():
        return
    unset = unwritten_reads(reads, writes, program.schedule)
    if not unset.is_empty():
        found: list[isl.Map] = []
        unset.foreach_map(found.append)
        raise ScheduleError(f"{what}: {found[0].get_tuple_name(isl.dim_type.in_)} reads "
                            f"{dst} before any writer of it wrote the element; the cache "
                            "would not hold its value")


def _check_no_early_reader(program: Program, back: Statement, writers: list[str], dst: str,
                           what: str) -> None:
    """Refuse when another statement reads an element of ``dst`` after a writer
    wrote it (to the cache) and before the write-back (reference order)."""
    order = program.schedule.get_map()
    before = order.lex_lt_union_map(order)
    cache = back.reads[0].array
    writes = isl.UnionMap.empty(order.get_space())
    for name in writers:
        for a in program.statement(name).writes:
            if a.array == cache:
                writes = writes.union(isl.UnionMap.from_map(a.relation))
    wb = isl.UnionMap.from_map(back.writes[0].relation)  # write-back -> element
    slot = wb.reverse().apply_range(isl.UnionMap.from_map(back.reads[0].relation))
    for s in program.statements:
        if s.name in writers or s is back:
            continue
        for a in s.reads:
            if a.array != dst:
                continue
            read = isl.UnionMap.from_map(a.relation)
            written = read.apply_range(slot).apply_range(writes.reverse()) \
                .intersect(before.reverse()).domain()  # a writer wrote it before
            pending = read.apply_range(wb.reverse()).intersect(before).domain()
            if not written.intersect(pending).is_empty():
                raise ScheduleError(f"{what}: {s.name} reads {dst} after a writer wrote "
                                    "the element and before the write-back; it would "
                                    "miss the value")
