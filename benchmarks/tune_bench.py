"""Tuning fp32 GEMM with polyop.tune: model-guided against random search.

For each size (default 512 and 1024, square), on one thread:

- numpy's ``A @ B`` (OpenBLAS; ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
  are removed from this process's environment before numpy is imported, so
  OpenBLAS picks its kernel for this CPU; the kernel is printed);
- the shipped ``polyop.ops.matmul`` (the target heuristic's tiling);
- ``polyop.tune`` over the operator's tiling knobs (``matmul_task``) with
  the random and the model-guided strategy, same seed, same trials: the
  best-so-far curves, and the trials each needs to come within 5 % of the
  best known (the best of everything measured here).

Results go to ``benchmarks/results/tune_gemm.json`` with the machine and its
load (other processes share it). Run: ``python benchmarks/tune_bench.py
[--sizes 512 1024] [--trials 32]``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)
os.environ.setdefault("POLYOP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread against one thread

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _median_seconds(fn, repeats: int = 7, min_seconds: float = 0.05) -> float:
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_seconds:
            break
        number *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def _loadavg() -> list[float]:
    try:
        with open("/proc/loadavg") as fh:
            return [float(x) for x in fh.read().split()[:3]]
    except OSError:
        return []


def curve(records, flops: int) -> list[float | None]:
    """Best GFLOP/s so far after each measured trial (illegal points excluded)."""
    best, out = 0.0, []
    for r in records:
        if r.status == "illegal":
            continue
        if r.ok:
            best = max(best, flops / r.seconds / 1e9)
        out.append(round(best, 2) if best else None)
    return out


def trials_to(points: list[float | None], target: float) -> int | None:
    for k, v in enumerate(points):
        if v is not None and v >= target:
            return k + 1
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "tune_gemm.json"))
    args = ap.parse_args()

    import hostinfo

    import polyop
    from polyop.ops import MatmulTiling
    from polyop.tune import LocalRunner, tune
    from polyop.tune.ops_tasks import matmul_task

    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    print(f"CPU: {machine['cpu_model']} (LLVM {machine['llvm_cpu']}); OpenBLAS: "
          f"{machine['openblas_kernels']}", flush=True)
    load = {"loadavg_start": _loadavg()}
    rows = []
    started = time.time()
    with LocalRunner(workers=1, timeout=120, repeats=5, min_seconds=0.05) as runner:
        for n in args.sizes:
            flops = 2 * n ** 3
            rng = np.random.default_rng(0)
            a = rng.random((n, n), dtype=np.float32)
            b = rng.random((n, n), dtype=np.float32)
            c = np.empty((n, n), np.float32)
            t_np = _median_seconds(lambda a=a, b=b, c=c: np.matmul(a, b, out=c))
            shipped = polyop.ops.matmul(n, n, n, threads=1,
                                        tiling=MatmulTiling.default("float32", n, n, 1))
            t_ship = _median_seconds(lambda f=shipped, a=a, b=b, c=c: f(a, b, c))
            np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4)
            row = {"n": n, "numpy_gflops": round(flops / t_np / 1e9, 2),
                   "shipped_gflops": round(flops / t_ship / 1e9, 2),
                   "shipped_tiling": repr(shipped.tiling), "strategies": {}}
            print(f"{n}: numpy {row['numpy_gflops']} GFLOP/s, shipped polyop "
                  f"{row['shipped_gflops']}", flush=True)
            for strategy in ("random", "model"):
                t0 = time.time()
                r = tune(matmul_task(n, n, n), trials=args.trials, seed=args.seed,
                         strategy=strategy, runner=runner, batch=4, progress=False)
                points = curve(r.records, flops)
                row["strategies"][strategy] = {
                    "best_gflops": round(r.best_gflops, 2), "best_knobs": r.best_knobs,
                    "curve_gflops": points, "seconds": round(time.time() - t0, 1),
                    "failures": len(r.failures)}
                print(f"  {strategy}: best {r.best_gflops:.1f} GFLOP/s after "
                      f"{len(points)} trials ({time.time() - t0:.0f} s) {r.best_knobs}",
                      flush=True)
            best_known = max([row["shipped_gflops"]] + [s["best_gflops"]
                                                       for s in row["strategies"].values()])
            row["best_known_gflops"] = best_known
            for s in row["strategies"].values():
                s["trials_to_95pct_of_best"] = trials_to(s["curve_gflops"], 0.95 * best_known)
                s["vs_numpy"] = round(s["best_gflops"] / row["numpy_gflops"], 3)
                s["vs_shipped"] = round(s["best_gflops"] / row["shipped_gflops"], 3)
            print(f"  trials to 95% of {best_known}: "
                  f"{ {k: v['trials_to_95pct_of_best'] for k, v in row['strategies'].items()} }",
                  flush=True)
            rows.append(row)
    load["loadavg_end"] = _loadavg()
    result = {
        "benchmark": "tune_bench.py: fp32 GEMM tiling knobs, random vs model-guided",
        "machine": machine, "load": load,
        "note": ("shared machine: other agents ran builds and tests meanwhile (load average "
                 "above), so figures are noisy and lower than on an idle core"),
        "threads": 1, "trials": args.trials, "seed": args.seed,
        "wall_seconds": round(time.time() - started, 1), "sizes": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
