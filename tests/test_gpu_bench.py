"""``benchmarks/gpu_bench.py`` without a GPU: its ``--opencl --quick`` mode
builds every case (SGEMM, conv2d, stencil, the WMMA GEMM's tile schedule) for
OpenCL (PoCL in CI) and checks the results against numpy, in a subprocess
as a user runs it; its CUDA mode refuses clearly when cupy is missing; its
FP32 peak follows the documented formula. Nothing is timed here.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_bench.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_bench  # noqa: E402


def _run(*args, env_path: str | None = None) -> subprocess.CompletedProcess:
    env = None
    if env_path is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [env_path, str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=env)


def test_opencl_quick_checks_every_case():
    run = _run("--opencl", "--quick")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    for case in ("sgemm", "conv2d", "stencil"):
        mine = [r for r in rows if r and r[0] == case]
        assert any("ok" in r and "err" in r for r in mine), (case, run.stdout)
    fp16 = [r for r in rows if r and r[0] == "fp16"]
    assert fp16 and "ok" in fp16[0] and "no" in fp16[0], run.stdout  # tiles without WMMA
    assert "wrong result" not in run.stdout + run.stderr


def test_cuda_mode_without_cupy_fails_clearly(tmp_path):
    blocker = tmp_path / "cupy"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('no cupy in this test')\n")
    run = _run("--quick", env_path=str(tmp_path))
    assert run.returncode != 0
    assert "needs cupy and torch" in run.stderr and "--opencl" in run.stderr
    assert "Traceback" not in run.stderr


def test_peak_formula():
    h100 = {"multiProcessorCount": 132, "clockRate": 1_980_000}
    peak, text = gpu_bench.peak_fp32(h100, (9, 0))
    assert peak == pytest.approx(132 * 1.98e9 * 128 * 2)
    assert "132 SMs" in text and "128 FP32 lanes" in text
    a100 = {"multiProcessorCount": 108, "clockRate": 1_410_000}
    assert gpu_bench.peak_fp32(a100, (8, 0))[0] == pytest.approx(108 * 1.41e9 * 64 * 2)


def test_check_refuses_a_wrong_result():
    import numpy as np

    case = gpu_bench.cases(opencl=True, quick=True)[2]  # the stencil
    args = case.args(12, np.random.default_rng(1))
    good = case.reference(args)
    assert gpu_bench.check(case, good, args) == 0.0
    bad = good.copy()
    bad[5, 5] += 1.0
    with pytest.raises(AssertionError, match="wrong result"):
        gpu_bench.check(case, bad, args)
