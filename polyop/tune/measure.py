"""One measurement, as run in a measuring process: build the candidate,
check its output against the task's reference, then time it.

The reference is computed once per process and task (``Task.reference``).
A candidate whose output differs is ``"wrong"`` and its time does not count.
Timing: one warm-up call, timed, which sets ``number``, the calls per
repeat, so that a repeat lasts at least ``min_seconds`` (scaled up while a
first repeat falls short); the figure is the median over ``repeats`` of the time
per call. Fresh inputs are made before timing so the candidate's own writes
do not feed back into its inputs' values (the timed runs overwrite the same
outputs).

Early stop: with a ``cutoff`` (seconds; the tuner passes a margin above the
best time measured so far), repeats stop as soon as the *fastest* repeat so
far is slower than ``cutoff``: such a candidate cannot be the best, and its
remaining repeats would only refine the time of a loser. Its figure is the
median of the repeats it ran, and ``repeats`` in the result says how many.

The result carries the time of each phase: ``build_seconds`` (compiling the
candidate), ``check_seconds`` (inputs, the checked run, the comparison; the
first time in a process also the reference) and ``time_seconds`` (warm-up
and repeats); ``build_window`` and ``timing_window`` say when (``time.monotonic``
at the start and the end, comparable between the processes of one machine).

A task compiled for several threads (``task.threads``, as the operator
tasks of ``polyop.tune.ops_tasks`` have) runs on that many: its parallel
loops take the runtime's thread count at call time, which the measuring
process may have set otherwise (``POLYOP_NUM_THREADS``).

``measure`` never raises for a candidate's fault: it returns a dict with
``status`` ``"ok"``, ``"wrong"`` or ``"error"`` (a compile or run error).
A crash or a hang is the runner's to catch (``polyop.tune.runners``).

Example::

    >>> from polyop.tune.task import KernelTask, default_template, example_scale
    >>> task = KernelTask(default_template, example_scale, {"n": 8})
    >>> r = measure(task, task.space().get(0).values, repeats=3, min_seconds=1e-4)
    >>> r["status"], r["seconds"] > 0
    ('ok', True)
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..errors import PolyopError

__all__ = ["Prepared", "compare", "measure", "prepare", "time_prepared"]

_references: dict[str, list[np.ndarray]] = {}


def compare(got: list[np.ndarray], want: list[np.ndarray], rtol: float) -> str | None:
    """None when every array matches (within ``rtol`` of the largest magnitude),
    else a line naming the first mismatch."""
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return f"output {k}: shape {g.shape}, expected {w.shape}"
        scale = float(np.max(np.abs(w))) if w.size else 0.0
        err = np.abs(g.astype(np.float64) - w.astype(np.float64))
        if w.size and not (np.all(np.isfinite(g) == np.isfinite(w))
                           and float(np.nanmax(err)) <= rtol * max(scale, 1e-30)):
            at = np.unravel_index(int(np.nanargmax(err)), err.shape)
            return (f"output {k}: element {tuple(int(x) for x in at)} is {g[at]!r}, "
                    f"expected {w[at]!r}")
    return None


def measure(task, knobs: dict, repeats: int = 5, min_seconds: float = 0.01,
            cutoff: float | None = None) -> dict:
    """Build, check and time the point ``knobs`` of ``task`` (module docstring)."""
    built = prepare(task, knobs)
    if isinstance(built, dict):
        return built
    return time_prepared(built, repeats, min_seconds, cutoff)


class Prepared:
    """A candidate built and checked (``prepare``), ready to be timed."""

    def __init__(self, task, fn, phases: dict):
        self.task, self.fn, self.phases = task, fn, phases


def prepare(task, knobs: dict) -> Prepared | dict:
    """Build the point ``knobs`` of ``task`` and check its output: a
    ``Prepared`` to time, or the final result (``"wrong"``, ``"error"``)."""
    try:
        config = task.space().get(task.space().index_of(knobs))
        start = time.monotonic()
        t0 = time.perf_counter()
        fn = task.build(config)
        t1 = time.perf_counter()
        phases = {"build_seconds": t1 - t0}
        if task.key not in _references:
            _references[task.key] = task.reference()
        args = task.inputs()
        with _task_threads(task):
            fn(*args)
        wrong = compare(task.outputs(args), _references[task.key], task.rtol)
        phases["check_seconds"] = time.perf_counter() - t1
        phases["build_window"] = (start, time.monotonic())
        if wrong is not None:
            return {"status": "wrong", "error": wrong, "seconds": None, **phases}
        return Prepared(task, fn, phases)
    except Exception as e:
        return _error(e)


def time_prepared(built: Prepared, repeats: int = 5, min_seconds: float = 0.01,
                  cutoff: float | None = None) -> dict:
    """Time a prepared candidate (module docstring): the result of ``measure``."""
    task, fn, phases = built.task, built.fn, dict(built.phases)
    try:
        with _task_threads(task):
            return _timed(task, fn, phases, repeats, min_seconds, cutoff)
    except Exception as e:
        return _error(e)


@contextmanager
def _task_threads(task) -> Iterator[None]:
    """The runtime's thread count set to the task's own while in the block,
    for a task compiled for several threads."""
    threads = getattr(task, "threads", 1)
    if not isinstance(threads, int) or threads <= 1:
        yield
        return
    from ..codegen.parallel import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(threads)
    try:
        yield
    finally:
        set_num_threads(before)


def _timed(task, fn, phases: dict, repeats: int, min_seconds: float,
           cutoff: float | None) -> dict:
    """``time_prepared``'s timing, inside its error handling."""
    start = time.monotonic()
    t2 = time.perf_counter()
    args = task.inputs()
    t0 = time.perf_counter()
    fn(*args)  # warm-up, which also gives a first estimate of one call
    once = time.perf_counter() - t0
    # a margin: a steady call is often a little faster than the warm-up's
    number = max(1, min(1 << 20, math.ceil(1.1 * min_seconds / once))) if once > 0 else 1
    times: list[float] = []
    stopped = False
    while len(times) < max(1, repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        elapsed = time.perf_counter() - t0
        if elapsed < min_seconds and number < 1 << 20 and not times:
            # the warm-up was slow (a cold cache): a longer repeat, scaled to fit
            grow = 1.1 * min_seconds / elapsed if elapsed > 0 else 2.0
            number = min(1 << 20, max(number + 1, math.ceil(number * min(grow, 16.0))))
            continue
        times.append(elapsed / number)
        if cutoff is not None and min(times) > cutoff and len(times) < repeats:
            stopped = True
            break
    phases["time_seconds"] = time.perf_counter() - t2
    phases["timing_window"] = (start, time.monotonic())
    out = {"status": "ok", "error": None, "seconds": statistics.median(times),
           **phases, "number": number, "repeats": len(times)}
    if stopped:
        out["stopped_early"] = True
    if getattr(fn, "schedule", None) is not None:  # an operator: its schedule's trace
        from .task import trace_of

        out["trace"] = trace_of(fn.schedule)
    return out


def _error(e: Exception) -> dict:
    """A candidate's failure as a result, not the tuner's crash."""
    if isinstance(e, PolyopError):
        return {"status": "error", "error": f"{type(e).__name__}: {e}", "seconds": None}
    last = traceback.extract_tb(e.__traceback__)[-1:]
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return {"status": "error", "error": f"{type(e).__name__}: {e}{where}", "seconds": None}
