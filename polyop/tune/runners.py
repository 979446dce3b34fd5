"""Where measurements run: ``LocalRunner`` (a pool of measuring processes on
this machine, the default) and ``DaskRunner`` (the workers of a
``dask.distributed`` cluster). Both take a task and a list of points and
yield ``(position, result)`` as results arrive; a result is the dict of
``polyop.tune.measure.measure`` plus ``worker`` (who measured it).

Isolation: every measurement runs in a measuring process, never in the
tuner's. ``LocalRunner`` keeps ``workers`` such processes (started with
``spawn``: no state of the tuner's process is inherited), started once and
kept warm across points and runs, and sends them one point at a time; by
default a timing runs alone (``LocalRunner``'s ``exclusive``: the processes
build and check their points together, then time them one by one). A
process that dies (a segfault, ``os.abort``) or overruns
``timeout`` seconds (then killed) makes its point ``"failed"``, with the
exit signal or the timeout named, and is replaced; the other points go on.
On Dask, each worker thread keeps such a measuring process of its own, so a
crashing candidate costs a measuring process, not the Dask worker. A Dask
worker lost mid-measurement (killed, its machine gone) has its point
rescheduled on another worker by Dask's scheduler; after Dask's
``allowed-failures`` the point is recorded ``"failed"``, and the run goes on.

Example::

    >>> from polyop.tune.task import KernelTask, default_template, example_scale
    >>> task = KernelTask(default_template, example_scale, {"n": 8})
    >>> with LocalRunner(workers=1, timeout=60) as runner:
    ...     [(pos, r["status"]) for pos, r in runner.run(task, [task.space().get(0).values])]
    [(0, 'ok')]
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from .space import TuneError

__all__ = ["DaskRunner", "LocalRunner", "Runner"]


class Runner:
    """The interface of a runner (module docstring)."""

    workers: int = 1
    timeout: float = 60.0
    #: measurement options passed to ``measure`` (repeats, min_seconds)
    options: dict

    def run(self, task, points: list[dict],
            cutoff: float | None = None) -> Iterator[tuple[int, dict]]:
        """Measure ``points`` of ``task``; ``cutoff``: seconds past which a
        candidate's repeats stop early (``polyop.tune.measure``)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _failed(why: str, worker: str) -> dict:
    return {"status": "failed", "error": why, "seconds": None, "worker": worker}


def _serve(conn) -> None:
    """A measuring process: answer each request with a result. Requests:
    ``("measure", task, knobs, options)`` (build, check and time),
    ``("build", task, knobs)`` (build and check, keep the candidate: a
    ``{"status": "built"}`` answer, or the final result) and
    ``("time", options)`` (time the candidate kept)."""
    from .measure import measure, prepare, time_prepared

    conn.send("ready")
    kept = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the tuner is gone
            return
        if msg is None:
            return
        if msg[0] == "measure":
            _, task, knobs, options = msg
            conn.send(measure(task, knobs, **options))
        elif msg[0] == "build":
            _, task, knobs = msg
            kept = prepare(task, knobs)
            if isinstance(kept, dict):
                conn.send(kept)
                kept = None
            else:
                conn.send({"status": "built", **kept.phases})
        else:
            built, kept = kept, None
            conn.send(time_prepared(built, **msg[1]))


class _Process:
    """One measuring process, the point it is measuring and its stage
    (``"measure"``, or ``"build"``, ``"built"``, ``"time"``)."""

    def __init__(self, ctx, name: str):
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True,
                                name=f"polyop-tune-{name}")
        self.proc.start()
        child.close()
        self.ready = False
        self.started = time.monotonic()
        self.job: int | None = None
        self.stage = ""
        self.built: dict | None = None
        self.deadline = 0.0

    def send(self, job: int, stage: str, msg: tuple, timeout: float) -> None:
        self.job, self.stage, self.deadline = job, stage, time.monotonic() + timeout
        self.conn.send(msg)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def death(self) -> str:
        self.proc.join(5)
        code = self.proc.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"


