"""Structural schedule primitives (fuse, fission, compute_at, inline), parallel
reductions, isolated full tiles and vector code; classic time-tiling and
wavefront cases. Every accepted schedule is run against CPython."""

import numpy as np
import pytest

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.kernels import matmul_ikj, run_both
from tests.polybench import BENCHES


def rand(*shape):
    return np.random.default_rng(len(shape) + sum(shape)).random(shape)


@polyop.kernel
def producer_consumer(n: int, A: "f64[n]", B: "f64[n]", C: "f64[n]"):
    for i in range(n):
        A[i] = C[i] * 2.0
    for i in range(n):
        B[i] = A[i] + 1.0


@polyop.kernel
def lookahead(n: int, A: "f64[n]", B: "f64[n]", C: "f64[n]"):
    for i in range(n):
        A[i] = C[i] * 2.0
    for i in range(n - 1):
        B[i] = A[i + 1] + 1.0


def test_fusing_siblings_shares_one_loop():
    sch = polyop.Schedule(producer_consumer)
    (a,), (b,) = sch.get_loops("S0"), sch.get_loops("S1")
    fused = sch.fuse(a, b)
    assert fused == a and sch.get_loops("S1") == [a]
    text = str(polyop.lower(sch))
    assert text.count("for (") == 1
    run_both(sch, producer_consumer, dict(n=9, A=rand(9), B=rand(9), C=rand(9)))
    with pytest.raises(ScheduleError, match="stale"):
        sch.split(b, 2)


def test_fusion_against_a_lookahead_is_illegal_until_shifted():
    sch = polyop.Schedule(lookahead)
    (a,), (b,) = sch.get_loops("S0"), sch.get_loops("S1")
    with pytest.raises(IllegalScheduleError) as info:
        sch.fuse(a, b)
    e = info.value
    assert (e.kind, e.array) == ("RAW", "A")
    assert e.source == "S0[i=1]" and e.sink == "S1[i=0]"
    assert "fuse(i, i) would run S1[i=0] (reads A[1]) before S0[i=1] (writes A[1])" in str(e)
    sch.shift("S1", b, 1)
    sch.fuse(a, b)
    run_both(sch, lookahead, dict(n=9, A=rand(9), B=rand(9), C=rand(9)))


def test_fuse_needs_adjacent_or_nested_loops():
    sch = polyop.Schedule(BENCHES["gemm"].kernel)
    outer = sch.get_loops("S0")[0]
    inner = sch.get_loops("S1")[-1]
    with pytest.raises(ScheduleError, match="neither directly nested nor adjacent"):
        sch.fuse(inner, outer)


@polyop.kernel
def image(n: int, A: "f64[n, 8]"):
    for i in range(n):
        for j in range(8):
            A[i, j] = A[i, j] * 2.0 + i


def test_linearizing_nested_loops_then_parallel():
    sch = polyop.Schedule(image)
    i, j = sch.get_loops("S0")
    ij = sch.fuse(i, j)
    assert ij.name == "i_j_fused" and sch.get_loops("S0") == [ij]
    sch.parallel(ij)
    text = str(polyop.lower(sch))
    assert text.count("for (") == 1 and "parallel" in text
    run_both(sch, image, dict(n=7, A=rand(7, 8)))


def test_split_then_fuse_restores_the_loop_and_parametric_extent_coalesces():
    k = BENCHES["jacobi-2d"].kernel
    sch = polyop.Schedule(k)
    t, i, j = sch.get_loops("S0")
    jo, ji = sch.split(j, 4)
    j = sch.fuse(jo, ji)
    with pytest.raises(ScheduleError, match="neither directly nested nor adjacent"):
        sch.fuse(t, i)
    ij = sch.fuse(i, j)  # extent n - 2: one loop, indices by division
    assert sch._loops[ij.id].coalesced
    b = BENCHES["jacobi-2d"]
    run_both(sch, k, b.init(b.sizes["MINI"]))


