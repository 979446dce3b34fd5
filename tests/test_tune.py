"""polyop.tune: spaces, pruning of illegal points, isolated measurement (crash,
hang, wrong output), determinism, resume from a log, apply_best, strategies."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import polyop
from polyop.tune import (
    ConfigSpace,
    KernelTask,
    LocalRunner,
    Runner,
    TuneError,
    apply_best,
    apply_split,
    read_log,
    template,
    tune,
)
from polyop.tune.model import ir_features, knob_features
from polyop.tune.space import split_candidates
from polyop.tune.strategies import ModelSearch
from polyop.tune.task import auto_template


@polyop.kernel
def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            for k in range(n):
                C[i, j] += A[i, k] * B[k, j]


@polyop.kernel
def prefix(n: int, A: "f64[n]"):
    for i in range(1, n):
        A[i] = A[i] + A[i - 1]


@template
def mm_template(cfg, k):
    """Tile j, swap k inside or outside j, optionally parallel i."""
    sch = polyop.Schedule(k)
    i, j, kk = sch.get_loops("S0")
    jo, ji = apply_split(sch, j, cfg.define_split("tj", j, policy="power2", max_factor=8))
    if cfg.define_knob("k_out", [False, True]):
        sch.reorder(kk, jo, ji)
    if cfg.define_knob("par", [False, True]):
        sch.parallel(i)
    return sch


@template
def tj_template(cfg, k):
    """One knob: the split of j (1, 2, 4 or 8)."""
    sch = polyop.Schedule(k)
    apply_split(sch, sch.get_loops("S0")[1], cfg.define_split("tj", 8, policy="power2"))
    return sch


@template
def prefix_template(cfg, k):
    """Every point parallelises a loop with a RAW dependence: all illegal."""
    sch = polyop.Schedule(k)
    (i,) = sch.get_loops("S0")
    factor = cfg.define_knob("f", [2, 4, 8])
    sch.parallel(i)
    sch.split(i, factor)
    return sch


@template
def prefix_partly_illegal(cfg, k):
    sch = polyop.Schedule(k)
    (i,) = sch.get_loops("S0")
    io, ii = apply_split(sch, i, cfg.define_split("ti", 16, policy="factors"))
    if cfg.define_knob("par", [False, True]):
        sch.parallel(io)
    return sch


class FaultyTask(KernelTask):
    """``mm`` whose ``mode`` knob makes a candidate crash, hang or compute wrong."""

    def __init__(self, n: int = 8):
        super().__init__(faulty_template, mm, {"n": n})

    def build(self, config):
        f = super().build(config)
        mode = config["mode"]
        if mode == "abort":
            os.abort()
        if mode == "hang":
            time.sleep(600)
        if mode == "wrong":
            def wrong(*args):
                f(*args)
                args[-1][0, 0] += 1.0
            return wrong
        if mode in ("abort_timed", "hang_timed"):  # right once (the check), then not
            calls = []

            def late(*args):
                calls.append(1)
                if len(calls) > 1:
                    os.abort() if mode == "abort_timed" else time.sleep(600)
                f(*args)
            return late
        if mode == "slow_build":
            time.sleep(0.4)
        return f


@template
def faulty_template(cfg, k):
    cfg.define_knob("mode", ["ok", "abort", "hang", "wrong", "abort_timed", "hang_timed",
                             "slow_build"])
    return polyop.Schedule(k)


def _mm_args(n: int):
    rng = np.random.default_rng(3)
    return [n, rng.random((n, n)), rng.random((n, n)), np.zeros((n, n))]


def _check_against_cpython(sch, kernel, args):
    """The schedule's result equals the kernel's Python body run by CPython."""
    got = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    want = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    polyop.build(sch)(*got)
    kernel.py_func(*want)
    for g, w in zip(got, want):
        if isinstance(g, np.ndarray):
            np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.fixture(scope="module")
def runner():
    with LocalRunner(workers=2, timeout=20, repeats=3, min_seconds=1e-4) as r:
        yield r


# -- spaces ----------------------------------------------------------------------------------

def test_split_candidates_and_space_indexing():
    assert split_candidates(12, policy="factors") == [(1,), (2,), (3,), (4,), (6,), (12,)]
    three = split_candidates(16, 3, "power2")
    assert all(a * b <= 16 for a, b in three) and (4, 4) in three and (2, 16) not in three
    space = ConfigSpace()
    space.define_split("s", 8)
    space.define_knob("k", ["a", "b", "c"])
    space.define_reorder("r", 3)
    assert len(space) == 4 * 3 * 6
    for index in (0, 17, len(space) - 1):
        cfg = space.get(index)
        assert space.index_of(json.loads(json.dumps(cfg.to_json()))) == index
    with pytest.raises(TuneError, match="defined twice"):
        space.define_knob("k", [1])
    with pytest.raises(TuneError, match="not one of"):
        space.index_of({"s": [3], "k": "a", "r": [0, 1, 2]})


def test_split_of_a_loop_takes_its_extent_at_the_sizes():
    task = KernelTask(mm_template, mm, {"n": 12})
    space = task.space()
    assert space.knobs["tj"].candidates == ((1,), (2,), (4,), (8,))
    with pytest.raises(TuneError, match="sizes"):
        KernelTask(mm_template, mm, {})


def test_reorder_knob_applies_a_permutation():
    @template
    def orders(cfg, k):
        sch = polyop.Schedule(k)
        loops = sch.get_loops("S0")
        order = cfg.define_reorder("order", loops)
        if order != (0, 1, 2):
            sch.reorder(*[loops[p] for p in order])
        return sch

    task = KernelTask(orders, mm, {"n": 5})
    space = task.space()
    assert len(space) == 6
    sch = task.schedule(space.get(space.index_of({"order": [2, 0, 1]})))
    assert [lp.name for lp in sch.get_loops("S0")] == ["k", "i", "j"]
    _check_against_cpython(sch, mm, _mm_args(5))


# -- pruning ----------------------------------------------------------------------------------

def test_all_illegal_space_is_a_clear_error(tmp_path, runner):
    with pytest.raises(TuneError, match="every point proposed is illegal.*IllegalScheduleError"):
        tune(prefix_template, kernel=prefix, sizes={"n": 16}, trials=4, runner=runner,
             log=tmp_path / "log.jsonl", progress=False)
    recs = read_log(tmp_path / "log.jsonl")
    assert len(recs) == 3 and {r.status for r in recs} == {"illegal"}
    assert all(r.worker is None and r.seconds is None for r in recs)


def test_illegal_points_are_pruned_before_measurement(runner):
    r = tune(prefix_partly_illegal, kernel=prefix, sizes={"n": 16}, trials=20, seed=0,
             runner=runner, progress=False)
    illegal = [x for x in r.records if x.status == "illegal"]
    legal = [x for x in r.records if x.status != "illegal"]
    # parallel(io) carries the recurrence for some n, whatever the factor
    assert len(illegal) == 5 and all(x.knobs["par"] for x in illegal)
    assert all(x.worker is None and "RAW" in x.error for x in illegal)
    assert len(legal) == 5 and all(x.status == "ok" and x.worker for x in legal)
    args = [16, np.random.default_rng(0).random(16)]
    _check_against_cpython(r.best_schedule, prefix, args)


# -- measurement in other processes -----------------------------------------------------------

def test_crash_hang_and_wrong_candidates_are_recorded_and_the_search_goes_on(tmp_path):
    log = tmp_path / "faulty.jsonl"
    with LocalRunner(workers=2, timeout=3, repeats=2, min_seconds=1e-4) as runner:
        r = tune(FaultyTask(), trials=7, strategy="grid", runner=runner, log=log,
                 progress=False)
    by_mode = {x.knobs["mode"]: x for x in r.records}
    assert by_mode["ok"].status == "ok" and by_mode["ok"].seconds > 0
    assert by_mode["slow_build"].status == "ok" and by_mode["slow_build"].phases[
        "build_seconds"] >= 0.4
    # killed while building, or while timing: the process is replaced, the run goes on
    for mode in ("abort", "abort_timed"):
        assert by_mode[mode].status == "failed" and "SIGABRT" in by_mode[mode].error
    for mode in ("hang", "hang_timed"):
        assert by_mode[mode].status == "failed" and "timeout" in by_mode[mode].error
    assert by_mode["wrong"].status == "wrong" and "element (0, 0)" in by_mode["wrong"].error
    assert r.best.knobs in ({"mode": "ok"}, {"mode": "slow_build"}) and len(r.failures) == 5
    assert {x.knobs["mode"] for x in read_log(log)} == set(by_mode)


def test_exclusive_runner_builds_together_and_times_alone():
    """Two warm processes build and check their points at the same time; each
    timing runs while no other point is built, checked or timed; the processes
    are reused from one run to the next."""
    task = FaultyTask()
    slow = {"mode": "slow_build"}
    with LocalRunner(workers=2, timeout=20, repeats=3, min_seconds=0.02) as runner:
        assert [r["status"] for _, r in runner.run(task, [slow])] == ["ok"]
        pids = [p.proc.pid for p in runner._procs]
        results = [r for _, r in runner.run(task, [slow] * 4, cutoff=1.0)]
        assert [p.proc.pid for p in runner._procs] == pids
    assert all(r["status"] == "ok" and r["repeats"] == 3 for r in results)
    builds = [r["build_window"] for r in results]
    timings = [r["timing_window"] for r in results]

    def overlap(a, b):
        return a[0] < b[1] and b[0] < a[1]

    assert sum(overlap(builds[i], builds[j]) for i in range(4) for j in range(i)) >= 2
    for i, t in enumerate(timings):
        # the first repeat lasts at least min_seconds; later ones may be shorter,
        # as a steady call can be faster than the warm-up that sized them
        assert t[1] - t[0] >= 0.02
        for j in range(4):
            if j != i:
                assert not overlap(t, builds[j]) and not overlap(t, timings[j])


def test_early_stop_cuts_the_repeats_of_a_slower_candidate():
    from polyop.tune.measure import measure

    task = KernelTask(mm_template, mm, {"n": 12})
    knobs = task.space().get(0).values
    full = measure(task, knobs, repeats=4, min_seconds=1e-4, cutoff=10.0)
    cut = measure(task, knobs, repeats=4, min_seconds=1e-4, cutoff=1e-12)
    assert full["repeats"] == 4 and "stopped_early" not in full
    assert cut["status"] == "ok" and cut["repeats"] == 1 and cut["stopped_early"]
    assert cut["seconds"] > 1e-12
    with pytest.raises(TuneError, match="early_stop"):
        tune(mm_template, kernel=mm, sizes={"n": 12}, trials=1, early_stop=0.9,
             progress=False)


def test_a_task_for_several_threads_is_measured_on_that_many():
    """An operator compiled for 2 threads is checked and timed with the
    runtime at 2 threads, whatever the measuring process was set to (the
    tuning benchmark's workers inherit ``POLYOP_NUM_THREADS=1``)."""
    from polyop.codegen.parallel import get_num_threads, set_num_threads
    from polyop.tune.measure import measure

    seen = []

    class TwoThreads(KernelTask):
        threads = 2

        def build(self, config):
            f = super().build(config)

            def run(*args):
                seen.append(get_num_threads())
                f(*args)
            return run

    task = TwoThreads(mm_template, mm, {"n": 8})
    before = get_num_threads()
    set_num_threads(1)
    try:
        r = measure(task, task.space().get(0).values, repeats=2, min_seconds=1e-4)
        assert r["status"] == "ok" and seen and set(seen) == {2}
        assert get_num_threads() == 1  # restored
    finally:
        set_num_threads(before)


# -- the search -------------------------------------------------------------------------------

def test_same_seed_same_points_and_best_schedule_matches_cpython(runner):
    def run(seed):
        r = tune(mm_template, kernel=mm, sizes={"n": 12}, trials=5, seed=seed, runner=runner,
                 progress=False)
        return r, [x.knobs for x in r.records]

    r1, first = run(7)
    _, again = run(7)
    _, other = run(8)
    assert first == again and first != other
    assert all(x.status == "ok" for x in r1.records)
    assert r1.best_seconds == min(x.seconds for x in r1.records)
    assert all(x.trace and x.machine["cpus"] >= 1 and x.polyop == polyop.__version__
               for x in r1.records)
    _check_against_cpython(r1.best_schedule, mm, _mm_args(12))


def test_resume_from_log_and_apply_best(tmp_path, runner):
    log = tmp_path / "mm.jsonl"
    first = tune(mm_template, kernel=mm, sizes={"n": 12}, trials=3, seed=1, log=log,
                 runner=runner, progress=False)
    with open(log, "a") as fh:  # an interrupted write: a torn last line
        fh.write('{"task": "cut sh')
    second = tune(mm_template, kernel=mm, sizes={"n": 12}, trials=6, seed=1, log=log,
                  runner=runner, progress=False)
    kept = {json.dumps(x.knobs, sort_keys=True): x for x in first.records}
    reused = [x for x in second.records if json.dumps(x.knobs, sort_keys=True) in kept]
    assert len(reused) == 3 and all(x.time == kept[json.dumps(x.knobs, sort_keys=True)].time
                                    for x in reused)
    records = read_log(log)
    assert len(records) == 6 and len({json.dumps(x.knobs, sort_keys=True)
                                      for x in records}) == 6
    sch = apply_best(log, mm, mm_template, {"n": 12})
    best = min((x for x in records if x.ok), key=lambda x: x.seconds)
    assert isinstance(sch, polyop.Schedule) and str(sch) == str(second.best_schedule)
    assert best.knobs == second.best_knobs
    _check_against_cpython(sch, mm, _mm_args(12))
    replayed = apply_best(log, mm, mm_template, {"n": 12}, replay=True)  # from the JSON trace
    assert replayed.trace_json() == sch.trace_json() and str(replayed) == str(sch)
    with pytest.raises(TuneError, match="no successful record"):
        apply_best(log, mm, mm_template, {"n": 10})


class ScriptedRunner(Runner):
    """Measures nothing: each point's n-th measurement takes the n-th of its
    scripted times (the last one repeated), or fails where that is None."""

    workers = 1

    def __init__(self, times: dict[int, list[float | None]]):
        self.times, self.calls = times, {}
        self.options = {}

    def run(self, task, points, cutoff=None):
        for pos, knobs in enumerate(points):
            f = knobs["tj"][0]
            k = self.calls.get(f, 0)
            self.calls[f] = k + 1
            t = self.times[f][min(k, len(self.times[f]) - 1)]
            yield pos, ({"status": "ok", "seconds": t, "worker": "script"} if t is not None
                        else {"status": "failed", "error": "scripted", "worker": "script"})


def test_confirmation_hands_back_the_best_median_not_a_lucky_figure(tmp_path):
    # tj = 2 met a fast moment once (0.5 s), but times 1.2 s ever after; tj = 4 is steady
    times = {1: [2.0], 2: [0.5, 1.2, 1.2], 4: [0.8, 0.8, 0.9], 8: [1.5]}
    common = dict(kernel=mm, sizes={"n": 8}, strategy="grid", trials=4, progress=False)
    plain = tune(tj_template, runner=ScriptedRunner(times), **common)
    assert plain.best.knobs["tj"] == [2] and plain.best_seconds == 0.5 and not plain.confirmations
    log = tmp_path / "confirm.jsonl"
    runner = ScriptedRunner(times)
    r = tune(tj_template, runner=runner, log=log, confirm=2, confirm_rounds=2, **common)
    assert r.best.knobs["tj"] == [4] and r.best_seconds == 0.8
    # the two fastest points of the search, round by round, each with its trial number
    again = r.confirmations
    assert [(x.confirm, x.knobs["tj"][0]) for x in again] == [(1, 2), (1, 4), (2, 2), (2, 4)]
    assert [x.trial for x in again[:2]] == [1, 2] and runner.calls == {1: 1, 2: 3, 4: 3, 8: 1}
    assert len(r.records) == 4 and all(x.confirm == 0 for x in r.records)
    assert [x.confirm for x in read_log(log)] == [0, 0, 0, 0, 1, 1, 2, 2]
    # resumed: the trials and the rounds come from the log, nothing is measured again
    resumed = tune(tj_template, runner=ScriptedRunner({}), log=log, confirm=2,
                   confirm_rounds=2, **common)
    assert resumed.best.knobs == r.best.knobs and len(resumed.confirmations) == 4
    assert apply_best(log, mm, tj_template, {"n": 8}).trace_json() == \
        r.best_schedule.trace_json()
    # one more round: only that round is measured
    more = ScriptedRunner(times)
    tune(tj_template, runner=more, log=log, confirm=2, confirm_rounds=3, **common)
    assert more.calls == {2: 1, 4: 1}


class HeuristicTask(KernelTask):
    """``tj_template`` whose heuristic point is ``tj = 8``."""

    def initial_points(self) -> list[dict]:
        return [{"tj": [8]}]


def test_confirmation_times_the_heuristic_point_again_too():
    # the heuristic's tj = 8 met a slow moment in the search (1.0 s) and runs
    # 0.7 s after; tj = 2's one fast figure (0.5 s) was luck
    times = {1: [2.0], 2: [0.5, 1.2, 1.2], 4: [0.9], 8: [1.0, 0.7, 0.7]}
    runner = ScriptedRunner(times)
    r = tune(HeuristicTask(tj_template, mm, {"n": 8}), strategy="grid", trials=4,
             progress=False, runner=runner, confirm=1, confirm_rounds=2)
    assert r.records[0].knobs["tj"] == [8]  # measured first
    assert sorted({x.knobs["tj"][0] for x in r.confirmations}) == [2, 8]
    assert r.best.knobs["tj"] == [8] and r.best_seconds == 0.7
    assert runner.calls == {1: 1, 2: 3, 4: 1, 8: 3}
    # a search from scratch has no heuristic point to time again
    r = tune(HeuristicTask(tj_template, mm, {"n": 8}), strategy="grid", trials=4,
             progress=False, runner=ScriptedRunner(times), confirm=1, initial=False)
    assert {x.knobs["tj"][0] for x in r.confirmations} == {2}


def test_confirmation_rules_out_a_point_whose_re_timing_fails():
    times = {1: [2.0], 2: [0.5, None], 4: [0.8], 8: [1.5]}
    r = tune(tj_template, kernel=mm, sizes={"n": 8}, strategy="grid", trials=4,
             progress=False, runner=ScriptedRunner(times), confirm=1)
    assert [x.status for x in r.confirmations] == ["failed", "failed", "failed"]
    assert r.best.knobs["tj"] == [4]  # tj = 2's re-timing failed: the fastest of the rest


def test_model_search_improves_over_its_first_batch():
    """On a synthetic landscape (no measurement), batches after the model's first
    fit land much closer to the optimum than the random first batch."""
    space = ConfigSpace()
    space.define_knob("x", list(range(16)))
    space.define_knob("y", list(range(16)))

    def cost(index):
        v = space.get(index).values
        return 1e-3 * (1 + (v["x"] - 11) ** 2 + (v["y"] - 4) ** 2)

    strat = ModelSearch(space, seed=3, warmup=8)
    seen: set[int] = set()
    batches = []
    for _ in range(4):
        batch = strat.propose(8, seen)
        assert len(batch) == 8 and not seen & set(batch)
        seen |= set(batch)
        batches.append(sorted(cost(k) for k in batch))
        strat.update([(k, cost(k)) for k in batch])
    first_median = batches[0][4]
    later = [b[0] for b in batches[1:]]
    assert min(later) < batches[0][0] and np.median([b[3] for b in batches[2:]]) < first_median


def test_model_search_does_not_spend_trials_on_knobs_of_no_effect():
    """Only x matters; y changes nothing. Once the model has seen that, the
    points it picks differ from each other, and from every measured point,
    in x: two points that differ in y alone would be measured for nothing."""
    space = ConfigSpace()
    space.define_knob("x", list(range(200)))
    space.define_knob("y", list(range(50)))

    def cost(index):
        return 1e-3 * (1 + abs(space.get(index).values["x"] - 120))

    strat = ModelSearch(space, seed=1, explore=0.0)
    seen = set(strat.random.propose(60, set()))
    strat.update([(k, cost(k)) for k in seen])
    keys = sorted(strat.measured)
    strat.model.fit([strat.knob_row(k) for k in keys], [cost(k) for k in keys])
    imp = strat.model.importance()
    assert imp["y"] < 0.2 * imp["x"]
    # every unseen point, best first: many share an x (and so a predicted time)
    ranked = sorted((k for k in range(len(space)) if k not in seen), key=cost)
    picked = strat._distinct(ranked, 6)
    xs = [space.get(k).values["x"] for k in picked]
    measured_x = {space.get(k).values["x"] for k in seen}
    assert len(set(xs)) == 6 and not measured_x & set(xs)
    # a batch of the search itself: no point measured twice, and one of the best
    batch = strat.propose(6, seen)
    assert len(batch) == 6 and not seen & set(batch)


def test_cost_ensemble_spread_and_importance():
    from polyop.tune.model import CostEnsemble

    rng = np.random.default_rng(0)
    rows = [{"a": float(a), "noise": float(rng.random())} for a in range(20)]
    secs = [1e-3 * (1 + r["a"]) for r in rows]
    e = CostEnsemble(seed=2, members=4).fit(rows, secs)
    mean, spread = e.predict_spread(rows)
    assert np.corrcoef(mean, np.log(secs))[0, 1] > 0.95
    assert spread.shape == (20,) and (spread >= 0).all() and spread.max() > 0
    imp = e.importance()
    assert abs(sum(imp.values()) - 1) < 1e-9 and imp["a"] > 0.9


def test_model_search_computes_task_features_only_for_its_finalists():
    """The chains walk on the knobs; the task's (costly) features are computed
    for measured points and the ``rerank * n`` best of the chains only, and
    they steer the pick: here only the task's feature sees the optimum."""
    space = ConfigSpace()
    space.define_knob("x", list(range(32)))
    space.define_knob("y", list(range(32)))
    calls = []

    def extra(config):
        calls.append(config.index)
        return {"near": float(abs(config["x"] - 20) + abs(config["y"] - 9))}

    def cost(index):
        v = space.get(index).values
        return 1e-3 * (1 + abs(v["x"] - 20) + abs(v["y"] - 9))

    strat = ModelSearch(space, seed=5, features=extra, warmup=8, rerank=3)
    seen: set[int] = set()
    for round_ in range(3):
        before = len(set(calls))
        batch = strat.propose(8, seen)
        assert len(set(calls)) - before <= len(seen) + 3 * 8
        seen |= set(batch)
        strat.update([(k, cost(k)) for k in batch])
    assert len(set(calls)) < len(space) // 4
    assert min(cost(k) for k in seen) <= 1e-3 * 4


def test_model_strategy_end_to_end_with_ir_features(runner):
    # 16 trials: the 12 random ones of the warm-up, then one batch of the model
    r = tune(mm_template, kernel=mm, sizes={"n": 12}, trials=16, batch=4, seed=2,
             strategy="model", runner=runner, progress=False)
    assert len(r.records) == 16 and r.best is not None
    _check_against_cpython(r.best_schedule, mm, _mm_args(12))
    task = KernelTask(mm_template, mm, {"n": 12})
    space = task.space()
    plain = task.features(space.get(space.index_of({"tj": [1], "k_out": False, "par": False})))
    par = task.features(space.get(space.index_of({"tj": [4], "k_out": True, "par": True})))
    assert plain["ir.parallel"] == 0 and par["ir.parallel"] == 1
    # innermost k (12 iterations; B read across rows) against innermost j_inner
    # (4 iterations; C and B along rows, A invariant)
    assert par["ir.inner_log2_extent"] < plain["ir.inner_log2_extent"]
    assert par["ir.unit_stride"] > plain["ir.unit_stride"]
    assert 0 < par["ir.zero_stride"] < plain["ir.zero_stride"]  # A, against C read and written
    assert ir_features(polyop.lower(mm), {"n": 12})["ir.loops"] == 3


def test_auto_schedule_space():
    task = KernelTask(auto_template, mm, {"n": 64})
    space = task.space()
    assert len(space) > 1
    first = task.schedule(space.get(0))
    auto = polyop.auto_schedule(mm, "cpu", sizes={"n": 64})
    assert str(first) == str(auto)  # the first point is the heuristic's choice
    values = dict(space.get(0).values)
    for name, knob in space.knobs.items():  # other tiles (candidates of later knobs
        if name.endswith((":tiles", ":unroll")):  # depend on the loop order)
            values[name] = knob.candidates[-1]
    other = task.schedule(space.get(space.index_of(values)))
    assert str(other) != str(first)
    _check_against_cpython(other, mm, _mm_args(9))


def test_bad_arguments_are_tune_errors():
    with pytest.raises(TuneError, match="trials"):
        tune(mm_template, kernel=mm, sizes={"n": 8}, trials=0)
    with pytest.raises(TuneError, match="strategy"):
        tune(mm_template, kernel=mm, sizes={"n": 8}, strategy="magic")
    with pytest.raises(TuneError, match="kernel"):
        tune(mm_template)
    with pytest.raises(TuneError, match="workers"):
        LocalRunner(workers=0)
    for bad in ({"confirm": -1}, {"confirm": 2.0}, {"confirm_rounds": 0}):
        with pytest.raises(TuneError, match=next(iter(bad))):
            tune(mm_template, kernel=mm, sizes={"n": 8}, **bad)


# -- operators ---------------------------------------------------------------------------------

def test_ops_tuning_fills_the_database_that_matmul_consults(tmp_path, monkeypatch, runner):
    from polyop.ops import ConvShape, MatmulTiling
    from polyop.tune.database import lookup
    from polyop.tune.ops_tasks import conv2d_task, matmul_task, tune_ops

    monkeypatch.setenv("POLYOP_TUNE_DB", str(tmp_path / "ops.json"))
    task = matmul_task(24, 40, 32)
    space = task.space()
    default = MatmulTiling.default("float32", 32, 40, 1)
    # the heuristic's point compiles the heuristic's operator (slice depths
    # past K are one point of the space: matmul cuts K the same way for each)
    assert task.build(space.get(space.index_of(task.knobs_of(default)))).tiling == \
        polyop.ops.matmul(24, 40, 32, threads=1, tiling=default).tiling
    assert space.knobs["kc_bytes"].candidates == (2048,)
    assert matmul_task(8, 8, 1024).space().knobs["kc_bytes"].candidates == (2048, 4096)
    assert polyop.ops.matmul(24, 40, 32, threads=1).tiling.mr == default.mr  # nothing stored
    conv = conv2d_task(ConvShape(8, 6, 6, 16, layout="NHWC"))
    results = tune_ops([task, conv], trials=3, strategy="random", seed=4, runner=runner,
                       progress=False)
    for key, r in results.items():
        # a point the operator's own check refuses is pruned, never measured
        # (which points the draw meets depends on the host's registers)
        assert r.best is not None and all(x.status in ("ok", "illegal") for x in r.records), key
        assert all(x.seconds is None for x in r.records if x.status == "illegal"), key
        # a trace of the operator's schedule: its tile split and vectorised
        # (a copy of the operands is a knob: NHWC weights may be read in place)
        trace = json.dumps(r.best.trace)
        assert r.best_gflops > 0 and '"split"' in trace and '"vectorize"' in trace, trace
    best = task.tiling(space.get(space.index_of(results[task.key].best_knobs)))
    assert MatmulTiling(**lookup(task.target, task.key)) == best
    mm = polyop.ops.matmul(24, 40, 32, threads=1)  # now the tuned tiling
    assert (mm.tiling.mr, mm.tiling.nr, mm.tiling.mb, mm.tiling.pack_a) == \
        (best.mr, best.nr, best.mb, best.pack_a)
    a = np.random.default_rng(0).random((24, 32), np.float32)
    b = np.random.default_rng(1).random((32, 40), np.float32)
    c = np.empty((24, 40), np.float32)
    mm(a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5)
    assert lookup(conv.target, conv.key)["mr"] >= 2


def test_polyop_tune_ops_command(tmp_path, monkeypatch, capsys):
    from polyop.cli import main
    from polyop.tune.database import lookup, matmul_key

    monkeypatch.setenv("POLYOP_TUNE_DB", str(tmp_path / "ops.json"))
    assert main(["tune", "ops", "--matmul", "16x24x8", "--trials", "2", "--strategy", "random",
                 "--timeout", "60", "--no-progress", "--log", str(tmp_path / "ops.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "matmul float32 16x24x8 t1:" in out and "GFLOP/s" in out and str(tmp_path) in out
    assert lookup(str(polyop.target.host()), matmul_key(16, 24, 8, "float32", 1)) is not None
    assert len(read_log(tmp_path / "ops.jsonl")) == 2
    assert main(["tune", "ops", "--matmul", "16x24"]) == 2
    assert "expected MxNxK" in capsys.readouterr().err


def test_operator_tuning_measures_the_heuristics_tiling_first(runner):
    """The first trial of an operator task is the target heuristic's tiling,
    whatever the strategy: a search never ends worse than the default."""
    from polyop.ops import MatmulTiling
    from polyop.tune.ops_tasks import matmul_task

    task = matmul_task(24, 40, 32)
    r = polyop.tune.tune(task, trials=2, strategy="random", seed=7, runner=runner,
                         progress=False)
    first = min(r.records, key=lambda x: x.trial)
    assert first.status == "ok"
    assert task.build(task.space().get(task.space().index_of(first.knobs))).tiling == \
        polyop.ops.matmul(24, 40, 32, threads=1,
                          tiling=MatmulTiling.default("float32", 32, 40, 1)).tiling
    assert len({json.dumps(x.knobs, sort_keys=True) for x in r.records}) == 2


def test_knob_features_single_out_each_value():
    """Knobs and split factors of more than two values get an indicator per
    value (by position for knobs, whose candidates may mix None and ints),
    besides their numeric feature; two-valued knobs only the number."""
    space = ConfigSpace()
    space.define_split("t", 16)
    space.define_knob("unroll", [None, 2, 4, 8])
    space.define_knob("order", ["ij", "ji", "kij"])
    space.define_knob("vec", [False, True])
    point = space.get(space.index_of({"t": [4], "unroll": 2, "order": "kij", "vec": True}))
    got = knob_features(point)
    assert got["t.0"] == 2.0 and got["unroll"] == 2.0 and got["order"] == 2.0 and got["vec"] == 1.0
    assert [got[f"t.0=={f}"] for f in (1, 2, 4, 8, 16)] == [0, 0, 1, 0, 0]
    assert [got[f"unroll=={k}"] for k in range(4)] == [0, 1, 0, 0]
    assert [got[f"order=={k}"] for k in range(3)] == [0, 0, 1]
    assert not any(name.startswith("vec==") for name in got)
