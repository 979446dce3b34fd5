"""polyop's dependences equal a brute-force oracle's, pair for pair.

``tests.oracle`` runs each kernel's plain Python function at concrete sizes,
records every access with the statement instance that made it and derives
every RAW/WAR/WAW pair by brute force; ``polyop.dependences`` (isl's
``compute_flow`` over the access relations and the textual schedule) is
enumerated at the same sizes. The two must be equal for every (kind, array).
Statement instances (domains) and access relations are compared as well: when
the dependences differ, these say whether the model or the dependence
analysis is at fault.

Kernels: small hand-written ones covering recurrences, in-place stencils,
triangular nests, local scalars, guards, strided loops, selects and
quasi-affine subscripts, each at a few sizes including degenerate ones (0, 1);
then every PolyBench kernel of ``tests.polybench.BENCHES``.

PolyBench sizes: the MINI dataset, scaled down proportionally (every size
parameter multiplied by the same factor, rounded, at least 1) so that the
largest one is at most 8; proportional scaling keeps the order relations
between parameters (``ni < nj < nk``, ``m < n``...) that decide which
triangular and rectangular parts meet. If the oracle then finds more than
``PAIR_BUDGET`` pairs (enumerating isl's pairs costs 10 to 20 µs each), the cap
drops to 7, 6, ... until it does not: adi and ludcmp end up at 7, deriche and
doitgen at 5 (their local scalars, and doitgen's ``sum[p]``, conflict across
whole loop nests, so pairs grow with the square of the instance count).
``OVERRIDES`` replaces the rule where it leaves too little: heat-3d's MINI
(tsteps 20, n 10) would scale to n = 4, a 2x2x2 interior; it runs at tsteps 3,
n 6 instead. Each kernel also runs at
``TINY`` sizes (every parameter at most 2, at least what the kernel's asserts
need), where most loops are empty or single-trip.

Cost: about 10 s for the whole file on a 2-core machine.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import polyop
from tests.oracle import (
    Event,
    OracleError,
    check_numbering,
    dependences_of_events,
    diff_dependences,
    diff_sets,
    isl_accesses_at,
    isl_dependences_at,
    isl_instances_at,
    oracle_accesses,
    oracle_dependences,
    oracle_instances,
    rewrite,
    run_recorded,
)

PAIR_BUDGET = 60_000
OVERRIDES = {"heat-3d": {"tsteps": 3, "n": 6}}


# -- hand kernels --------------------------------------------------------------------------
@polyop.kernel
def prefix(n: int, A: "f64[n]"):
    for i in range(1, n):
        A[i] += A[i - 1]


@polyop.kernel
def recurrence_2d(n: int, m: int, A: "f64[n, m]"):
    for i in range(1, n):
        for j in range(1, m):
            A[i, j] = A[i - 1, j] + A[i, j - 1] - A[i - 1, j - 1]


@polyop.kernel
def seidel_like(tsteps: int, n: int, A: "f64[n, n]"):
    for t in range(tsteps):
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = (A[i - 1, j] + A[i, j - 1] + A[i, j] + A[i, j + 1]
                           + A[i + 1, j]) * 0.2


@polyop.kernel
def triangular_lu(n: int, A: "f64[n, n]"):
    for k in range(n):
        for i in range(k + 1, n):
            A[i, k] /= A[k, k]
            for j in range(k + 1, n):
                A[i, j] -= A[i, k] * A[k, j]


@polyop.kernel
def scalar_accumulator(n: int, m: int, A: "f64[n, m]", x: "f64[m]", y: "f64[n]",
                       z: "f64[1]"):
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += A[i, j] * x[j]
        y[i] = s
    total = 0.0
    for i in range(n):
        total += y[i]
    z[0] = total


@polyop.kernel
def guarded(n: int, A: "f64[n, n]", B: "f64[n]"):
    for i in range(n):
        for j in range(n):
            if i < j:
                A[i, j] = A[j, i] + B[i]
            elif i == j:
                B[i] += A[i, i]
            else:
                A[i, j] = A[j, i] * 0.5 + B[j]
            if i % 2 == 0 and j > 0:
                B[j] += A[i, j - 1]


@polyop.kernel
def strided(n: int, A: "f64[n + 1]"):
    for i in range(1, n, 2):
        A[i] = A[i - 1] + A[i + 1]
    for j in range(3, n, 3):
        A[j] += A[j - 3]


@polyop.kernel
def select_and_bounds(n: int, m: int, A: "f64[n, m]", B: "f64[m]", C: "f64[n]"):
    for i in range(n):
        for j in range(max(0, i - 1), min(m, i + 2)):
            A[i, j] = (B[j] if A[i, j] > 0.5 else C[i]) + B[j // 2]
        C[i] = C[i] * 2.0 if i > 0 and C[i - 1] > 1.0 else A[i, m // 2] if m > 0 else 0.0


@polyop.kernel
def quasi_affine(n: int, A: "f64[n]", B: "f64[n]", C: "f64[3]"):
    for i in range(n):
        A[i // 2] += B[i]
        C[i % 3] = A[(i + 1) // 2]


@polyop.kernel
def assumed_size(n: int, A: "f64[n]", B: "f64[n]"):
    assert n >= 1
    A[n - 1] = A[0]
    for i in range(n):
        B[i] = A[n - 1] + A[i]
    A[0] = B[n - 1]


@polyop.kernel
def guarded_reads(n: int, m: int, A: "f64[n, m]", B: "f64[m]"):
    # reads guarded by affine tests (and a data test, which guards nothing)
    for i in range(n):
        for j in range(m):
            A[i, j] = (A[i - 1, j] if i >= 1 and j % 2 == 0 else B[j]) + (
                B[j + 1] if j + 1 < m and A[i, j] > 0.5 else 0.0)
        if i < m:
            B[i] = A[i, m - 1] if i >= 1 and (i == 1 or A[i - 1, 0] > 0.0) else -1.0


HAND = {
    "prefix": (prefix, [dict(n=0), dict(n=1), dict(n=2), dict(n=7)]),
    "recurrence_2d": (recurrence_2d,
                      [dict(n=0, m=3), dict(n=1, m=1), dict(n=4, m=5), dict(n=5, m=2)]),
    "seidel_like": (seidel_like, [dict(tsteps=0, n=4), dict(tsteps=2, n=1),
                                  dict(tsteps=2, n=3), dict(tsteps=3, n=5)]),
    "triangular_lu": (triangular_lu, [dict(n=0), dict(n=1), dict(n=2), dict(n=5)]),
    "scalar_accumulator": (scalar_accumulator,
                           [dict(n=0, m=2), dict(n=3, m=0), dict(n=3, m=4)]),
    "guarded": (guarded, [dict(n=0), dict(n=1), dict(n=4), dict(n=5)]),
    "strided": (strided, [dict(n=0), dict(n=1), dict(n=2), dict(n=7), dict(n=8)]),
    "select_and_bounds": (select_and_bounds,
                          [dict(n=0, m=0), dict(n=1, m=0), dict(n=3, m=1), dict(n=5, m=4)]),
    "quasi_affine": (quasi_affine, [dict(n=0), dict(n=1), dict(n=6)]),
    "assumed_size": (assumed_size, [dict(n=1), dict(n=2), dict(n=5)]),
    "guarded_reads": (guarded_reads, [dict(n=0, m=2), dict(n=1, m=1), dict(n=4, m=5)]),
}


def make_args(kernel: polyop.Kernel, sizes: dict[str, int], seed: int = 0) -> dict:
    """Sizes as given, scalars 1.5, arrays of random values in [0, 1) (the
    values never matter for the accesses: control flow is affine)."""
    rng = np.random.default_rng(seed)
    args: dict[str, object] = dict(sizes)
    for a in kernel.program.arguments:
        if a.kind == "array":
            shape = tuple(int(eval(e, {"__builtins__": {}}, dict(sizes)))  # noqa: S307
                          for e in kernel.program.arrays[a.name].shape)
            args[a.name] = rng.random(shape)
        elif a.kind == "scalar":
            args[a.name] = 1.5
    return args


def check_against_isl(kernel: polyop.Kernel, args: dict, label: str) -> int:
    """Instances, accesses and dependences of ``kernel`` at ``args``: oracle
    against polyop. Returns the number of dependence pairs."""
    params = {p: args[p] for p in kernel.program.params}
    events = run_recorded(kernel, args)
    problems = [diff_sets(oracle_instances(events), isl_instances_at(kernel, params),
                          "statement instances")]
    acc_o, acc_i = oracle_accesses(events), isl_accesses_at(kernel, params)
    problems += [diff_sets(acc_o[k], acc_i[k], k) for k in ("reads", "writes")]
    expected = dependences_of_events(events)
    problems.append(diff_dependences(expected, isl_dependences_at(kernel, params)))
    report = "\n".join(p for p in problems if p)
    assert not report, f"{label} at {params}:\n{report}"
    return sum(map(len, expected.values()))


@pytest.mark.parametrize(
    "name, sizes",
    [(name, s) for name, (_, sizes) in HAND.items() for s in sizes],
    ids=[f"{name}-" + "-".join(f"{k}{v}" for k, v in s.items())
         for name, (_, sizes) in HAND.items() for s in sizes],
)
def test_hand_kernel_matches_oracle(name, sizes):
    kernel = HAND[name][0]
    check_against_isl(kernel, make_args(kernel, sizes), name)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 6), m=st.integers(0, 6))
def test_hand_kernels_at_random_sizes(n, m):
    for kernel in (recurrence_2d, scalar_accumulator, select_and_bounds, guarded_reads):
        check_against_isl(kernel, make_args(kernel, dict(n=n, m=m)), kernel.__name__)
    for kernel in (triangular_lu, guarded, strided, quasi_affine):
        check_against_isl(kernel, make_args(kernel, dict(n=n)), kernel.__name__)
    check_against_isl(seidel_like, make_args(seidel_like, dict(tsteps=m % 3, n=n)),
                      "seidel_like")


# -- the oracle itself, without isl -------------------------------------------------------
def S(name: str, *it: int):
    return (name, tuple(it))


def test_oracle_prefix_pairs_by_hand():
    deps = oracle_dependences(prefix, dict(n=4, A=np.zeros(4)))
    assert deps == {("RAW", "A"): {(S("S0", 1), S("S0", 2)), (S("S0", 2), S("S0", 3))}}


def test_oracle_local_scalar_is_a_0d_element():
    args = make_args(scalar_accumulator, dict(n=2, m=1))
    events = run_recorded(scalar_accumulator, args)
    assert [e.instance for e in events] == [
        S("S0", 0), S("S1", 0, 0), S("S2", 0), S("S0", 1), S("S1", 1, 0), S("S2", 1),
        S("S3"), S("S4", 0), S("S4", 1), S("S5")]
    assert events[1] == Event("S1", (0, 0), frozenset({("s", ()), ("A", (0, 0)), ("x", (0,))}),
                              frozenset({("s", ())}))
    deps = dependences_of_events(events)
    # s = 0.0 in row 0 and row 1: output dependence S0[0] -> S0[1] through s
    assert (S("S0", 0), S("S0", 1)) in deps[("WAW", "s")]
    assert (S("S2", 0), S("S0", 1)) in deps[("WAR", "s")]
    assert (S("S4", 1), S("S5")) in deps[("RAW", "total")]


def test_oracle_leaves_arguments_alone_and_matches_cpython():
    args = make_args(triangular_lu, dict(n=4))
    before = args["A"].copy()
    run_recorded(triangular_lu, args)
    np.testing.assert_array_equal(args["A"], before)
    # the recorded run computes what CPython computes
    ref = before.copy()
    triangular_lu.py_func(4, ref)
    run_recorded(triangular_lu, args, copy_args=False)
    np.testing.assert_array_equal(args["A"], ref)


def test_eager_select_reads_both_arms():
    """polyop's select reads both arms; CPython's lazy evaluation reads one."""
    args = make_args(select_and_bounds, dict(n=1, m=1))
    args["A"][0, 0] = 0.9             # the B[j] arm is taken
    eager = run_recorded(select_and_bounds, args)[0]
    lazy = run_recorded(select_and_bounds, args, eager=False)[0]
    assert ("C", (0,)) in eager.reads and ("C", (0,)) not in lazy.reads
    assert ("B", (0,)) in eager.reads and ("B", (0,)) in lazy.reads


def test_numbering_is_checked_against_the_model():
    rw = rewrite(guarded.py_func)
    check_numbering(guarded, rw.statements)   # agrees: no error
    with pytest.raises(OracleError, match="numbering"):
        check_numbering(prefix, rw.statements)


# -- PolyBench ----------------------------------------------------------------------------
try:
    from tests.polybench import BENCHES
except ImportError:  # the registry is not there yet
    BENCHES = {}


def scaled(sizes: dict[str, int], cap: int) -> dict[str, int]:
    """Every size multiplied by ``cap / max(sizes)`` (rounded, at least 1)."""
    top = max(sizes.values())
    if top <= cap:
        return dict(sizes)
    return {k: max(1, round(v * cap / top)) for k, v in sizes.items()}


def tiny(sizes: dict[str, int]) -> dict[str, int]:
    return {k: min(v, 2) for k, v in sizes.items()}


@pytest.mark.parametrize("name", list(BENCHES))
def test_polybench_matches_oracle(name):
    bench = BENCHES[name]
    mini = bench.sizes["MINI"]
    for cap in range(8, 2, -1):
        sizes = OVERRIDES.get(name) or scaled(mini, cap)
        args = bench.init(sizes)
        pairs = sum(map(len, oracle_dependences(bench.kernel, args).values()))
        if pairs <= PAIR_BUDGET or name in OVERRIDES:
            break
    check_against_isl(bench.kernel, args, f"{name} (MINI scaled to {sizes})")


@pytest.mark.parametrize("name", list(BENCHES))
def test_polybench_tiny_matches_oracle(name):
    bench = BENCHES[name]
    sizes = tiny(bench.sizes["MINI"])
    check_against_isl(bench.kernel, bench.init(sizes), f"{name} (tiny {sizes})")
