"""The one bridge between isl objects and polyop's loop IR.

isl describes iteration domains, accesses and schedules; the loop IR
(``polyop.ir``) is what code is generated from. Every translation between the
two lives here, so that each primitive (cache_read/write, set_scope, rfactor,
inline, tensorize) and the AST generator agree on names and semantics:

- ``ast_expr_to_ir``: an isl AST expression (from an ``AstBuild``) as IR;
  ``fdiv_q``/``pdiv_q`` floor, ``pdiv_r``/``zdiv_r`` are remainders (the IR's
  floored ``mod`` agrees where isl uses them), ``min``/``max`` are n-ary.
- ``pw_aff_to_ir``: a piecewise quasi-affine function of a statement instance
  as one integer index expression over the statement's *iterators*. isl
  prints a domain dimension with the name its space carries, which need not
  be the name the statement's body uses (a write-back statement's domain is
  ``[i0, i1]`` while its body reads ``B_cache_back_0``): the dimensions are
  named after ``iterators`` here, never by the caller.
- ``aff_to_ir``: an affine function without integer division, term by term
  (in-dimensions, then parameters, then the constant: the order users read).
- ``set_to_ir``: a set without existentials as a boolean condition.
- ``index_text``: an IR index expression as Python source or in isl's syntax
  (the way back, IR → isl, goes through isl's parser); ``isl_text``: an
  affine expression or condition in isl's syntax with variables renamed
  (the GPU back end's guards and loop bounds).
- ``plus_one``: an exclusive bound from an inclusive one, folded;
  ``constant_bound``: the least or greatest value of a piecewise function,
  ``None`` where isl cannot give it; ``index_relation``: the access relation
  of a load or store in a statement's body.
- ``fresh_name``/``identifier``: names for new statements, arrays, iterators.

What cannot be one index expression (a piecewise function whose pieces no
``min``/``max`` joins, an integer division where none is allowed, a name that
is not an iterator or a parameter) raises ``NotAnIndexError``; a primitive
catches it and names itself, the statement and the loop in a ``ScheduleError``.

Example (dimensions named ``c0`` in isl, ``i`` in the statement)::

    >>> import islpy as isl
    >>> from polyop.exprtext import expr_to_c
    >>> pa = isl.PwAff("[n] -> { S[c0] -> [(floor(c0 / 4) + min(c0, n))] }")
    >>> expr_to_c(pw_aff_to_ir(pa, ("i",)))
    'min(i + i // 4, n + i // 4)'
    >>> index_text(pw_aff_to_ir(pa, ("i",)), "isl")
    'min((i + floor(i / 4)), (n + floor(i / 4)))'
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence

import islpy as isl

from . import ir
from .errors import PolyopError
from .exprtext import expr_to_c
from .types import INDEX

# isl's AST generator writes min/max instead of nested selects where it can:
# an index expression then stays one expression
isl.DEFAULT_CONTEXT.set_ast_build_detect_min_max(1)

_OP = isl.ast_expr_op_type
_BIN = {_OP.add: "add", _OP.sub: "sub", _OP.mul: "mul", _OP.div: "fdiv",
        _OP.fdiv_q: "fdiv", _OP.pdiv_q: "fdiv", _OP.pdiv_r: "mod", _OP.zdiv_r: "mod",
        _OP.min: "min", _OP.max: "max"}
_CMP = {_OP.eq: "eq", _OP.le: "le", _OP.lt: "lt", _OP.ge: "ge", _OP.gt: "gt"}
_LOGIC = {_OP.and_: "and", _OP.and_then: "and", _OP.or_: "or", _OP.or_else: "or"}

#: the operators of an integer index expression
INDEX_OPS = ("add", "sub", "mul", "fdiv", "mod", "min", "max")


class NotAnIndexError(PolyopError):
    """An isl object or IR expression that is not one integer index expression
    (of the allowed names); the message says why."""


# -- isl -> IR --------------------------------------------------------------------------------

def ast_expr_to_ir(e: isl.AstExpr) -> ir.Expr:
    """One isl AST expression (integer valued or boolean) as loop IR; names
    are isl's (the AST's iterators, the parameters).

    >>> build = isl.AstBuild.from_context(isl.Set("[n] -> { : }"))
    >>> ast_expr_to_ir(build.expr_from_pw_aff(isl.PwAff("[n] -> { [(n - 1)] }")))
    Bin(op='sub', a=Var(name='n', dtype=i64), b=Const(value=1, dtype=i64), dtype=i64)
    """
    t = e.get_type()
    if t == isl.ast_expr_type.id:
        return ir.Var(e.get_id().get_name(), INDEX)
    if t == isl.ast_expr_type.int:
        return ir.Const(e.get_val().to_python(), INDEX)
    op = e.get_op_type()
    args = [ast_expr_to_ir(e.get_op_arg(i)) for i in range(e.get_op_n_arg())]
    if op in _BIN:
        out = args[0]
        for b in args[1:]:
            out = ir.Bin(_BIN[op], out, b, INDEX)
        return out
    if op == _OP.minus:
        return ir.Neg(args[0], INDEX)
    if op in _CMP:
        return ir.Cmp(_CMP[op], args[0], args[1])
    if op in _LOGIC:  # isl may write a truth value as an integer (``c || 1``)
        return ir.Logic(_LOGIC[op], *(truth(a) for a in args))
    if op in (_OP.cond, _OP.select):
        return ir.Select(args[0], args[1], args[2], args[1].dtype)
    raise AssertionError(f"unexpected isl AST expression {e.to_C_str()}")


def truth(e: ir.Expr) -> ir.Expr:
    """``e`` as a condition: itself when boolean, else ``e != 0`` (isl's AST
    writes a condition that always holds as the integer ``1``).

    >>> truth(ir.Const(1, INDEX))
    Cmp(op='ne', a=Const(value=1, dtype=i64), b=Const(value=0, dtype=i64), dtype=bool)
    """
    return e if e.dtype == ir.BOOL else ir.Cmp("ne", e, ir.Const(0, e.dtype))


def pw_aff_to_ir(pa: isl.PwAff | isl.Aff, iterators: Sequence[str] = (),
                 within: isl.Set | None = None, selects: bool = False) -> ir.Expr:
    """``pa`` as one integer index expression over ``iterators`` (its domain
    dimensions, in order) and its parameters.

    ``within`` (a set in ``pa``'s domain space, or a parameter set) is what is
    known where the expression is used (a statement's domain, the sizes'
    context): isl simplifies against it. Pieces must join into ``min``/``max``;
    otherwise, or when a name is neither an iterator nor a parameter,
    ``NotAnIndexError``. ``selects=True``: pieces no ``min``/``max`` joins are
    selects (a value computed once, as a GPU launch's extents, not an index).

    >>> from polyop.exprtext import expr_to_c
    >>> pa = isl.PwAff("{ [a, b] -> [(a - 2 * b)] : b >= 0; [a, b] -> [(a)] : b < 0 }")
    >>> expr_to_c(pw_aff_to_ir(pa, ("i", "j")))  # isl joins these two pieces
    'min(i, i - 2 * j)'
    >>> pw_aff_to_ir(isl.PwAff("{ [a, b] -> [(b)] : a >= 0; [a, b] -> [(a + 1)] : a < 0 }"),
    ...              ("i", "j"))
    Traceback (most recent call last):
    ...
    polyop.isl_ir.NotAnIndexError: 'i <= -1 ? i + 1 : j' has pieces no min/max joins
    """
    if isinstance(pa, isl.Aff):
        pa = isl.PwAff.from_aff(pa)
    n = pa.dim(isl.dim_type.in_)
    if n != len(iterators):
        raise AssertionError(f"{len(iterators)} iterator names for a function of {n} "
                             f"dimensions ({pa})")
    for k, it in enumerate(iterators):
        pa = pa.set_dim_id(isl.dim_type.in_, k, isl.Id(it))
    if within is None:
        within = isl.Set.universe(pa.get_domain_space())
    elif n and within.is_params():  # the sizes' context of a statement's function
        within = isl.Set.universe(pa.get_domain_space()).intersect_params(within)
    within = within.align_params(pa.get_space())
    pa = pa.align_params(within.get_space())
    if within.dim(isl.dim_type.set):
        for k, it in enumerate(iterators):
            within = within.set_dim_name(isl.dim_type.set, k, it)
    # a build whose "loops" are the domain's dimensions, named as the statement's
    e = ast_expr_to_ir(isl.AstBuild.from_context(within).expr_from_pw_aff(pa.coalesce()))
    names = set(iterators) | set(pa.get_space().get_var_names(isl.dim_type.param))
    if selects:
        check_names(e, names)
    else:
        check_index(e, names)
    return e


def aff_to_ir(aff: isl.Aff, iterators: Sequence[str]) -> ir.Expr:
    """An affine ``aff`` without integer division as ``c * x + ... + k`` over
    ``iterators`` (its in-dimensions) and its parameters, in that order.

    >>> from polyop.exprtext import expr_to_c
    >>> expr_to_c(aff_to_ir(isl.Aff("[n] -> { [a, b] -> [(4 * a + b - n + 1)] }"), ("p", "q")))
    '4 * p + q + -1 * n + 1'
    """
    if aff.dim(isl.dim_type.div) or not aff.get_denominator_val().is_one():
        raise NotAnIndexError(f"{aff} needs integer division")
    terms: list[ir.Expr] = []
    for kind in (isl.dim_type.in_, isl.dim_type.param):
        for k in range(aff.dim(kind)):
            c = aff.get_coefficient_val(kind, k).to_python()
            if c:
                name = iterators[k] if kind == isl.dim_type.in_ else aff.get_dim_name(kind, k)
                v = ir.Var(name, INDEX)
                terms.append(v if c == 1 else ir.Bin("mul", ir.Const(c, INDEX), v, INDEX))
    const = aff.get_constant_val().to_python()
    out: ir.Expr = terms[0] if terms else ir.Const(const, INDEX)
    for t in terms[1:]:
        out = ir.Bin("add", out, t, INDEX)
    if terms and const:
        out = ir.Bin("add", out, ir.Const(const, INDEX), INDEX)
    return out


def set_to_ir(s: isl.Set, iterators: Sequence[str]) -> ir.Expr:
    """The constraints of ``s`` (no existentially quantified variables) as a
    boolean expression over ``iterators`` (its dimensions) and its parameters:
    a disjunction of conjunctions, each constraint written without negative
    coefficients (``n > 4 * p`` rather than ``-4 * p + n - 1 >= 0``).

    >>> from polyop.exprtext import expr_to_c
    >>> expr_to_c(set_to_ir(isl.Set("[n] -> { [a, b] : 4a + b < n and b >= 0 }"), ("p", "q")))
    'n > 4 * p + q && (q >= 0)'
    """
    disjuncts: list[ir.Expr] = []
    # lists, not isl's foreach callbacks: the error below must not pass through isl
    for bset in s.get_basic_sets():
        if bset.dim(isl.dim_type.div):
            raise NotAnIndexError(f"the condition {s} needs integer division")
        terms = [_compare(c.get_aff(), c.is_equality(), iterators)
                 for c in bset.get_constraints()]
        disjuncts.append(_joined("and", terms, True))
    return _joined("or", disjuncts, False)


def params_set_to_ir(s: isl.Set) -> ir.Expr:
    """A set of parameters only (existentially quantified variables allowed:
    isl's AST build writes them with floor divisions and remainders) as a
    boolean expression over the parameters' names.

    >>> from polyop.exprtext import expr_to_c
    >>> expr_to_c(params_set_to_ir(isl.Set("[n] -> { : exists (k : n = 4k) }")))
    'n % 4 == 0'
    """
    if not s.is_params():  # a set of no dimension is no parameter set to isl's AST build
        assert s.dim(isl.dim_type.set) == 0, s
        s = s.params()
    ctx = isl.Set(f"[{', '.join(s.get_space().get_var_names(isl.dim_type.param))}] -> {{ : }}")
    build = isl.AstBuild.from_context(ctx)
    return ast_expr_to_ir(build.expr_from_set(s.coalesce()))


def _joined(op: str, parts: list[ir.Expr], empty: bool) -> ir.Expr:
    out: ir.Expr = parts[0] if parts else ir.Const(empty, ir.BOOL)
    for p in parts[1:]:
        out = ir.Logic(op, out, p)
    return out


def _compare(aff: isl.Aff, equality: bool, iterators: Sequence[str]) -> ir.Expr:
    """``aff >= 0`` (``== 0``) as ``pos + c >= neg`` or ``pos > neg``: readable."""
    pos = neg = isl.Aff.zero_on_domain(aff.get_domain_local_space())
    for kind in (isl.dim_type.in_, isl.dim_type.param):
        for k in range(aff.dim(kind)):
            v = aff.get_coefficient_val(kind, k)
            if v.is_pos():
                pos = pos.set_coefficient_val(kind, k, v)
            elif v.is_neg():
                neg = neg.set_coefficient_val(kind, k, v.neg())
    const = aff.get_constant_val().to_python()
    if const == -1 and not equality:
        return ir.Cmp("gt", aff_to_ir(pos, iterators), aff_to_ir(neg, iterators))
    if const < 0:
        neg = neg.set_constant_val(isl.Val(-const))
    else:
        pos = pos.set_constant_val(isl.Val(const))
    return ir.Cmp("eq" if equality else "ge", aff_to_ir(pos, iterators),
                  aff_to_ir(neg, iterators))


# -- IR index expressions ---------------------------------------------------------------------

def check_names(e: ir.Expr, names: Iterable[str]) -> None:
    """Raise ``NotAnIndexError`` if ``e`` uses a variable not among ``names``."""
    known = set(names)
    others = sorted({v.name for v in ir.walk(e) if isinstance(v, ir.Var) and v.name not in known})
    if others:
        raise NotAnIndexError(f"'{expr_to_c(e)}' uses {', '.join(others)}, which "
                              f"{'is' if len(others) == 1 else 'are'} not among "
                              f"the names {', '.join(sorted(known)) or '(none)'}")


def check_index(e: ir.Expr, names: Iterable[str]) -> None:
    """Raise ``NotAnIndexError`` unless ``e`` is an integer index expression
    (constants, ``names``, ``+ - * // %``, ``min``/``max``, negation)."""
    check_names(e, names)
    for n in ir.walk(e):
        if isinstance(n, (ir.Select, ir.Cmp, ir.Logic, ir.Not)):
            raise NotAnIndexError(f"'{expr_to_c(e)}' has pieces no min/max joins")
        if not (isinstance(n, (ir.Var, ir.Neg)) or _int_const(n)
                or isinstance(n, ir.Bin) and n.op in INDEX_OPS):
            raise NotAnIndexError(f"'{expr_to_c(e)}' is not an integer index expression")


def _int_const(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and isinstance(e.value, numbers.Integral) \
        and not isinstance(e.value, bool)


_PY = {"add": "+", "sub": "-", "mul": "*", "fdiv": "//", "mod": "%"}
_ISL = {"add": "+", "sub": "-", "mul": "*", "mod": "mod"}


def index_text(e: ir.Expr, syntax: str = "python") -> str:
    """An integer index expression as Python source (array shapes and layouts
    are written so) or in isl's syntax (``syntax="isl"``, for isl's parser);
    every operation parenthesised.

    >>> e = ir.Bin("fdiv", ir.Bin("add", ir.Var("i"), ir.Const(3), INDEX), ir.Const(4), INDEX)
    >>> index_text(e), index_text(e, "isl")
    ('((i + 3) // 4)', 'floor((i + 3) / 4)')
    """
    if syntax not in ("python", "isl"):
        raise ValueError(f"index_text: syntax is 'python' or 'isl', not {syntax!r}")

    def text(x: ir.Expr) -> str:
        if _int_const(x):
            return str(x.value)
        if isinstance(x, ir.Var):
            return x.name
        if isinstance(x, ir.Neg):
            return f"-({text(x.a)})"
        if isinstance(x, ir.Bin) and x.op in ("min", "max"):
            return f"{x.op}({text(x.a)}, {text(x.b)})"
        if isinstance(x, ir.Bin) and syntax == "isl" and x.op == "fdiv":
            return f"floor({text(x.a)} / {text(x.b)})"
        ops = _PY if syntax == "python" else _ISL
        if isinstance(x, ir.Bin) and x.op in ops:
            return f"({text(x.a)} {ops[x.op]} {text(x.b)})"
        raise NotAnIndexError(f"'{expr_to_c(e)}' is not an integer index expression")

    return text(e)


_CMP_ISL = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "="}


def isl_text(e: ir.Expr, names: Mapping[str, str]) -> str:
    """A quasi-affine IR expression or condition (comparisons but ``!=``,
    ``and``/``or``) in isl's syntax, each variable written as ``names`` maps
    it: loop IR names such as ``min`` or ``and`` are isl keywords, so callers
    rename. Anything else (a variable not in ``names``, a load, a product of
    two variables, a division by a non-constant) raises ``NotAnIndexError``,
    which lets a caller drop a data-dependent guard.

    >>> c = ir.Cmp("lt", ir.Bin("mod", ir.Var("min"), ir.Const(4), INDEX), ir.Var("n"))
    >>> isl_text(c, {"min": "v0", "n": "p0"})
    '((v0 mod 4) < p0)'
    >>> isl_text(ir.Bin("mul", ir.Var("i"), ir.Var("i"), INDEX), {"i": "v0"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyop.isl_ir.NotAnIndexError: 'i * i' is outside isl's quasi-affine language ...
    """
    def text(x: ir.Expr) -> str:
        if _int_const(x):
            return str(x.value)
        if isinstance(x, ir.Var) and x.name in names:
            return names[x.name]
        if isinstance(x, ir.Neg):
            return f"(-{text(x.a)})"
        if isinstance(x, ir.Bin):
            if x.op in ("add", "sub"):
                return f"({text(x.a)} {'+' if x.op == 'add' else '-'} {text(x.b)})"
            if x.op == "mul" and (_int_const(x.a) or _int_const(x.b)):
                return f"({text(x.a)} * {text(x.b)})"
            if x.op in ("fdiv", "mod") and _int_const(x.b) and x.b.value > 0:
                return f"floor({text(x.a)} / {x.b.value})" if x.op == "fdiv" else \
                    f"({text(x.a)} mod {x.b.value})"
            if x.op in ("min", "max"):
                return f"{x.op}({text(x.a)}, {text(x.b)})"
        if isinstance(x, ir.Cmp) and x.op in _CMP_ISL:
            return f"({text(x.a)} {_CMP_ISL[x.op]} {text(x.b)})"
        if isinstance(x, ir.Logic):
            return f"({text(x.a)} {x.op} {text(x.b)})"
        if isinstance(x, ir.Not):  # the else branch of a guard
            return f"(not {text(x.a)})"
        raise NotAnIndexError(f"'{expr_to_c(x)}' is outside isl's quasi-affine language "
                              "(or uses a name not given)")

    return text(e)


def constant_bound(pa: isl.PwAff, which: str) -> isl.Val | None:
    """``pa.min_val()`` (``which="min"``) or ``pa.max_val()`` (``"max"``): an
    integer, a rational, infinity or NaN (empty); ``None`` where isl's ILP
    refuses the function: a piece isl writes with a rational coefficient
    (``m/2`` where ``m`` is even), as after a skew by 2 of a split loop.

    >>> constant_bound(isl.PwAff("[m] -> { [(m - 2)] : 2 <= m <= 8 }"), "max")
    Val("6")
    >>> print(constant_bound(isl.PwAff("[m] -> { [(m/2)] : m mod 2 = 0 and m >= 2 }"), "max"))
    None
    """
    try:
        return pa.min_val() if which == "min" else pa.max_val()
    except isl.Error:
        return None


def index_relation(domain: isl.Set, iterators: Sequence[str], array: str,
                   index: Sequence[ir.Expr]) -> isl.Map:
    """The access relation of ``array[index]`` from the instances of
    ``domain`` (a statement's, its dimensions named by ``iterators`` in the
    index expressions): what a load or store in a statement's body touches,
    wherever it runs.

    >>> d = isl.Set("[n] -> { S0[i, j] : 0 <= i < n and 0 <= j < 4 }")
    >>> i, j = ir.Var("i"), ir.Var("j")
    >>> print(index_relation(d, ("i", "j"), "A", (j, ir.Bin("add", i, ir.Const(1), INDEX))))
    [n] -> { S0[i, j] -> A[j, 1 + i] : 0 <= i < n and 0 <= j <= 3 }
    """
    params = domain.get_space().get_var_names(isl.dim_type.param)
    names = {**{p: f"p{k}" for k, p in enumerate(params)},
             **{it: f"v{k}" for k, it in enumerate(iterators)}}
    rel = isl.Map(f"[{', '.join(names[p] for p in params)}] -> {{ "
                  f"{domain.get_tuple_name()}[{', '.join(names[it] for it in iterators)}] -> "
                  f"{array}[{', '.join(isl_text(e, names) for e in index)}] }}")
    for k, p in enumerate(params):  # back to the domain's names, then its space
        rel = rel.set_dim_name(isl.dim_type.param, k, p)
    for k in range(len(iterators)):
        rel = rel.set_dim_name(isl.dim_type.in_, k, domain.get_dim_name(isl.dim_type.set, k))
    return rel.align_params(domain.get_space()).intersect_domain(domain)


def plus_one(e: ir.Expr) -> ir.Expr:
    """``e + 1``, folded into a constant term (an exclusive loop bound or an
    extent from isl's inclusive maximum).

    >>> from polyop.exprtext import expr_to_c
    >>> n = ir.Var("n")
    >>> [expr_to_c(plus_one(x)) for x in (ir.Const(3), ir.Bin("sub", n, ir.Const(1), INDEX),
    ...                                   ir.Bin("add", n, ir.Const(2), INDEX), n)]
    ['4', 'n', 'n + 3', 'n + 1']
    """
    if _int_const(e):
        return ir.Const(e.value + 1, INDEX)
    if isinstance(e, ir.Bin) and e.op == "sub" and _int_const(e.b) and e.b.value == 1:
        return e.a
    if isinstance(e, ir.Bin) and e.op == "add" and _int_const(e.b):
        return ir.Bin("add", e.a, ir.Const(e.b.value + 1, INDEX), INDEX)
    return ir.Bin("add", e, ir.Const(1, INDEX), INDEX)


# -- names ------------------------------------------------------------------------------------

def identifier(name: str) -> str:
    """``name`` made a C and Python identifier (other characters become ``_``).

    >>> identifier("C.local"), identifier("0x")
    ('C_local', 'v_0x')
    """
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out.isidentifier() else f"v_{out}"


def fresh_name(base: str, taken: Iterable[str], sep: str = "_") -> str:
    """``base`` if it is not ``taken``, else the first free ``base{sep}1``,
    ``base{sep}2``, ...

    >>> fresh_name("B_cache", {"B_cache"}), fresh_name("t", {"t", "t_1"})
    ('B_cache_1', 't_2')
    """
    taken = set(taken)
    if base not in taken:
        return base
    return next(f"{base}{sep}{k}" for k in range(1, 1 << 30) if f"{base}{sep}{k}" not in taken)


def program_names(program) -> set[str]:
    """Every name a program already uses: arrays, statements, sizes, arguments
    (a new array or statement must take none of them)."""
    return set(program.arrays) | {s.name for s in program.statements} | \
        set(program.params) | {a.name for a in program.arguments}
