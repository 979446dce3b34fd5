"""``tensorize``: replace a loop band by calls of a micro-kernel with a checked contract.

``sch.tensorize(loop, intr)`` replaces the loops from ``loop`` inward (a band
over one statement ``S``) by one call of the micro-kernel ``intr`` (see
``polyop.intrinsic``) per iteration of the loops around ``loop``. The
instances of ``S`` in one such iteration form a *tile*; its *origin* is its
lexicographically first instance. The call is a new statement
``S_<intr>`` whose instances are the origins of the whole tiles; its access
relations are the union of the accesses of the instances it replaces (their
*footprint*); its body is an ``ir.Extern`` whose pointer arguments are the
kernel's access functions at the origin and whose strides come from the
arrays' shapes.

Requires, each checked exactly with isl (the contract's dimensions are
matched to ``S``'s by trying every assignment; ties prefer equal names):

1. the loops from ``loop`` inward form a perfect nest over ``S`` alone;
2. the body of ``S`` matches the contract's body structurally: same
   operations, constants and types, arrays in consistent roles (renamed),
   contract scalars bound to loop-invariant values (``+``/``*`` operands may
   be swapped);
3. *domain*: the tile is a translate of the contract's domain (whole tiles);
   *partial* tiles, where the tile is smaller (sizes that are not multiples of
   the contract's extents), run with the original loops (``partial="loops"``,
   the default; they keep their handles, and their strips are no longer
   isolated, to keep this cold code small) or are refused (``partial="error"``);
4. *accesses*: in every whole tile, each access of ``S`` reaches the element
   the calling convention implies for the paired contract access: view
   element ``v`` of operand ``V`` is at ``base + sum_d v_d * stride_d`` in the
   real array, the view's last dimension contiguous (unit stride) and each
   other view dimension along one dimension of the real array;
5. *order*: the contract's own loop order respects every dependence between
   two instances of one tile;
6. the new schedule (calls ordered as the tiles were) respects every
   dependence, like every primitive's result.

Afterwards the call is an ordinary statement: the loops around it can still be
reordered, parallelised and so on, checked against the dependences of the
calls. A mismatch raises ``ScheduleError`` saying which access, dimension or
operation differs; a broken dependence raises ``IllegalScheduleError``.

The dependences of the calls are derived from the statement's exact ones (an
instance of a whole tile becomes its call; pairs inside one call are the
contract's business, item 5). A primitive that later recomputes dependences
from the program's reference order (a call sits there at its origin, which is
an approximation) would be less precise: apply ``tensorize`` after the
primitives that rebuild the program (``cache_read``, ``inline``, ``rfactor``).

Example (strips of 8 become calls of a C micro-kernel; the partial strip keeps its loop)::

    >>> import numpy as np, polyop
    >>> @polyop.kernel
    ... def axpy8(a: "f64", x: "f64[8]", y: "f64[8]"):
    ...     for i in range(8):
    ...         y[i] += a * x[i]
    >>> ax = polyop.intrinsic(axpy8, c_source='''
    ... void axpy8(double a, const double *x, double *y) {
    ...     for (int i = 0; i < 8; i++) y[i] += a * x[i];
    ... }''')
    >>> @polyop.kernel
    ... def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    ...     for i in range(n):
    ...         y[i] += a * x[i]
    >>> sch = polyop.Schedule(axpy)
    >>> io, ii = sch.split(sch.get_loops("S0")[0], 8)
    >>> sch.tensorize(ii, ax)
    'S0_axpy8'
    >>> print(polyop.lower(sch))
    void axpy(int64_t n, double a, double x[n], double y[n]) {
      for (i_outer = 0; i_outer < n // 8; i_outer += 1)
        axpy8(a, &x[8 * i_outer], &y[8 * i_outer]);
      for (i_inner = 0; i_inner < n % 8; i_inner += 1)
        y[-(n % 8) + n + i_inner] = y[-(n % 8) + n + i_inner] + a * x[-(n % 8) + n + i_inner];
    }
    >>> x, y = np.random.rand(20), np.random.rand(20)
    >>> want = y + 0.5 * x
    >>> polyop.build(sch)(20, 0.5, x, y)
    >>> np.allclose(y, want)
    True
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import islpy as isl

from .. import ir
from ..deps import Dependences
from ..errors import IllegalScheduleError, ScheduleError
from ..isl_ir import NotAnIndexError, fresh_name, identifier, index_text, program_names
from ..printer import expr_to_c
from ..program import Access, Program, Statement
from ..types import INDEX
from .handles import Loop
from .intrinsic_contract import Binding, IntrinsicContract
from .legality import Violation, _element, _sample
from .state import primitive

_T = isl.schedule_node_type
_C = "_c"  # tuple name of the contract's statement in the spaces built here


class TensorizePrimitives:
    """``tensorize`` (see the module docstring); a mixin of ``polyop.Schedule``."""

    @primitive
    def tensorize(self, loop: Loop, intrinsic: IntrinsicContract, *, partial: str = "loops") -> str:
        """Replace the loops from ``loop`` inward by one call of ``intrinsic``
        per iteration of the loops around it; returns the name of the call
        statement. The requirements and an example are in
        ``polyop.schedule.tensorize``.
        """
        if not isinstance(intrinsic, IntrinsicContract):
            raise ScheduleError(f"tensorize: expected a polyop.intrinsic, got "
                                f"{type(intrinsic).__name__}")
        if partial not in ("loops", "error"):
            raise ScheduleError(f"tensorize: partial must be 'loops' or 'error', got {partial!r}")
        mark = self._mark(loop)
        what = f"tensorize({loop.name}, {intrinsic.name})"
        stmt = self.program.statement(_band_statement(mark, what))
        tiles = _Tiles(mark, stmt)
        match = _Matcher(self.program, stmt, tiles, intrinsic, what).run()
        cut = tiles.origins.subtract(match.full)
        if partial == "error" and not cut.is_empty():
            raise ScheduleError(_partial_message(what, stmt, cut, intrinsic))
        if self.checking:
            _check_order(self.program, self.deps, tiles, match, intrinsic, what)
        program, deps, tree, gone = _rewrite(self, mark, stmt, tiles, match, intrinsic)
        self._state = self._state.replace(program=program, deps=deps)
        self._commit(what, tree, gone={g: f"replaced by calls of {intrinsic.name} ({what})"
                                       for g in gone})
        for ident in _chain_marks(mark):  # loops left with the partial tiles only: cold
            if ident not in gone:         # code, generated once (no isolated full strips)
                self._update_loop(ident, strip=None)
        return match.name


# -- the band and its tiles ----------------------------------------------------------------

def _band_statement(mark: isl.ScheduleNode, what: str) -> str:
    """The one statement under ``mark``, whose subtree must be a chain of loops."""
    names: list[str] = []
    mark.get_domain().foreach_set(lambda s: names.append(s.get_tuple_name()))
    if len(names) != 1:
        raise ScheduleError(f"{what}: the loops from there inward run statements "
                            f"{', '.join(sorted(names))}; a band over one statement is needed")
    node = mark
    while node.get_type() in (_T.mark, _T.band):
        node = node.child(0)
    if node.get_type() != _T.leaf:
        raise ScheduleError(f"{what}: the loops from there inward are not a perfect nest")
    return names[0]


class _Tiles:
    """The tiles of ``stmt`` under ``mark``: instance → origin, the origins, and
    per origin the offsets of its instances (``x - o``)."""

    def __init__(self, mark: isl.ScheduleNode, stmt: Statement):
        self.dom = isl.Set.from_union_set(mark.get_domain())
        prefix = isl.Map.from_union_map(mark.get_prefix_schedule_union_map())
        prefix = prefix.intersect_domain(self.dom)
        self.origin = prefix.apply_range(prefix.reverse()).lexmin().coalesce()
        self.origins = self.origin.range().coalesce()
        minus = isl.Map.identity(isl.Space.map_from_set(self.origins.get_space()))
        minus = minus.intersect_domain(self.origins).neg()
        self.rel = self.origin.reverse().sum(minus).coalesce()
        self.stmt = stmt

    def shape(self) -> str:
        """The extents of the largest tile, per iterator (for messages)."""
        rng = self.rel.range()
        return _extents(rng, self.stmt.iterators)


def _extents(s: isl.Set, names) -> str:
    out = []
    for d, name in enumerate(names):
        try:
            hi, lo = s.dim_max(d).max_val(), s.dim_min(d).min_val()
            size = str(hi.sub(lo).to_python() + 1) if hi.is_int() and lo.is_int() else "n"
        except isl.Error:
            size = "n"
        out.append(f"{name}: {size}")
    return ", ".join(out)


# -- matching the contract -----------------------------------------------------------------

@dataclass
class _Match:
    name: str  # of the call statement
    binding: Binding
    full: isl.Set  # origins of whole tiles
    xmap: isl.Map  # [origin -> contract instance] -> kernel instance, whole tiles
    operands: dict  # contract array -> (sigma, base index exprs)


def _access_map(program: Program | None, tuple_name: str, iterators, node) -> isl.Map:
    params = f"[{', '.join(program.params)}] -> " if program is not None else ""
    try:
        idx = ", ".join(index_text(e, "isl") for e in node.index)
    except NotAnIndexError:
        raise ScheduleError(f"tensorize: subscript {_text(node)} is not affine") from None
    return isl.Map(f"{params}{{ {tuple_name}[{', '.join(iterators)}] -> "
                   f"{node.array}[{idx}] }}")


def _point(s: isl.Set | isl.Map) -> list[int]:
    s = s.wrap() if isinstance(s, isl.Map) else s
    pt = s.sample_point()
    return [pt.get_coordinate_val(isl.dim_type.set, k).to_python()
            for k in range(s.dim(isl.dim_type.set))]


def _text(node) -> str:
    return f"{node.array}[{', '.join(expr_to_c(e) for e in node.index)}]"


class _Matcher:
    """Finds the contract's dimension assignment, array roles and layouts."""

    def __init__(self, program: Program, stmt: Statement, tiles: _Tiles,
                 intr: IntrinsicContract, what: str):
        self.program, self.stmt, self.tiles, self.intr, self.what = \
            program, stmt, tiles, intr, what
        self.c_dom = intr.statement.domain.set_tuple_name(_C)
        self.failure: tuple[tuple, str] = ((-1,), "")

    def _fail(self, score: tuple, msg: str) -> None:
        if score > self.failure[0]:
            self.failure = (score, msg)

    def run(self) -> _Match:
        intr, stmt = self.intr, self.stmt
        bindings = list(intr.bindings(stmt.body, stmt.iterators))
        if not bindings:
            raise ScheduleError(f"{self.what}: {stmt.name} {intr.body_mismatch(stmt.body)}")
        n, m = len(stmt.iterators), len(intr.statement.iterators)
        perms = sorted(itertools.permutations(range(n), m), key=lambda p: -sum(
            stmt.iterators[d] == intr.statement.iterators[c] for c, d in enumerate(p)))
        self._fail((0,), f"{self.what}: one iteration of the loops around the band runs "
                         f"{stmt.name} over a tile of ({self.tiles.shape()}), but "
                         f"{intr.name}'s contract computes a domain of "
                         f"({_extents(self.c_dom, intr.statement.iterators)}); no iteration "
                         "runs a whole contract tile (split or tile the loops to the "
                         "contract's extents)")
        for perm in perms:
            tile = self._tile(perm)
            if tile is None:
                continue
            for binding in bindings:
                found = self._operands(binding, *tile)
                if found is not None:
                    name = fresh_name(identifier(f"{stmt.name}_{intr.name}"),
                                      program_names(self.program))
                    return _Match(name, binding, tile[0], tile[1], found)
        raise ScheduleError(self.failure[1])

    def _tile(self, perm: tuple[int, ...]):
        """(whole-tile origins, x-map, y0) when some tile is the contract's
        domain with its dimension c on the statement's dimension perm[c]."""
        n, m = len(self.stmt.iterators), len(perm)
        ys = [f"y{c}" for c in range(m)]
        zs = [f"y{perm.index(d)}" if d in perm else "0" for d in range(n)]
        s = self.stmt.name
        emb = isl.Map(f"{{ {_C}[{', '.join(ys)}] -> {s}[{', '.join(zs)}] }}")
        placed = self.c_dom.apply(emb)
        c0 = _point(placed.lexmin())
        shift = ", ".join(f"z{d} - ({c0[d]})" for d in range(n))
        zn = ", ".join(f"z{d}" for d in range(n))
        rel_c = placed.apply(isl.Map(f"{{ {s}[{zn}] -> {s}[{shift}] }}"))
        origins, rel = self.tiles.origins, self.tiles.rel
        want = isl.Map.from_domain_and_range(origins, rel_c.align_params(origins.get_space()))
        full = origins.subtract(rel.subtract(want).domain()).subtract(
            want.subtract(rel).domain()).coalesce()
        if full.is_empty():
            return None
        os_ = ", ".join(f"o{d}" for d in range(n))
        xs = ", ".join(f"o{d} + {zs[d]} - ({c0[d]})" for d in range(n))
        xmap = isl.Map(f"{{ [{s}[{os_}] -> {_C}[{', '.join(ys)}]] -> {s}[{xs}] }}")
        pairs = isl.Map.from_domain_and_range(full, self.c_dom.align_params(full.get_space()))
        xmap = xmap.align_params(full.get_space()).intersect_domain(pairs.wrap())
        y0 = [c0[d] for d in perm]
        return full, xmap, pairs, y0

    def _operands(self, binding, full, xmap, pairs, y0) -> dict | None:
        """Per contract array: (sigma, base index), or ``None`` (failure recorded)."""
        out = {}
        for k, op in enumerate(o for o in self.intr.operands if o.kind == "array"):
            real = self.program.arrays[binding.arrays[op.name]]
            occ = [(c, kk) for c, kk in binding.pairs if c.array == op.name]
            score = (1, k)
            if real.dtype != op.dtype:
                self._fail(score, f"{self.what}: operand {op.name} of {self.intr.name} is "
                                  f"{op.dtype}, but {self.stmt.name}'s array {real.name} "
                                  f"is {real.dtype}")
                return None
            if real.ndim < op.ndim:
                self._fail(score, f"{self.what}: operand {op.name} of {self.intr.name} is "
                                  f"{op.ndim}-d, but {self.stmt.name}'s array {real.name} "
                                  f"is {real.ndim}-d")
                return None
            n, m = real.ndim, op.ndim
            default = tuple(range(n - m, n))
            sigmas = sorted((p + (n - 1,) for p in itertools.permutations(range(n - 1), m - 1)),
                            key=lambda s: (s != default, list(s) != sorted(s)))
            first_msg = None
            for sigma in sigmas:
                msg, base = self._layout(occ, sigma, xmap, pairs, y0, op, real)
                if msg is None:
                    out[op.name] = (sigma, base)
                    break
                first_msg = first_msg or msg
            else:
                self._fail(score, first_msg)
                return None
        return out

    def _layout(self, occ, sigma, xmap, pairs, y0, op, real):
        """Check the accesses ``occ`` of one operand against layout ``sigma``
        (view dimension d on the real array's dimension sigma[d]); returns
        (failure message or None, base index expressions)."""
        c_its, s = self.intr.statement.iterators, self.stmt
        n = real.ndim
        vs = [f"v{d}" for d in range(op.ndim)]
        rs = [f"v{sigma.index(r)}" if r in sigma else "0" for r in range(n)]
        view = isl.Map(f"{{ {op.name}[{', '.join(vs)}] -> {real.name}[{', '.join(rs)}] }}")
        c1, k1 = occ[0]
        g1 = _access_map(None, _C, c_its, c1)
        at_y0 = isl.Set(f"{{ {_C}[{', '.join(map(str, y0))}] }}")
        off = _point(at_y0.apply(g1).apply(view))
        an = ", ".join(f"a{r}" for r in range(n))
        shift = isl.Map(f"{{ {real.name}[{an}] -> {real.name}["
                        + ", ".join(f"a{r} - ({off[r]})" for r in range(n)) + "] }")
        base = pairs.domain_map().apply_range(
            _access_map(self.program, s.name, s.iterators, k1)).apply_range(
            shift.align_params(pairs.get_space()))
        for c, k in occ:
            kmap = xmap.apply_range(_access_map(self.program, s.name, s.iterators, k))
            g = _access_map(None, _C, c_its, c)
            cmap = base.sum(pairs.range_map().apply_range(
                g.apply_range(view).align_params(pairs.get_space())))
            if not kmap.is_equal(cmap):
                return self._explain(c, k, kmap, cmap, xmap, sigma, op, real), None
        index = tuple(_minus(e, off[r]) for r, e in enumerate(k1.index))
        return None, index

    def _explain(self, c, k, kmap, cmap, xmap, sigma, op, real) -> str:
        diff = kmap.subtract(cmap)
        diff = diff if not diff.is_empty() else cmap.subtract(kmap)
        w = diff.wrap()
        pt = w.sample_point()
        for p in range(w.dim(isl.dim_type.param)):
            w = w.fix_val(isl.dim_type.param, p, pt.get_coordinate_val(isl.dim_type.param, p))
        coords = _point(w.lexmin())
        s, c_its = self.stmt, self.intr.statement.iterators
        n, m = len(s.iterators), len(c_its)
        o, y, elem = coords[:n], coords[n:n + m], coords[n + m:]
        inst = isl.Set(f"{{ [{s.name}[{', '.join(map(str, o))}] -> "
                       f"{_C}[{', '.join(map(str, y))}]] }}").align_params(w.get_space())
        inst = inst.intersect_params(w.params())
        x = _point(xmap.intersect_domain(inst).range())
        want = _point(cmap.intersect_domain(inst).range())
        v = _point(isl.Set(f"{{ {_C}[{', '.join(map(str, y))}] }}").apply(
            _access_map(None, _C, c_its, c)))
        verb = "writes" if isinstance(k, ir.Store) else "reads"
        rows = "".join(f", its dimension {d} along {real.name}'s dimension {sigma[d]}"
                       for d in range(op.ndim - 1))
        named = ", ".join(f"{a}={b}" for a, b in zip(s.iterators, x))
        return (f"{self.what}: {s.name}'s access {_text(k)} does not match the contract's "
                f"{_text(c)} (operand {op.name} of {self.intr.name}): {s.name}[{named}] "
                f"{verb} {real.name}[{', '.join(map(str, elem))}], but the calling convention "
                f"puts the contract's {op.name}[{', '.join(map(str, v))}] at "
                f"{real.name}[{', '.join(map(str, want))}] ({op.name}'s last dimension "
                f"contiguous in {real.name}{rows})")


