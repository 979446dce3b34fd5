"""Schedule tree → isl AST → polyop loop IR.

``build_ast`` runs isl's AST generator on a schedule tree; ``ast_to_ir``
translates the resulting AST into the loop IR of ``polyop.ir``: ``for`` nodes
become ``For`` (the condition ``c <= ub`` turned into an exclusive stop),
``if`` nodes ``If``, blocks ``Block``, and each user node (a statement
instance ``S3(c0, c1 + 1)``) the statement's ``Store`` with its iterators
replaced by the AST's expressions. A generated loop takes the name of the
source iterator it runs over when that is unambiguous (``i`` rather than ``c0``).

Expressions are translated by ``polyop.isl_ir`` (the one isl ↔ IR bridge),
which keeps isl's semantics exactly.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def k(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] = 1.0
    >>> print(ast_to_ir(build_ast(k.program), k.program))  # doctest: +NORMALIZE_WHITESPACE
    for (i = 0; i < n; i += 1)
      A[i] = 1.0;
"""

from __future__ import annotations

import dataclasses
import itertools

import islpy as isl

from . import ir
from .isl_ir import ast_expr_to_ir, plus_one, truth
from .kinds import LoopKind
from .program import Program
from .schedule.tree import with_disjoint_domain
from .types import INDEX

_OP = isl.ast_expr_op_type

def build_ast(program: Program, schedule: isl.Schedule | None = None) -> isl.AstNode:
    """isl's AST for ``schedule`` (default: the program's textual schedule).

    Subscripts with integer division (``Bp[j // 16][k][j % 16]``, from a cache
    layout) are rebuilt by isl at each statement instance, where it knows the
    loops' ranges: after ``split(j, 16)`` the subscripts become ``j_outer`` and
    ``j_inner``. The user node is annotated with an id naming them (see
    ``quasi_affine_subscripts``).
    """
    build = isl.AstBuild.from_context(program.context)
    quasi = {s.name: [a for a in s.reads + s.writes if _has_division(a.index)]
             for s in program.statements}
    if any(quasi.values()):
        # islpy returns the callback with the build; it must stay alive until done
        build, _keep = build.set_at_each_domain(lambda node, b: _annotate(node, b, quasi))
    return build.node_from_schedule(schedule or with_disjoint_domain(program.schedule))


#: annotation id -> {(array, original subscripts): subscripts as AST expressions}
_SUBSCRIPTS: dict[str, dict[tuple, tuple[ir.Expr, ...]]] = {}
_KEYS = itertools.count()


def _has_division(index: tuple[ir.Expr, ...]) -> bool:
    return any(isinstance(n, ir.Bin) and n.op in ("fdiv", "mod")
               for e in index for n in ir.walk(e))


def _annotation(node: isl.AstNode) -> str | None:
    try:
        return node.get_annotation().get_name()
    except isl.Error:  # no annotation
        return None


def _annotate(node: isl.AstNode, build: isl.AstBuild, quasi: dict) -> isl.AstNode:
    # an exception must not escape into isl (islpy would ignore it, then isl may
    # free the node twice): without subscripts, the statement's own are used
    try:
        return _annotated(node, build, quasi)
    except Exception:  # noqa: BLE001
        return node


def _annotated(node: isl.AstNode, build: isl.AstBuild, quasi: dict) -> isl.AstNode:
    expr = node.user_get_expr()
    accesses = quasi.get(expr.get_op_arg(0).get_id().get_name())
    if not accesses:
        return node
    # schedule point -> statement instance, then -> array element
    instance = isl.PwMultiAff.from_map(isl.Map.from_union_map(build.get_schedule()).reverse())
    table = {}
    here = instance.domain()  # the schedule points of this node
    for a in accesses:
        element = isl.PwMultiAff.from_map(a.relation).pullback_pw_multi_aff(instance)
        if not here.is_subset(element.domain()):
            continue  # a guarded read, not made at every point here: keep its subscripts
        table[(a.array, a.index)] = tuple(
            ast_expr_to_ir(build.expr_from_pw_aff(element.get_pw_aff(d)))
            for d in range(element.dim(isl.dim_type.out)))
    key = f"polyop_subscripts_{next(_KEYS)}"
    _SUBSCRIPTS[key] = table
    return node.set_annotation(isl.Id(key))