class LocalRunner(Runner):
    """``workers`` measuring processes on this machine, each measurement under
    ``timeout`` seconds (module docstring). ``repeats`` and ``min_seconds``
    are the timing options (``polyop.tune.measure``).

    ``exclusive`` (the default): a timing runs alone. The processes build and
    check their candidates at the same time, then time them one after the
    other while the rest wait, so the timings of one candidate never share
    the machine with the work on another (nor with a process starting). The
    build and the timing each have ``timeout`` seconds. With
    ``exclusive=False`` every process builds, checks and times its points on
    its own, at the same time as the others: more throughput on a machine
    with cores to spare, figures disturbed on one without."""

    def __init__(self, workers: int = 1, timeout: float = 60.0, repeats: int = 5,
                 min_seconds: float = 0.01, start_timeout: float = 120.0,
                 exclusive: bool = True):
        if not isinstance(workers, int) or workers < 1:
            raise TuneError(f"LocalRunner: workers must be an int >= 1, got {workers!r}")
        if not timeout > 0:
            raise TuneError(f"LocalRunner: timeout must be > 0 seconds, got {timeout!r}")
        self.workers, self.timeout, self.start_timeout = workers, float(timeout), start_timeout
        self.exclusive = exclusive
        self.options = {"repeats": repeats, "min_seconds": min_seconds}
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[_Process] = []
        self._host = socket.gethostname()

    def _name(self, k: int) -> str:
        return f"{self._host}/local-{k}"

    def _start(self) -> None:
        while len(self._procs) < self.workers:
            self._procs.append(_Process(self._ctx, self._name(len(self._procs))))

    def _replace(self, k: int) -> None:
        self._procs[k].kill()
        self._procs[k] = _Process(self._ctx, self._name(k))

    def run(self, task, points: list[dict],
            cutoff: float | None = None) -> Iterator[tuple[int, dict]]:
        for k, p in enumerate(self._procs):
            if p.job is not None:  # left busy by a run abandoned half-way
                self._replace(k)
        self._start()
        options = {**self.options, "cutoff": cutoff}
        todo = list(range(len(points)))[::-1]
        while todo or any(p.job is not None for p in self._procs):
            procs = self._procs
            if not self.exclusive:
                for p in procs:
                    if p.ready and p.job is None and todo:
                        job = todo.pop()
                        p.send(job, "measure", ("measure", task, points[job], options),
                               self.timeout)
            elif not any(p.stage in ("build", "time") for p in procs):
                built = [p for p in procs if p.stage == "built"]
                if built and all(p.ready for p in procs):
                    # time one candidate, alone: nothing else is running now
                    built[0].send(built[0].job, "time", ("time", options), self.timeout)
                elif not built and all(p.ready for p in procs):
                    for p in procs:
                        if p.ready and p.job is None and todo:
                            job = todo.pop()
                            p.send(job, "build", ("build", task, points[job]), self.timeout)
            yield from self._poll()

    def _poll(self) -> Iterator[tuple[int, dict]]:
        """Wait for the next event (a process ready, a result, a death, a
        deadline) and handle it; yield the points finished."""
        now = time.monotonic()
        waits = [p.deadline - now for p in self._procs
                 if p.job is not None and p.stage != "built"]
        waits += [p.started + self.start_timeout - now for p in self._procs if not p.ready]
        handles = {}
        for p in self._procs:
            handles[p.conn] = p
            handles[p.proc.sentinel] = p
        fired = multiprocessing.connection.wait(list(handles),
                                                max(0.0, min(waits)) if waits else None)
        for k, p in enumerate(self._procs):
            if p.conn in fired:
                try:
                    msg = p.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg == "ready":
                    p.ready = True
                    continue
                if isinstance(msg, dict) and p.job is not None:
                    if msg.get("status") == "built":
                        p.stage, p.built = "built", msg
                        continue
                    job, p.job, p.stage, p.built = p.job, None, "", None
                    yield job, {**msg, "worker": p.name}
                    continue
            if p.proc.sentinel in fired or not p.proc.is_alive():
                why = p.death()
                if p.job is None and not p.ready:
                    self.close()
                    raise TuneError(f"LocalRunner: a measuring process could not start ({why})")
                job = p.job
                self._replace(k)
                if job is not None:
                    yield job, _failed(f"the measuring process died: {why}", p.name)
            elif p.job is not None and p.stage != "built" and time.monotonic() > p.deadline:
                job = p.job
                self._replace(k)
                yield job, _failed(f"timeout: no result within {self.timeout:g} s "
                                   "(process killed)", p.name)
            elif not p.ready and time.monotonic() > p.started + self.start_timeout:
                self.close()
                raise TuneError(f"LocalRunner: a measuring process did not start within "
                                f"{self.start_timeout:g} s")

    def close(self) -> None:
        for p in self._procs:
            try:
                p.conn.send(None)
            except (OSError, ValueError):
                pass
            p.proc.join(1)
            p.kill()
        self._procs = []

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the daemon processes go with it
            pass

    def __repr__(self) -> str:
        return f"LocalRunner(workers={self.workers}, timeout={self.timeout:g})"