def _minus(e: ir.Expr, c: int) -> ir.Expr:
    """``e - c``, folding constants."""
    if c == 0:
        return e
    if isinstance(e, ir.Const):
        return ir.Const(e.value - c, INDEX)
    if isinstance(e, ir.Bin) and e.op in ("add", "sub") and isinstance(e.b, ir.Const):
        rest = e.b.value - c if e.op == "add" else e.b.value + c
        op = "add" if e.op == "add" else "sub"
        return e.a if rest == 0 else ir.Bin(op, e.a, ir.Const(rest, INDEX), INDEX)
    return ir.Bin("sub", e, ir.Const(c, INDEX), INDEX)


def _partial_message(what: str, stmt: Statement, cut: isl.Set, intr: IntrinsicContract) -> str:
    pt = cut.sample_point()
    sizes = ", ".join(f"{p}={pt.get_coordinate_val(isl.dim_type.param, k).to_python()}"
                      for k, p in enumerate(cut.get_var_names(isl.dim_type.param)))
    fixed = cut
    for k in range(cut.dim(isl.dim_type.param)):
        fixed = fixed.fix_val(isl.dim_type.param, k, pt.get_coordinate_val(isl.dim_type.param, k))
    o = _point(fixed.lexmin())
    at = ", ".join(f"{a}={b}" for a, b in zip(stmt.iterators, o))
    return (f"{what}: partial tiles: the tile at {stmt.name}[{at}]"
            + (f" (with {sizes})" if sizes else "")
            + f" is smaller than {intr.name}'s contract domain "
              f"({_extents(intr.statement.domain, intr.statement.iterators)}); sizes must be "
              "multiples of the contract's extents, or partial='loops' runs such tiles "
              "with the original loops")


