"""float32 matmul ``C = A @ B``: polyop's packed kernel vs numpy/OpenBLAS, one thread.

The polyop side is the loop nest of ``tests/gemm_kernels.py`` (packing of A and
B into panels, ``kc`` blocking, a 6x16 register tile in a local array, a
prefetch of each C tile), compiled with ``fp_contract=True``; numpy runs
``A @ B`` with OpenBLAS pinned to one thread (``OPENBLAS_NUM_THREADS=1`` is set
before numpy is imported; threadpoolctl is used too when installed).

For each size (``M = N = K``):

- both results are checked (polyop against numpy, relative to the largest
  entry, ``rtol=1e-5``);
- polyop and numpy run interleaved (order alternating per round), ``--repeat``
  rounds (``--repeat-large`` for sizes above 1024), after one warm-up call each;
- each call is timed twice: wall clock (``perf_counter``) and the calling
  thread's CPU time (``thread_time``). The machine may be shared with other
  processes: wall time then includes time the thread waited for a core, CPU
  time does not (cache and memory-bandwidth contention remain in both);
- the table shows GFLOP/s (``2 * n**3`` flops) from the median time of each,
  the polyop/numpy ratio, and polyop's share of the single-core peak.

The peak is measured (``--peak`` overrides it) by ``peak_fma.peak``:
independent FMA chains of the host's vector width, built by polyop itself,
best of several runs, in CPU time. The JSON file (default ``benchmarks/results/matmul_cpu.json``)
holds the raw times, the machine (``lscpu``), the load average before and
after, and the versions.

Usage::

    python benchmarks/matmul_bench.py                      # 512, 1000, 1024, 2048
    python benchmarks/matmul_bench.py --sizes 512 --repeat 21
    python benchmarks/matmul_bench.py --tile 6,16,512,16   # mr, nr, kc, mb
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import hostinfo  # noqa: E402  (beside this script)
import numpy as np  # noqa: E402
import peak_fma  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import llvmlite  # noqa: E402
import llvmlite.binding as llvm  # noqa: E402

import polyop  # noqa: E402
from tests.gemm_kernels import packed_sgemm, workspace  # noqa: E402

SIZES = (512, 1000, 1024, 2048)


def blas_one_thread():
    """A context limiting BLAS to one thread with threadpoolctl, if installed
    (the environment variables set above already do it for OpenBLAS)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def machine() -> dict:
    """The machine (``hostinfo``), the host CPU as LLVM sees it, versions."""
    return {**hostinfo.describe(), "llvm_host_cpu": llvm.get_host_cpu_name(),
            "numpy": np.__version__, "llvmlite": llvmlite.__version__,
            "polyop": polyop.__version__}


def bench_size(kernel, n: int, repeat: int, rng) -> dict:
    """Check and time polyop and numpy at ``M = N = K = n``, interleaved."""
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), np.float32)
    Ap, Bp = workspace(kernel, n, n, n)
    compiled = kernel.compile()
    args = (n, n, n, C, A, B, Ap, Bp)
    compiled(*args)
    ref = A @ B
    err = float(np.abs(C - ref).max() / np.abs(ref).max())
    if err > 1e-5:
        raise AssertionError(f"n={n}: polyop differs from numpy (max rel. error {err:.2e})")
    runs = {"polyop": lambda: compiled(*args), "numpy": lambda: np.matmul(A, B, out=ref)}
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeat):
        for name in (("polyop", "numpy") if r % 2 == 0 else ("numpy", "polyop")):
            t0, c0 = time.perf_counter(), time.thread_time()
            runs[name]()
            c1, t1 = time.thread_time(), time.perf_counter()
            wall[name].append(t1 - t0)
            cpu[name].append(c1 - c0)
    flops = 2.0 * n ** 3

    def gflops(ts: list[float]) -> float:
        return flops / statistics.median(ts) / 1e9

    return {"n": n, "max_rel_error": err, "repeat": repeat,
            "wall_s": wall, "cpu_s": cpu,
            "gflops_wall": {k: gflops(v) for k, v in wall.items()},
            "gflops_cpu": {k: gflops(v) for k, v in cpu.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--repeat", type=int, default=9, help="rounds per size (default 9)")
    ap.add_argument("--repeat-large", type=int, default=5,
                    help="rounds for sizes above 1024 (default 5)")
    ap.add_argument("--tile", default="6,16,512,16", help="mr,nr,kc,mb of the kernel")
    ap.add_argument("--peak", type=float, default=None,
                    help="single-core fp32 peak in GFLOP/s (default: measured)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "matmul_cpu.json"))
    opts = ap.parse_args(argv)

    mr, nr, kc, mb = (int(x) for x in opts.tile.split(","))
    kernel = packed_sgemm(mr, nr, kc, mb)
    t0 = time.perf_counter()
    compiled = kernel.compile()
    compile_s = time.perf_counter() - t0
    load_before = os.getloadavg()
    peak = opts.peak if opts.peak is not None else peak_fma.peak("float32")
    info = machine()
    print(f"CPU: {info['cpu_model']} (LLVM: {info['llvm_host_cpu']}), BLAS: {info['blas']}")
    print(f"kernel: {mr}x{nr} tile, kc={kc}, {mb} panels per block; compiled in "
          f"{compile_s:.2f} s (LLVM {compiled.compile_seconds:.2f} s); "
          f"fp32 peak {peak:.1f} GFLOP/s ({'given' if opts.peak else 'measured'}); "
          f"load average {load_before[0]:.2f}")
    rng = np.random.default_rng(0)
    results = []
    header = (f"{'n':>5} | {'polyop':>7} {'numpy':>7} {'ratio':>5} | {'polyop':>7} {'numpy':>7} "
              f"{'ratio':>5} | {'% peak':>6}")
    print("      |    GFLOP/s, wall median   |     GFLOP/s, CPU median   |")
    print(header)
    print("-" * len(header))
    with blas_one_thread():
        for n in (int(s) for s in opts.sizes.split(",")):
            res = bench_size(kernel, n, opts.repeat if n <= 1024 else opts.repeat_large, rng)
            w, c = res["gflops_wall"], res["gflops_cpu"]
            res["ratio_wall"] = w["polyop"] / w["numpy"]
            res["ratio_cpu"] = c["polyop"] / c["numpy"]
            res["percent_of_peak_cpu"] = 100 * c["polyop"] / peak
            results.append(res)
            print(f"{n:>5} | {w['polyop']:7.1f} {w['numpy']:7.1f} {res['ratio_wall']:5.2f} | "
                  f"{c['polyop']:7.1f} {c['numpy']:7.1f} {res['ratio_cpu']:5.2f} | "
                  f"{res['percent_of_peak_cpu']:5.1f}%", flush=True)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} (other processes share the cores when it "
          "is above ~1; CPU-time columns exclude the time spent waiting for a core)")
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "machine": info, "peak_gflops": peak, "peak_measured": opts.peak is None,
           "kernel": {"mr": mr, "nr": nr, "kc": kc, "mb": mb, "fp_contract": True,
                      "compile_s": compile_s},
           "load_average": {"before": load_before, "after": load_after},
           "results": results}
    out = Path(opts.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