@polyop.kernel
def two_body(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(1, n):
        A[i] = B[i - 1] + 1.0
        B[i] = A[i] * 0.5


@polyop.kernel
def independent_body(n: int, m: int, A: "f64[n, m]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            A[i, j] = 1.0 * i + j
            B[i, j] = A[i, j] * 2.0


def test_fission_distributes_the_perfect_nest():
    sch = polyop.Schedule(independent_body)
    i, j = sch.get_loops("S0")
    first, second = sch.fission(i)
    assert sch.get_loops("S0")[0] == first and sch.get_loops("S1")[0] == second
    assert [lp.name for lp in sch.get_loops("S1")] == ["i", "j"]
    assert str(polyop.lower(sch)).count("for (") == 4
    run_both(sch, independent_body, dict(n=5, m=6, A=rand(5, 6), B=rand(5, 6)))
    with pytest.raises(ScheduleError, match="nothing to distribute"):
        sch.fission(first)


def test_fission_of_a_recurrence_through_two_statements_is_illegal():
    sch = polyop.Schedule(two_body)
    (i,) = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.fission(i)
    e = info.value
    assert (e.kind, e.array, e.source, e.sink) == ("RAW", "B", "S1[i=1]", "S0[i=2]")


@polyop.kernel
def blur(n: int, m: int, A: "f64[n, m]", T: "f64[n, m]", B: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            T[i, j] = A[i, j] * 2.0
    for i in range(n):
        for j in range(m - 1):
            B[i, j] = T[i, j] + T[i, j + 1]


@pytest.mark.parametrize("depth", [0, 1])
def test_compute_at_moves_the_producer_into_the_consumer(depth):
    sch = polyop.Schedule(blur)
    loop = sch.get_loops("S1")[depth]
    sch.compute_at("S0", loop)
    # one loop now runs both the producer's and the consumer's stores
    assert any(isinstance(x, polyop.ir.For) and x.var == loop.name and
               {"T", "B"} <= {s.array for s in polyop.ir.walk(x.body)
                              if isinstance(s, polyop.ir.Store)}
               for x in polyop.ir.walk(polyop.lower(sch).body))
    run_both(sch, blur, dict(n=5, m=7, A=rand(5, 7), T=rand(5, 7), B=rand(5, 7)))
    run_both(sch, blur, dict(n=3, m=1, A=rand(3, 1), T=rand(3, 1), B=rand(3, 1)))


@polyop.kernel
def reversed_use(n: int, A: "f64[n]", T: "f64[n]", B: "f64[n]"):
    for i in range(n):
        T[i] = A[i] + 1.0
    for i in range(n):
        A[i] = 0.0
        B[i] = T[n - 1 - i]


def test_compute_at_that_reads_an_overwritten_value_is_illegal():
    sch = polyop.Schedule(reversed_use)
    (i,) = sch.get_loops("S1")
    with pytest.raises(IllegalScheduleError) as info:
        sch.compute_at("S0", i)
    e = info.value
    assert (e.kind, e.array, e.source, e.sink) == ("WAR", "A", "S0[i=0]", "S1[i=0]")
    with pytest.raises(ScheduleError, match="already inside"):
        sch.compute_at("S1", i)


def test_compute_at_through_a_fused_band_is_checked_not_crashed():
    """Found by the schedule fuzzer on syrk: after ``fuse(k, j)`` the band
    holds two loops, and ``compute_at`` through it placed one dimension
    where it needed two (an isl error). Now the move is built and the
    legality check refuses it with the instances at fault."""
    sch = polyop.Schedule(BENCHES["syrk"].kernel)
    sch.compute_at("S0", sch.get_loops("S1")[2])
    loops = sch.get_loops("S0")
    sch.fuse(loops[1], loops[2])
    before = sch.tree
    with pytest.raises(IllegalScheduleError) as info:
        sch.compute_at("S1", sch.get_loops("S0")[2])
    assert info.value.kind == "RAW" and info.value.array == "C"
    assert sch.tree is before


@polyop.kernel
def scaled(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        t = A[i] * 2.0
        B[i] = t + t * A[n - 1 - i]


@polyop.kernel
def scaled_in_place(n: int, A: "f64[n]", B: "f64[n]"):
    for i in range(n):
        t = A[i] * 2.0
        A[i] = t + 1.0
        B[i] = t


def test_inline_substitutes_a_local_scalar():
    sch = polyop.Schedule(scaled)
    sch.inline("S0")
    assert sch.stmts == ["S1"]
    text = str(polyop.lower(sch))
    assert "A[i] * 2.0 + A[i] * 2.0 * A[n - 1 - i]" in text and "double t" not in text
    run_both(sch, scaled, dict(n=6, A=rand(6), B=rand(6)))


def test_inline_refusals_name_the_reason():
    with pytest.raises(ScheduleError, match="S0 reads A, which S1 overwrites before S2"):
        polyop.Schedule(scaled_in_place).inline("S0")
    with pytest.raises(ScheduleError, match="kernel argument"):
        polyop.Schedule(producer_consumer).inline("S0")


def test_parallel_reduction_needs_the_opt_in():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError, match="reduction='atomic'"):
        sch.parallel(k)
    sch.parallel(k, reduction="atomic")
    assert sch.atomic_statements() == {"S0"}
    assert "atomic" in str(polyop.lower(sch))
    args = dict(ni=6, nj=7, nk=40, C=rand(6, 7), A=rand(6, 40), B=rand(40, 7))
    f = run_both(sch, matmul_ikj, args, exact=False)
    assert "atomicrmw fadd" in f.llvm_ir
    # a loop that carries nothing needs no atomics even with the opt-in
    sch = polyop.Schedule(matmul_ikj)
    sch.parallel(sch.get_loops("S0")[0], reduction="atomic")
    assert sch.atomic_statements() == set()
    with pytest.raises(ScheduleError, match="unknown reduction"):
        sch.parallel(sch.get_loops("S0")[1], reduction="tree")


@polyop.kernel
def prefix_sum(n: int, A: "i64[n]", s: "i64[1]"):
    for i in range(n):
        s[0] = s[0] + A[i]
        A[i] = s[0]


def test_a_reduction_whose_partial_values_are_read_cannot_be_opted_in():
    sch = polyop.Schedule(prefix_sum)
    (i,) = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.parallel(i, reduction="atomic")
    assert info.value.array == "s" and "S1" in (info.value.source + info.value.sink)


def test_full_tiles_are_isolated_with_constant_bounds():
    sch = polyop.Schedule(matmul_ikj)
    i, k, j = sch.get_loops("S0")
    io, jo, ii, ji = sch.tile(i, j, 4, 8)
    text = str(polyop.lower(sch))
    assert "i_inner < 4;" in text and "j_inner < 8;" in text  # full tiles
    assert "j_inner < nj - 8 * j_outer;" in text  # the partial tile, kept apart
    sch.unroll(ji)
    run_both(sch, matmul_ikj, dict(ni=10, nj=13, nk=5, C=rand(10, 13), A=rand(10, 5),
                                 B=rand(5, 13)))


@polyop.kernel
def axpy(n: int, a: "f64", x: "f64[n]", y: "f64[n]"):
    for i in range(n):
        y[i] = a * x[i] + y[i]


def test_vectorize_emits_vector_instructions():
    sch = polyop.Schedule(axpy)
    (i,) = sch.get_loops("S0")
    io, ii = sch.split(i, 8)
    sch.vectorize(ii)
    run_both(sch, axpy, dict(n=37, a=1.5, x=rand(37), y=rand(37)))
    for cpu, vector, register in (("haswell", "<4 x double>", "ymm"),
                                  ("skylake-avx512", "<8 x double>", "zmm")):
        f = polyop.build(sch, target=f"cpu -mtriple=x86_64-linux-gnu -mcpu={cpu}")
        assert vector in f.llvm_ir and register in f.asm, cpu


def test_time_tiling_of_jacobi_1d_is_legal_after_fusion_and_skewing():
    b = BENCHES["jacobi-1d"]
    sch = polyop.Schedule(b.kernel)
    t, i0 = sch.get_loops("S0")
    _, i1 = sch.get_loops("S1")
    with pytest.raises(IllegalScheduleError):
        sch.fuse(i0, i1)  # S1 overwrites A[i] before S0 reads it at i + 1
    sch.shift("S1", i1, 1)
    i = sch.fuse(i0, i1)
    with pytest.raises(IllegalScheduleError):
        sch.tile(t, i, 4, 8)  # without skewing, a tile would read the future
    sch.skew(t, i, 2)
    sch.tile(t, i, 4, 8)
    run_both(sch, b.kernel, b.init(b.sizes["SMALL"]))


def test_time_tiling_of_jacobi_2d_is_legal_after_fusion_and_skewing():
    b = BENCHES["jacobi-2d"]
    sch = polyop.Schedule(b.kernel)
    t, i0, j0 = sch.get_loops("S0")
    _, i1, j1 = sch.get_loops("S1")
    sch.shift("S1", i1, 1)
    i = sch.fuse(i0, i1)
    sch.shift("S1", j1, 1)
    j = sch.fuse(j0, j1)
    with pytest.raises(IllegalScheduleError):
        sch.tile(t, i, 4, 4)
    sch.skew(t, i, 2)
    sch.skew(t, j, 2)
    to, io, ti, ii = sch.tile(t, i, 4, 4)
    sch.reorder(to, io, j)
    run_both(sch, b.kernel, b.init(b.sizes["MINI"]))


def test_seidel_2d_wavefront_is_parallel_after_skewing():
    b = BENCHES["seidel-2d"]
    sch = polyop.Schedule(b.kernel)
    t, i, j = sch.get_loops("S0")
    for loop in (i, j):
        with pytest.raises(IllegalScheduleError, match="carries a"):
            sch.parallel(loop)
    sch.skew(i, j, 2)  # wavefront w = 2i + j: every dependence inside a step advances w
    sch.interchange(i, j)
    sch.parallel(i)
    run_both(sch, b.kernel, b.init(b.sizes["MINI"]))


@polyop.kernel
def last_wins(n: int, A: "f64[n]", s: "f64[1]"):
    for i in range(n):
        s[0] = A[i]


def test_waw_violations_are_explained():
    sch = polyop.Schedule(last_wins)
    (i,) = sch.get_loops("S0")
    with pytest.raises(IllegalScheduleError) as info:
        sch.reverse(i)
    e = info.value
    assert (e.kind, e.array, e.source, e.sink) == ("WAW", "s", "S0[i=0]", "S0[i=1]")
    assert ("reverse(i) would run S0[i=1] (writes s[0]) before S0[i=0] (writes s[0]): "
            "WAW dependence on s reversed") in str(e)
    with pytest.raises(IllegalScheduleError, match="loop i carries a WAW dependence on s"):
        sch.parallel(i)


@polyop.kernel
def last_value(n: int, A: "f64[n]", B: "f64[1]"):
    s = 0.0
    for i in range(n):
        if i == n - 1:
            s = A[i]
    B[0] = s


def test_parallel_loop_whose_private_scalar_is_read_after_it_is_illegal():
    sch = polyop.Schedule(last_value)
    (i,) = sch.get_loops("S1")
    with pytest.raises(IllegalScheduleError) as info:
        sch.parallel(i)  # each thread's private s would be lost at the join
    e = info.value
    assert (e.array, e.source, e.sink) == ("s", "S1[i=0]", "S2[]") and e.violations[0].escapes
    assert "S2[] reads after loop i" in str(e)


@polyop.kernel
def partly_read(n: int, m: int, A: "f64[n]", T: "f64[n]", B: "f64[m]"):
    for i in range(n):
        T[i] = A[i] * 2.0
    for j in range(min(n, m)):
        B[j] = T[j] + 1.0


def test_get_loops_names_the_copy_doing_most_of_the_work():
    sch = polyop.Schedule(partly_read)
    (j,) = sch.get_loops("S1")
    sch.compute_at("S0", j)  # T[i] for i >= m stays in its own loop, before
    assert sch.get_loops("S0")[0] == j
    run_both(sch, partly_read, dict(n=5, m=3, A=rand(5), T=rand(5), B=rand(3)))
    run_both(sch, partly_read, dict(n=2, m=4, A=rand(2), T=rand(2), B=rand(4)))
