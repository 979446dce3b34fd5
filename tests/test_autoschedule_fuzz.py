"""Property-based fuzzing of ``auto_schedule`` (see ``tests/fuzz_support.py``).

Each example takes one fuzz kernel, draws the target the schedule is made
for (AVX2, AVX-512 or AArch64, one or two cores), the sizes the cost model
assumes (tiny to large: they decide tiles, strips, jams and parallel loops)
and, at times, one knob set to another of its candidates, as a tuner does.
The schedule ``auto_schedule`` returns must then hold polyop's guarantee:
no violation reported by its own check, every dependence the brute-force
oracle finds at the run sizes kept in order and never carried by a parallel
or vector loop, and, built for this machine and run on 3 threads, the
results CPython computes, bit for bit (no decision of the heuristic
reassociates a sum).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import polyop
from polyop.autoschedule import auto_knobs
from tests.fuzz_support import CASES, Case, check_accepted_order, draw_sizes, run_and_compare

TARGETS = (
    "cpu -mtriple=x86_64-linux-gnu -mcpu=haswell -num-cores=1",
    "cpu -mtriple=x86_64-linux-gnu -mcpu=znver3 -num-cores=2",
    "cpu -mtriple=x86_64-linux-gnu -mcpu=znver4 -num-cores=1",
    "cpu -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512 -num-cores=2",
    "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2 -num-cores=2",
)

#: the default run (the others are slow): kernels with sums over rows, shared
#: loops, temporaries and a time loop
DEFAULT = ("pb-atax", "pb-bicg", "pb-gemver", "pb-symm", "imperfect", "scalar_reduction")


pytestmark = pytest.mark.usefixtures("three_threads")


def _example(case: Case, data) -> None:
    target = data.draw(st.sampled_from(TARGETS), label="target")
    model = {p: data.draw(st.sampled_from((2, 7, 40, 200, 1000)), label=f"model {p}")
             for p in case.sizes}
    knobs = {}
    if data.draw(st.booleans(), label="override a knob"):
        choices = [k for k in auto_knobs(case.kernel, target, sizes=model)
                   if len(k.candidates) > 1]
        if choices:
            knob = data.draw(st.sampled_from(choices), label="knob")
            knobs[knob.name] = data.draw(st.sampled_from(knob.candidates), label="value")
    note(f"auto_schedule({case.name}, {target!r}, sizes={model}, knobs={knobs})")
    sch = polyop.auto_schedule(case.kernel, target, knobs=knobs, sizes=model)
    note(str(sch))
    assert sch.check() == [], f"auto_schedule reports violations:\n{sch}"
    run = replace(case, sizes=draw_sizes(data, case))
    check_accepted_order(run, sch)
    run_and_compare(run, sch, data.draw(st.integers(0, 2**16), label="seed"))


def _fuzz(case: Case, examples: int, derandomize: bool = True) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def run(data):
        _example(case, data)

    run()


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in DEFAULT else
                                               (pytest.mark.slow,)) for n in CASES])
def test_auto_schedule_fuzz(name):
    """Derandomized: CI sees the same examples every time."""
    _fuzz(CASES[name], 6 if name in DEFAULT else 8)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_auto_schedule_fuzz_many(name):
    """Random examples, new ones each run."""
    _fuzz(CASES[name], 20, derandomize=False)
