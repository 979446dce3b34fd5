"""polyop.tune on a real Dask cluster: a scheduler and two workers started as
processes on 127.0.0.1, one of them killed while the tuning run is going on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import polyop
from polyop.tune import DaskRunner, KernelTask, Record, read_log, template, tune

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent


@polyop.kernel
def scale2(n: int, x: "f64[n, n]", y: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            y[i, j] = 3.0 * x[i, j] + 1.0


@template
def split_j(cfg, k):
    sch = polyop.Schedule(k)
    i, j = sch.get_loops("S0")
    sch.split(j, cfg.define_knob("f", [1, 2, 3, 4, 5, 6, 7, 8]))
    return sch


class SlowTask(KernelTask):
    """``scale2`` whose builds take a while, so that a worker dies mid-run."""

    def __init__(self):
        super().__init__(split_j, scale2, {"n": 16})

    def build(self, config):
        time.sleep(0.4)
        return super().build(config)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                   "--dashboard-address", f"127.0.0.1:{_free_port()}", log=tmp_path / "s.log")]
    workers = {}
    try:
        for name in ("w0", "w1"):
            workers[name] = _dask("worker", address, "--name", name, "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                  log=tmp_path / f"{name}.log")
        procs += list(workers.values())
        client = distributed.Client(address, timeout=60)
        try:
            client.wait_for_workers(2, timeout=90)
            yield address, client, workers
        finally:
            client.close(timeout=10)
    finally:
        for p in procs:  # each in a session of its own: its measuring processes too
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)


def test_tuning_on_dask_survives_a_killed_worker(cluster, tmp_path):
    address, client, workers = cluster
    log = tmp_path / "dask.jsonl"
    killed = threading.Event()
    held: list = []  # the points w1 held when it was killed

    def kill_after_first_result():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.exists() and read_log(log):
                info = client.scheduler_info()["workers"]
                w1 = next(a for a, w in info.items() if w.get("name") == "w1")
                held.extend(client.processing([w1]).get(w1, ()))
                workers["w1"].kill()
                killed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_after_first_result, daemon=True)
    watcher.start()
    runner = DaskRunner(client, timeout=30, repeats=2, min_seconds=1e-4, wait=180)
    result = tune(SlowTask(), trials=8, strategy="grid", batch=8, runner=runner, log=log,
                  progress=False)
    watcher.join(5)
    assert killed.is_set() and workers["w1"].wait(10) is not None and held
    records = read_log(log)
    assert len(records) == 8 == len(result.records)
    assert sorted(r.knobs["f"] for r in records) == list(range(1, 9))
    # every point measured (rescheduled on w0 when w1 died) or recorded failed
    assert all(r.status in ("ok", "failed") for r in records)
    ok = [r for r in records if r.ok]
    assert ok and all(r.worker.split()[0] in ("w0", "w1") for r in ok)
    assert any(r.worker.startswith("w0") for r in ok)
    for r in records:
        if r.status == "failed":
            assert "Dask" in r.error
    # the same record form as any runner's
    with open(log) as fh:
        import json

        assert set(json.loads(fh.readline())) == {f.name for f in fields(Record)}
    best = result.best_schedule
    args = [16, np.random.default_rng(1).random((16, 16)), np.zeros((16, 16))]
    want = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    polyop.build(best)(*args)
    scale2.py_func(*want)
    np.testing.assert_array_equal(args[2], want[2])
