"""Tuning records: one JSON object per line of a log, per trial.

A record holds the task's key, the trial number, the knobs (the point), the
schedule's trace, the status (``"ok"``, ``"illegal"``: refused by the
legality checker and never measured, ``"wrong"``: output differs from the
reference, ``"error"``: compile or run error, ``"failed"``: the measuring
process crashed, hung or was lost), the seconds (``"ok"`` only), the error
text, the worker, the target, the machine (``machine()``), polyop's
version, the time and the measurement's phases (seconds compiling, checking
and timing; repeats run). A record of ``tune(..., confirm=K)``'s final
re-timing of the best points has ``confirm`` set to its round (1, 2, ...;
0 for a search trial) and the trial number of the point's search record.
The log is appended to as results arrive and flushed,
so an interrupted run loses at most the points being measured; rerun with
the same log, it measures only the points the log lacks.

Example::

    >>> r = Record("t", 0, {"f": [4]}, ["split(i, 4)"], "ok", 0.5, worker="w")
    >>> Record.from_json(r.to_json()).seconds
    0.5
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["Record", "apply_best", "best_record", "machine", "read_log"]


@lru_cache(maxsize=1)
def machine() -> dict:
    """This machine as a record names it: host, CPU model, LLVM's CPU name,
    CPUs usable (``polyop.hostinfo``), caches."""
    from ..hostinfo import available_cpus, host_caches
    from ..target import host

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh
                          if line.startswith("model name")), model)
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpu_model": model, "llvm_cpu": host().cpu,
            "cpus": available_cpus(), "caches": list(host_caches() or ())}


def polyop_version() -> str:
    """polyop's version, as installed (the package's ``__version__``, read
    without importing the package from here)."""
    import sys

    module = sys.modules.get("polyop")
    return getattr(module, "__version__", "") or "unknown"


@dataclass
class Record:
    """One trial (module docstring)."""

    task: str
    trial: int
    knobs: dict
    trace: list
    status: str
    seconds: float | None = None
    error: str | None = None
    worker: str | None = None
    target: str = "cpu"
    machine: dict = field(default_factory=dict)
    polyop: str = ""
    time: str = ""
    gflops: float | None = None
    #: the measurement's phases: build, check and time seconds, repeats run
    phases: dict = field(default_factory=dict)
    #: the round of the final re-timing (``tune(..., confirm=K)``); 0: a search trial
    confirm: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.seconds is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Record:
        data = json.loads(line)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_log(path: str | os.PathLike, task: str | None = None) -> list[Record]:
    """The records of the log at ``path`` (those of ``task`` only, when given);
    a missing log has none. A line cut short by an interruption is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    with path.open() as fh:
        lines = fh.read().splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:  # a line cut short when a run was interrupted
            continue
        try:
            rec = Record(**{k: data[k] for k in Record.__dataclass_fields__ if k in data})
        except TypeError:
            from .space import TuneError

            raise TuneError(f"{path}:{n + 1}: not a tuning record") from None
        if task is None or rec.task == task:
            out.append(rec)
    return out


def append(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Append ``records`` to the log at ``path``, flushed to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        if fh.tell() > 0:  # after a line cut short, start a new one
            fh.seek(fh.tell() - 1)
            if fh.read(1) != "\n":
                fh.write("\n")
        for r in records:
            fh.write(r.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def best_record(records: Iterable[Record], task: str | None = None) -> Record | None:
    """The best ``"ok"`` record (of ``task``, when given); None if none.

    Without confirmation rounds, the fastest record. Once some points were
    timed again (records with ``confirm`` set), the best is chosen among those
    points only, by the lower median of each point's times (its search figure
    and its rounds): one lucky figure no longer decides. A point whose
    re-timing failed (a crash, a wrong result) is out (when all are, the
    fastest of the other points is the best). The record returned is the
    one with that median time, so ``seconds`` is a measured figure.

    Example::

        >>> rs = [Record("t", 0, {"x": 1}, [], "ok", 1.0), Record("t", 1, {"x": 2}, [], "ok", 0.7)]
        >>> best_record(rs).knobs
        {'x': 2}
        >>> rs += [Record("t", 0, {"x": 1}, [], "ok", 0.9, confirm=1),
        ...        Record("t", 1, {"x": 2}, [], "ok", 1.1, confirm=1),
        ...        Record("t", 1, {"x": 2}, [], "ok", 1.2, confirm=2)]
        >>> best = best_record(rs); best.knobs, best.seconds
        ({'x': 1}, 0.9)
    """
    mine = [r for r in records if task is None or r.task == task]
    ok = [r for r in mine if r.ok]
    if not any(r.confirm for r in mine):
        return min(ok, key=lambda r: (r.seconds, r.trial)) if ok else None
    spoiled = {_point(r) for r in mine if r.confirm and not r.ok}
    kept = {_point(r) for r in mine if r.confirm} - spoiled
    times: dict[str, list[Record]] = {}
    for r in ok:
        if _point(r) in kept:
            times.setdefault(_point(r), []).append(r)
    if not times:  # every point re-timed failed: the fastest of the others
        rest = [r for r in ok if _point(r) not in spoiled]
        return min(rest, key=lambda r: (r.seconds, r.trial)) if rest else None
    middle = [sorted(rs, key=lambda r: (r.seconds, r.confirm))[(len(rs) - 1) // 2]
              for rs in times.values()]
    return min(middle, key=lambda r: (r.seconds, r.trial))


def _point(r: Record) -> str:
    return json.dumps(r.knobs, sort_keys=True)


def apply_best(log: str | os.PathLike, k, template=None, sizes: dict | None = None, *,
               replay: bool = False):
    """The ``polyop.Schedule`` of the best record in ``log`` for kernel ``k``
    (tuned with ``template``, default ``auto_schedule``'s space, at
    ``sizes``), rebuilt by running the template with the recorded knobs, or
    with ``replay=True`` by replaying the record's JSON trace
    (``polyop.Schedule.from_json``: the template is not needed then, only
    its key); a ``polyop.tune.Task`` may be given instead of a kernel."""
    from .space import TuneError
    from .task import KernelTask, Task, auto_template

    task = k if isinstance(k, Task) else KernelTask(template or auto_template, k, sizes)
    best = best_record(read_log(log), task.key)
    if best is None:
        raise TuneError(f"{log}: no successful record of task {task.key!r}")
    if replay:
        from ..schedule import Schedule

        return Schedule.from_json(json.dumps(best.trace), task.kernel)
    space = task.space()
    return task.schedule(space.get(space.index_of(best.knobs)))