# -- the contract's order inside a tile ----------------------------------------------------

def _check_order(program: Program, deps: Dependences, tiles: _Tiles, match: _Match,
                 intr: IntrinsicContract, what: str) -> None:
    """Every dependence between two instances of one whole tile must go
    forward in the contract's own execution order."""
    csched = isl.Map.from_union_map(intr.program.schedule.get_map())
    csched = csched.set_tuple_name(isl.dim_type.in_, _C)
    inst_to_y = match.xmap.reverse().range_factor_range()
    time = inst_to_y.apply_range(csched.align_params(inst_to_y.get_space()))
    inside = tiles.origin.intersect_range(match.full)
    same = isl.UnionMap.from_map(inside.apply_range(inside.reverse()))
    backward = isl.UnionMap.from_map(time.lex_ge_map(time))
    for kind, array, dep in deps.items():
        bad = dep.intersect(same).intersect(backward)
        if bad.is_empty():
            continue
        src, dst, sizes, pair = _sample(program, bad)
        element = _element(program, kind, array, pair)
        v = Violation(kind, array, src, dst, element, None, False, sizes)
        sv, tv = v.verbs
        where = f" (with {sizes})" if sizes else ""
        raise IllegalScheduleError(
            f"{what}: {intr.name}'s contract runs the instances of a tile in its own loop "
            f"order, which would run {dst} ({tv} {element}) before {src} ({sv} {element}): "
            f"{kind} dependence on {array} reversed inside the tile{where}", [v])


