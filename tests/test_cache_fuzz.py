"""Property-based fuzzing of ``cache_read``: a random cache (layout, padding,
consumers) of a random array read by a fuzz kernel, then random primitives,
the copy computed at a consumer's loop and made local to one of its loops
(``set_scope``), each step drawn or not.

Every accepted schedule must report no violation and compute, bit for bit (to
rounding after ``rfactor`` or ``inline``), what CPython computes running the
original kernel; every refusal must leave the
schedule unchanged. (The dependence oracle of ``test_schedule_fuzz`` speaks of
the original statements, so it is not used here: the result comparison is the
check.)
"""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import polyop
from polyop import IllegalScheduleError, ScheduleError
from tests.fuzz_support import (
    CASES,
    _state,
    check_unchanged,
    draw_op,
    draw_sizes,
    rewritten,
    run_and_compare,
)

#: fuzz cases with arrays read by some statement: (case, examples)
KERNELS = {"jacobi2d_copy": 4, "column_sums": 4, "temp_chain": 3, "imperfect": 3,
           "gemm_beta": 4, "tri3": 3, "seidel2d_5pt": 3, "pb-atax": 3, "pb-2mm": 3,
           "fixed_rows": 4}


def _layouts(ndim: int):
    """Layout families for an array of ``ndim`` dimensions (name, function)."""
    out = [("identity", None)]
    if ndim == 1:
        out += [("panels-2", lambda i: (i // 2, i % 2)), ("shift+1", lambda i: (i + 1,))]
    if ndim == 2:
        out += [("transpose", lambda i, j: (j, i)),
                ("col-panels-3", lambda i, j: (j // 3, i, j % 3)),
                ("row-panels-2", lambda i, j: (i // 2, j, i % 2)),
                ("border+1", lambda i, j: (i + 1, j + 1))]
    return out


def _cache_example(case, data) -> None:
    case = dataclasses.replace(case, sizes=draw_sizes(data, case))
    sch = polyop.Schedule(case.kernel)
    program = sch.program
    read = sorted({a.array for s in program.statements for a in s.reads
                   if a.array in program.arrays and not program.arrays[a.array].temporary})
    if not read:
        return
    array = data.draw(st.sampled_from(read), label="array")
    readers = [s.name for s in program.statements if any(a.array == array for a in s.reads)]
    consumers = data.draw(st.lists(st.sampled_from(readers), min_size=1, unique=True),
                          label="consumers")
    name, layout = data.draw(st.sampled_from(_layouts(program.arrays[array].ndim)),
                             label="layout")
    pad = data.draw(st.sampled_from([None, 0.0]), label="pad")
    note(f"sch.cache_read({array!r}, {consumers}, layout={name}, pad={pad})")
    before = _state(sch)
    try:
        cache = sch.cache_read(array, consumers, layout=layout, pad=pad)
    except ScheduleError as e:  # stale caches, consumers that write the array
        note(f"  refused: {e}")
        check_unchanged(sch, before, "cache_read")
        return
    accepted = []
    for _ in range(data.draw(st.integers(0, 3), label="n_ops")):
        op = draw_op(data, sch)
        if op is None:
            continue
        before = _state(sch)
        try:
            op.apply(sch)
            note(op.code())
            accepted.append(op)
        except (IllegalScheduleError, ScheduleError) as e:
            note(f"{op.code()}  # refused: {e}")
            check_unchanged(sch, before, op.code())
    if data.draw(st.booleans(), label="compute_at the copy"):
        others = [s for s in consumers if sch.get_loops(s)]
        if others:
            target = data.draw(st.sampled_from(others))
            loops = sch.get_loops(target)
            loop = loops[data.draw(st.integers(0, len(loops) - 1))]
            before = _state(sch)
            try:
                sch.compute_at(cache, loop)
                note(f"sch.compute_at({cache!r}, {loop})")
            except (IllegalScheduleError, ScheduleError) as e:
                note(f"compute_at({cache}, {loop}) refused: {e}")
                check_unchanged(sch, before, "compute_at")
    if data.draw(st.booleans(), label="set_scope the copy"):
        loops = sch.get_loops(cache) if cache in sch.stmts else []  # (inlined: gone)
        if loops:  # local to an iteration of one of its loops (often refused)
            loop = loops[data.draw(st.integers(0, len(loops) - 1))]
            before = _state(sch)
            try:
                sch.set_scope(cache, "local", loop)
                note(f"sch.set_scope({cache!r}, 'local', {loop})")
            except (IllegalScheduleError, ScheduleError) as e:
                note(f"set_scope({cache}, 'local', {loop}) refused: {e}")
                check_unchanged(sch, before, "set_scope")
    assert sch.check() == [], f"accepted schedule reports violations:\n{sch}"
    run_and_compare(case, sch, data.draw(st.integers(0, 2**16), label="seed"),
                    exact=not rewritten(accepted))


def _fuzz(name: str, examples: int, derandomize: bool) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(data=st.data())
    def run(data):
        _cache_example(CASES[name], data)

    run()


@pytest.mark.parametrize("name", list(KERNELS))
def test_cache_read_fuzz(name):
    """The default run: derandomized, the same examples in every CI run."""
    _fuzz(name, KERNELS[name], derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KERNELS))
def test_cache_read_fuzz_many(name):
    _fuzz(name, 10 * KERNELS[name], derandomize=False)
