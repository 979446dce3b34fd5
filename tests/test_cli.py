"""The ``polyop`` command line, run as a user runs it: ``python -m polyop ...``
in a subprocess, on kernel files and schedule scripts written to a temporary
folder. What the commands print is compared with what polyop's API says about
the same kernel in this process (model, dependences, loop nest, the
``IllegalScheduleError`` of the same primitive), not with copied text.

Each subprocess costs about a second of start-up (importing polyop), so the
commands of a test start together (``run_all``) and each test batches its
assertions.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import islpy as isl
import pytest

import polyop
from polyop.schedule import trace_from_json

KERNELS = '''\
import polyop

@polyop.kernel
def mm(n: int, A: "f64[n, n]", B: "f64[n, n]", C: "f64[n, n]"):
    for i in range(n):
        for j in range(n):
            for k in range(n):
                C[i, j] += A[i, k] * B[k, j]

def axpy(n: int, a: "f32", x: "f32[n]", y: "f32[n]"):
    for i in range(n):
        y[i] += a * x[i]

def rec(n: int, A: "f64[n]"):
    for i in range(1, n):
        A[i] = A[i - 1] + 1.0

def bad(n: int, x: "f64[n]"):
    i = 0
    while i < n:
        x[i] = 1.0
        i += 1

def oob(n: int, x: "f64[n]"):
    for i in range(n):
        x[i + 1] = 0.0

NOT_A_FUNCTION = 3
'''

SCRIPTS = {
    # legal: k moved out of j, the independent i loop parallel
    "legal.py": '''\
def schedule(sch):
    i, j, k = sch.get_loops("S0")
    sch.reorder(k, j)
    sch.parallel(i)
''',
    # line 4 is illegal: k carries the reduction into C
    "illegal.py": '''\
def schedule(sch):
    i, j, k = sch.get_loops("S0")
    sch.parallel(i)
    sch.parallel(k)
''',
    # each reversal breaks the recurrence; both together restore the order
    "reverse_twice.py": '''\
def schedule(sch):
    (i,) = sch.get_loops("S0")
    sch.reverse(i)
    sch.reverse(i)
''',
    "no_schedule.py": "def transform(sch):\n    pass\n",
    "unknown_stmt.py": "def schedule(sch):\n    sch.get_loops('S7')\n",
    "raises.py": "def schedule(sch):\n    return undefined_name\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    (d / "kernels.py").write_text(KERNELS)
    for name, text in SCRIPTS.items():
        (d / name).write_text(text)
    return d


@pytest.fixture(scope="module")
def kernels(files):
    """The kernel file imported here, for the API's view of the same kernels."""
    spec = importlib.util.spec_from_file_location("cli_test_kernels", files / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# runs several command lines in one interpreter, through the same main() as
# `python -m polyop`, to pay polyop's import once (argparse's exits included)
_DRIVER = """\
import contextlib, io, json, sys
from polyop.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    out.append([rc, o.getvalue(), e.getvalue()])
print(json.dumps(out))
"""

Result = subprocess.CompletedProcess


def run_all(*commands: list[str], cwd: Path, batched: tuple = ()) -> list[Result]:
    """Run ``python -m polyop COMMAND...`` for every command, all at once, and
    the ``batched`` command lines one after the other in one more subprocess
    (``_DRIVER``); the results in the order given, ``commands`` first."""
    def start(argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, *argv], cwd=cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [start(["-m", "polyop", *c]) for c in commands]
    driver = start(["-c", _DRIVER, json.dumps(batched)]) if batched else None
    out = []
    for c, p in zip(commands, procs):
        stdout, stderr = p.communicate(timeout=300)
        out.append(Result(c, p.returncode, stdout, stderr))
    if driver is not None:
        stdout, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 0, stderr
        out += [Result(c, rc, o, e)
                for c, (rc, o, e) in zip(batched, json.loads(stdout.splitlines()[-1]))]
    return out


def section(text: str, title: str) -> str:
    """The body of ``== title... ==`` in ``polyop show``'s output."""
    start = text.index(f"== {title}")
    body = text[text.index("\n", start) + 1:]
    return body[:body.index("\n== ")] if "\n== " in body else body


def test_show_prints_model_deps_schedule_and_code(files, kernels):
    sch_legal = polyop.Schedule(kernels.mm)
    i, j, k = sch_legal.get_loops("S0")
    sch_legal.reorder(k, j)
    sch_legal.parallel(i)
    arm = "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2"
    plain, scheduled, illegal, cross, gpu, gpu_asm = run_all(
        ["show", "kernels.py:mm"],
        ["show", "kernels.py:mm", "--schedule", "legal.py", "--only", "code"],
        ["show", "kernels.py:mm", "--schedule", "illegal.py"],
        ["show", "kernels.py:axpy", "--only", "code", "--target", arm, "--asm"],
        cwd=files, batched=(
            ["show", "kernels.py:axpy", "--only", "code", "--target", "opencl"],
            ["show", "kernels.py:axpy", "--target", "opencl", "--asm"]))
    assert plain.returncode == 0, plain.stderr
    assert section(plain.stdout, "model").strip() == str(kernels.mm.program).strip()
    # the same relations (isl may print an equal set in other words)
    shown = dict(line.split(": ", 1) for line in section(plain.stdout, "dependences").split("\n")
                 if line.strip())
    deps = {f"{kind} on {array}": dep
            for kind, array, dep in polyop.dependences(kernels.mm).items()}
    assert shown.keys() == deps.keys() == {"RAW on C", "WAR on C", "WAW on C"}
    assert all(isl.UnionMap(shown[d]).is_equal(deps[d]) for d in deps)
    assert section(plain.stdout, "loop nest").strip() == str(polyop.lower(kernels.mm)).strip()

    assert scheduled.returncode == 0, scheduled.stderr
    assert "== model" not in scheduled.stdout and "== dependences" not in scheduled.stdout
    assert section(scheduled.stdout, "schedule").split() == ["reorder(k,", "j)", "parallel(i)"]
    code = section(scheduled.stdout, "loop nest").strip()
    assert code == str(polyop.lower(sch_legal)).strip()
    assert code.index("// parallel") < code.index("for (i") < code.index("for (k") \
        < code.index("for (j")

    assert illegal.returncode == 1
    assert illegal.stdout.startswith("illegal schedule: parallel(k): loop k carries a RAW")

    # a plain function is wrapped; the target's code is cross-compiled AArch64
    assert cross.returncode == 0, cross.stderr
    assert "cross-compiled for cpu -mtriple=aarch64" in cross.stdout
    asm = section(cross.stdout, "assembly")
    assert ("fmla" in asm or "fmul" in asm) and "ret" in asm and "xmm" not in asm
    assert "y[i] = y[i] + a * x[i]" in section(cross.stdout, "loop nest")

    # a GPU target's code is its kernel source, which has no assembly here
    assert gpu.returncode == 0, gpu.stderr
    assert "__kernel void axpy" in section(gpu.stdout, "opencl source")
    assert gpu_asm.returncode == 2 and "--asm and --llvm-ir are for CPU targets" in gpu_asm.stderr


def test_check_legal_illegal_and_json(files, kernels):
    sch_legal = polyop.Schedule(kernels.mm)
    i, j, k = sch_legal.get_loops("S0")
    sch_legal.reorder(k, j)
    sch_legal.parallel(i)
    sch = polyop.Schedule(kernels.mm)
    i, j, k = sch.get_loops("S0")
    sch.parallel(i)
    with pytest.raises(polyop.IllegalScheduleError) as refused:
        sch.parallel(k)
    expected = refused.value
    legal, illegal, illegal_json, legal_json, first, final = run_all(
        ["check", "kernels.py:mm", "--schedule", "legal.py"],
        ["check", "kernels.py:mm", "--schedule", "illegal.py"],
        ["check", "kernels.py:mm", "--schedule", "illegal.py", "--json"],
        cwd=files, batched=(
            ["check", "kernels.py:mm", "--schedule", "legal.py", "--json"],
            ["check", "kernels.py:rec", "--schedule", "reverse_twice.py", "--json"],
            ["check", "kernels.py:rec", "--schedule", "reverse_twice.py", "--final", "--json"]))
    assert legal.returncode == 0 and legal.stdout.startswith("legal"), legal.stderr
    assert "reorder(k, j), parallel(i)" in legal.stdout

    # the broken dependence and its instance pair, as the API reports them
    assert illegal.returncode == 1, illegal.stderr
    assert illegal.stdout.startswith("illegal: illegal.py:4: sch.parallel(k)")
    assert str(expected) in illegal.stdout
    for v in expected.violations:
        assert f"{v.kind} on {v.array} ({v.element}): {v.source} -> {v.sink}" in illegal.stdout

    report = json.loads(legal_json.stdout)
    assert legal_json.returncode == 0
    assert report["status"] == "legal" and report["exit_status"] == 0
    assert report["primitives"] == ["reorder(k, j)", "parallel(i)"]
    assert report["violations"] == [] and report["error"] is None
    replayed = polyop.Schedule.replay(trace_from_json(json.dumps(report["trace"])), kernels.mm)
    assert str(polyop.lower(replayed)) == str(polyop.lower(sch_legal))

    report = json.loads(illegal_json.stdout)
    assert illegal_json.returncode == 1
    assert report["status"] == "illegal" and report["mode"] == "first"
    assert report["kernel"] == "kernels.py:mm" and report["schedule_script"] == "illegal.py"
    assert report["primitives"] == ["parallel(i)"]
    assert [ins["primitive"] for ins in report["trace"]["instructions"]] == ["parallel"]
    assert report["failed_primitive"] == "parallel(k)"
    assert report["failed_at"] == "illegal.py:4: sch.parallel(k)"
    assert report["message"] == str(expected)
    assert [(v["kind"], v["array"], v["source"], v["sink"], v["element"], v["loop"])
            for v in report["violations"]] == \
        [(v.kind, v.array, v.source, v.sink, v.element, v.loop) for v in expected.violations]

    # stopping at the first illegal primitive, or judging only the final order
    a, b = json.loads(first.stdout), json.loads(final.stdout)
    assert first.returncode == 1 and a["status"] == "illegal"
    assert a["failed_primitive"] == "reverse(i)" and a["failed_at"].startswith("reverse_twice.py:3")
    assert [v["kind"] for v in a["violations"]] == ["RAW"]
    assert final.returncode == 0 and b["status"] == "legal" and b["mode"] == "final"
    assert b["primitives"] == ["reverse(i)", "reverse(i)"]


def test_usage_errors_exit_2_without_traceback(files):
    while_line = KERNELS.splitlines().index("    while i < n:") + 1
    cases = {
        "missing file": (["show", "nowhere.py:mm"], "kernel file nowhere.py: no such file"),
        "missing function": (["show", "kernels.py:gemm"],
                             "kernels.py has no function 'gemm' (functions and kernels there: "
                             "axpy, bad, mm, oob, rec)"),
        "not a function": (["show", "kernels.py:NOT_A_FUNCTION"], "is a int, not a function"),
        "bad spec": (["check", "kernels.py", "--schedule", "legal.py"], "expected FILE.py:FUNC"),
        "no schedule()": (["check", "kernels.py:mm", "--schedule", "no_schedule.py"],
                          "defines no function schedule(sch)"),
        "missing script": (["check", "kernels.py:mm", "--schedule", "nope.py"],
                           "schedule script nope.py: no such file"),
        "frontend error": (["check", "kernels.py:bad", "--schedule", "legal.py"],
                           f"kernels.py:{while_line}:5: while loop is not supported"),
        "out of bounds": (["check", "kernels.py:oob", "--schedule", "legal.py"],
                          "kernel kernels.py:oob rejected: BoundsError: "),
        "schedule error": (["check", "kernels.py:mm", "--schedule", "unknown_stmt.py"],
                           "unknown_stmt.py:2: ScheduleError: unknown statement 'S7'"),
        "script raises": (["show", "kernels.py:mm", "--schedule", "raises.py"],
                          "raises.py:2: NameError: name 'undefined_name' is not defined"),
        "bad target": (["show", "kernels.py:mm", "--target", "cpu -mcpu=nosuchcpu"],
                       "TargetError"),
        "no --schedule": (["check", "kernels.py:mm"], "the following arguments are required"),
    }
    # three in their own process (the exit status as a shell sees it), the rest batched
    real = ("missing file", "frontend error", "no --schedule")
    json_case = ["check", "kernels.py:bad", "--schedule", "legal.py", "--json"]
    as_json, *results = run_all(json_case, *(cases[n][0] for n in real), cwd=files,
                                batched=tuple(c for n, (c, _) in cases.items() if n not in real))
    cases = {n: cases[n] for n in real} | {n: c for n, c in cases.items() if n not in real}
    for (name, (_, message)), r in zip(cases.items(), results):
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert message in r.stderr, (name, r.stderr)
        assert "Traceback" not in r.stderr, (name, r.stderr)
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and report["status"] == "error" and report["exit_status"] == 2
    error = report["error"]
    assert (error["type"], error["line"], error["col"]) == ("FrontendError", while_line, 5)
    assert error["file"].endswith("kernels.py") and "while loop" in error["reason"]


def test_help_and_version(files):
    from polyop.cli import COMMANDS

    top, version, nothing, *helps = run_all(
        ["--help"], ["--version"], cwd=files,
        batched=([], *([c, "--help"] for c in COMMANDS)))
    assert top.returncode == 0 and all(c in top.stdout for c in COMMANDS)
    assert version.returncode == 0 and version.stdout.strip() == f"polyop {polyop.__version__}"
    assert nothing.returncode == 2 and "required: COMMAND" in nothing.stderr
    for command, h in zip(COMMANDS, helps):
        assert h.returncode == 0, (command, h.stderr)
        assert h.stdout.startswith(f"usage: polyop {command}")
        assert "examples:" in h.stdout or command == "version", command
    bench_help = helps[COMMANDS.index("bench")].stdout
    assert "polybench" in bench_help and "peers" in bench_help
    entry = shutil.which("polyop")  # the console script of pyproject.toml
    assert entry is not None
    r = subprocess.run([entry, "version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith(f"polyop {polyop.__version__} (islpy ")


def test_bench_tiny_polybench(tmp_path):
    out = tmp_path / "mini.json"
    ok, unknown_size, unknown_kernel, no_suites, bad_threads = run_all(
        ["bench", "polybench", "--size", "MINI", "--only", "atax", "--repeat", "1",
         "--json", str(out)],
        cwd=tmp_path, batched=(
            ["bench", "--size", "HUGE"],
            ["bench", "polybench", "--only", "nosuch"],
            ["bench", "--benchmarks", str(tmp_path)],
            ["bench", "peers", "--threads", "0"]))
    assert ok.returncode == 0, ok.stderr
    assert "PolyBench/C 4.2.1, MINI dataset" in ok.stdout
    row = next(line for line in ok.stdout.splitlines() if line.startswith("atax"))
    assert row.split()[-1] == "ok"  # polyop's outputs matched numba's
    assert "1/1" in ok.stderr  # the progress bar
    doc = json.loads(out.read_text())
    assert doc["size"] == "MINI" and [r["kernel"] for r in doc["results"]] == ["atax"]
    assert doc["results"][0]["match"] is True and len(doc["results"][0]["polyop_times_s"]) == 1
    for r, message in ((unknown_size, "unknown PolyBench size 'HUGE'"),
                       (unknown_kernel, "unknown PolyBench kernel(s) nosuch; kernels: "),
                       (no_suites, "not of the installed package"),
                       (bad_threads, "--threads wants positive thread counts")):
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, \
            r.stderr


@pytest.mark.slow
def test_bench_peers_runs_each_thread_count_in_its_environment(tmp_path):
    """The peers suite starts one process per thread count with that count's
    thread variables (``peers.thread_env``) set before numpy loads OpenBLAS."""
    out = tmp_path / "peers.json"
    (r,) = run_all(["bench", "peers", "--only", "matmul", "--size", "64", "--peers", "numpy",
                    "--threads", "2", "--repeat", "1", "--json", str(out)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("n=64"))
    assert "numpy" in row.split()  # after "!" where other processes were busy
    doc = json.loads(out.read_text())
    (run,) = doc["runs"]
    assert run["threads"] == 2 and [c["case"] for c in run["workloads"]["matmul"]] == ["n=64"]
    assert run["env"]["OPENBLAS_NUM_THREADS"] == "2"
    assert run["workloads"]["matmul"][0]["peers"]["numpy"]["status"] == "ok"
    assert "1/1" in r.stderr