class _Translator:
    def __init__(self, program: Program, loops: dict[str, tuple[str, LoopKind]],
                 atomic: set[str], strips: dict[str, int]):
        self.loops, self.strips = loops, strips
        self.stmts = {s.name: s for s in program.statements}
        for name in atomic:
            body = self.stmts[name].body
            op, operand = ir.reduction_update(body)
            self.stmts[name] = dataclasses.replace(
                self.stmts[name], body=ir.Store(body.array, body.index, operand, op))
        self.reserved = set(program.params) | set(program.arrays) | {
            a.name for a in program.arguments}

    def node(self, n: isl.AstNode, scope: frozenset,
             info: tuple[str, ...] | None = None) -> tuple[ir.Stmt, dict]:
        """IR for ``n`` and, per AST iterator, the source iterator names it stands for.

        ``info`` (name, kind, mark id) applies to the outermost ``for`` nodes of ``n``: the
        loop of a mark, possibly generated several times under ``if``s (isolated
        full strips and the partial ones).
        """
        t = n.get_type()
        if t == isl.ast_node_type.block:
            kids = n.block_get_children()
            parts, uses = [], {}
            for i in range(kids.n_ast_node()):
                s, u = self.node(kids.get_at(i), scope, info)
                parts.append(s)
                _merge(uses, u)
            return ir.Block(tuple(parts)), uses
        if t == isl.ast_node_type.for_:
            return self.loop(n, scope, info)
        if t == isl.ast_node_type.if_:
            cond = truth(ast_expr_to_ir(n.if_get_cond()))
            then, uses = self.node(n.if_get_then_node(), scope, info)
            other = None
            if n.if_has_else_node():
                other, u = self.node(n.if_get_else_node(), scope, info)
                _merge(uses, u)
            return ir.If(cond, then, other), uses
        if t == isl.ast_node_type.user:
            note = _annotation(n)
            table = _SUBSCRIPTS.get(note, {}) if note is not None else {}
            return self.user(n.user_get_expr(), table)
        if t == isl.ast_node_type.mark:
            ident = n.mark_get_id().get_name()
            info = self.loops.get(ident)
            return self.node(n.mark_get_node(), scope,
                             None if info is None else (*info[:2], ident))
        raise AssertionError(f"unexpected isl AST node type {t}")

    def loop(self, n: isl.AstNode, scope: frozenset,
             info: tuple[str, ...] | None = None) -> tuple[ir.Stmt, dict]:
        var = n.for_get_iterator().get_id().get_name()
        start = ast_expr_to_ir(n.for_get_init())
        cond = n.for_get_cond()
        assert cond.get_op_type() in (_OP.le, _OP.lt) and \
            cond.get_op_arg(0).get_type() == isl.ast_expr_type.id and \
            cond.get_op_arg(0).get_id().get_name() == var, \
            f"unexpected loop condition {cond.to_C_str()}"
        stop = ast_expr_to_ir(cond.get_op_arg(1))
        if cond.get_op_type() == _OP.le:
            stop = plus_one(stop)
        step = n.for_get_inc().get_val().to_python()
        body, uses = self.node(n.for_get_body(), scope | {var})
        names = uses.pop(var, set())
        if info is not None:  # a schedule's loop handle names it
            names = {info[0]}
        taken = scope | self.reserved | {n for v in uses.values() for n in v}
        if len(names) == 1 and next(iter(names)) not in taken:
            (name,) = names
            body = ir.substitute(body, {var: ir.Var(name, INDEX)})
            var = name
        elif var in self.reserved:  # isl's c0, c1, ... may be a kernel's own name
            name = next(f"{var}_{k}" for k in range(1, 1 << 30) if f"{var}_{k}" not in taken)
            body = ir.substitute(body, {var: ir.Var(name, INDEX)})
            var = name
        uses.setdefault("", set()).add(var)  # names bound below, never reused above
        kind = LoopKind(info[1]) if info is not None else LoopKind.SERIAL
        ident = info[2] if info is not None and len(info) > 2 else None
        return ir.For(var, start, stop, step, body, kind, ident, self.strips.get(ident)), uses

    def user(self, e: isl.AstExpr, subscripts: dict) -> tuple[ir.Stmt, dict]:
        name = e.get_op_arg(0).get_id().get_name()
        stmt = self.stmts[name]
        env, uses = {}, {}
        for k, it in enumerate(stmt.iterators):
            arg = e.get_op_arg(k + 1)
            env[it] = ast_expr_to_ir(arg)
            if arg.get_type() == isl.ast_expr_type.id:
                uses.setdefault(arg.get_id().get_name(), set()).add(it)
            else:
                for sub in ir.walk(env[it]):
                    if isinstance(sub, ir.Var):  # used in an expression: keep the AST name
                        uses.setdefault(sub.name, set()).update({it, "?"})
        return _instance(stmt.body, env, subscripts), uses


def _instance(node, env: dict[str, ir.Expr], subscripts: dict):
    """``node`` at one instance: iterators replaced by ``env``, and the subscripts
    isl rebuilt (``subscripts``) in place of the statement's own."""
    if isinstance(node, ir.Var):
        return env.get(node.name, node)
    if isinstance(node, (ir.Load, ir.Store)) and (node.array, node.index) in subscripts:
        index = subscripts[(node.array, node.index)]
        if isinstance(node, ir.Load):
            return ir.Load(node.array, index, node.dtype)
        return dataclasses.replace(node, index=index,
                                   value=_instance(node.value, env, subscripts))
    return ir.map_children(node, lambda c: _instance(c, env, subscripts))


def _merge(into: dict, other: dict) -> None:
    for k, v in other.items():
        into.setdefault(k, set()).update(v)


def ast_to_ir(node: isl.AstNode, program: Program,
              loops: dict[str, tuple[str, str]] | None = None,
              atomic: set[str] = frozenset(),
              strips: dict[str, int] | None = None) -> ir.Stmt:
    """Translate an isl AST of ``program``'s statements into loop IR.

    ``loops`` maps schedule mark ids to (loop name, kind) (see ``Schedule``);
    the statements in ``atomic`` (reductions ``X[f] += e``) become atomic updates;
    ``strips`` maps mark ids to the most iterations of their loops (``For.max_trip``).
    An AST of ``build_ast`` is translated once: the subscripts isl rebuilt for it
    are released afterwards.
    """
    stmt, _ = _Translator(program, loops or {}, atomic, strips or {}).node(node, frozenset())
    _release_subscripts(node)
    return stmt


def _release_subscripts(node: isl.AstNode) -> None:
    """Forget the subscripts ``build_ast`` recorded for ``node``'s statements
    (the AST is translated once; the table would otherwise grow)."""
    def visit(n: isl.AstNode) -> bool:
        note = _annotation(n) if n.get_type() == isl.ast_node_type.user else None
        if note is not None:
            _SUBSCRIPTS.pop(note, None)
        return True

    node.foreach_descendant_top_down(visit)