# -- the rewrite ----------------------------------------------------------------------------------

def _rewrite(sch, mark: isl.ScheduleNode, stmt: Statement, tiles: _Tiles, match: _Match,
             intr: IntrinsicContract):
    """The program with the call statement, its dependences, the schedule tree
    and the loop marks that disappear."""
    program = sch.program
    t = match.name
    inside = tiles.origin.intersect_range(match.full).domain().coalesce()
    rest = stmt.domain.subtract(inside).coalesce()
    # instance of S in a whole tile -> the call of its tile, and back (origin)
    to_call = tiles.origin.intersect_domain(inside).set_tuple_name(isl.dim_type.out, t)
    origin_of = isl.Map.identity(isl.Space.map_from_set(match.full.get_space()))
    origin_of = origin_of.intersect_domain(match.full).set_tuple_name(isl.dim_type.in_, t)

    def pullback(tree: isl.Schedule, domain: isl.UnionSet) -> isl.Schedule:
        keep = domain.subtract(isl.UnionSet.from_set(inside))
        upma = isl.UnionPwMultiAff.from_pw_multi_aff(isl.PwMultiAff.from_map(origin_of))
        return tree.pullback_union_pw_multi_aff(upma.union_add(
            keep.identity_union_pw_multi_aff()))

    footprint = {}
    for kind in ("reads", "writes"):
        rels: dict[str, isl.Map] = {}
        for acc in getattr(stmt, kind):
            rel = to_call.reverse().apply_range(acc.relation)
            rels[acc.array] = rels[acc.array].union(rel) if acc.array in rels else rel
        footprint[kind] = tuple(Access(a, r.coalesce(), (), f"{a}[footprint]")
                                for a, r in rels.items())
    call = Statement(t, stmt.iterators, match.full.set_tuple_name(t), footprint["reads"],
                     footprint["writes"], _call(program, match, intr), stmt.line,
                     f"{intr.name}(...)  # tensorized {stmt.source}")
    stmts = []
    for s in program.statements:
        if s is not stmt:
            stmts.append(s)
            continue
        if not rest.is_empty():
            stmts.append(dataclasses.replace(
                s, domain=rest,
                reads=tuple(dataclasses.replace(a, relation=a.relation.intersect_domain(rest))
                            for a in s.reads),
                writes=tuple(dataclasses.replace(a, relation=a.relation.intersect_domain(rest))
                             for a in s.writes)))
        stmts.append(call)
    new = dataclasses.replace(program, statements=tuple(stmts),
                              schedule=pullback(program.schedule, program.domain),
                              meta={k: v for k, v in program.meta.items() if k != "dependences"})
    # dependences: instances of whole tiles become their call; pairs inside one call go
    g = isl.UnionMap.from_map(to_call).union(
        program.domain.subtract(isl.UnionSet.from_set(inside)).identity())
    own = isl.UnionSet.from_set(call.domain).identity()
    by_array: dict[str, dict[str, isl.UnionMap]] = {k: {} for k in sch.deps.by_array}
    for kind, array, dep in sch.deps.items():
        d = dep.apply_domain(g).apply_range(g).subtract(own).coalesce()
        if not d.is_empty():
            by_array[kind][array] = d
    deps = Dependences(new, by_array)
    new.meta["dependences"] = deps
    # the tree: the call at the loop's place, the partial tiles under the loops
    tree = pullback(sch.tree, sch.tree.get_domain())
    node = _find(tree, mark)
    chain = _chain_marks(node)
    rest_here = isl.UnionSet.from_set(rest).intersect(node.get_domain())
    if rest_here.is_empty():
        gone = chain
    else:
        node = node.insert_sequence(isl.UnionSetList.from_union_set(
            isl.UnionSet.from_set(call.domain)).add(rest_here)).child(0).child(0)
        gone = []
    while node.get_type() in (_T.mark, _T.band):
        node = node.delete()
    return new, deps, node.get_schedule(), gone


