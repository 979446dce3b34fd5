"""``polyop tune FILE.py:FUNC`` and ``polyop tune --apply-best``, run as the
user runs them: separate processes on a tiny kernel, a few trials."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

KERNEL = '''
import polyop

@polyop.kernel
def scale(n: int, m: int, x: "f64[n, m]", y: "f64[n, m]"):
    for i in range(n):
        for j in range(m):
            y[i, j] = 2.0 * x[i, j] + 1.0
'''

TEMPLATE = '''
import polyop
from polyop.tune import apply_split

def template(cfg, k):
    sch = polyop.Schedule(k)
    i, j = sch.get_loops("S0")
    apply_split(sch, j, cfg.define_split("tj", j, candidates=[(4,), (8,)]))
    if cfg.define_knob("par_j", [False, True]):
        sch.parallel(sch.get_loops("S0")[-1])
    return sch
'''


def polyop_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyop", "tune", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "k.py").write_text(textwrap.dedent(KERNEL))
    (tmp_path / "tiles.py").write_text(textwrap.dedent(TEMPLATE))
    (tmp_path / "bad.py").write_text("def template(cfg, k):\n    return undefined_name\n")
    return tmp_path


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_tune_template_then_apply_best(files: Path):
    """A template's grid: each legal point measured and checked, the log
    written, the best schedule printed; --apply-best prints it again."""
    log = files / "t.jsonl"
    p = polyop_cli("k.py:scale", "--sizes", "n=8,m=16", "--schedule-template", "tiles.py",
                   "--trials", "4", "--strategy", "grid", "--log", str(log), cwd=files)
    assert p.returncode == 0, p.stderr
    recs = records(log)
    assert {r["task"] for r in recs} == {"k.py:scale:tiles.py:m=16,n=8"}
    measured = [r for r in recs if r["status"] != "illegal"]
    assert len(measured) == 4 and all(r["status"] == "ok" for r in measured)
    best = min(measured, key=lambda r: r["seconds"])
    assert f"best: {best['seconds'] * 1e3:.4g} ms" in p.stdout
    factor = best["knobs"]["tj"][0]
    assert f"split(j, {factor})" in p.stdout
    assert "schedule of scale:" in p.stdout
    assert "trial" in p.stderr  # the progress bar

    q = polyop_cli("--apply-best", str(log), "k.py:scale", cwd=files)
    assert q.returncode == 0, q.stderr
    assert p.stdout.split("schedule of scale:")[1].split("log:")[0].strip() == \
        q.stdout.split("schedule of scale:")[1].strip()


def test_tune_confirm_times_the_fastest_again(files: Path):
    log = files / "c.jsonl"
    p = polyop_cli("k.py:scale", "--sizes", "n=8,m=16", "--schedule-template", "tiles.py",
                   "--trials", "3", "--strategy", "grid", "--confirm", "2", "--log", str(log),
                   "--no-progress", cwd=files)
    assert p.returncode == 0, p.stderr
    recs = records(log)
    again = [r for r in recs if r["confirm"]]
    searched = sorted((r for r in recs if not r["confirm"] and r["status"] == "ok"),
                      key=lambda r: r["seconds"])
    assert [r["confirm"] for r in again] == [1, 1, 2, 2, 3, 3]
    assert {json.dumps(r["knobs"]) for r in again} == \
        {json.dumps(r["knobs"]) for r in searched[:2]}
    assert "the median of 4 timings" in p.stdout


def test_tune_auto_space_resumes_from_log(files: Path):
    """auto_schedule's space by default; a second run with the same log and
    trials measures nothing new (every point comes from the log)."""
    log = files / "a.jsonl"
    args = ["k.py:scale", "--sizes", "n=8,m=16", "--trials", "2", "--strategy", "random",
            "--seed", "3", "--log", str(log), "--no-progress"]
    p = polyop_cli(*args, cwd=files)
    assert p.returncode == 0, p.stderr
    first = records(log)
    assert first and all(r["task"] == "k.py:scale:auto_schedule:m=16,n=8" for r in first)
    assert sum(r["status"] == "ok" for r in first) == 2
    again = polyop_cli(*args, cwd=files)
    assert again.returncode == 0, again.stderr
    assert records(log) == first
    # the best schedule replays and computes what the kernel's Python body does
    check = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json, sys, numpy as np, polyop
        sys.path.insert(0, {str(files)!r})
        from k import scale
        recs = [json.loads(x) for x in open({str(log)!r})]
        best = min((r for r in recs if r["status"] == "ok"), key=lambda r: r["seconds"])
        f = polyop.build(polyop.Schedule.from_json(json.dumps(best["trace"]), scale))
        x = np.random.default_rng(1).random((8, 16)); y = np.zeros((8, 16)); want = y.copy()
        f(8, 16, x, y); scale.py_func(8, 16, x, want)
        print(np.array_equal(y, want))
        """)], capture_output=True, text=True, timeout=300)
    assert check.stdout.strip() == "True", check.stderr
    assert np.isfinite([r["seconds"] for r in first if r["status"] == "ok"]).all()


@pytest.mark.parametrize("args, message", [
    (["k.py:scale", "--sizes", "n=8,m=x"], "--sizes 'n=8,m=x': expected NAME=INT"),
    (["k.py:scale", "--sizes", "n=8"], "give the sizes ['m']"),
    (["k.py:nope", "--sizes", "n=8,m=8"], "has no function 'nope'"),
    (["k.py:scale", "--sizes", "n=8,m=8", "--schedule-template", "k.py"],
     "defines no function template(cfg, kernel)"),
    (["k.py:scale", "--sizes", "n=8,m=8", "--schedule-template", "bad.py"],
     "schedule template bad.py:2: NameError: name 'undefined_name' is not defined"),
    (["--apply-best", "missing.jsonl", "k.py:scale"], "no such log"),
    (["ops", "--sizes", "n=8"], "--sizes and --schedule-template are for a kernel"),
    (["k.py:scale", "--sizes", "n=8,m=8", "--confirm", "-2"], "--confirm -2: expected 0 or more"),
])
def test_usage_errors_exit_2(files: Path, args: list[str], message: str):
    p = polyop_cli(*args, cwd=files)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def test_apply_best_without_records(files: Path):
    log = files / "other.jsonl"
    log.write_text(json.dumps({"task": "x.py:f:auto_schedule:n=4", "trial": 0, "knobs": {},
                               "trace": [], "status": "ok", "seconds": 1.0}) + "\n")
    p = polyop_cli("--apply-best", str(log), "k.py:scale", cwd=files)
    assert p.returncode == 2
    assert "no successful record of k.py:scale" in p.stderr
