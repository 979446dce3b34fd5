"""Validation of generated code: what the isl AST executes, checked with isl.

The last line of defence for the promise that an accepted schedule never
changes results. After isl's AST generator has produced the loop nest, this
pass reads back from the AST, exactly and for every size at once, what it
executes:

- the *executed relation* ``time → instance``: each user node ``S0(c0, c1 +
  1)`` under its loops and conditions runs the instances its arguments name,
  at the points of the loops' iterators that its enclosing ``for`` bounds,
  strides and ``if`` conditions (``else`` branches: the negation) allow;
- the *execution time* of an instance: the vector of positions in blocks and
  values of loop iterators on the way from the root to its user node,
  ordered lexicographically (isl's AST loops always count upwards; two paths
  part at a block, where the position decides).

It then checks, with isl, for each statement: the executed instances are
exactly the statement's domain (none *missing*, none *extra*); no instance
runs twice (*duplicated*); and for every dependence ``source → sink`` of the
program the source runs first (*misordered* otherwise). A failure raises a
``polyop.CodegenError`` naming the statement and a sampled instance (or pair)
with the sizes at which it happens: never silently wrong code.

The AST's integer expressions are read with the semantics of the code polyop
generates from them (``%`` floored, as in ``polyop.ir``), so what is checked
is what runs. Parallel loops are checked as the sequential loop the AST is;
their parallelism is the schedule's legality check (coincidence).

Example::

    >>> import polyop
    >>> from polyop.astgen import build_ast
    >>> @polyop.kernel
    ... def diag(n: int, A: "f64[n, n]"):
    ...     for i in range(n):
    ...         for j in range(n):
    ...             if i == j or i + j == n - 1:
    ...                 A[i, j] = A[i, j] + 1.0
    >>> validate_ast(build_ast(diag.program), diag.program)   # passes silently
    >>> import islpy as isl
    >>> wrong = isl.Schedule('{ domain: "[n] -> { S0[i, j] : 0 <= i < n and j = i }" }')
    >>> validate_ast(build_ast(diag.program, wrong), diag.program)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyop.errors.CodegenError: generated code for diag misses S0[i=1, j=0] (with n=2): ...
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import islpy as isl

from .budget import BudgetExceeded, isl_budget
from .deps import dependences
from .errors import CodegenError
from .instances import instance_text, sample_pair, sizes_text
from .program import Program, union_all

_OP = isl.ast_expr_op_type
_NODE = isl.ast_node_type
_SET = isl.dim_type.set
_PARAM = isl.dim_type.param


#: the largest program whose dependences are computed just for the order check
ORDER_CHECK_STATEMENTS = 200

#: sizes checked when the check for all sizes at once is over its budget
SAMPLED_SIZES = 32


def validate_ast(ast: isl.AstNode, program: Program, deps=None,
                 context: isl.Set | None = None) -> None:
    """Check that ``ast`` executes each statement of ``program`` on exactly its
    domain, each instance once, every dependence of ``deps`` (a
    ``polyop.deps.Dependences``; default: the program's) source first; for
    every size of the program's context, or for those of ``context`` only.

    Raises ``CodegenError`` naming the statement and an instance (or a pair of
    instances for a dependence) at which the generated code is wrong.

    Dependences are quadratic in the number of statements (every pair that
    touches one element): for a program of more than ``ORDER_CHECK_STATEMENTS``
    statements whose dependences nobody has computed yet (no ``Schedule`` was
    made of it), the order is not checked; the instances still are.
    """
    deps = _deps(program, deps)
    walk = _walk(ast, program)
    _check(walk, program, deps, program.context if context is None else context)


def validate_within(ast: isl.AstNode, program: Program, deps, operations: int,
                    samples: int = SAMPLED_SIZES) -> list[dict[str, int]]:
    """``validate_ast`` within ``operations`` isl operations.

    The check for all sizes at once comes first. Where it needs more (the
    executed relation of skewed, tiled loops has many pieces with integer
    divisions, and subtracting those from the domain can take isl minutes),
    the same checks run at ``samples`` fixed sizes, which isl does in
    milliseconds each: the sizes that make the generated code's constants
    (tile sizes, strides, offsets) change a tile's shape, near 0, and a few
    mixed. Returns ``[]`` when every size was checked, else the sizes that
    were; raises ``BudgetExceeded`` when even those did not fit.

    Example (a wavefront of skewed tiles, checked at sampled sizes)::

        >>> import polyop
        >>> from polyop.astgen import build_ast
        >>> @polyop.kernel
        ... def seidel(T: int, n: int, A: "f64[n]"):
        ...     for t in range(T):
        ...         for i in range(1, n - 1):
        ...             A[i] = (A[i - 1] + A[i] + A[i + 1]) / 3.0
        >>> sch = polyop.Schedule(seidel)
        >>> t, i = sch.get_loops("S0")
        >>> sch.skew(t, i, 1)
        >>> to, io, ti, ii = sch.tile(*sch.get_loops("S0"), 4, 64)
        >>> sch.skew(to, io, 1)
        >>> sch.interchange(*sch.get_loops("S0")[:2])
        >>> ast = build_ast(sch.program, sch.ast_tree())
        >>> len(validate_within(ast, sch.program, sch.deps, 1_000_000)) > 10
        True
    """
    deps = _deps(program, deps)
    with isl_budget(operations):
        walk = _walk(ast, program)
    try:
        with isl_budget(operations):
            _check(walk, program, deps, program.context)
        return []
    except BudgetExceeded:
        pass
    sizes = sample_sizes(program, ast, samples)
    with isl_budget(operations):
        for values in sizes:
            _check(walk, program, deps, _at(program, values))
    return sizes


def sample_sizes(program: Program, ast: isl.AstNode, count: int) -> list[dict[str, int]]:
    """Up to ``count`` sizes in the program's context, chosen to exercise the
    generated code: per size parameter the values around the integer
    constants of the AST (``m - 1, m, m + 1, 2m + 1``: full and partial tiles)
    and small values; the same value for all parameters first, then mixes
    drawn with a fixed seed (the choice is reproducible)."""
    params = program.context.get_var_names(_PARAM)
    if not params:
        return [{}]
    consts = {int(c) for c in re.findall(r"\b\d+\b", ast.to_C_str())}
    pool = {0, 1, 2, 3, 5, 8}
    for m in consts:
        if 1 < m <= 4096:
            pool |= {m - 1, m, m + 1, m + 2, 2 * m + 1}
    values = sorted(pool)
    candidates = [dict.fromkeys(params, v) for v in values]
    rng = random.Random(0)
    candidates += [{p: rng.choice(values) for p in params} for _ in range(8 * count)]
    out: list[dict[str, int]] = []
    for c in candidates:
        if c not in out and not _at(program, c).is_empty():
            out.append(c)
        if len(out) == count:
            break
    return out


def _at(program: Program, sizes: dict[str, int]) -> isl.Set:
    """The program's context at the given sizes."""
    fixed = isl.Set(f"[{', '.join(sizes)}] -> {{ : "
                    f"{' and '.join(f'{p} = {v}' for p, v in sizes.items())} }}")
    return program.context.intersect_params(fixed.align_params(program.context.get_space()))


def _deps(program: Program, deps):
    if deps is None:
        known = "dependences" in program.meta
        if known or len(program.statements) <= ORDER_CHECK_STATEMENTS:
            deps = dependences(program)
    return deps


def _walk(ast: isl.AstNode, program: Program) -> _Walk:
    walk = _Walk(program, _depth(ast, False), _depth(ast, True))
    walk.node(ast, walk.universe, [], 0)
    walk.executed = union_all(walk.runs, isl.UnionMap.empty(program.context.get_space()))
    return walk


def _check(walk: _Walk, program: Program, deps, context: isl.Set) -> None:
    """The checks of ``validate_ast`` on the executed relation, for the sizes of ``context``."""
    # time -> instance; coalesced once, it makes every test below 3-5x cheaper
    executed = walk.executed.intersect_params(context).coalesce()
    ran = executed.range()
    domain = program.domain.intersect_params(context)
    missing = domain.subtract(ran)
    if not missing.is_empty():
        _fail(program, "misses", _first_set(missing).get_tuple_name(), missing, "missing")
    # (not ran - domain: the range of a tiled nest has integer divisions, and
    # isl subtracts those from the domain in seconds, the domain from the
    # executed relation in milliseconds)
    extra = executed.subtract_range(domain).range()
    if not extra.is_empty():
        _fail(program, "runs", _first_set(extra).get_tuple_name(), extra, "extra",
              " outside its domain")
    when = executed.reverse()  # instance -> time
    # one map per statement (one time space): single-valued each, single-valued
    # together; isl's test on the union costs quadratic time in statements
    maps: list[isl.Map] = []
    when.foreach_map(maps.append)
    if not all(m.is_single_valued() for m in maps):
        first = when.lexmin()
        twice = when.subtract(first).domain()
        name = _first_set(twice).get_tuple_name()
        _fail(program, "runs", name, twice, "duplicated", " more than once")
    if deps is None:
        return
    lex_lt = isl.UnionMap.from_map(isl.Map.lex_lt(walk.time_space))
    if _ordered(deps.all, when, lex_lt):  # one test for all; on failure, find the culprit
        return
    for kind, array, rel in deps.items():
        if _ordered(rel, when, lex_lt):
            continue
        late = when.apply_range(isl.UnionMap.from_map(isl.Map.lex_ge(walk.time_space)))
        bad = rel.intersect(late.apply_range(when.reverse()))
        src, dst, sizes, _ = sample_pair(program, bad)
        where = f" (with {sizes})" if sizes else ""
        raise CodegenError(
            f"generated code for {program.name} runs {dst} before {src}, against their "
            f"{kind} dependence on {array}{where}: isl's AST is wrong for this schedule; "
            "please report it", dst.split("[")[0], f"{src} -> {dst}", "misordered")


def _ordered(deps: isl.UnionMap, when: isl.UnionMap, lex_lt: isl.UnionMap) -> bool:
    """Whether every source of ``deps`` runs before its sink at the times ``when``."""
    return deps.apply_domain(when).apply_range(when).is_subset(lex_lt)


@dataclass
class _Walk:
    """Collects the executed relation while walking an AST."""

    program: Program
    depth: int  # of the deepest loop nest
    length: int  # of the longest time vector

    def __post_init__(self) -> None:
        params = self.program.context.get_space()
        space = params.add_dims(_SET, self.depth)  # the iterators c0, c1, ...
        self.universe = isl.Set.universe(space)
        self.local = isl.LocalSpace.from_space(space)
        self.time_space = isl.Space.set_alloc(params.get_ctx(), 0, self.length)
        self.runs: list[isl.UnionMap] = []  # time -> instance, one per user node
        self.executed: isl.UnionMap | None = None  # their union
        self.iterators: dict[str, int] = {}

    def node(self, n: isl.AstNode, where: isl.Set, path: list, depth: int) -> None:
        """Walk ``n``, run where ``where`` holds, at time ``path`` so far, under
        ``depth`` loops."""
        t = n.get_type()
        if t == _NODE.block:
            kids = n.block_get_children()
            for k in range(kids.n_ast_node()):
                self.node(kids.get_at(k), where, path + [k], depth)
        elif t == _NODE.mark:
            self.node(n.mark_get_node(), where, path, depth)
        elif t == _NODE.if_:
            cond = self.cond(n.if_get_cond())
            self.node(n.if_get_then_node(), where.intersect(cond), path, depth)
            if n.if_has_else_node():
                self.node(n.if_get_else_node(), where.subtract(cond), path, depth)
        elif t == _NODE.for_:
            name = n.for_get_iterator().get_id().get_name()
            self.iterators[name] = depth
            var = self.var(depth)
            init = self.expr(n.for_get_init())
            runs = var.ge_set(init).intersect(self.cond(n.for_get_cond()))
            inc = n.for_get_inc().get_val().to_python()
            if inc != 1:  # the iterator steps from init by inc
                runs = runs.intersect(var.sub(init).mod_val(isl.Val(inc)).zero_set())
            self.node(n.for_get_body(), where.intersect(runs), path + [var], depth + 1)
        elif t == _NODE.user:
            self.user(n.user_get_expr(), where, path, depth)
        else:
            raise AssertionError(f"unexpected isl AST node type {t}")

    def user(self, call: isl.AstExpr, where: isl.Set, path: list, depth: int) -> None:
        for d in range(depth, self.depth):  # iterators of no enclosing loop: 0
            where = where.intersect(self.var(d).zero_set())
        name = call.get_op_arg(0).get_id().get_name()
        args = [self.expr(call.get_op_arg(k)) for k in range(1, call.get_op_n_arg())]
        inst = _tuple(args, self.universe).set_tuple_name(isl.dim_type.out, name)
        path = path + [0] * (self.length - len(path))
        time = _tuple([p if isinstance(p, isl.PwAff) else self.const(p) for p in path],
                      self.universe)
        run = time.intersect_domain(where).reverse().apply_range(inst.intersect_domain(where))
        self.runs.append(isl.UnionMap.from_map(run))

    # -- AST expressions as isl objects, with polyop's semantics ----------------------
    def var(self, d: int) -> isl.PwAff:
        return isl.PwAff.from_aff(isl.Aff.var_on_domain(self.local, _SET, d))

    def const(self, v: int) -> isl.PwAff:
        return isl.PwAff.from_aff(isl.Aff.zero_on_domain(self.local).set_constant_val(
            isl.Val(v)))

    def expr(self, e: isl.AstExpr) -> isl.PwAff:
        t = e.get_type()
        if t == isl.ast_expr_type.int:
            return self.const(e.get_val().to_python())
        if t == isl.ast_expr_type.id:
            name = e.get_id().get_name()
            if name in self.iterators:
                return self.var(self.iterators[name])
            pos = self.universe.get_space().find_dim_by_name(_PARAM, name)
            assert pos >= 0, f"unknown name {name} in the AST"
            return isl.PwAff.from_aff(isl.Aff.var_on_domain(self.local, _PARAM, pos))
        op = e.get_op_type()
        args = [e.get_op_arg(k) for k in range(e.get_op_n_arg())]
        if op in (_OP.select, _OP.cond):
            c = self.cond(args[0]).indicator_function()
            return c.cond(self.expr(args[1]), self.expr(args[2]))
        xs = [self.expr(a) for a in args]
        if op == _OP.minus:
            return xs[0].neg()
        if op in (_OP.fdiv_q, _OP.pdiv_q, _OP.div):
            return xs[0].div(xs[1]).floor()
        if op in (_OP.pdiv_r, _OP.zdiv_r):  # polyop's IR computes a floored mod
            return xs[0].mod_val(args[1].get_val())
        binary = {_OP.add: "add", _OP.sub: "sub", _OP.mul: "mul", _OP.min: "min",
                  _OP.max: "max"}
        assert op in binary, f"unexpected isl AST expression {e.to_C_str()}"
        out = xs[0]
        for x in xs[1:]:
            out = getattr(out, binary[op])(x)
        return out

    def cond(self, e: isl.AstExpr) -> isl.Set:
        if e.get_type() != isl.ast_expr_type.op:  # an integer as a truth value (``c || 1``)
            return self.expr(e).ne_set(self.const(0))
        op = e.get_op_type()
        args = [e.get_op_arg(k) for k in range(e.get_op_n_arg())]
        if op in (_OP.and_, _OP.and_then):
            return self.cond(args[0]).intersect(self.cond(args[1]))
        if op in (_OP.or_, _OP.or_else):
            return self.cond(args[0]).union(self.cond(args[1]))
        compare = {_OP.eq: "eq_set", _OP.le: "le_set", _OP.lt: "lt_set", _OP.ge: "ge_set",
                   _OP.gt: "gt_set"}
        assert op in compare, f"unexpected isl AST condition {e.to_C_str()}"
        return getattr(self.expr(args[0]), compare[op])(self.expr(args[1]))


def _tuple(values: list[isl.PwAff], universe: isl.Set) -> isl.Map:
    """The map ``{ point -> [values(point)] }``."""
    out = isl.Map.from_domain(universe)
    for v in values:
        out = out.flat_range_product(isl.Map.from_pw_aff(v))
    return out


def _depth(ast: isl.AstNode, blocks: bool) -> int:
    """The most ``for`` nodes (and, if ``blocks``, block nodes) on a path of ``ast``."""
    t = ast.get_type()
    if t == _NODE.for_:
        return 1 + _depth(ast.for_get_body(), blocks)
    if t == _NODE.block:
        kids = ast.block_get_children()
        return blocks + max((_depth(kids.get_at(k), blocks) for k in range(kids.n_ast_node())),
                            default=0)
    if t == _NODE.if_:
        other = _depth(ast.if_get_else_node(), blocks) if ast.if_has_else_node() else 0
        return max(_depth(ast.if_get_then_node(), blocks), other)
    if t == _NODE.mark:
        return _depth(ast.mark_get_node(), blocks)
    return 0


def _first_set(s: isl.UnionSet) -> isl.Set:
    out: list[isl.Set] = []
    s.foreach_set(out.append)
    return out[0]


def _fail(program: Program, verb: str, stmt: str, where: isl.UnionSet, problem: str,
          tail: str = "") -> None:
    pts = _first_set(where)
    pt = pts.sample_point()
    inst = instance_text(program, stmt, pt)
    sizes = sizes_text(pt, pts.get_var_names(_PARAM))
    where_s = f" (with {sizes})" if sizes else ""
    raise CodegenError(f"generated code for {program.name} {verb} {inst}{where_s}"
                       f"{tail}: isl's AST is wrong for this schedule; please report it",
                       stmt, inst, problem)
