"""One measurement, as run in a measuring process: build the candidate,
check its output against the task's reference, then time it.

The reference is computed once per process and task (``Task.reference``).
A candidate whose output differs is ``"wrong"`` and its time does not count.
Timing: one warm-up call, then ``number`` calls per repeat, ``number``
chosen so that a repeat lasts at least ``min_seconds``; the figure is the
median over ``repeats`` of the time per call. Fresh inputs are made before
timing so the candidate's own writes do not feed back into its inputs'
values (the timed runs overwrite the same outputs).

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

import statistics
import time
import traceback

import numpy as np

from ..errors import PolyopError

__all__ = ["compare", "measure"]

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


def measure(task, knobs: dict, repeats: int = 5, min_seconds: float = 0.01) -> dict:
    """Build, check and time the point ``knobs`` of ``task`` (module docstring)."""
    try:
        config = task.space().get(task.space().index_of(knobs))
        t0 = time.perf_counter()
        fn = task.build(config)
        build_seconds = time.perf_counter() - t0
        if task.key not in _references:
            _references[task.key] = task.reference()
        args = task.inputs()
        fn(*args)
        wrong = compare(task.outputs(args), _references[task.key], task.rtol)
        if wrong is not None:
            return {"status": "wrong", "error": wrong, "seconds": None,
                    "build_seconds": build_seconds}
        args = task.inputs()
        fn(*args)  # warm-up
        number, elapsed = 1, 0.0
        while True:  # calls per repeat: a repeat of at least min_seconds
            t0 = time.perf_counter()
            for _ in range(number):
                fn(*args)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds or number >= 1 << 20:
                break
            number *= 2 if elapsed <= 0 else max(2, min(16, int(min_seconds / elapsed) + 1))
        times = [elapsed / number]
        for _ in range(max(0, repeats - 1)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn(*args)
            times.append((time.perf_counter() - t0) / number)
        out = {"status": "ok", "error": None, "seconds": statistics.median(times),
               "build_seconds": build_seconds, "number": number, "repeats": len(times)}
        if getattr(fn, "schedule", None) is not None:  # an operator: its schedule's trace
            from .task import trace_of

            out["trace"] = trace_of(fn.schedule)
        return out
    except PolyopError as e:
        return {"status": "error", "error": f"{type(e).__name__}: {e}", "seconds": None}
    except Exception as e:  # a candidate's failure is a result, not the tuner's crash
        last = traceback.extract_tb(e.__traceback__)[-1:]
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        return {"status": "error", "error": f"{type(e).__name__}: {e}{where}", "seconds": None}
