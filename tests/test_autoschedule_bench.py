"""``benchmarks/autoschedule_bench.py``'s measurement, without timing anything:
which arrays a timed call copies afresh (``--calls refill`` against
``warm``), that ``warm`` leaves results unchanged, and that the three runs
of a kernel in the 2-thread rounds take turns at going first.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import autoschedule_bench as ab  # noqa: E402
import polybench_bench as pb  # noqa: E402

from polyop.codegen.parallel import get_num_threads, set_num_threads  # noqa: E402
from tests.polybench import BENCHES  # noqa: E402


def test_written_arrays_are_the_ones_some_statement_writes():
    assert pb.written_arrays(BENCHES["atax"].kernel) == {"y", "tmp"}
    assert pb.written_arrays(BENCHES["gemm"].kernel) == {"C"}
    assert pb.written_arrays(BENCHES["jacobi-2d"].kernel) == {"A", "B"}


def test_refill_copies_what_it_names_and_leaves_the_rest_where_it_was():
    bench = BENCHES["atax"]
    args = bench.init(bench.sizes["MINI"])
    order = ["m", "n", "A", "x", "y", "tmp"]
    seen = []

    def spy(m, n, A, x, y, tmp):
        seen.append((A.copy(), y.copy()))
        y[:] = 7.0

    pb.timed_call(spy, args, order)  # the buffers now exist
    pb._buffers(args)["A"][0, 0] = np.nan  # a stray write into a read-only input
    pb.timed_call(spy, args, order, pb.written_arrays(bench.kernel))
    A, y = seen[-1]
    assert np.isnan(A[0, 0]), "A is only read: warm calls leave it as it was"
    assert np.array_equal(y, args["y"]), "y is written: copied afresh every call"
    pb.timed_call(spy, args, order)
    assert np.array_equal(seen[-1][0], args["A"]), "refill copies every array"


def test_warm_calls_run_twice_and_give_the_refill_results():
    bench = BENCHES["atax"]
    args = bench.init(bench.sizes["SMALL"])
    order = ["m", "n", "A", "x", "y", "tmp"]
    calls = []

    def kernel(*a):
        calls.append(1)
        bench.kernel(*a)

    warm, refill = (ab.Calls.of(how, bench.kernel) for how in ("warm", "refill"))
    assert (warm.fill, warm.warm, refill.fill, refill.warm) == ({"y", "tmp"}, True, None, False)
    out_warm = warm(kernel, args, order)[1]
    assert len(calls) == 2
    out_refill = refill(kernel, args, order)[1]
    assert len(calls) == 3
    A, x = args["A"], args["x"]
    for out in (out_warm, out_refill):
        np.testing.assert_allclose(out["tmp"], A @ x, rtol=1e-12)
        np.testing.assert_allclose(out["y"], A.T @ (A @ x), rtol=1e-12)


class _Host:
    """Stands for ``Probe`` and ``MemoryProbe``: a calm host."""

    def concurrency(self) -> float:
        return 2.0

    def per_cpu(self, repeats: int = 1) -> dict[int, float]:
        return {0: 1.0, 1: 1.0}


def test_the_three_runs_of_a_kernel_take_turns_at_going_first():
    ran: list[tuple[str, int]] = []

    def variant(name):
        return lambda *a: ran.append((name, get_num_threads()))

    res: dict = {}
    args = {"x": np.zeros(3)}
    pending = [(res, variant("1-core"), variant("2-core"), args, ["x"],
                ab.Calls.of("refill", BENCHES["gemm"].kernel))]
    before = get_num_threads()
    try:
        ab.time_threads(pending, 3, _Host(), _Host())
    finally:
        set_num_threads(before)
    rounds = [ran[k:k + 3] for k in range(0, 9, 3)]
    assert [r[0] for r in rounds] == [("1-core", 1), ("2-core", 1), ("2-core", 2)]
    for r in rounds:
        assert sorted(r) == [("1-core", 1), ("2-core", 1), ("2-core", 2)]
    assert len(res["host_concurrency"]) == 3 and res["host_memory_balance"] == [1.0] * 3
    assert res["speedup_2_threads"] > 0
