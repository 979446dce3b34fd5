"""``polyop.tune.tune``: the search loop.

Each round the strategy proposes a batch of points; each point is checked
in this process (the template is run and the schedule's legality checked:
an illegal point is recorded ``"illegal"`` and never measured, and does not
count as a trial); the legal ones go to the runner, which measures them in
other processes; each result is appended to the log as it arrives and the
strategy learns from the batch. A point already in the log (same task) is
taken from it instead of being measured again, so a run interrupted and
started again with the same arguments carries on where it stopped.

With ``confirm=K`` the search ends with a re-timing: the ``K`` fastest
points are timed again in ``confirm_rounds`` interleaved rounds (each round
builds every point afresh in a measuring process, then times them one after
the other), and the best is the point with the lowest median over its search
figure and its rounds (``polyop.tune.records.best_record``). On a machine
whose speed drifts, the search's fastest figure is often a lucky one: a
point a few per cent slower that happened to meet a fast moment beats a
better point, and the tuner would hand back the lucky one. The task's own
heuristic point (``initial=True``) is timed again with them, whatever its
search figure, so that a lucky point is not handed back although it runs
slower than the heuristic's choice (seen on Zen 4: two ResNet-50 layers'
tuned tilings, 7 % ahead of the default in the search, ran 4 % behind it
timed again). The re-timing costs ``K * confirm_rounds`` measurements more
than the trials (and a round's more for the heuristic's point when it is not
among the ``K``), and its records are logged (``confirm`` set to the round)
and resumed like the trials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import PolyopError
from .records import Record, append, best_record, machine, now, polyop_version, read_log
from .runners import LocalRunner, Runner
from .space import Template, TuneError
from .strategies import make_strategy
from .task import KernelTask, Task, auto_template

__all__ = ["TuneResult", "as_task", "tune"]


@dataclass
class TuneResult:
    """What ``tune`` found: ``records`` (one per trial, illegal points included,
    in trial order), ``confirmations`` (the re-timing of ``confirm=K``),
    ``best`` (the fastest record, or with a re-timing the best median:
    ``polyop.tune.records.best_record``), ``best_seconds``,
    ``best_knobs``, ``best_schedule`` (the ``polyop.Schedule`` of the best point,
    rebuilt from its knobs) and ``best_gflops`` (for tasks that count flops)."""

    task: Task
    records: list[Record] = field(default_factory=list)
    #: the final re-timing's records (``tune(..., confirm=K)``), round by round
    confirmations: list[Record] = field(default_factory=list)

    @property
    def best(self) -> Record | None:
        return best_record(self.records + self.confirmations)

    @property
    def best_seconds(self) -> float | None:
        return self.best.seconds if self.best else None

    @property
    def best_knobs(self) -> dict | None:
        return self.best.knobs if self.best else None

    @property
    def best_gflops(self) -> float | None:
        b = self.best
        return self.task.flops / b.seconds / 1e9 if b and self.task.flops else None

    @property
    def best_schedule(self):
        b = self.best
        if b is None:
            return None
        space = self.task.space()
        return self.task.schedule(space.get(space.index_of(b.knobs)))

    @property
    def failures(self) -> list[Record]:
        return [r for r in self.records if r.status in ("failed", "error", "wrong")]

    def __repr__(self) -> str:
        b = self.best
        best = f"best {b.seconds * 1e3:.4g} ms {b.knobs}" if b else "nothing measured"
        return f"<TuneResult {self.task.key}: {len(self.records)} records, {best}>"


def as_task(obj, kernel=None, sizes: dict | None = None, target: str = "cpu") -> Task:
    """A ``Task`` for ``obj``: a task itself, a ``@polyop.kernel`` (the space of
    ``auto_schedule``'s decisions, ``auto_template``), or a template (with ``kernel``)."""
    if isinstance(obj, Task):
        return obj
    if isinstance(obj, Template) or (callable(obj) and kernel is not None
                                     and not hasattr(obj, "program")):
        if kernel is None:
            raise TuneError("tune(template): give the kernel it schedules (kernel=)")
        return KernelTask(obj, kernel, sizes, target=target)
    if hasattr(obj, "program") and hasattr(obj, "py_func"):
        return KernelTask(auto_template, obj, sizes, target=target)
    raise TuneError(f"tune: expected a kernel, a template or a polyop.tune task, got "
                    f"{type(obj).__name__}")


def tune(k_or_template, *, kernel=None, sizes: dict | None = None, target: str = "cpu",
         trials: int = 32, seed: int = 0, log: str | os.PathLike | None = None,
         runner: Runner | None = None, strategy: str = "random", batch: int | None = None,
         timeout: float = 60.0, repeats: int = 5, min_seconds: float = 0.01,
         progress: bool = True, max_illegal: int | None = None,
         early_stop: float | None = 1.25, initial: bool = True, confirm: int = 0,
         confirm_rounds: int = 3) -> TuneResult:
    """Search the schedule space of ``k_or_template`` for the fastest point.

    ``k_or_template``: a ``@polyop.kernel`` (the space of ``auto_schedule``'s
    decisions, ``polyop.tune.task.auto_template``), a template (``@polyop.tune.template``,
    with ``kernel=``) or a task (``polyop.tune.matmul_task(...)``, a ``Task``);
    ``sizes``: the kernel's size parameters for measuring; ``trials``: legal
    points to measure (or reuse from ``log``); ``strategy``: ``"random"``,
    ``"grid"`` or ``"model"``; ``seed`` fixes the proposals; ``batch``: points
    per round (default: the runner's workers, at least 4); ``runner``: where
    to measure (default ``LocalRunner(1, timeout, repeats, min_seconds)``);
    ``log``: the JSON-lines record file, appended to and resumed from;
    ``early_stop``: a candidate's repeats stop once its fastest is slower than
    ``early_stop`` times the best time so far (``polyop.tune.measure``; None:
    every candidate runs all its repeats); ``initial``: measure the task's own
    heuristic point first (``Task.initial_points``; False: a search from scratch);
    ``confirm``: after the search, time the ``confirm`` fastest points (and
    the heuristic point, when measured) again in ``confirm_rounds``
    interleaved rounds and hand back the best median (module docstring; 0:
    the fastest figure of the search).

    Example::

        >>> import polyop
        >>> from polyop.tune.task import example_scale
        >>> r = polyop.tune.tune(polyop.tune.default_template, kernel=example_scale,
        ...                      sizes={"n": 16}, trials=3, seed=1,
        ...                      min_seconds=1e-4, repeats=3, progress=False)
        >>> len([x for x in r.records if x.status != "illegal"]), r.best_seconds > 0
        (3, True)
    """
    task = as_task(k_or_template, kernel, sizes, target)
    if not isinstance(trials, int) or trials < 1:
        raise TuneError(f"tune: trials must be an int >= 1, got {trials!r}")
    for name, value, low in (("confirm", confirm, 0), ("confirm_rounds", confirm_rounds, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise TuneError(f"tune: {name} must be an int >= {low}, got {value!r}")
    if early_stop is not None and not early_stop > 1:
        raise TuneError(f"tune: early_stop must be > 1 (a margin over the best time) or "
                        f"None, got {early_stop!r}")
    space = task.space()
    strat = make_strategy(strategy, space, seed, features=task.features)
    done: dict[int, Record] = {}
    rounds_done: dict[tuple[int, int], Record] = {}  # (point, round) of the re-timing
    if log is not None:
        for rec in read_log(log, task.key):
            try:
                index = space.index_of(rec.knobs)
                if rec.confirm:
                    rounds_done[index, rec.confirm] = rec
                else:
                    done[index] = rec
            except TuneError as e:
                raise TuneError(f"{log}: a record of task {task.key!r} does not fit its "
                                f"space ({e}): a log of another version of the template?") from e
    own = runner is None
    runner = runner or LocalRunner(1, timeout, repeats, min_seconds)
    batch = batch or max(4, runner.workers)
    max_illegal = max_illegal if max_illegal is not None else 100 * trials + 1000
    common = {"task": task.key, "target": task.target, "machine": machine(),
              "polyop": polyop_version()}
    result = TuneResult(task)
    legal = illegal = 0
    seen: set[int] = set()
    first_illegal: str | None = None
    start = _initial(task, space) if initial else []
    heuristic = tuple(start)
    bar = _progress(trials, progress, task.key)
    try:
        while legal < trials and illegal < max_illegal:
            want = min(batch, trials - legal)
            points = [p for p in start if p not in seen][:want]
            start = []  # only the first batch: one look at the heuristic's point
            if len(points) < want:
                points += strat.propose(want - len(points), seen | set(points))
            if not points:
                break
            seen.update(points)
            fresh: list[tuple[int, dict, list, int]] = []
            learned: list[tuple[int, float | None]] = []
            for index in points:
                trial = len(result.records) + len(fresh)
                if index in done:
                    rec = done[index]
                    result.records.append(rec)
                    if rec.status == "illegal":
                        illegal += 1
                    else:
                        legal += 1
                        learned.append((index, rec.seconds if rec.ok else None))
                        _advance(bar, result, task)
                    continue
                config = space.get(index)
                try:
                    trace = task.check(config)
                except PolyopError as e:
                    illegal += 1
                    first_illegal = first_illegal or f"{config.values}: {type(e).__name__}: {e}"
                    rec = Record(trial=trial, knobs=config.to_json(), trace=[],
                                 status="illegal", error=f"{type(e).__name__}: {e}",
                                 time=now(), **common)
                    result.records.append(rec)
                    if log is not None:
                        append(log, [rec])
                    continue
                fresh.append((index, config.to_json(), trace, trial))
                legal += 1
            best = result.best
            cutoff = best.seconds * early_stop if best is not None and early_stop else None
            for pos, res in runner.run(task, [knobs for _, knobs, _, _ in fresh], cutoff):
                index, knobs, trace, trial = fresh[pos]
                rec = _record(task, res, trial, knobs, trace, common)
                result.records.append(rec)
                learned.append((index, rec.seconds))
                if log is not None:
                    append(log, [rec])
                _advance(bar, result, task)
            strat.update(learned)
        if confirm and legal:
            _confirm(task, space, result, runner, confirm, confirm_rounds, rounds_done,
                     log, common, bar, also=heuristic)
    finally:
        if bar is not None:
            bar.close()
        if own:
            runner.close()
    result.records.sort(key=lambda r: r.trial)
    if legal == 0:
        raise TuneError(f"tune {task.key}: every point proposed is illegal ({illegal} of "
                        f"the space's {len(space)} points; the first: {first_illegal})")
    return result


def _record(task: Task, res: dict, trial: int, knobs: dict, trace: list, common: dict,
            confirm: int = 0) -> Record:
    """The record of one measurement (``res``: the runner's result)."""
    seconds = res.get("seconds") if res.get("status") == "ok" else None
    gflops = task.flops / seconds / 1e9 if seconds and task.flops else None
    return Record(trial=trial, knobs=knobs, trace=res.get("trace") or trace,
                  status=res["status"], seconds=seconds, error=res.get("error"),
                  worker=res.get("worker"), time=now(), gflops=gflops, phases=_phases(res),
                  confirm=confirm, **common)


def _confirm(task: Task, space, result: TuneResult, runner: Runner, top: int, rounds: int,
             done: dict[tuple[int, int], Record], log, common: dict, bar=None,
             also: tuple[int, ...] = ()) -> None:
    """Time the ``top`` fastest points of the search and the points ``also``
    (the heuristic's, where measured) again, ``rounds`` times, interleaved
    (module docstring); rounds already in the log are reused."""
    fastest: dict[int, Record] = {}
    measured: dict[int, Record] = {}
    for rec in sorted((r for r in result.records if r.ok), key=lambda r: (r.seconds, r.trial)):
        index = space.index_of(rec.knobs)
        if len(fastest) < top:
            fastest.setdefault(index, rec)
        measured.setdefault(index, rec)
    for index in also:
        if index in measured:
            fastest.setdefault(index, measured[index])
    for round_ in range(1, rounds + 1):
        fresh = []
        for index, rec in fastest.items():
            if (index, round_) in done:
                result.confirmations.append(done[index, round_])
            else:
                fresh.append(rec)
        # no early stop: every repeat counts in the median
        for pos, res in runner.run(task, [rec.knobs for rec in fresh], None):
            rec = fresh[pos]
            again = _record(task, res, rec.trial, rec.knobs, rec.trace, common, round_)
            result.confirmations.append(again)
            if log is not None:
                append(log, [again])
        _advance(bar, result, task, 0, re_timed=f"{round_}/{rounds}")
    result.confirmations.sort(key=lambda r: (r.confirm, r.trial))


def _phases(res: dict) -> dict:
    """The measurement's own account of its time (``polyop.tune.measure``)."""
    keys = ("build_seconds", "check_seconds", "time_seconds", "repeats", "stopped_early")
    return {k: (round(res[k], 4) if isinstance(res[k], float) else res[k])
            for k in keys if k in res}


def _initial(task: Task, space) -> list[int]:
    """The indices of the task's initial points (those of its space)."""
    out = []
    for values in task.initial_points():
        try:
            out.append(space.index_of(values))
        except TuneError:  # the heuristic chose a value the space does not hold
            continue
    return list(dict.fromkeys(out))


def _progress(total: int, enabled: bool, what: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"tune {what}"[:40], unit="trial")


def _advance(bar, result: TuneResult, task: Task, step: int = 1, **extra) -> None:
    if bar is None:
        return
    bar.update(step)
    best = result.best
    post = {"failed": len(result.failures), **extra}
    if best is not None:
        post["best"] = (f"{task.flops / best.seconds / 1e9:.1f} GFLOP/s" if task.flops
                        else f"{best.seconds * 1e3:.3g} ms")
    bar.set_postfix(post)
