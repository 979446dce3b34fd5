"""The polyhedral model: domains, access relations, dependences, lowering, codegen."""

import islpy as isl
import numpy as np
import pytest

import polyop


def same_set(obj, text: str) -> bool:
    return obj.is_equal(type(obj)(text))


@polyop.kernel
def shapes(n: int, m: int, A: "f64[n, m + 1]", x: "f64[m + 1]", y: "f64[n]"):
    for i in range(n):
        s = 0.0
        for j in range(max(i - 2, 0), min(i + 3, m + 1)):
            s += A[i, j] * x[j]
        for j in range(1, m // 2, 3):
            s -= A[i, 2 * j]
        if i % 2 == 0 and not i == n - 1:
            y[i] = s
        elif i < 5:
            y[i] = -s
        else:
            y[i] = abs(s) if s > 1.0 else s * 0.5


def test_statements_in_textual_order_with_exact_domains():
    p = shapes.program
    assert [s.name for s in p.statements] == ["S0", "S1", "S2", "S3", "S4", "S5"]
    assert p.params == ("n", "m")
    assert same_set(p.statement("S1").domain,
                    "[n, m] -> { S1[i, j] : 0 <= i < n and j >= i - 2 and j >= 0 "
                    "and j < i + 3 and j < m + 1 }")
    assert same_set(p.statement("S2").domain,
                    "[n, m] -> { S2[i, j] : 0 <= i < n and 1 <= j < floor(m/2) "
                    "and (j - 1) mod 3 = 0 }")
    assert same_set(p.statement("S3").domain,
                    "[n, m] -> { S3[i] : 0 <= i < n and i mod 2 = 0 and i != n - 1 }")
    assert same_set(p.statement("S4").domain,
                    "[n, m] -> { S4[i] : 0 <= i < 5 and i < n and "
                    "(i mod 2 = 1 or i = n - 1) }")
    assert same_set(p.statement("S5").domain,
                    "[n, m] -> { S5[i] : 5 <= i < n and (i mod 2 = 1 or i = n - 1) }")


def test_access_relations():
    s2 = shapes.program.statement("S2")
    reads = {a.array: a.relation for a in s2.reads}
    assert set(reads) == {"A", "s"}
    expected = isl.Map("[n, m] -> { S2[i, j] -> A[i, 2j] }").intersect_domain(s2.domain)
    assert reads["A"].is_equal(expected)
    assert s2.writes[0].array == "s" and s2.writes[0].relation.range().is_equal(
        isl.Set("[n, m] -> { s[] }").intersect_params(s2.domain.params()))
    assert shapes.program.arrays["s"].temporary
    assert shapes.program.arrays["A"].shape == ("n", "m + 1")


def test_compiled_matches_cpython_on_many_sizes():
    rng = np.random.default_rng(1)
    for n, m in [(0, 0), (1, 0), (7, 3), (12, 9), (20, 2)]:
        A, x = rng.random((n, m + 1)), rng.random(m + 1)
        y1, y2 = np.full(n, -7.0), np.full(n, -7.0)
        shapes(n, m, A, x, y1)
        shapes.py_func(n, m, A, x, y2)
        np.testing.assert_array_equal(y1, y2)


@polyop.kernel
def recurrence(n: int, A: "f64[n, n]"):
    for i in range(1, n):
        for j in range(1, n):
            A[i, j] = A[i - 1, j] + A[i, j - 1]


def test_dependences_of_2d_recurrence():
    d = polyop.dependences(recurrence)
    assert d.raw.is_equal(isl.UnionMap(
        "[n] -> { S0[i, j] -> S0[i + 1, j] : 1 <= i < n - 1 and 1 <= j < n;"
        " S0[i, j] -> S0[i, j + 1] : 1 <= i < n and 1 <= j < n - 1 }"))
    # every element is written once, and only read after that write: no WAR, no WAW
    assert d.war.is_empty() and d.waw.is_empty()
    assert set(d.by_array["RAW"]) == {"A"}


@polyop.kernel
def scalar_reduction(n: int, x: "f64[n]", out: "f64[1]"):
    s = 0.0
    for i in range(n):
        s += x[i]
    out[0] = s


def test_dependences_through_local_scalar():
    d = polyop.dependences(scalar_reduction)
    raw = d.by_array["RAW"]["s"]
    assert raw.is_equal(isl.UnionMap(
        "[n] -> { S0[] -> S1[i] : 0 <= i < n; S1[i] -> S1[i'] : 0 <= i < i' < n;"
        " S0[] -> S2[] ; S1[i] -> S2[] : 0 <= i < n }"))
    assert "WAW on s" in str(d) and "RAW on out" not in str(d)


def test_lower_prints_c_like_loop_nest():
    text = str(polyop.lower(recurrence))
    assert "void recurrence(int64_t n, double A[n][n])" in text
    assert "for (i = 1; i < n; i += 1)" in text
    assert "A[i][j] = A[i - 1][j] + A[i][j - 1];" in text


def test_compiled_kernel_exposes_llvm_and_asm():
    c = recurrence.compile()
    assert "define" in c.llvm_ir and "define" in c.llvm_ir_unoptimized
    assert "ret" in c.asm
    assert c is recurrence.compile()  # compiled once, cached


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
def test_element_types(dtype, tmp_path):
    src = (
        "import polyop\n"
        "@polyop.kernel\n"
        f"def k(n: int, A: '{dtype}[n]', B: '{dtype}[n]'):\n"
        "    for i in range(n):\n"
        "        B[i] = A[i] * 3 + i - (A[i] // 2) + A[i] % 3\n"
    )
    path = tmp_path / f"k_{dtype}.py"
    path.write_text(src)
    ns: dict = {}
    exec(compile(src, str(path), "exec"), ns)
    k = ns["k"]
    np_t = polyop.types.DTYPES[dtype].numpy
    A = (np.arange(-10, 10) * 1.25).astype(np_t)
    B1, B2 = np.zeros(20, np_t), np.zeros(20, np_t)
    k(20, A, B1)
    k.py_func(20, A, B2)
    np.testing.assert_allclose(B1, B2, rtol=1e-6)


def test_one_compiled_kernel_serves_all_sizes():
    c = recurrence.compile()
    for n in (2, 5, 33):
        a = np.random.default_rng(n).random((n, n))
        b = a.copy()
        recurrence(n, a)
        recurrence.py_func(n, b)
        np.testing.assert_array_equal(a, b)
    assert recurrence.compile() is c
