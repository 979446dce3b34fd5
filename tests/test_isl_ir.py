"""Unit tests of ``polyop.isl_ir``, the isl ↔ loop-IR bridge.

Every translated expression is evaluated by a small interpreter here and
compared, point by point, with isl's own evaluation of the object it came
from (``PwAff.eval``, ``Set`` membership): isl is the reference.
"""

from __future__ import annotations

import itertools

import islpy as isl
import pytest

import polyop
from polyop import ir
from polyop.errors import PolyopError
from polyop.isl_ir import (
    NotAnIndexError,
    aff_to_ir,
    ast_expr_to_ir,
    check_index,
    fresh_name,
    identifier,
    index_text,
    plus_one,
    program_names,
    pw_aff_to_ir,
    set_to_ir,
)
from polyop.types import INDEX, f64

_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "fdiv": lambda a, b: a // b, "mod": lambda a, b: a % b, "min": min, "max": max}
_CMPS = {"lt": int.__lt__, "le": int.__le__, "gt": int.__gt__, "ge": int.__ge__,
         "eq": int.__eq__, "ne": int.__ne__}


def evaluate(e: ir.Expr, env: dict[str, int]):
    """The value of an integer or boolean IR expression (Python's floor ``//``
    and ``%``, which the IR's ``fdiv``/``mod`` mean)."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Var):
        return env[e.name]
    if isinstance(e, ir.Neg):
        return -evaluate(e.a, env)
    if isinstance(e, ir.Bin):
        return _OPS[e.op](evaluate(e.a, env), evaluate(e.b, env))
    if isinstance(e, ir.Cmp):
        return _CMPS[e.op](evaluate(e.a, env), evaluate(e.b, env))
    if isinstance(e, ir.Logic):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        return (a and b) if e.op == "and" else (a or b)
    if isinstance(e, ir.Select):
        return evaluate(e.a, env) if evaluate(e.cond, env) else evaluate(e.b, env)
    raise AssertionError(f"no evaluation of {e!r}")


def point(space: isl.Space, coords: dict[isl.dim_type, list[int]]) -> isl.Point:
    pt = isl.Point.zero(space)
    for kind, values in coords.items():
        for k, v in enumerate(values):
            pt = pt.set_coordinate_val(kind, k, isl.Val(v))
    return pt


def assert_same_function(pa: isl.PwAff, e: ir.Expr, iterators, params, box=range(-9, 10)):
    """``e`` over ``iterators``/``params`` equals ``pa`` wherever ``pa`` is defined
    on the box (at least one point must be)."""
    space = pa.get_domain_space()
    n = len(iterators)
    checked = 0
    for values in itertools.product(box, repeat=n + len(params)):
        xs, ps = list(values[:n]), list(values[n:])
        pt = point(space, {isl.dim_type.set: xs, isl.dim_type.param: ps})
        if not isl.Set.from_point(pt).is_subset(pa.domain()):
            continue
        want = pa.eval(pt).to_python()
        got = evaluate(e, dict(zip(iterators, xs)) | dict(zip(params, ps)))
        assert got == want, f"{e} at {values}: {got}, isl says {want}"
        checked += 1
    assert checked


def names_in(e: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(e) if isinstance(n, ir.Var)}


# -- pw_aff_to_ir ---------------------------------------------------------------------------

def test_domain_dims_are_named_after_the_statement_iterators():
    # the domain says c0, c1 (as a write-back statement's does); the body says i, j
    pa = isl.PwAff("[n] -> { S[c0, c1] -> [(3 * c0 - c1 + n)] }")
    e = pw_aff_to_ir(pa, ("i", "j"))
    assert names_in(e) == {"i", "j", "n"}
    assert_same_function(pa, e, ("i", "j"), ("n",), range(-3, 4))
    # a statement whose iterators are isl's names for other dimensions: no mix-up
    swapped = pw_aff_to_ir(pa, ("c1", "c0"))
    assert evaluate(swapped, {"c1": 2, "c0": 5, "n": 0}) == 3 * 2 - 5


def test_within_names_are_renamed_too_and_simplify():
    pa = isl.PwAff("{ S[a] -> [(a)] : a >= 0; S[a] -> [(0)] : a < 0 }")
    assert names_in(pw_aff_to_ir(pa, ("i",))) == {"i"}
    within = isl.Set("{ S[x] : 0 <= x < 10 }")  # its dimension named apart as well
    assert pw_aff_to_ir(pa, ("i",), within=within) == ir.Var("i", INDEX)


def test_floor_division_and_modulo_match_isl_on_negative_values():
    pa = isl.PwAff("[n] -> { S[x, y] -> [(floor((x - y) / 4) + (x mod 3) - floor(n / 2))] }")
    e = pw_aff_to_ir(pa, ("i", "j"))
    assert "fdiv" in {n.op for n in ir.walk(e) if isinstance(n, ir.Bin)}
    assert_same_function(pa, e, ("i", "j"), ("n",), range(-7, 8))
    # isl writes a remainder where it knows the dividend is not negative
    rem = isl.PwAff("{ S[x] -> [(x mod 3)] : x >= 0 }")
    e = pw_aff_to_ir(rem, ("i",), within=isl.Set("{ S[x] : x >= 0 }"))
    assert e == ir.Bin("mod", ir.Var("i"), ir.Const(3), INDEX)
    assert_same_function(rem, e, ("i",), (), range(0, 12))


@pytest.mark.parametrize("op, other", [("min", "[n, m] -> { S[x] -> [(n)] }"),
                                       ("max", "[n, m] -> { S[x] -> [(m - 2x)] }"),
                                       ("min", "[n, m] -> { S[x] -> [(floor(x / 2) + m)] }")])
def test_min_and_max_pieces_become_min_and_max(op, other):
    mine = isl.PwAff("[n, m] -> { S[x] -> [(x)] }")
    pa = getattr(mine, op)(isl.PwAff(other))
    assert pa.n_piece() == 2
    e = pw_aff_to_ir(pa, ("i",))
    assert isinstance(e, ir.Bin) and e.op == op
    assert_same_function(pa, e, ("i",), ("n", "m"), range(-4, 5))


def test_parameter_only_function_in_a_context():
    extent = isl.PwAff("[n] -> { [(n + 3)] }")
    e = pw_aff_to_ir(extent, within=isl.Set("[n] -> { : n >= 1 }"))
    assert evaluate(e, {"n": 5}) == 8 and names_in(e) == {"n"}
    # a statement's function known only within the sizes' context
    pa = isl.PwAff("[n] -> { S[x] -> [(min(x, n))] }")
    e = pw_aff_to_ir(pa, ("i",), within=isl.Set("[n] -> { : n >= 0 }"))
    assert names_in(e) == {"i", "n"}
    assert_same_function(pa, e, ("i",), ("n",), range(0, 6))


def test_piecewise_function_that_is_not_one_expression_is_a_clear_error():
    pa = isl.PwAff("{ S[a, b] -> [(b)] : a >= 0; S[a, b] -> [(a + 1)] : a < 0 }")
    with pytest.raises(NotAnIndexError, match="pieces no min/max joins") as err:
        pw_aff_to_ir(pa, ("i", "j"))
    assert isinstance(err.value, PolyopError)
    assert "i" in str(err.value) and "j" in str(err.value) and "c0" not in str(err.value)


def test_wrong_number_of_iterator_names_is_an_internal_error():
    with pytest.raises(AssertionError, match="2 iterator names"):
        pw_aff_to_ir(isl.PwAff("{ S[a] -> [(a)] }"), ("i", "j"))


# -- aff_to_ir, set_to_ir ----------------------------------------------------------------------

def test_aff_to_ir_terms_and_values():
    aff = isl.Aff("[n] -> { [a, b] -> [(4 * a - b + 2 * n - 7)] }")
    e = aff_to_ir(aff, ("p", "q"))
    assert names_in(e) == {"p", "q", "n"}
    for p, q, n in itertools.product(range(-3, 4), repeat=3):
        assert evaluate(e, {"p": p, "q": q, "n": n}) == 4 * p - q + 2 * n - 7
    assert aff_to_ir(isl.Aff("{ [a] -> [(5)] }"), ("p",)) == ir.Const(5, INDEX)


@pytest.mark.parametrize("text", ["{ [a] -> [(floor(a / 2))] }", "{ [a] -> [(a / 2)] }"])
def test_aff_to_ir_refuses_integer_division(text):
    with pytest.raises(NotAnIndexError, match="needs integer division"):
        aff_to_ir(isl.Aff(text), ("p",))


@pytest.mark.parametrize("text", [
    "[n] -> { [a, b] : 4a + b < n and 0 <= b < 4 }",
    "[n] -> { [a, b] : a = b + n or (a > 2 and b < -1) }",  # an equality, two pieces
    "{ [a, b] : a >= 0 }",
    "{ [a, b] : 1 = 0 }",  # empty
])
def test_set_to_ir_is_membership(text):
    s = isl.Set(text)
    e = set_to_ir(s, ("p", "q"))
    params = s.get_space().get_var_names(isl.dim_type.param)
    for values in itertools.product(range(-5, 6), repeat=2 + len(params)):
        pt = point(s.get_space(), {isl.dim_type.set: list(values[:2]),
                                   isl.dim_type.param: list(values[2:])})
        want = isl.Set.from_point(pt).is_subset(s)
        env = {"p": values[0], "q": values[1]} | dict(zip(params, values[2:]))
        assert bool(evaluate(e, env)) == want, (text, values)


def test_set_to_ir_refuses_existentials():
    with pytest.raises(NotAnIndexError, match="integer division"):
        set_to_ir(isl.Set("{ [a] : exists (k : a = 2k) }"), ("p",))


# -- AST expressions, index text, plus_one ----------------------------------------------------

def test_ast_expressions_keep_isl_names_and_semantics():
    build = isl.AstBuild.from_context(isl.Set("[n] -> { : n >= 0 }"))
    pa = isl.PwAff("[n] -> { [(floor(n / 3) - (n mod 5))] }")
    e = ast_expr_to_ir(build.expr_from_pw_aff(pa))
    for n in range(0, 30):
        assert evaluate(e, {"n": n}) == n // 3 - n % 5
    cond = ast_expr_to_ir(build.expr_from_set(isl.Set("[n] -> { : n > 4 and n < 9 }")))
    assert [bool(evaluate(cond, {"n": n})) for n in range(3, 11)] == \
        [4 < n < 9 for n in range(3, 11)]
    stride = ast_expr_to_ir(build.expr_from_set(isl.Set("[n] -> { : exists k : n = 3k + 1 }")))
    assert any(isinstance(x, ir.Bin) and x.op == "mod" for x in ir.walk(stride))
    assert [bool(evaluate(stride, {"n": n})) for n in range(12)] == \
        [n % 3 == 1 for n in range(12)]


def test_index_text_round_trips_through_python_and_isl():
    pa = isl.PwAff("[n] -> { S[x, y] -> [(floor((x + 2 * y) / 4) - (y mod 3) + min(x, n))] }")
    e = pw_aff_to_ir(pa, ("i", "j"))
    python = index_text(e)
    for i, j, n in itertools.product(range(-6, 7), repeat=3):
        env = {"i": i, "j": j, "n": n}
        assert eval(python, {"min": min, "max": max}, env) == evaluate(e, env)
    back = isl.PwAff(f"[n] -> {{ S[i, j] -> [({index_text(e, 'isl')})] }}")
    assert back.is_equal(pa)


@pytest.mark.parametrize("bad", [ir.Const(1.5, f64), ir.Load("A", (ir.Var("i"),), f64),
                                 ir.Bin("div", ir.Var("i"), ir.Const(2), INDEX)])
def test_index_text_refuses_what_is_not_an_index(bad):
    with pytest.raises(NotAnIndexError, match="not an integer index expression"):
        index_text(bad)
    with pytest.raises(NotAnIndexError):
        index_text(bad, "isl")


def test_check_index_names_the_unknown_names():
    e = ir.Bin("add", ir.Var("i"), ir.Var("c3"), INDEX)
    with pytest.raises(NotAnIndexError, match="uses c3, which is not among the names i, n"):
        check_index(e, {"i", "n"})
    check_index(e, {"i", "c3"})


def test_plus_one_folds_and_keeps_the_value():
    n = ir.Var("n")
    cases = [ir.Const(3), ir.Bin("sub", n, ir.Const(1), INDEX),
             ir.Bin("add", n, ir.Const(2), INDEX), ir.Bin("sub", n, ir.Const(3), INDEX),
             ir.Bin("fdiv", n, ir.Const(4), INDEX)]
    for e in cases:
        for v in range(-5, 6):
            assert evaluate(plus_one(e), {"n": v}) == evaluate(e, {"n": v}) + 1
    assert plus_one(cases[1]) == n and plus_one(cases[0]) == ir.Const(4, INDEX)


# -- names ------------------------------------------------------------------------------------

def test_fresh_names():
    assert fresh_name("B_cache", set()) == "B_cache"
    assert fresh_name("B_cache", {"B_cache", "B_cache1"}, sep="") == "B_cache2"
    assert fresh_name("t", ["t", "t_1", "t_3"]) == "t_2"
    assert identifier("a.b-c") == "a_b_c" and identifier("1x") == "v_1x"


def test_program_names_hold_every_kind_of_name():
    @polyop.kernel
    def k(n: int, alpha: "f64", A: "f64[n]"):
        for i in range(n):
            A[i] = alpha * A[i]

    assert {"n", "alpha", "A", "S0"} <= program_names(k.program)
    assert fresh_name("alpha", program_names(k.program)) == "alpha_1"


def test_isl_to_ir_translation_has_one_home():
    """No module of polyop but the bridge builds IR from isl expressions of its
    own (the AST generator translates the AST it walks through the bridge) or
    keeps a copy of the bridge's helpers."""
    import ast
    from pathlib import Path

    package = Path(polyop.__file__).parent
    copies = {"_plus_one", "_aff_to_ir", "_fresh_name", "_affine_text", "index_source",
              "expr_to_ir"}
    found = []
    for path in package.rglob("*.py"):
        if path.name == "isl_ir.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in copies:
                found.append(f"{path.relative_to(package)}: def {node.name}")
            if isinstance(node, ast.Attribute) and node.attr in ("expr_from_pw_aff",
                                                                  "expr_from_set") \
                    and path.name != "astgen.py":
                found.append(f"{path.relative_to(package)}:{node.lineno}: {node.attr}")
    assert not found, "isl -> IR outside polyop.isl_ir:\n" + "\n".join(found)