def _find(tree: isl.Schedule, mark: isl.ScheduleNode) -> isl.ScheduleNode:
    from .tree import find_mark

    return find_mark(tree.get_root(), mark.mark_get_id().get_name())


def _chain_marks(node: isl.ScheduleNode) -> list[str]:
    out = []
    while node.get_type() in (_T.mark, _T.band):
        if node.get_type() == _T.mark:
            out.append(node.mark_get_id().get_name())
        node = node.child(0)
    return out


def _call(program: Program, match: _Match, intr: IntrinsicContract) -> ir.Extern:
    """The call's body, in the statement's iterators (bound to the origin)."""
    args: list[ir.Expr] = []
    byref: list[bool] = []
    b = match.binding
    for op in intr.operands:
        if op.kind == "scalar":
            args.append(b.scalars[op.name])
            byref.append(False)
            continue
        real = program.arrays[b.arrays[op.name]]
        sigma, index = match.operands[op.name]
        args.append(ir.Load(real.name, index, real.dtype))
        byref.append(True)
        for d in range(op.ndim - 1):
            args.append(_stride(real.extents[sigma[d] + 1:]))
            byref.append(False)
    return ir.Extern(intr.name, intr.symbol, tuple(args), tuple(byref), intr)


def _stride(extents) -> ir.Expr:
    """The product of ``extents`` (constants folded)."""
    const, terms = 1, []
    for e in extents:
        if isinstance(e, ir.Const):
            const *= int(e.value)
        else:
            terms.append(e)
    out = ir.Const(const, INDEX) if const != 1 or not terms else None
    for e in terms:
        out = e if out is None else ir.Bin("mul", out, e, INDEX)
    return out
