"""The perf map of JIT-compiled kernels and the loop profile of
``benchmarks/profile_kernel.py``."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polyop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import profile_kernel  # noqa: E402


def test_functions_cover_the_kernel_and_its_parallel_bodies():
    mm = polyop.ops.matmul(40, 40, 40, threads=2)
    native = mm.function.kernel.native
    table = native.functions
    names = [n for _, _, n in table]
    assert names[0] == native.symbol
    assert f"{native.symbol}__py" in names
    assert any(n.endswith(".par") for n in names)  # the parallel loop's body
    spans = sorted((a, a + s) for a, s, _ in table)
    assert all(s > 0 for _, s, _ in table)
    assert all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))  # disjoint
    assert table[0][0] == native.address


def test_perf_map_file_is_written_when_asked():
    code = ("import os, polyop; polyop.ops.matmul(8, 8, 8); "
            "print(open(f'/tmp/perf-{os.getpid()}.map').read())")
    env = {**os.environ, "POLYOP_PERF_MAP": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    lines = [ln.split() for ln in out.splitlines() if ln.strip()]
    assert ["polyop_matmul", "polyop_matmul__py"] == [ln[2] for ln in lines]
    assert all(int(ln[1], 16) > 0 for ln in lines)


def test_loops_and_their_description():
    code = [(0x10, "vxorps %ymm0,%ymm0,%ymm0"),
            (0x14, "vbroadcastss (%rdi),%ymm1"),             # inner loop: 0x14 .. 0x24
            (0x18, "vfmadd231ps (%rsi),%ymm1,%ymm0"),
            (0x1c, "vfmadd231ps 0x20(%rsi),%ymm1,%ymm2"),
            (0x20, "vfmadd231ps 0x40(%rsi),%ymm1,%ymm3"),
            (0x22, "vfmadd231ps 0x60(%rsi),%ymm1,%ymm4"),
            (0x24, "jne    0x14"),
            (0x28, "vmovups %ymm0,(%rdx)"),                   # outer loop: 0x10 .. 0x2c
            (0x2c, "jb     0x10"),
            (0x30, "ret")]
    found = profile_kernel.loops(code)
    assert sorted(found) == [(0x10, 0x2c), (0x14, 0x24)]
    inner = profile_kernel.describe(code, (0x14, 0x24), [])
    assert inner.startswith("micro-kernel: 6 instructions") and "4 fma" in inner
    outer = profile_kernel.describe(code, (0x10, 0x2c), [(0x14, 0x24)])
    assert outer.startswith("around inner loops: 3 instructions") and "1 store" in outer


def _perf_works() -> bool:
    if shutil.which("perf") is None or shutil.which("objdump") is None:
        return False
    run = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", os.devnull, "--",
                          "true"], capture_output=True)
    return run.returncode == 0


@pytest.mark.skipif(not _perf_works(), reason="needs Linux perf (allowed to sample) and objdump")
def test_profile_of_a_gemm_finds_its_micro_kernel(capsys):
    assert profile_kernel.main(["matmul", "256", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("|") and "%" in ln]
    top = rows[0].split("|")
    assert "micro-kernel" in top[4] and "fma" in top[4]
    assert float(top[1].strip().rstrip("%")) > 50  # most of a GEMM's time is FMAs
    assert np.isclose(sum(float(r.split("|")[1].strip().rstrip("%")) for r in rows), 100,
                      atol=1.5)  # the table lists where every sample went (rounded)
