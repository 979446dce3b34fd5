"""TVM's MetaSchedule tuning fp32 GEMM, the peer of ``tune_bench.py``.

Run by ``tune_bench.py --tvm`` in a child process (TVM may crash the
process), or alone: ``python benchmarks/tune_tvm.py N TRIALS WORK_DIR``. It
prints one JSON line: the time to tune, the best schedule's GFLOP/s timed
here (its output checked against numpy), or the reason it did not run (the
first build or run error of MetaSchedule's logs). One thread
(``TVM_NUM_THREADS=1``, ``num-cores`` 1), the LLVM CPU of this host.
"""

from __future__ import annotations

import os

os.environ["TVM_NUM_THREADS"] = "1"

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def _first_error(work_dir: Path) -> str | None:
    """The first error MetaSchedule's logs report (build or run), shortened."""
    for log in sorted(work_dir.glob("logs/*.log")):
        text = log.read_text(errors="replace")
        for marker in ("Error", "error:"):
            at = text.find(marker)
            if at >= 0:
                return " ".join(text[max(0, at - 200):at + 600].split())
    return None


def tune_gemm(n: int, trials: int, work_dir: Path, cpu: str) -> dict:
    import tvm
    from tvm import te
    from tvm.s_tir import meta_schedule as ms

    a_ = te.placeholder((n, n), "float32", name="A")
    b_ = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), name="k")
    c_ = te.compute((n, n), lambda i, j: te.sum(a_[i, k] * b_[k, j], axis=k), name="C")
    mod = tvm.IRModule({"main": te.create_prim_func([a_, b_, c_])})
    target = tvm.target.Target({"kind": "llvm", "mcpu": cpu, "num-cores": 1})
    out = {"n": n, "trials": trials, "tvm": tvm.__version__, "target": str(target)}
    t0 = time.time()
    # builds and runs get minutes, not MetaSchedule's default 30 s: on a loaded
    # machine its builder processes alone took minutes to start, and every
    # candidate then failed to build for want of time
    db = ms.tune_tir(mod=mod, target=target, work_dir=str(work_dir), max_trials_global=trials,
                     num_trials_per_iter=min(64, trials), database="memory", seed=0,
                     builder=ms.builder.LocalBuilder(max_workers=1, timeout_sec=600),
                     runner=ms.runner.LocalRunner(timeout_sec=300))
    out["tune_seconds"] = round(time.time() - t0, 1)
    sch = ms.tir_integration.compile_tir(db, mod, target)
    if sch is None:
        out["status"] = "no valid schedule"
        out["error"] = _first_error(work_dir)
        return out
    lib = tvm.compile(sch.mod, target=target)
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    dev = tvm.cpu()
    ta, tb = tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev)
    tc = tvm.runtime.tensor(np.zeros((n, n), np.float32), dev)
    lib["main"](ta, tb, tc)
    np.testing.assert_allclose(tc.numpy(), a.astype(np.float64) @ b, rtol=1e-4)
    fn = lib["main"]
    times = []
    for _ in range(7):  # timed here: tvm.compile's Executable has no time_evaluator
        t0 = time.perf_counter()
        for _ in range(5):
            fn(ta, tb, tc)
        times.append((time.perf_counter() - t0) / 5)
    seconds = sorted(times)[len(times) // 2]
    out.update(status="ok", gflops=round(2 * n ** 3 / seconds / 1e9, 2))
    return out


def main() -> None:
    n, trials, work_dir = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    cpu = sys.argv[4] if len(sys.argv) > 4 else "native"
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        out = tune_gemm(n, trials, work_dir, cpu)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which records it
        out = {"n": n, "trials": trials, "status": "error",
               "error": f"{type(e).__name__}: {str(e)[:800]}",
               "log_error": _first_error(work_dir)}
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