# -- Dask ----------------------------------------------------------------------------------

_worker_runners: dict[int, LocalRunner] = {}
_worker_lock = threading.Lock()


def _dask_measure(task, knobs: dict, options: dict, timeout: float,
                  cutoff: float | None = None) -> dict:
    """Run on a Dask worker: measure in this worker thread's measuring process."""
    from distributed import get_worker

    if multiprocessing.current_process().daemon:
        raise TuneError("DaskRunner: this Dask worker runs as a daemon process and cannot "
                        "start measuring processes: start workers with --no-nanny, or set "
                        "DASK_DISTRIBUTED__WORKER__DAEMON=False")
    worker = get_worker()
    name = f"{worker.name}" if worker.name is not None else worker.address
    with _worker_lock:
        runner = _worker_runners.get(threading.get_ident())
        if runner is None:
            runner = LocalRunner(1, timeout, **options)
            _worker_runners[threading.get_ident()] = runner
    runner.timeout, runner.options = timeout, dict(options)
    (_, result), = list(runner.run(task, [knobs], cutoff))
    return {**result, "worker": f"{name} ({result['worker'].split('/')[-1]}, pid "
            f"{os.getpid()})"}


class DaskRunner(Runner):
    """Measurements on a Dask cluster: ``address_or_client`` is a scheduler's
    address (``"tcp://host:8786"``) or a ``distributed.Client`` (module docstring).
    ``wait`` bounds the time spent waiting for a batch (default: generous
    multiples of ``timeout``)."""

    def __init__(self, address_or_client, timeout: float = 60.0, repeats: int = 5,
                 min_seconds: float = 0.01, wait: float | None = None,
                 connect_timeout: float = 30.0):
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - the tune extra installs it
            raise TuneError("DaskRunner needs dask.distributed: pip install "
                            "'polyop[tune]'") from e
        if isinstance(address_or_client, str):
            try:
                self.client = Client(address_or_client, timeout=connect_timeout)
            except (OSError, TimeoutError) as e:
                raise TuneError(f"DaskRunner: no Dask scheduler at {address_or_client!r} "
                                f"({e})") from e
            self._own = True
        else:
            self.client, self._own = address_or_client, False
        self.timeout, self.wait = float(timeout), wait
        self.options = {"repeats": repeats, "min_seconds": min_seconds}

    @property
    def workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, task, points: list[dict],
            cutoff: float | None = None) -> Iterator[tuple[int, dict]]:
        from distributed import as_completed

        futures = {}
        for pos, knobs in enumerate(points):
            fut = self.client.submit(_dask_measure, task, knobs, self.options, self.timeout,
                                     cutoff, pure=False, key=f"polyop-tune-{uuid.uuid4().hex}")
            futures[fut] = pos
        wait = self.wait or self.timeout * (len(points) + 2) + 60
        done = set()
        try:
            for fut in as_completed(list(futures), timeout=wait):
                done.add(fut)
                try:
                    result = fut.result()
                except Exception as e:  # KilledWorker, a lost connection: the point failed
                    result = _failed(f"Dask: {type(e).__name__}: {e}", "dask")
                yield futures[fut], result
        except TimeoutError:
            for fut, pos in futures.items():
                if fut not in done:
                    fut.cancel()
                    yield pos, _failed(f"Dask: no result within {wait:g} s", "dask")

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskRunner({self.client.scheduler.address!r}, timeout={self.timeout:g})"
